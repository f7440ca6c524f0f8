using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ModelFormat;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// A real control plane (registry, downloads, enrollment; <c>--mqtt none</c>) and a real mosquitto the test can publish
/// any <c>desired</c> message to, including ones the control plane would never send. Models are pushed once per class.
/// </summary>
#pragma warning disable IDISP006, IDISP003 // xunit creates the fixture and calls InitializeAsync once, DisposeAsync at the end
public sealed class OtaFixture : IAsyncLifetime
{
    public static readonly SampleModelOptions Good = new() { InputSize = 64, Classes = 10, Depth = 3, Seed = 21 };
    public static readonly SampleModelOptions Nan = Good with { Fault = SampleFault.Nan };
    /// <summary>A live model with enough compute (~0.5 ms here) that a 7× slower one stands out from scheduling noise.</summary>
    public static readonly SampleModelOptions Base8 = Good with { Depth = 8, Seed = 24 };
    public static readonly SampleModelOptions Slow = Base8 with { Fault = SampleFault.Slow };
    public static readonly SampleModelOptions Wide = new() { InputSize = 96, Classes = 10, Depth = 3, Seed = 22 };

    /// <summary>About 4.7 MB of weights on a small input: downloads take long enough to be cut, inference stays cheap.</summary>
    public static readonly SampleModelOptions Heavy = new() { InputSize = 32, Classes = 10, Width = 128, Depth = 8, Seed = 23 };

    public ControlPlaneProcess Cp { get; private set; } = null!;

    public MosquittoBroker Broker { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Cp = await ControlPlaneProcess.StartAsync();
        Broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = false });
        Admin = Cp.CreateClient(Cp.AdminToken);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "1.0.0", Good);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "1.1.0", Good);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "2.0.0", Wide);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "6.6.6-nan", Nan, m => m with { SelfTest = null }); // only probation can catch it
        await RegistryUploads.PushAsync(Admin, "ota-cls", "6.6.7-nan", Nan);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "7.0.0-slow", Slow);
        await RegistryUploads.PushAsync(Admin, "ota-cls", "3.0.0", Heavy);
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await Broker.DisposeAsync();
        await Cp.DisposeAsync();
    }

    /// <summary>The desired message the control plane would publish for a registered version.</summary>
    public async Task<DesiredMessage> DesiredAsync(string model, string version, ProbationOverrides? probation = null, string? id = null, Uri? server = null)
    {
        var info = (await Admin.GetFromJsonAsync($"api/v1/models/{model}/versions/{version}", ApiJsonContext.Default.ModelVersionInfo))!;
        var baseUrl = new Uri(server ?? Cp.Url, $"api/v1/models/{model}/versions/{version}/");
        var signature = await Admin.GetByteArrayAsync(new Uri(Cp.Url, $"api/v1/models/{model}/versions/{version}/manifest.sig"));
        return new DesiredMessage
        {
            Id = id ?? $"{model}@{version}#{Guid.NewGuid():N}",
            IssuedAt = TimeProvider.System.GetUtcNow(),
            Model = model,
            Version = version,
            ArtifactUrl = new Uri(baseUrl, "artifact").ToString(),
            ManifestUrl = new Uri(baseUrl, "manifest").ToString(),
            SignatureUrl = new Uri(baseUrl, "manifest.sig").ToString(),
            Signature = Convert.ToBase64String(signature),
            Sha256 = info.Sha256,
            Size = info.Size,
            Probation = probation ?? Quick,
        };
    }

    /// <summary>
    /// Short probations so a test takes seconds. The p95 of a few dozen sub-millisecond inferences on 2 shared, loaded
    /// cores can jump several-fold on preemption alone, so the latency bound is loose here (the latency test sets its own).
    /// </summary>
    public static ProbationOverrides Quick { get; } = new() { Frames = 40, Seconds = 1, MaxLatencyRatio = 20 };
}

#pragma warning restore IDISP006, IDISP003

