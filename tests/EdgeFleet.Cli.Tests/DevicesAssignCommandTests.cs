using System.Diagnostics;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Cli.Tests;

/// <summary>
/// <c>edgefleet devices assign|unassign|show</c> as a process against the real control plane process with its embedded
/// mosquitto: the device (its own broker login) receives the retained desired message and reports update events back.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DevicesAssignCommandTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private ControlPlaneProcess _cp = null!;

    public async Task InitializeAsync() => _cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });

    public async Task DisposeAsync()
    {
        _cp.AssertNoErrorsSince(0);
        await _cp.DisposeAsync();
    }

    private MqttConnection Device(EnrollResponse device) => new(new MqttConnectionOptions
    {
        Host = "127.0.0.1",
        Port = _cp.MqttPort!.Value,
        ClientId = device.DeviceId,
        Username = device.Mqtt.Username,
        Password = device.Mqtt.Password,
        Subscriptions = [new MqttSubscription(Topics.For(device.DeviceId, Topics.Desired))],
    }, NullLogger.Instance);

    private static async Task<T> Until<T>(Func<Task<T?>> probe, string what)
        where T : class
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task AssignShowUnassign_DeviceGetsTheRetainedDesired_AndShowHasAssignmentOtaStateAndUpdateEvents()
    {
        var name = Unique.Name("cls");
        var id = Unique.Name("cam");
        using var cli = CliRunner.For(_cp);
        var push = await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--name", name, "--version", "1.1.0");
        Assert.True(push.Code == 0, push.Err);
        var enrolled = await _cp.EnrollDeviceAsync(id);

        var assign = await cli.RunAsync("devices", "assign", id, "--model", name, "--version", "1.1.0", "--shadow", "--probation-frames", "50",
            "--probation-seconds", "2.5", "--json");
        var human = await cli.RunAsync("devices", "assign", id, "--model", name, "--version", "1.1.0");

        Assert.True(assign.Code == 0, assign.Err);
        var shadow = JsonSerializer.Deserialize(assign.Out, ApiJsonContext.Default.DesiredMessage)!;
        Assert.Equal((name, "1.1.0", "shadow", 50L, 2.5), (shadow.Model, shadow.Version, shadow.Mode, shadow.Probation!.Frames, shadow.Probation.Seconds));
        Assert.StartsWith(_cp.Url.ToString().TrimEnd('/'), shadow.ManifestUrl, StringComparison.Ordinal);
        Assert.True(human.Code == 0, human.Err);
        Assert.Contains($"assigned {name} 1.1.0 (live) to {id}", human.Out, StringComparison.Ordinal);

        // The device sees the newest assignment (live, without probation overrides) as its retained desired message.
        await using var device = Device(enrolled);
        device.Start();
        using var timeout = new CancellationTokenSource(Patience);
        var message = await device.Messages.ReadAsync(timeout.Token);
        Assert.True(message.Retain);
        Assert.True(MessageParser.TryParse<DesiredMessage>(message.Payload, out var desired, out var reason), reason);
        Assert.Equal((name, "live", (ProbationOverrides?)null), (desired.Model, desired.Mode, desired.Probation));
        Assert.NotEqual(shadow.Id, desired.Id);

        // The device reports its update; show follows it.
        var seq = 0;
        foreach (var (type, data) in new (string, Dictionary<string, string>)[]
        {
            (UpdateEvents.Received, new() { ["model"] = name, ["version"] = "1.1.0", ["mode"] = "live" }),
            (UpdateEvents.Rejected, new() { ["model"] = name, ["version"] = "1.1.0", ["reason"] = RejectReasons.SelfTest }),
        })
        {
            var e = new EventMessage { DeviceId = id, Ts = TimeProvider.System.GetUtcNow(), Seq = ++seq, Type = type, Data = data };
            Assert.True((await device.PublishAsync(new MqttMessage(Topics.For(id, Topics.Events), MessageParser.Serialize(e), 1), timeout.Token)).Accepted);
        }

        var show = await Until(async () => await cli.RunAsync("devices", "show", id) is { Code: 0 } r && r.Out.Contains("selftest", StringComparison.Ordinal) ? r : null,
            "devices show has the rejection");
        Assert.Contains($"{name} 1.1.0 (live), issued", show.Out, StringComparison.Ordinal);
        Assert.Contains($"rejected {name} 1.1.0: selftest", show.Out, StringComparison.Ordinal);
        Assert.Contains("update.received", show.Out, StringComparison.Ordinal);
        Assert.Contains("reason=selftest", show.Out, StringComparison.Ordinal);
        Assert.True(show.Out.IndexOf("update.rejected", StringComparison.Ordinal) < show.Out.IndexOf("update.received", StringComparison.Ordinal), show.Out);
        var json = JsonSerializer.Deserialize((await cli.RunAsync("devices", "show", id, "--json")).Out, ApiJsonContext.Default.DeviceInfo)!;
        Assert.Equal(("rejected", RejectReasons.SelfTest, desired.Id), (json.Ota!.State, json.Ota.Reason, json.Desired!.Id));

        var unassign = await cli.RunAsync("devices", "unassign", id);
        Assert.True(unassign.Code == 0, unassign.Err);
        var cleared = await device.Messages.ReadAsync(timeout.Token);
        Assert.Empty(cleared.Payload);
        Assert.Contains("(no assignment)", (await cli.RunAsync("devices", "show", id)).Out, StringComparison.Ordinal);
        var again = await cli.RunAsync("devices", "unassign", id);
        Assert.Equal(1, again.Code);
        Assert.Contains("does not exist", again.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assign_UnknownVersionOrBadOptions_ExitsWithTheServersError()
    {
        var id = Unique.Name("cam");
        await _cp.EnrollDeviceAsync(id);
        using var cli = CliRunner.For(_cp);

        var unknown = await cli.RunAsync("devices", "assign", id, "--model", "nope", "--version", "1.0.0");
        var badVersion = await cli.RunAsync("devices", "assign", id, "--model", "nope", "--version", "latest");
        var missing = await cli.RunAsync("devices", "assign", id, "--model", "nope");

        Assert.Equal(1, unknown.Code);
        Assert.Contains("model nope version 1.0.0 does not exist", unknown.Err, StringComparison.Ordinal);
        Assert.Equal(1, badVersion.Code);
        Assert.Contains("version: 'latest' is not a semantic version", badVersion.Err, StringComparison.Ordinal);
        Assert.Equal(2, missing.Code);
    }
}
