using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// How many simulated devices one process holds (<c>edgefleet sim</c>'s <see cref="FleetSimulator"/>): N devices enroll
/// through the real control plane, connect to mosquitto, publish status, telemetry and drift reports, then all take an
/// update (downloaded from the control plane, signature and hash checked, probation, commit). Reported: enrollments and
/// connections per second, memory per device, CPU in steady state, time until every device committed, stop time.
/// Baseline in the same run: the same N broker logins as bare <see cref="MqttConnection"/>s (connect, subscribe, retained
/// status, nothing else), to read the simulator's cost per device as a ratio.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- sim [--devices 10000] [--steady 30] [--telemetry 5]</c>
/// <para>
/// The control plane runs with <c>--mqtt none</c> and hands out a plain mosquitto (anonymous): its embedded broker reloads
/// its password file once per enrollment, which is what limits enrolling thousands (measured separately, see the README).
/// </para>
/// </summary>
internal static class SimBenchmark
{
    private const string Model = "bench-sim";

    public static async Task<int> RunAsync(string[] args)
    {
        var devices = BenchmarkArgs.Positive(args, "--devices", 10_000);
        var steady = TimeSpan.FromSeconds(BenchmarkArgs.Positive(args, "--steady", 30));
        var interval = TimeSpan.FromSeconds(BenchmarkArgs.Positive(args, "--telemetry", 5));
        Console.WriteLine(Invariant($"simulator benchmark: {devices} devices, telemetry every {interval.TotalSeconds} s, {steady.TotalSeconds} s steady state"));
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = false });
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            Environment = new Dictionary<string, string> { ["ControlPlane__MqttPublicPort"] = broker.Port.ToString(CultureInfo.InvariantCulture) },
        });
        using var admin = cp.CreateClient(cp.AdminToken);
        await RegistryUploads.PushAsync(admin, Model, "1.0.0", TestModels.SmallClassifier);
        await RegistryUploads.PushAsync(admin, Model, "1.1.0", TestModels.SmallClassifier);
        using var dir = new TempDirectory("edgefleet-sim-bench");
        var token = await cp.CreateEnrollmentTokenAsync();
        var options = new SimulatorOptions
        {
            Server = cp.Url,
            EnrollToken = token.Token,
            Devices = devices,
            IdPrefix = "bench",
            ModelName = Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = interval,
            Probation = TimeSpan.FromSeconds(2),
            StateFile = dir.File("fleet.json"),
        };

        var before = Memory();
        SimulatorSummary started, steadySummary, updated;
        double steadyCpu, otaSeconds;
        long simMemory;
        using var patience = new CancellationTokenSource(TimeSpan.FromMinutes(30));
        await using (var sim = new FleetSimulator(options))
        {
            await sim.StartAsync(patience.Token);
            await sim.WaitAllConnectedAsync(patience.Token);
            started = sim.Summary();
            Console.WriteLine(Invariant($"enrolled {started.Enrolled} in {started.EnrollSeconds:0.0} s ({started.EnrollsPerSecond:0} /s); connected {started.Connected} in {started.ConnectSeconds:0.00} s ({started.ConnectsPerSecond:0} /s)"));

            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            await Task.Delay(steady, patience.Token); // measuring a period of steady state, not waiting for a condition
            steadyCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / steady.TotalSeconds;
            steadySummary = sim.Summary();
            simMemory = Memory() - before;
            Console.WriteLine(Invariant($"steady state: {steadyCpu * 100:0} % of one core, {steadySummary.Telemetry} telemetry sent ({steadySummary.PublishFailures} failed), ") +
                Invariant($"working set {steadySummary.WorkingSetBytes / 1048576.0:0} MiB ({steadySummary.WorkingSetBytes / (double)devices / 1024:0.0} KiB per device), managed heap {simMemory / (double)devices / 1024:0.0} KiB per device, {steadySummary.Threads} threads"));

            if (args.Contains("--no-ota"))
            {
                await sim.StopAsync();
                Console.WriteLine(Invariant($"stop: {sim.Summary().StopSeconds:0.00} s for every device to publish offline and disconnect"));
                return 0;
            }

            await using var publisher = new MqttConnection(new MqttConnectionOptions { Host = broker.Host, Port = broker.Port, ClientId = "bench-desired" }, NullLogger.Instance);
            publisher.Start();
            await publisher.WaitConnectedAsync(patience.Token);
            var desired = await DesiredAsync(admin, cp.Url, "1.1.0");
            var payload = MessageParser.Serialize(desired);
            var ota = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, devices), new ParallelOptions { MaxDegreeOfParallelism = 20, CancellationToken = patience.Token }, async (i, ct) =>
                await publisher.PublishAsync(new MqttMessage(Topics.For(options.DeviceId(i), Topics.Desired), payload, Qos: 1, Retain: true), ct));
            await sim.WaitForOtaAsync("1.1.0", SimOtaState.Committed, devices, patience.Token);
            otaSeconds = ota.Elapsed.TotalSeconds;
            updated = sim.Summary();
            Console.WriteLine(Invariant($"update: every device committed 1.1.0 {otaSeconds:0.0} s after the first desired ({updated.Downloads} downloads, {updated.DownloadedBytes / 1048576.0:0} MiB, ") +
                Invariant($"{updated.DownloadRetries} retries; probation 2 s)"));
            await sim.StopAsync();
            Console.WriteLine(Invariant($"stop: {sim.Summary().StopSeconds:0.00} s for every device to publish offline and disconnect"));
        }

        var (baselineRate, baselineMemory) = await BaselineAsync(broker, options);
        Console.WriteLine(Invariant($"baseline (bare MqttConnection, connect + subscribe + retained status): {baselineRate:0} connects/s, {baselineMemory / (double)devices / 1024:0.0} KiB of managed heap per connection"));
        Console.WriteLine(Invariant($"ratio simulator/baseline: connect rate {started.ConnectsPerSecond / baselineRate:0.00}, managed heap per device {simMemory / (double)baselineMemory:0.00}"));
        return 0;
    }

    /// <summary>The same identities as bare connections (the simulator has stopped: the client ids are free again).</summary>
    private static async Task<(double Rate, long Memory)> BaselineAsync(MosquittoBroker broker, SimulatorOptions options)
    {
        var before = Memory();
        var connections = new List<MqttConnection>(options.Devices);
        var sw = Stopwatch.StartNew();
        using var gate = new SemaphoreSlim(options.ConnectConcurrency);
        var connects = new List<Task>();
        for (var i = 0; i < options.Devices; i++)
        {
            var id = options.DeviceId(i);
            var connection = new MqttConnection(new MqttConnectionOptions
            {
                Host = broker.Host,
                Port = broker.Port,
                ClientId = id,
                KeepAliveSeconds = options.KeepAliveSeconds,
                Subscriptions = [new MqttSubscription(Topics.For(id, Topics.Desired))],
                Will = new MqttMessage(Topics.For(id, Topics.Status), "{\"online\":false}"u8.ToArray(), Qos: 1, Retain: true),
                SocketBufferBytes = 8192,
                ReceiveBuffer = 16,
                MaxInflight = 16,
            }, NullLogger.Instance);
            connections.Add(connection);
            await gate.WaitAsync();
            connection.Start();
            connects.Add(ConnectAsync(connection, id, gate));
        }

        await Task.WhenAll(connects);
        var rate = options.Devices / sw.Elapsed.TotalSeconds;
        var memory = Memory() - before;
        await Task.WhenAll(connections.Select(async c => await c.DisposeAsync()));
        return (rate, memory);
    }

    private static async Task ConnectAsync(MqttConnection connection, string id, SemaphoreSlim gate)
    {
        try
        {
            await connection.WaitConnectedAsync();
            await connection.PublishAsync(new MqttMessage(Topics.For(id, Topics.Status), "{\"online\":true}"u8.ToArray(), Qos: 1, Retain: true));
        }
        finally
        {
            gate.Release();
        }
    }

    private static async Task<DesiredMessage> DesiredAsync(HttpClient admin, Uri server, string version)
    {
        var info = (await admin.GetFromJsonAsync($"api/v1/models/{Model}/versions/{version}", ApiJsonContext.Default.ModelVersionInfo))!;
        var baseUrl = new Uri(server, $"api/v1/models/{Model}/versions/{version}/");
        var signature = await admin.GetByteArrayAsync(new Uri(baseUrl, "manifest.sig"));
        return new DesiredMessage
        {
            Id = $"{Model}@{version}#bench",
            Model = Model,
            Version = version,
            ArtifactUrl = new Uri(baseUrl, "artifact").ToString(),
            ManifestUrl = new Uri(baseUrl, "manifest").ToString(),
            Signature = Convert.ToBase64String(signature),
            Sha256 = info.Sha256,
            Size = info.Size,
        };
    }

    /// <summary>
    /// The managed heap after a full collection: what the devices hold, not garbage waiting to be collected. (The working
    /// set does not shrink when the heap does, so its deltas say little about a second phase of one process.)
    /// </summary>
    private static long Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
