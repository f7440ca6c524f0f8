using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>
/// <c>edgefleet devices …</c> as a process against the real control plane (one per class, no broker), on devices
/// enrolled through the anonymous POST /api/v1/enroll the way agents do.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DevicesCommandTests : IClassFixture<ControlPlaneProcess>, IDisposable
{
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public DevicesCommandTests(ControlPlaneProcess cp)
    {
        _cp = cp;
        _errorsBefore = cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    private async Task<string> EnrollAsync(params string[] tags)
    {
        var id = Unique.Name("cam");
        await _cp.EnrollDeviceAsync(id, tags);
        return id;
    }

    [Fact]
    public async Task List_TagJson_OnlyTheTaggedDevicesParsedAsDeviceInfo()
    {
        var tag = $"{Unique.Name("line")}=3";
        var pilot = await EnrollAsync(tag, "pilot");
        var tagged = new[] { pilot, await EnrollAsync(tag) }.Order(StringComparer.Ordinal).ToArray();
        await EnrollAsync("pilot");
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "list", "--tag", tag, "--json");

        Assert.True(result.Code == 0, result.Err);
        var devices = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.IReadOnlyListDeviceInfo)!;
        Assert.Equal(tagged, devices.Select(d => d.Id));
        Assert.Equal([tag, "pilot"], devices.Single(d => d.Id == pilot).Tags);
        Assert.All(devices, d => Assert.False(d.Online || d.Revoked));
    }

    [Fact]
    public async Task List_OfflineHuman_ShowsEnrolledDevicesThatNeverConnected()
    {
        var tag = Unique.Name("site");
        var id = await EnrollAsync(tag);
        using var cli = CliRunner.For(_cp);

        var offline = await cli.RunAsync("devices", "list", "--tag", tag, "--offline");
        var online = await cli.RunAsync("devices", "list", "--tag", tag, "--online");

        Assert.True(offline.Code == 0, offline.Err);
        var row = Assert.Single(offline.Out.Split('\n'), l => l.Contains(id, StringComparison.Ordinal));
        Assert.Contains("offline", row, StringComparison.Ordinal);
        Assert.Contains(tag, row, StringComparison.Ordinal);
        Assert.True(online.Code == 0, online.Err);
        Assert.Contains("no devices match", online.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_InvalidTag_ExitsOneWithTheServersFieldError()
    {
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "list", "--tag", "Not A Tag");

        Assert.Equal(1, result.Code);
        Assert.Contains("error: invalid request (400 Bad Request)", result.Err, StringComparison.Ordinal);
        Assert.Contains("tag: 'Not A Tag' is not a valid tag", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_OnlineAndOffline_ExitsTwoWithoutARequest()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("devices", "list", "--online", "--offline");

        Assert.Equal(2, result.Code);
    }

    [Fact]
    public async Task Show_EnrolledDevice_ShowsStatusTagsAndCounters()
    {
        var id = await EnrollAsync("zone=b", "line=3");
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "show", id);
        var json = await cli.RunAsync("devices", "show", id, "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains(id, result.Out, StringComparison.Ordinal);
        Assert.Contains("line=3, zone=b", result.Out, StringComparison.Ordinal);
        Assert.Contains("offline", result.Out, StringComparison.Ordinal);
        Assert.Contains("0 received, 0 lost, 0 invalid", result.Out, StringComparison.Ordinal);
        var device = JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.DeviceInfo)!;
        Assert.Equal((id, false, false), (device.Id, device.Online, device.Revoked));
        Assert.Contains(device.EnrolledAt.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture), result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assign_WithoutABroker_ExitsOneSayingSo_AndShowHasNoAssignment()
    {
        var id = await EnrollAsync();
        using var cli = CliRunner.For(_cp);
        var name = Unique.Name("cls");
        Assert.Equal(0, (await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--name", name, "--version", "1.0.0")).Code);

        var result = await cli.RunAsync("devices", "assign", id, "--model", name, "--version", "1.0.0");
        var show = await cli.RunAsync("devices", "show", id);

        Assert.Equal(1, result.Code);
        Assert.Contains("--mqtt none", result.Err, StringComparison.Ordinal);
        Assert.True(show.Code == 0, show.Err);
        Assert.Contains("(no assignment)", show.Out, StringComparison.Ordinal);
        Assert.Contains("no update events yet", show.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_UnknownDevice_ExitsOneWithNotFound()
    {
        var id = Unique.Name("ghost");
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "show", id);

        Assert.Equal(1, result.Code);
        Assert.Contains("error: not found (404 Not Found)", result.Err, StringComparison.Ordinal);
        Assert.Contains($"device {id} does not exist", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_AddAndRemoveLists_AppliedByTheServer()
    {
        var id = await EnrollAsync("line=3");
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "tag", id, "--add", "pilot,zone=b", "--add", "gpu", "--remove", "line=3");
        var json = await cli.RunAsync("devices", "show", id, "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains($"{id} tags: gpu, pilot, zone=b", result.Out, StringComparison.Ordinal);
        Assert.Equal(["gpu", "pilot", "zone=b"], JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.DeviceInfo)!.Tags);
    }

    [Fact]
    public async Task Tag_RemoveEveryTagJson_ParsesAsDeviceInfoWithNoTags()
    {
        var id = await EnrollAsync("line=3");
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "tag", id, "--remove", "line=3", "--json");
        var human = await cli.RunAsync("devices", "tag", id, "--remove", "line=3");

        Assert.True(result.Code == 0, result.Err);
        Assert.Empty(JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.DeviceInfo)!.Tags);
        Assert.Contains($"{id} tags: (none)", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_InvalidTag_ExitsOneWithTheServersFieldError()
    {
        var id = await EnrollAsync();
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "tag", id, "--add", "Line 3");

        Assert.Equal(1, result.Code);
        Assert.Contains("error: invalid request (400 Bad Request)", result.Err, StringComparison.Ordinal);
        Assert.Contains("add: 'Line 3' is not a valid tag", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_NothingToChange_ExitsTwo()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("devices", "tag", "cam-1");

        Assert.Equal(2, result.Code);
    }

    [Fact]
    public async Task Tag_ViewerToken_Exits403()
    {
        var id = await EnrollAsync("line=3");
        using var cli = CliRunner.For(_cp, await _cp.CreateTokenAsync(ApiRole.Viewer));

        var result = await cli.RunAsync("devices", "tag", id, "--add", "pilot");

        Assert.Equal(1, result.Code);
        Assert.Contains($"the token's role does not allow PUT api/v1/devices/{id}/tags (403 Forbidden)", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_WithoutYesAndNoTerminal_ExitsTwoWithoutARequest()
    {
        var id = await EnrollAsync();
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "revoke", id);

        Assert.Equal(2, result.Code);
        Assert.Contains("pass --yes", result.Err, StringComparison.Ordinal);
        var device = JsonSerializer.Deserialize((await cli.RunAsync("devices", "show", id, "--json")).Out, ApiJsonContext.Default.DeviceInfo)!;
        Assert.False(device.Revoked);
    }

    [Fact]
    public async Task Revoke_YesJson_RevokedAndASecondRevokeIs409()
    {
        var id = await EnrollAsync();
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("devices", "revoke", id, "--yes", "--json");
        var again = await cli.RunAsync("devices", "revoke", id, "--yes");
        var list = await cli.RunAsync("devices", "list");

        Assert.True(result.Code == 0, result.Err);
        var device = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.DeviceInfo)!;
        Assert.Equal((id, true, false), (device.Id, device.Revoked, device.Online));
        Assert.Equal(1, again.Code);
        Assert.Contains("error: conflict (409 Conflict)", again.Err, StringComparison.Ordinal);
        Assert.Contains($"device {id} is already revoked", again.Err, StringComparison.Ordinal);
        Assert.Contains("revoked", Assert.Single(list.Out.Split('\n'), l => l.Contains(id, StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_OperatorToken_Exits403BecauseOnlyAdminsRevoke()
    {
        var id = await EnrollAsync();
        using var cli = CliRunner.For(_cp, await _cp.CreateTokenAsync(ApiRole.Operator));

        var result = await cli.RunAsync("devices", "revoke", id, "--yes");

        Assert.Equal(1, result.Code);
        Assert.Contains($"the token's role does not allow POST api/v1/devices/{id}/revoke (403 Forbidden)", result.Err, StringComparison.Ordinal);
    }
}

/// <summary>
/// Devices that report over MQTT: a control plane with its embedded mosquitto, an enrolled device publishing its
/// retained status and one telemetry message with its own broker login (mosquitto_pub), ingested for real.
/// </summary>
[Trait("Category", "Integration")]
public sealed class DevicesReportingCommandTests
{
    private static async Task PublishAsync(ControlPlaneProcess cp, EnrollResponse device, string kind, byte[] payload, bool retain)
    {
        using var dir = new TempDirectory();
        var file = dir.File("payload.json");
        await File.WriteAllBytesAsync(file, payload);
        var psi = new ProcessStartInfo("mosquitto_pub") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
        {
            "-h", "127.0.0.1", "-p", cp.MqttPort!.Value.ToString(CultureInfo.InvariantCulture), "-u", device.Mqtt.Username, "-P", device.Mqtt.Password,
            "-i", $"{device.DeviceId}-test", "-q", "1", "-t", Topics.For(device.DeviceId, kind), "-f", file,
        })
        {
            psi.ArgumentList.Add(arg);
        }

        if (retain)
        {
            psi.ArgumentList.Add("-r");
        }

        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"mosquitto_pub {kind}: {await stderr}");
    }

    private static async Task<DeviceInfo> UntilAsync(ControlPlaneProcess cp, string id, Func<DeviceInfo, bool> condition)
    {
        using var admin = cp.CreateClient(cp.AdminToken);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var device = (await admin.GetFromJsonAsync($"api/v1/devices/{id}", ApiJsonContext.Default.DeviceInfo))!;
            if (condition(device))
            {
                return device;
            }

            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"{id} never got there; last: {JsonSerializer.Serialize(device, ApiJsonContext.Default.DeviceInfo)}\n{cp.Output}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task ListAndShow_DeviceReportingOverMqtt_ShowOnlineModelAndHealth()
    {
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });
        var id = Unique.Name("cam");
        var device = await cp.EnrollDeviceAsync(id, "line=3");
        Assert.Equal(("127.0.0.1", cp.MqttPort, id), (device.Mqtt.Host, (int?)device.Mqtt.Port, device.Mqtt.Username));
        var now = TimeProvider.System.GetUtcNow();
        await PublishAsync(cp, device, Topics.Status, JsonSerializer.SerializeToUtf8Bytes(
            new StatusMessage { DeviceId = id, Ts = now, Online = true, AgentVersion = "0.1.0", Model = new ModelRef("line-cam", "1.2.0") },
            WireJsonContext.Default.StatusMessage), retain: true);
        await PublishAsync(cp, device, Topics.Telemetry, JsonSerializer.SerializeToUtf8Bytes(
            new TelemetryMessage
            {
                DeviceId = id, Ts = now, Seq = 1, IntervalSeconds = 10, Model = new ModelRef("line-cam", "1.2.0"), Fps = 29.9,
                LatencyMs = new LatencyMs(8, 12.5, 20), Frames = new FrameCounters(300, 299, 1),
            },
            WireJsonContext.Default.TelemetryMessage), retain: false);
        await UntilAsync(cp, id, d => d is { Online: true, Health: not null, MessagesReceived: 1 });
        using var cli = CliRunner.For(cp);

        var list = await cli.RunAsync("devices", "list", "--online");
        var show = await cli.RunAsync("devices", "show", id);

        Assert.True(list.Code == 0, list.Err);
        var row = Assert.Single(list.Out.Split('\n'), l => l.Contains(id, StringComparison.Ordinal));
        Assert.Equal([id, "online", "line=3", "line-cam 1.2.0", "0.1.0"], row.Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)[..5]);
        Assert.Contains("29.9", row, StringComparison.Ordinal);
        Assert.Contains("12.5", row, StringComparison.Ordinal);
        Assert.True(show.Code == 0, show.Err);
        Assert.Contains("line-cam 1.2.0", show.Out, StringComparison.Ordinal);
        Assert.Contains("12.5 ms", show.Out, StringComparison.Ordinal);
        Assert.Contains("1 received, 0 lost, 0 invalid", show.Out, StringComparison.Ordinal);
    }
}