/// <summary>One enrolled agent process whose events a test waits for.</summary>
public sealed class OtaDevice : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly OtaFixture _fixture;
    private readonly MqttConnection _publisher;

    private OtaDevice(OtaFixture fixture, string id, TempDirectory state, TopicRecorder recorder, MqttConnection publisher)
    {
        _fixture = fixture;
        Id = id;
        State = state;
        Recorder = recorder;
        _publisher = publisher;
    }

    public string Id { get; }

    public TempDirectory State { get; }

    public TopicRecorder Recorder { get; }

    public AgentProcess? Agent { get; private set; }

    public string ConfigPath => State.File("agent.json");

    /// <param name="server">The control plane URL the device enrolls with (and downloads from); default the fixture's.</param>
    /// <param name="broker">The broker it reports to; default the fixture's.</param>
    public static async Task<OtaDevice> StartAsync(OtaFixture fixture, string id, IReadOnlyDictionary<string, string>? ota = null, string source = "testsrc://160x120@30",
        Uri? server = null, MosquittoBroker? broker = null, SampleModelOptions? model = null)
    {
        ArgumentNullException.ThrowIfNull(fixture);
        broker ??= fixture.Broker;
        var state = new TempDirectory("edgefleet-ota");
        var token = await fixture.Cp.CreateEnrollmentTokenAsync();
        var (code, _, stderr) = AgentProcess.Run(TimeSpan.FromSeconds(60), null, "enroll", "--server", (server ?? fixture.Cp.Url).ToString(), "--token", token.Token!,
            "--device-id", id, "--state-dir", state.Path);
        Assert.True(code == 0, stderr);
        var otaKeys = new Dictionary<string, string> { ["RetryDelaySeconds"] = "0.1", ["MaxRetryDelaySeconds"] = "0.5", ["ReadTimeoutSeconds"] = "3" };
        foreach (var (key, value) in ota ?? new Dictionary<string, string>())
        {
            otaKeys[key] = value;
        }

        var otaSection = string.Join(", ", otaKeys.Select(kv => $"\"{kv.Key}\": {kv.Value}"));
        await File.WriteAllTextAsync(state.File("agent.json"), $$"""
            { "Agent": { "StateDirectory": "{{state.Path}}", "Source": { "Uri": "{{source}}" },
              "Model": { "Path": "{{TestModels.Get(model ?? OtaFixture.Good)}}" }, "Inference": { "IntraOpThreads": 1 },
              "Mqtt": { "Host": "127.0.0.1", "Port": {{broker.Port}}, "Username": null, "Password": null, "MaxReconnectDelaySeconds": 1 },
              "Telemetry": { "IntervalSeconds": 1, "Outbox": { "SynchronousFull": false } },
              "Ota": { {{otaSection}} } } }
            """);
        var recorder = await TopicRecorder.StartAsync(broker, $"ef/v1/{id}/#");
        var publisher = new MqttConnection(new MqttConnectionOptions { Host = "127.0.0.1", Port = broker.Port, ClientId = $"test-cp-{id}" },
            NullLogger.Instance);
        publisher.Start();
        var device = new OtaDevice(fixture, id, state, recorder, publisher);
        device.StartAgent();
        await device.Recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), Patience, () => device.Agent!.Stderr);
        return device;
    }

    public void StartAgent()
    {
        Agent?.Dispose();
        Agent = AgentProcess.Start(null, "run", "--config", ConfigPath);
    }

    public async Task PublishDesiredAsync(DesiredMessage desired) =>
        await PublishDesiredAsync(MessageParser.Serialize(desired));

    public async Task PublishDesiredAsync(byte[] payload)
    {
        await _publisher.WaitConnectedAsync();
        var result = await _publisher.PublishAsync(new MqttMessage(Topics.For(Id, Topics.Desired), payload, Qos: 1, Retain: true));
        Assert.True(result.ReasonCode < 0x80, result.ToString());
    }

    /// <summary>Waits for the first event of <paramref name="type"/> about assignment <paramref name="desiredId"/> (any when null).</summary>
    public async Task<EventMessage> WaitForEventAsync(string type, string? desiredId = null)
    {
        var payload = await Recorder.WaitForAsync("/events", p => Parse(p) is { } e && e.Type == type
                && (desiredId is null || e.Data?.GetValueOrDefault("desiredId") == desiredId),
            Patience, () => Agent?.Stderr ?? "");
        return Parse(payload)!;
    }

    /// <summary>Every update.* event about <paramref name="desiredId"/>, in order.</summary>
    public IReadOnlyList<EventMessage> UpdateEvents(string desiredId) =>
        Recorder.Payloads("/events").Select(Parse).OfType<EventMessage>()
            .Where(e => e.Type.StartsWith("update.", StringComparison.Ordinal) && e.Data?.GetValueOrDefault("desiredId") == desiredId)
            .ToList();

    /// <summary>The model the newest retained status names.</summary>
    public async Task WaitForRunningAsync(string model, string version, int skipStatuses = 0, bool orAnyModel = false)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var needle = orAnyModel ? "\"model\":{" : $"\"name\":\"{model}\",\"version\":\"{version}\"";
        while (!Recorder.Payloads("/status").Skip(skipStatuses).Any(p => p.Contains("\"online\":true", StringComparison.Ordinal) && p.Contains(needle, StringComparison.Ordinal)))
        {
            Assert.True(sw.Elapsed < Patience, $"no status naming {model} {version}: {string.Join(" | ", Recorder.Payloads("/status").TakeLast(3))}; {Agent?.Stderr}");
            await Task.Delay(50);
        }
    }

    /// <summary>The model the freshly started agent loaded first: its start-up log line, or a status naming it.</summary>
    public async Task WaitForStartedOnAsync(string model, string version, int skipStatuses)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var needle = $"\"name\":\"{model}\",\"version\":\"{version}\"";
        var line = $"Model {model} {version} (";
        while (!(Agent?.Stderr ?? "").Split('\n').Any(l => l.Contains(line, StringComparison.Ordinal) && l.Contains(") ready on ", StringComparison.Ordinal))
            && !Recorder.Payloads("/status").Skip(skipStatuses).Any(p => p.Contains("\"online\":true", StringComparison.Ordinal) && p.Contains(needle, StringComparison.Ordinal)))
        {
            Assert.True(sw.Elapsed < Patience, $"the agent did not start on {model} {version}: {string.Join(" | ", Recorder.Payloads("/status").TakeLast(3))}; {Agent?.Stderr}");
            await Task.Delay(50);
        }
    }

    public (int Code, string Stdout, string Stderr) Status(bool json = false) =>
        AgentProcess.Run(TimeSpan.FromSeconds(30), null, json ? ["status", "--state-dir", State.Path, "--json"] : ["status", "--state-dir", State.Path]);

    public async ValueTask DisposeAsync()
    {
        Agent?.Dispose();
        Recorder.Dispose();
        await _publisher.DisposeAsync();
        State.Dispose();
    }

    private static EventMessage? Parse(string payload) =>
        MessageParser.TryParse<EventMessage>(System.Text.Encoding.UTF8.GetBytes(payload), out var e, out _) ? e : null;

    public static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);
}
