using System.Diagnostics;
using System.Globalization;
using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ModelFormat;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// How long an over-the-air update takes on this machine, desired message → new model serving frames, for a small
/// model and a ~20 MB one, with the real control plane (downloads over loopback HTTP), mosquitto and agent. Each
/// round assigns a new version (so every round downloads), alternately small and large; the agent's own
/// <c>secondsToActive</c> (from receiving the message to the swap) and the wall time from publishing to the
/// <c>update.activated</c> event are reported, median and range. The baseline in the same run is the same swap without
/// the download: re-assigning versions already on disk.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- otaswap [--rounds 5]</c>
/// </summary>
internal static class OtaSwapBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = BenchmarkArgs.Positive(args, "--rounds", 5);
        var c = CultureInfo.InvariantCulture;
        var small = new SampleModelOptions { InputSize = 64, Classes = 10, Depth = 2, Seed = 31 };
        var large = new SampleModelOptions { InputSize = 16, Classes = 10, Width = 256, Depth = 8, Seed = 32 };
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = false });
        using var admin = cp.CreateClient(cp.AdminToken);
        var sizes = new Dictionary<string, long>();
        for (var i = 0; i < rounds; i++)
        {
            sizes[$"1.0.{i}"] = (await RegistryUploads.PushAsync(admin, "bench-small", $"1.0.{i}", small)).Size;
            sizes[$"2.0.{i}"] = (await RegistryUploads.PushAsync(admin, "bench-large", $"2.0.{i}", large)).Size;
        }

        using var state = new TempDirectory("edgefleet-otabench");
        var token = await cp.CreateEnrollmentTokenAsync();
        var (code, _, stderr) = AgentProcess.Run(TimeSpan.FromSeconds(60), null, "enroll", "--server", cp.Url.ToString(), "--token", token.Token!,
            "--device-id", "bench-ota", "--state-dir", state.Path);
        if (code != 0)
        {
            await Console.Error.WriteLineAsync(stderr);
            return 1;
        }

        var config = state.File("agent.json");
        await File.WriteAllTextAsync(config, $$"""
            { "Agent": { "StateDirectory": "{{state.Path}}", "Source": { "Uri": "testsrc://160x120@30" },
              "Model": { "Path": "{{TestModels.Get(small)}}" }, "Inference": { "IntraOpThreads": 1 },
              "Mqtt": { "Host": "127.0.0.1", "Port": {{broker.Port}}, "Username": null, "Password": null },
              "Telemetry": { "IntervalSeconds": 5, "Outbox": { "SynchronousFull": false } }, "Ota": { "KeepVersions": 100 } } }
            """);
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/bench-ota/#");
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        await recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => agent.Stderr);
        await using var publisher = new MqttConnection(new MqttConnectionOptions { Host = "127.0.0.1", Port = broker.Port, ClientId = "bench-cp" }, NullLogger.Instance);
        publisher.Start();
        await publisher.WaitConnectedAsync();

        var results = new Dictionary<string, List<(double Agent, double Wall)>>();
        async Task AssignAsync(string kind, string model, string version)
        {
            var info = (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync(admin, $"api/v1/models/{model}/versions/{version}",
                EdgeFleet.Contracts.Serialization.ApiJsonContext.Default.ModelVersionInfo))!;
            var baseUrl = new Uri(cp.Url, $"api/v1/models/{model}/versions/{version}/");
            var id = $"{model}@{version}#{Guid.NewGuid():N}";
            var desired = new DesiredMessage
            {
                Id = id,
                Model = model,
                Version = version,
                ArtifactUrl = new Uri(baseUrl, "artifact").ToString(),
                ManifestUrl = new Uri(baseUrl, "manifest").ToString(),
                Signature = Convert.ToBase64String(await admin.GetByteArrayAsync(new Uri(baseUrl, "manifest.sig"))),
                Sha256 = info.Sha256,
                Size = info.Size,
                Probation = new ProbationOverrides { Frames = 30, Seconds = 1, MaxLatencyRatio = 1000, MaxConfidenceDrop = 1 },
            };
            var sw = Stopwatch.StartNew();
            await publisher.PublishAsync(new MqttMessage(Topics.For("bench-ota", Topics.Desired), MessageParser.Serialize(desired), Qos: 1, Retain: true));
            var activated = await recorder.WaitForAsync("/events", p => p.Contains(id, StringComparison.Ordinal)
                && p.Contains(UpdateEvents.Activated, StringComparison.Ordinal), TimeSpan.FromSeconds(300), () => agent.Stderr);
            var wall = sw.Elapsed.TotalSeconds;
            var e = MessageParser.TryParse<EventMessage>(Encoding.UTF8.GetBytes(activated), out var ev, out _) ? ev! : throw new InvalidOperationException(activated);
            results.TryAdd(kind, []);
            results[kind].Add((double.Parse(e.Data!["secondsToActive"], c), wall));
            await recorder.WaitForAsync("/events", p => p.Contains(id, StringComparison.Ordinal)
                && (p.Contains(UpdateEvents.Committed, StringComparison.Ordinal) || p.Contains(UpdateEvents.RolledBack, StringComparison.Ordinal)),
                TimeSpan.FromSeconds(300), () => agent.Stderr);
        }

        for (var i = 0; i < rounds; i++)
        {
            await AssignAsync("large (download)", "bench-large", $"2.0.{i}");
            await AssignAsync("small (download)", "bench-small", $"1.0.{i}");
        }

        for (var i = 0; i < rounds; i++)
        {
            await AssignAsync("large (on disk)", "bench-large", $"2.0.{i}");
            await AssignAsync("small (on disk)", "bench-small", $"1.0.{i}");
        }

        Console.WriteLine(string.Create(c, $"OTA desired → active, {rounds} rounds each; small {sizes["1.0.0"] / 1024.0:0} KiB, large {sizes["2.0.0"] / 1048576.0:0.0} MiB"));
        foreach (var (kind, list) in results)
        {
            var agentTimes = list.Select(r => r.Agent).Order().ToList();
            var wallTimes = list.Select(r => r.Wall).Order().ToList();
            Console.WriteLine(string.Create(c,
                $"  {kind,-18} agent {agentTimes[agentTimes.Count / 2]:0.000} s ({agentTimes[0]:0.000}–{agentTimes[^1]:0.000}), publish → event {wallTimes[wallTimes.Count / 2]:0.000} s"));
        }

        return 0;
    }
}
