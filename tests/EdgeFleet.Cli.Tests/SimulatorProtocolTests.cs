using System.Net.Http.Json;
using System.Text;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Cli.Tests;

/// <summary>
/// A real control plane for enrollment and downloads (<c>--mqtt none</c>, SQLite) whose enrollment sends devices to a
/// plain mosquitto the test can publish any <c>desired</c> message to — also ones the control plane would never send:
/// malformed, tampered, shadow, superseded. Without a broker to reload per enrollment, enrolling is fast enough for a
/// thousand devices in a test.
/// </summary>
#pragma warning disable IDISP006, IDISP003 // xunit creates the fixture and calls InitializeAsync once, DisposeAsync at the end
public sealed class SimBrokerFixture : IAsyncLifetime
{
    public const string Model = "simp-cls";

    public MosquittoBroker Broker { get; private set; } = null!;

    public ControlPlaneProcess Cp { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    /// <summary>The test's own client on the broker, standing in for the control plane's desired publisher.</summary>
    public MqttConnection Publisher { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = false });
        Cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            Environment = new Dictionary<string, string> { ["ControlPlane__MqttPublicPort"] = Broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        });
        Admin = Cp.CreateClient(Cp.AdminToken);
        foreach (var version in new[] { "1.0.0", "1.1.0", "2.0.0" })
        {
            await RegistryUploads.PushAsync(Admin, Model, version, TestModels.SmallClassifier);
        }

        Publisher = new MqttConnection(new MqttConnectionOptions { Host = Broker.Host, Port = Broker.Port, ClientId = $"sim-test-{Guid.NewGuid():N}"[..24] },
            NullLogger.Instance);
        Publisher.Start();
    }

    public async Task DisposeAsync()
    {
        await Publisher.DisposeAsync();
        Admin.Dispose();
        await Cp.DisposeAsync();
        await Broker.DisposeAsync();
    }

    /// <summary>The desired message the control plane would publish for a registered version.</summary>
    public async Task<DesiredMessage> DesiredAsync(string version, string mode = DesiredModes.Live, double probationSeconds = 1)
    {
        var info = (await Admin.GetFromJsonAsync($"api/v1/models/{Model}/versions/{version}", ApiJsonContext.Default.ModelVersionInfo))!;
        var baseUrl = new Uri(Cp.Url, $"api/v1/models/{Model}/versions/{version}/");
        var signature = await Admin.GetByteArrayAsync(new Uri(baseUrl, "manifest.sig"));
        return new DesiredMessage
        {
            Id = $"{Model}@{version}#{Guid.NewGuid():N}",
            IssuedAt = TimeProvider.System.GetUtcNow(),
            Model = Model,
            Version = version,
            Mode = mode,
            ArtifactUrl = new Uri(baseUrl, "artifact").ToString(),
            ManifestUrl = new Uri(baseUrl, "manifest").ToString(),
            SignatureUrl = new Uri(baseUrl, "manifest.sig").ToString(),
            Signature = Convert.ToBase64String(signature),
            Sha256 = info.Sha256,
            Size = info.Size,
            Probation = new ProbationOverrides { Seconds = probationSeconds },
        };
    }

    public Task PublishDesiredAsync(string deviceId, DesiredMessage desired) => PublishDesiredAsync(deviceId, MessageParser.Serialize(desired));

    public async Task PublishDesiredAsync(string deviceId, byte[] payload)
    {
        await Publisher.WaitConnectedAsync();
        var result = await Publisher.PublishAsync(new MqttMessage(Topics.For(deviceId, Topics.Desired), payload, Qos: 1, Retain: true));
        Assert.True(result.Accepted, result.ToString());
    }
}
#pragma warning restore IDISP006, IDISP003

/// <summary>The simulated devices' answers to what only a broker, not the control plane's API, can send them.</summary>
[Trait("Category", "Integration")]
public sealed class SimulatorProtocolTests(SimBrokerFixture fixture) : IClassFixture<SimBrokerFixture>, IAsyncLifetime
{
    private readonly CancellationTokenSource _patience = new(TimeSpan.FromSeconds(120));
    private readonly SimLog _log = new();
    private readonly List<FleetSimulator> _sims = [];

