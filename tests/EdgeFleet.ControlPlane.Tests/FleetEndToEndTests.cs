using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using EdgeFleet.Agent.Commands;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// The whole fleet path on real components: the control plane with its embedded mosquitto, a real agent process
/// enrolled through the API, its telemetry ingested, the broker's ACL, and revocation.
/// </summary>
[Trait("Category", "Integration")]
public sealed class FleetEndToEndTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static ControlPlaneFactory EmbeddedBroker(out int mqttPort, string? database = null)
    {
        mqttPort = FreePort.Next();
        return new ControlPlaneFactory(database, new Dictionary<string, string?>
        {
            ["ControlPlane:Mqtt"] = "embedded",
            ["ControlPlane:MqttPort"] = mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ControlPlane:MqttBind"] = "127.0.0.1",
            ["ControlPlane:MqttPublicHost"] = "127.0.0.1",
            ["ControlPlane:IngestBatchMilliseconds"] = "50",
        });
    }

    private static async Task<string> EnrollmentTokenAsync(HttpClient admin, params string[] tags)
    {
        using var response = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { Tags = tags, MaxUses = 5 },
            ApiJsonContext.Default.EnrollmentTokenRequest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
    }

    private static async Task<EnrollResponse> EnrollAsync(HttpClient anonymous, string token, string deviceId)
    {
        using var response = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = deviceId }, ApiJsonContext.Default.EnrollRequest);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollResponse))!;
    }

    private static async Task<T> Until<T>(Func<Task<T?>> probe, string what, Func<string>? context = null)
        where T : class
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (sw.Elapsed > Patience)
            {
                Assert.Fail($"timed out waiting until {what}; {context?.Invoke()}");
            }

            await Task.Delay(200);
        }
    }

    private static MqttConnection Device(int port, string user, string password)
    {
        var connection = new MqttConnection(new MqttConnectionOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ClientId = user + "-probe",
            Username = user,
            Password = password,
            ReconnectDelay = TimeSpan.FromMilliseconds(200),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
        }, NullLogger.Instance);
        connection.Start();
        return connection;
    }

    [Fact]
    public async Task Agent_EnrollsComesOnlineSendsTelemetry_AndIsCutOffWhenRevoked()
    {
        await using var cp = EmbeddedBroker(out var mqttPort);
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        var token = await EnrollmentTokenAsync(admin, "site=berlin", "line-3");
        using var state = new TempDirectory();

        // The agent's own enroll command, against the real API (in-process HTTP).
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EnrollCommand.ExecuteAsync(new EnrollCommand.Options(cp.Server.BaseAddress.ToString(), token, "cam-01", null, state.Path, false),
            output, error, cp.Server.CreateHandler());
        Assert.True(code == 0, error.ToString());
        var identityPath = Path.Combine(state.Path, "identity.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(identityPath));

        var config = Path.Combine(state.Path, "agent.json");
        await File.WriteAllTextAsync(config, $$"""
            { "Agent": { "StateDirectory": "{{state.Path}}", "Source": { "Uri": "testsrc://160x120@15" },
              "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" }, "Inference": { "IntraOpThreads": 1 },
              "Telemetry": { "IntervalSeconds": 0.5, "Outbox": { "SynchronousFull": false } }, "Drift": { "WindowFrames": 30 } } }
            """);
        using var agent = AgentProcess.Start(null, "run", "--config", config);

        // The first telemetry can come before the first inferred frame: wait for one that saw frames, then for the
        // device's health to be at least that new.
        var inferring = await Until(async () =>
                (await admin.GetFromJsonAsync("/api/v1/devices/cam-01/telemetry", ApiJsonContext.Default.PageTelemetryPoint))?.Items
                    .FirstOrDefault(t => t.FramesInferred > 0),
            "telemetry with inferred frames is stored", () => agent.Stderr);
        var online = await Until(async () => await admin.GetFromJsonAsync("/api/v1/devices/cam-01", ApiJsonContext.Default.DeviceInfo)
                is { Online: true, Health.At: { } at } d && at >= inferring.Ts ? d : null,
            "the device is online with health from then on", () => agent.Stderr);
        Assert.Equal(["line-3", "site=berlin"], online.Tags);
        Assert.Equal("sample-classifier", online.Model?.Name);
        Assert.True(online.Health!.Fps > 0);

        var telemetry = await Until(async () =>
            await admin.GetFromJsonAsync("/api/v1/devices/cam-01/telemetry", ApiJsonContext.Default.PageTelemetryPoint) is { Items.Count: > 2 } p ? p : null,
            "telemetry is stored", () => agent.Stderr);
        Assert.All(telemetry.Items, t => Assert.Equal("cam-01", t.DeviceId));
        await Until(async () => await admin.GetFromJsonAsync("/api/v1/devices/cam-01/drift", ApiJsonContext.Default.PageDriftReportInfo) is { Items.Count: > 0 } p ? p : null,
            "a drift report is stored", () => agent.Stderr);
        var rollup = await admin.GetFromJsonAsync("/api/v1/telemetry?model=sample-classifier&resolution=1m", ApiJsonContext.Default.PageTelemetryPoint);
        Assert.Contains(rollup!.Items, p => p.DeviceId == "cam-01" && p.Samples > 0);

        var metrics = await admin.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("edgefleet_messages_ingested_total{kind=\"telemetry\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("edgefleet_devices_online 1", metrics, StringComparison.Ordinal);

        // Revoking cuts it off: mosquitto reloads the password file and drops the connection; it cannot come back.
        using (var revoke = await admin.PostAsync(new Uri("/api/v1/devices/cam-01/revoke?reason=stolen", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var identity = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(identityPath)).RootElement;
        await using var probe = Device(mqttPort, "cam-01", identity.GetProperty("mqttPassword").GetString()!);
        await Until(() => Task.FromResult<string?>(probe.State == MqttConnectionState.Refused ? "refused" : null), "the broker refuses the revoked device");
        await Until(() => Task.FromResult<string?>(agent.Stderr.Contains("refused", StringComparison.OrdinalIgnoreCase) ? "yes" : null),
            "the running agent is refused too", () => agent.Stderr);
        var revoked = await admin.GetFromJsonAsync("/api/v1/devices/cam-01", ApiJsonContext.Default.DeviceInfo);
        Assert.True(revoked!.Revoked);
        Assert.False(revoked.Online);
    }

    [Fact]
    public async Task DeviceCredentials_CannotPublishOrReadOnAnotherDevicesTopics()
    {
        await using var cp = EmbeddedBroker(out var mqttPort);
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        var token = await EnrollmentTokenAsync(admin);
        var a = await EnrollAsync(anonymous, token, "dev-a");
        var b = await EnrollAsync(anonymous, token, "dev-b");
        await using var clientA = Device(mqttPort, a.Mqtt.Username, a.Mqtt.Password);
        await using var clientB = Device(mqttPort, b.Mqtt.Username, b.Mqtt.Password);
        await using var service = cp.Services.GetRequiredService<Fleet.IMqttConnectionFactory>().Create("e2e-marker");
        service.Start();
        await clientA.WaitConnectedAsync().WaitAsync(Patience);
        await clientB.WaitConnectedAsync().WaitAsync(Patience);
        await service.WaitConnectedAsync().WaitAsync(Patience);
        await clientB.SubscribeAsync("ef/v1/dev-b/cmd", 1).WaitAsync(Patience);
        await clientA.SubscribeAsync("ef/v1/dev-b/cmd", 1).WaitAsync(Patience); // not allowed: A must never see B's commands
        await clientA.SubscribeAsync("ef/v1/dev-a/cmd", 1).WaitAsync(Patience);

        var own = await clientA.PublishAsync(new MqttMessage("ef/v1/dev-a/events", Encoding.UTF8.GetBytes("{}"), 1)).WaitAsync(Patience);
        var foreign = await clientA.PublishAsync(new MqttMessage("ef/v1/dev-b/telemetry", Encoding.UTF8.GetBytes("{}"), 1)).WaitAsync(Patience);
        var command = await clientA.PublishAsync(new MqttMessage("ef/v1/dev-b/cmd", Encoding.UTF8.GetBytes("{\"command\":\"x\"}"), 1)).WaitAsync(Patience);

        Assert.True(own.Accepted);
        Assert.False(foreign.Accepted, $"publishing on another device's telemetry was accepted (reason {foreign.ReasonCode})");
        Assert.False(command.Accepted, $"a device could send another device a command (reason {command.ReasonCode})");
        // Markers from the control plane's own login, after those publishes: had anything leaked, it would come first.
        await service.PublishAsync(new MqttMessage("ef/v1/dev-b/cmd", Encoding.UTF8.GetBytes("marker-b"), 1)).WaitAsync(Patience);
        await service.PublishAsync(new MqttMessage("ef/v1/dev-a/cmd", Encoding.UTF8.GetBytes("marker-a"), 1)).WaitAsync(Patience);
        using (var timeout = new CancellationTokenSource(Patience))
        {
            var toB = await clientB.Messages.ReadAsync(timeout.Token);
            Assert.Equal("marker-b", Encoding.UTF8.GetString(toB.Payload));
            var toA = await clientA.Messages.ReadAsync(timeout.Token);
            Assert.Equal(("ef/v1/dev-a/cmd", "marker-a"), (toA.Topic, Encoding.UTF8.GetString(toA.Payload)));
        }

        // What a device may publish is still validated: "{}" on its own events topic is counted against it, and
        // ingestion carries on with the next, valid message.
        var valid = Encoding.UTF8.GetBytes("""{"schema":"ef.event/1","deviceId":"dev-a","ts":"2026-11-21T10:00:00Z","seq":1,"type":"camera.started"}""");
        Assert.True((await clientA.PublishAsync(new MqttMessage("ef/v1/dev-a/events", valid, 1)).WaitAsync(Patience)).Accepted);
        var device = await Until(async () => await admin.GetFromJsonAsync("/api/v1/devices/dev-a", ApiJsonContext.Default.DeviceInfo) is { MessagesReceived: 1 } d ? d : null,
            "the valid event is stored");
        Assert.Equal(1, device.MessagesInvalid);
        Assert.Contains("edgefleet_messages_invalid_total{reason=\"payload\"} 1", await admin.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enroll_BadTokens_AreRefusedClearly()
    {
        await using var cp = EmbeddedBroker(out _);
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        using var once = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { MaxUses = 1 }, ApiJsonContext.Default.EnrollmentTokenRequest);
        var single = (await once.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
        await EnrollAsync(anonymous, single, "first");

        async Task<(HttpStatusCode, string)> Enroll(string token, string? id)
        {
            using var r = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = id }, ApiJsonContext.Default.EnrollRequest);
            return (r.StatusCode, await r.Content.ReadAsStringAsync());
        }

        var (usedUp, usedUpBody) = await Enroll(single, "second");
        Assert.Equal(HttpStatusCode.Unauthorized, usedUp);
        Assert.Contains("used as many times", usedUpBody, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Enroll("efe_made-up", "third")).Item1);
        var many = await EnrollmentTokenAsync(admin);
        Assert.Equal(HttpStatusCode.Conflict, (await Enroll(many, "first")).Item1);
        Assert.Equal(HttpStatusCode.BadRequest, (await Enroll(many, "Not_Valid")).Item1);
    }
}