    private CancellationToken Hang => _patience.Token;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var sim in _sims)
        {
            await sim.DisposeAsync();
        }

        _patience.Dispose();
        Assert.Empty(_log.Warnings);
    }

    [Fact]
    public async Task MalformedDesired_IsAnsweredLikeTheAgent_AndTheDeviceKeepsWorking()
    {
        var sim = await StartAsync(1);
        var id = sim.Snapshot()[0].Id;
        using var events = await TopicRecorder.StartAsync(fixture.Broker, Topics.For(id, Topics.Events));
        await sim.WaitAllConnectedAsync(Hang);
        var good = await fixture.DesiredAsync("1.1.0");
        var json = Encoding.UTF8.GetString(MessageParser.Serialize(good));
        byte[][] bad =
        [
            "not json at all"u8.ToArray(),
            Encoding.UTF8.GetBytes(json.Replace("\"sha256\":", "\"sha256_\":", StringComparison.Ordinal)), // a required field missing
            Encoding.UTF8.GetBytes(json.Replace($"\"size\":{good.Size}", "\"size\":\"big\"", StringComparison.Ordinal)), // a wrong type
            "[1,2,3]"u8.ToArray(),
            Encoding.UTF8.GetBytes("{\"schema\":\"ef.desired/1\",\"pad\":\"" + new string('x', 300_000) + "\"}"), // over the 256 KiB allowed
        ];

        foreach (var payload in bad)
        {
            await fixture.PublishDesiredAsync(id, payload);
        }

        await sim.WaitUntilAsync(s => s.Device(id)!.RejectedMessages == bad.Length, Hang);
        await fixture.PublishDesiredAsync(id, good);
        await sim.WaitForOtaAsync("1.1.0", SimOtaState.Committed, 1, Hang);

        var answers = await WaitForEventsAsync(events, e => e.Type == UpdateEvents.Rejected, bad.Length);
        Assert.All(answers, e =>
        {
            Assert.Equal((RejectReasons.Download, "invalid desired message"), (e.Data!["reason"], e.Data["detail"]));
            Assert.Equal("error", e.Level);
        });
        Assert.True(sim.Device(id)!.Connected);
        Assert.Equal(new ModelRef(SimBrokerFixture.Model, "1.1.0"), sim.Device(id)!.Running);
    }

    [Fact]
    public async Task TamperedAssignments_AreRejectedWithTheAgentsReasons()
    {
        var sim = await StartAsync(3);
        await sim.WaitAllConnectedAsync(Hang);
        var ids = sim.Snapshot().Select(d => d.Id).ToArray();
        var good = await fixture.DesiredAsync("1.1.0");
        var other = await fixture.DesiredAsync("2.0.0");

        await fixture.PublishDesiredAsync(ids[0], good with { Signature = other.Signature, SignatureUrl = null }); // another manifest's signature
        await fixture.PublishDesiredAsync(ids[1], good with { Sha256 = new string('a', 64) });
        await fixture.PublishDesiredAsync(ids[2], good with { Size = good.Size + 1 });
        await sim.WaitForOtaAsync("1.1.0", SimOtaState.Rejected, 3, Hang);

        Assert.Equal([RejectReasons.Signature, RejectReasons.Sha256, RejectReasons.Size], ids.Select(id => sim.Device(id)!.OtaReason));
        Assert.All(ids, id => Assert.Equal("1.0.0", sim.Device(id)!.Running.Version));
    }

    [Fact]
    public async Task Shadow_ReportsAgreement_NeverActivates_AndAFinalReportWhenCleared()
    {
        var sim = await StartAsync(1, shadowReports: TimeSpan.FromSeconds(0.5));
        var id = sim.Snapshot()[0].Id;
        using var events = await TopicRecorder.StartAsync(fixture.Broker, Topics.For(id, Topics.Events));
        await sim.WaitAllConnectedAsync(Hang);
        var shadow = await fixture.DesiredAsync("1.1.0", DesiredModes.Shadow);

        await fixture.PublishDesiredAsync(id, shadow);
        var reports = await WaitForEventsAsync(events, e => e.Type == UpdateEvents.ShadowReport, 2);
        await fixture.PublishDesiredAsync(id, []); // cleared: the shadow stops
        var final = (await WaitForEventsAsync(events, e => e.Type == UpdateEvents.ShadowReport && e.Data!["final"] == "true", 1))[0];

        Assert.All(reports, r => Assert.Equal(("shadow", "1.1.0", "1.0.0"), (r.Data!["mode"], r.Data["version"], r.Data["liveVersion"])));
        Assert.InRange(double.Parse(final.Data!["top1Agreement"], System.Globalization.CultureInfo.InvariantCulture), 0.9, 1);
        Assert.DoesNotContain(Events(events), e => e.Type == UpdateEvents.Activated);
        Assert.Equal("1.0.0", sim.Device(id)!.Running.Version);
    }

    [Fact]
    public async Task NewerAssignmentDuringProbation_RollsBackAsSuperseded_AndTheVersionItRunsThenIsConfirmed()
    {
        var sim = await StartAsync(1);
        var id = sim.Snapshot()[0].Id;
        using var events = await TopicRecorder.StartAsync(fixture.Broker, Topics.For(id, Topics.Events));
        await sim.WaitAllConnectedAsync(Hang);

        await fixture.PublishDesiredAsync(id, await fixture.DesiredAsync("1.1.0", probationSeconds: 600));
        await sim.WaitForOtaAsync("1.1.0", SimOtaState.Activated, 1, Hang);
        Assert.Equal("1.1.0", sim.Device(id)!.Running.Version);
        await fixture.PublishDesiredAsync(id, await fixture.DesiredAsync("1.0.0")); // the operator rolls back to what ran before
        await sim.WaitForOtaAsync("1.0.0", SimOtaState.Committed, 1, Hang);

        var rolledBack = (await WaitForEventsAsync(events, e => e.Type == UpdateEvents.RolledBack, 1))[0];
        Assert.Equal(("1.1.0", "superseded"), (rolledBack.Data!["version"], rolledBack.Data["criterion"]));
        var confirmed = (await WaitForEventsAsync(events, e => e.Type == UpdateEvents.Committed, 1))[0];
        Assert.Equal(("1.0.0", "true"), (confirmed.Data!["version"], confirmed.Data["alreadyRunning"]));
        Assert.Equal("1.0.0", sim.Device(id)!.Running.Version);
        Assert.Equal(1, sim.Summary().Downloads); // the confirmation downloaded nothing
    }

    [Fact]
    public async Task Command_IsAnsweredWithCmdDone_AndAMalformedOneIsCounted()
    {
        var sim = await StartAsync(1);
        var id = sim.Snapshot()[0].Id;
        using var events = await TopicRecorder.StartAsync(fixture.Broker, Topics.For(id, Topics.Events));
        await sim.WaitAllConnectedAsync(Hang);
        var topic = Topics.For(id, Topics.Command);

        await fixture.Publisher.PublishAsync(new MqttMessage(topic, MessageParser.Serialize(new CommandMessage { Id = "c-1", Command = EdgeFleet.Contracts.Messaging.Commands.Snapshot }), Qos: 1));
        await fixture.Publisher.PublishAsync(new MqttMessage(topic, "{\"command\":\"self-destruct\"}"u8.ToArray(), Qos: 1));
        var done = (await WaitForEventsAsync(events, e => e.Type == "cmd.done", 1))[0];
        await sim.WaitUntilAsync(s => s.Device(id)!.RejectedMessages == 1, Hang);

        Assert.Equal(("c-1", EdgeFleet.Contracts.Messaging.Commands.Snapshot), (done.Data!["id"], done.Data["command"]));
    }

    [Fact]
    public async Task AThousandDevices_ConnectReportAndAllCommitAnUpdate()
    {
        var sim = await StartAsync(1000, offline: 10);
        await sim.WaitAllConnectedAsync(Hang);
        Assert.Equal(990, sim.Connected);
        await sim.WaitUntilAsync(s => s.Summary().Telemetry >= 990, Hang);
        var desired = await fixture.DesiredAsync("1.1.0");

        foreach (var device in sim.Snapshot().Where(d => !d.NeverConnects))
        {
            await fixture.PublishDesiredAsync(device.Id, desired);
        }

        await sim.WaitForOtaAsync("1.1.0", SimOtaState.Committed, 990, Hang);

        var summary = sim.Summary();
        Assert.Equal((990, 0L), (summary.Downloads, summary.Refused));
        Assert.Equal(990, summary.Running[$"{SimBrokerFixture.Model} 1.1.0"]);
        Assert.All(sim.Snapshot().Where(d => d.NeverConnects), d => Assert.Equal(0, d.Connects));
    }

    private async Task<FleetSimulator> StartAsync(int devices, int offline = 0, TimeSpan? shadowReports = null)
    {
        var token = await fixture.Cp.CreateEnrollmentTokenAsync();
        var sim = new FleetSimulator(new SimulatorOptions
        {
            Server = fixture.Cp.Url,
            EnrollToken = token.Token,
            Devices = devices,
            OfflineDevices = offline,
            IdPrefix = Unique.Name("simp"),
            ModelName = SimBrokerFixture.Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(1),
            ShadowReportInterval = shadowReports ?? TimeSpan.FromSeconds(5),
            DownloadRetryDelay = TimeSpan.FromSeconds(0.1),
            Logger = _log,
        });
        _sims.Add(sim);
        await sim.StartAsync(Hang);
        return sim;
    }

    private static List<EventMessage> Events(TopicRecorder recorder) =>
        recorder.Payloads("/events").Select(p => MessageParser.TryParse<EventMessage>(Encoding.UTF8.GetBytes(p), out var e, out _) ? e : null).OfType<EventMessage>().ToList();

    /// <summary>The first <paramref name="count"/> events matching, once a broker subscriber has seen that many.</summary>
    private static async Task<List<EventMessage>> WaitForEventsAsync(TopicRecorder recorder, Func<EventMessage, bool> match, int count)
    {
        await recorder.WaitForAsync("/events", _ => Events(recorder).Count(match) >= count, TimeSpan.FromSeconds(60));
        return Events(recorder).Where(match).Take(count).ToList();
    }
}
