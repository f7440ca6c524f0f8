using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Cli.Tests;

/// <summary>One control plane with its embedded mosquitto for the class: without MQTT it refuses rollouts (409).</summary>
public sealed class RolloutsControlPlane : IAsyncLifetime
{
    public ControlPlaneProcess Process { get; private set; } = null!;

    public async Task InitializeAsync() => Process = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });

    public async Task DisposeAsync() => await Process.DisposeAsync();
}

/// <summary>
/// <c>edgefleet rollouts …</c> and <c>edgefleet devices history</c> as a process against the real control plane, on enrolled
/// devices that never connect: the engine notifies them and nothing more happens, so these tests cover what the CLI
/// controls (requests, output, exit codes, the operator actions), not the engine's stage progression.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class RolloutsCommandTests : IClassFixture<RolloutsControlPlane>, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public RolloutsCommandTests(RolloutsControlPlane fixture)
    {
        _cp = fixture.Process;
        _errorsBefore = _cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    /// <summary>A pushed model version and <paramref name="count"/> enrolled devices with a tag no other test uses.</summary>
    private async Task<(string Model, string Tag, string[] Devices)> FleetAsync(CliRunner cli, int count)
    {
        var model = Unique.Name("det");
        var push = await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--name", model, "--version", "1.1.0");
        Assert.True(push.Code == 0, push.Err);
        var tag = $"{Unique.Name("site")}=a";
        var devices = new string[count];
        for (var i = 0; i < count; i++)
        {
            devices[i] = Unique.Name("cam");
            await _cp.EnrollDeviceAsync(devices[i], tag, "hw=pi5");
        }

        return (model, tag, devices);
    }

    private static async Task<RolloutInfo> CreateAsync(CliRunner cli, string model, string tag, params string[] more)
    {
        var result = await cli.RunAsync(["rollouts", "create", "--model", model, "--version", "1.1.0", "--selector", tag, "--json", .. more]);
        Assert.True(result.Code == 0, result.Err);
        return Parse(result.Out);
    }

    private static RolloutInfo Parse(string json) => JsonSerializer.Deserialize(json, ApiJsonContext.Default.RolloutInfo)!;

    private async Task<string> GetBodyAsync(string path)
    {
        using var admin = _cp.CreateClient(_cp.AdminToken);
        return await admin.GetStringAsync(new Uri(path, UriKind.Relative));
    }

    [Fact]
    public async Task CreateListShow_RegisteredVersionAndEnrolledDevices_CreatedWithTheOptionsAndShown()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, devices) = await FleetAsync(cli, 3);

        var create = await cli.RunAsync("rollouts", "create", "--model", model, "--version", "1.1.0", "--selector", tag, "--stages", "1,100%",
            "--min-devices", "1", "--bake", "1h30m", "--gate", "none", "--dry-run-gate", "delivery", "--deadline", "45m", "--rate", "10/s",
            "--rate-growth", "2x/50", "--max-failure-share", "0.25", "--min-finished", "2", "--reason", "new detector");

        Assert.True(create.Code == 0, create.Err);
        var id = RolloutId().Match(create.Out).Value;
        Assert.Contains($"created rollout {id}: {model} 1.1.0 to 3 devices in 2 stages (running)", create.Out, StringComparison.Ordinal);
        Assert.Contains($"follow it with: edgefleet rollouts watch {id}", create.Out, StringComparison.Ordinal);
        var firstStage = Row(create.Out, "│ 1 ");
        Assert.Equal(["1", "live", "1 device", "1", "1", "1h30m", "no"], firstStage);
        Assert.Equal(["2", "live", "100 %", "3", "2", "1h30m", "no"], Row(create.Out, "│ 2 "));

        var show = await cli.RunAsync("rollouts", "show", id);
        var json = await cli.RunAsync("rollouts", "show", id, "--json");
        var list = await cli.RunAsync("rollouts", "list");
        var listJson = await cli.RunAsync("rollouts", "list", "--state", "running", "--json");

        Assert.True(show.Code == 0, show.Err);
        Assert.Contains($"{model} 1.1.0", show.Out, StringComparison.Ordinal);
        Assert.Contains("running", show.Out, StringComparison.Ordinal);
        Assert.Contains("1/2 (live, ", show.Out, StringComparison.Ordinal);
        Assert.Contains(tag, show.Out, StringComparison.Ordinal);
        Assert.Contains("delivery (dry run)", show.Out, StringComparison.Ordinal);
        Assert.Contains("at most 0.25 failed among finished devices, judged once 2 have finished", show.Out, StringComparison.Ordinal);
        Assert.Contains("45m per device", show.Out, StringComparison.Ordinal);
        Assert.Contains("600 devices/min, ×2 every 50 succeeded devices", show.Out, StringComparison.Ordinal);
        Assert.Contains("by admin", show.Out, StringComparison.Ordinal);
        Assert.Contains($"follow it with: edgefleet rollouts watch {id}", show.Out, StringComparison.Ordinal);

        Assert.True(json.Code == 0, json.Err);
        var r = Parse(json.Out);
        Assert.Equal((id, model, "1.1.0", RolloutStates.Running, 0, 3), (r.Id, r.Model, r.Version, r.State, r.Stage, r.DeviceCount));
        Assert.Equal(new (double?, int?, int, double)[] { (null, 1, 1, 5400), (100, null, 3, 5400) }, r.Stages.Select(s => (s.Percent, s.Count, s.Target, s.BakeSeconds)));
        Assert.Equal(devices.Order(StringComparer.Ordinal), r.Devices!.Select(d => d.DeviceId).Order(StringComparer.Ordinal));
        var spec = r.Spec!.Value;
        Assert.Equal(0, spec.GetProperty("gates").GetArrayLength());
        Assert.Equal((45 * 60.0, 600.0, 0.25, 2), (spec.GetProperty("deadlineSeconds").GetDouble(), spec.GetProperty("ratePerMinute").GetDouble(),
            spec.GetProperty("maxFailureShare").GetDouble(), spec.GetProperty("minFinished").GetInt32()));

        Assert.True(list.Code == 0, list.Err);
        Assert.Equal([id, model, "1.1.0", "running", "1/2"], Row(list.Out, id)[..5]);
        Assert.StartsWith("3: ", Row(list.Out, id)[5], StringComparison.Ordinal);
        Assert.True(listJson.Code == 0, listJson.Err);
        var listed = Assert.Single(JsonSerializer.Deserialize(listJson.Out, ApiJsonContext.Default.IReadOnlyListRolloutInfo)!, x => x.Id == id);
        Assert.Null(listed.Devices);
    }

    [Fact]
    public async Task PauseResumeAbort_ChangeTheState_RefusedActionsExitOneWithTheServersDetail_AndWatchOfTheEndedRolloutExitsOne()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, _) = await FleetAsync(cli, 2);
        var id = (await CreateAsync(cli, model, tag, "--min-devices", "1", "--stages", "50%,100%", "--gate", "none")).Id;

        var pause = await cli.RunAsync("rollouts", "pause", id, "--reason", "lunch");
        var pausedJson = await cli.RunAsync("rollouts", "show", id, "--json");
        var pauseAgain = await cli.RunAsync("rollouts", "pause", id);
        var resume = await cli.RunAsync("rollouts", "resume", id, "--json");
        var approve = await cli.RunAsync("rollouts", "approve", id);
        var retry = await cli.RunAsync("rollouts", "retry", id);
        var abort = await cli.RunAsync("rollouts", "abort", id, "--reason", "wrong model");
        var watch = await cli.RunAsync("rollouts", "watch", id, "--interval", "100ms");
        var watchJson = await cli.RunAsync("rollouts", "watch", id, "--json");
        var showJson = await cli.RunAsync("rollouts", "show", id, "--json");
        var resumeEnded = await cli.RunAsync("rollouts", "resume", id);
        var aborted = await cli.RunAsync("rollouts", "list", "--state", "aborted");

        Assert.True(pause.Code == 0, pause.Err);
        Assert.Contains($"{id} is paused at stage 1/2: paused by admin: lunch", pause.Out, StringComparison.Ordinal);
        Assert.Contains($"continue with: edgefleet rollouts resume {id}", pause.Out, StringComparison.Ordinal);
        Assert.Equal((RolloutStates.Paused, "paused by admin: lunch"), (Parse(pausedJson.Out).State, Parse(pausedJson.Out).Reason));
        Assert.Equal(1, pauseAgain.Code);
        Assert.Contains("409 Conflict", pauseAgain.Err, StringComparison.Ordinal);
        Assert.Contains($"rollout {id} is paused; pause needs a rollout that is running or awaiting approval", pauseAgain.Err, StringComparison.Ordinal);
        Assert.True(resume.Code == 0, resume.Err);
        Assert.Equal(RolloutStates.Running, Parse(resume.Out).State);
        Assert.Equal(1, approve.Code);
        Assert.Contains("approve needs a rollout that is awaiting approval, or paused by a gate", approve.Err, StringComparison.Ordinal);
        Assert.Equal(1, retry.Code);
        Assert.Contains("has no failed or timed-out device to retry", retry.Err, StringComparison.Ordinal);
        Assert.True(abort.Code == 0, abort.Err);
        Assert.Contains($"{id} is aborted at stage 1/2: aborted by admin: wrong model", abort.Out, StringComparison.Ordinal);

        Assert.Equal(1, watch.Code);
        Assert.Contains($"{id} aborted stage 1/2", watch.Out, StringComparison.Ordinal);
        Assert.EndsWith($"rollout {id} aborted: aborted by admin: wrong model\n", watch.Out, StringComparison.Ordinal);
        Assert.Equal(1, watchJson.Code);
        var line = Assert.Single(watchJson.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(RolloutStates.Aborted, Parse(line).State);

        // An ended rollout no longer changes: --json is byte for byte what the server answers.
        Assert.Equal(await GetBodyAsync($"api/v1/rollouts/{id}") + "\n", showJson.Out);
        Assert.Equal(showJson.Out, watchJson.Out);
        Assert.Equal(1, resumeEnded.Code);
        Assert.Contains($"rollout {id} is aborted; resume needs a rollout that is paused", resumeEnded.Err, StringComparison.Ordinal);
        Assert.True(aborted.Code == 0, aborted.Err);
        Assert.Contains(id, aborted.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_RunningRolloutAborted_FollowsItUntilTheEndAndExitsOne()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, _) = await FleetAsync(cli, 1);
        var id = (await CreateAsync(cli, model, tag, "--gate", "none")).Id;

        var watching = cli.RunAsync("rollouts", "watch", id, "--interval", "100ms", "--json");
        var abort = await cli.RunAsync("rollouts", "abort", id);
        var watch = await watching;

        Assert.True(abort.Code == 0, abort.Err);
        Assert.True(watch.Code == 1, watch.Err);
        var states = watch.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Parse(l)).Select(r => r.State).ToList();
        Assert.Equal(RolloutStates.Aborted, states[^1]);
        Assert.All(states[..^1], s => Assert.Equal(RolloutStates.Running, s));
    }

    [Fact]
    public async Task Watch_CtrlC_StopsWatchingWithExitCode130()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, _) = await FleetAsync(cli, 1);
        var id = (await CreateAsync(cli, model, tag, "--gate", "none")).Id;
        using var config = new TempDirectory("edgefleet-config");

        // env resets SIGINT to its default action: a test host started in the background may have inherited it ignored.
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { "--default-signal=INT", "dotnet", Path.Combine(AppContext.BaseDirectory, "edgefleet.dll"), "rollouts", "watch", id, "--interval", "100ms" })
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["EDGEFLEET_SERVER"] = _cp.Url.AbsoluteUri;
        psi.Environment["EDGEFLEET_TOKEN"] = _cp.AdminToken;
        psi.Environment["XDG_CONFIG_HOME"] = config.Path;
        using var watch = Process.Start(psi)!;
        var stderr = watch.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Patience);
        try
        {
            var first = await watch.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.Contains($"{id} running stage 1/", first, StringComparison.Ordinal);
            using (var kill = Process.Start("kill", ["-INT", watch.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(timeout.Token);
            }

            await watch.StandardOutput.ReadToEndAsync(timeout.Token);
            await watch.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!watch.HasExited)
            {
                watch.Kill(entireProcessTree: true);
            }
        }

        Assert.Equal(130, watch.ExitCode);
        Assert.Contains("cancelled", await stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_DevicesInAnotherActiveRollout_ExitsOneWithTheServersMessage_AndSupersedeTakesThemOver()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, devices) = await FleetAsync(cli, 2);
        var first = await CreateAsync(cli, model, tag, "--gate", "none");

        var refused = await cli.RunAsync("rollouts", "create", "--model", model, "--version", "1.1.0", "--devices", string.Join(',', devices), "--gate", "none");
        var second = await CreateAsync(cli, model, tag, "--gate", "none", "--supersede", "--reason", "replaces the first");
        var firstAfter = Parse((await cli.RunAsync("rollouts", "show", first.Id, "--json")).Out);
        var firstShown = await cli.RunAsync("rollouts", "show", first.Id);

        Assert.Equal(1, refused.Code);
        Assert.Contains("error: conflict (409 Conflict)", refused.Err, StringComparison.Ordinal);
        Assert.Contains("2 of the devices are in another active rollout (", refused.Err, StringComparison.Ordinal);
        Assert.All(devices, d => Assert.Contains($"{d} in {first.Id}", refused.Err, StringComparison.Ordinal));
        Assert.Contains("or create this one with supersede", refused.Err, StringComparison.Ordinal);
        Assert.Equal(string.Empty, refused.Out);
        Assert.Equal((RolloutStates.Running, 2), (second.State, second.DeviceCount));
        Assert.All(firstAfter.Devices!, d => Assert.Equal((RolloutDeviceStates.Skipped, $"superseded by rollout {second.Id}"), (d.State, d.Reason)));
        Assert.Equal(2, firstAfter.Counts[RolloutDeviceStates.Skipped]);
        Assert.True(firstShown.Code == 0, firstShown.Err);
        Assert.Equal([devices[0], "1", "skipped", "–", $"superseded by rollout {second.Id}"], Row(firstShown.Out, devices[0]));
    }

    [Fact]
    public async Task RollbackAndShow_UnknownRollout_ExitOneWithNotFound()
    {
        using var cli = CliRunner.For(_cp);

        var show = await cli.RunAsync("rollouts", "show", "ro-000000000000");
        var rollback = await cli.RunAsync("rollouts", "rollback", "ro-000000000000");
        var watch = await cli.RunAsync("rollouts", "watch", "ro-000000000000");

        Assert.All([show, rollback, watch], r => Assert.Equal(1, r.Code));
        Assert.All([show, rollback, watch], r => Assert.Contains("ro-000000000000", r.Err, StringComparison.Ordinal));
        Assert.Contains("404", show.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RollbackThenWatch_DevicesThatRanNoRegisteredVersion_RolledBackAndWatchExitsOne()
    {
        using var cli = CliRunner.For(_cp);
        var (model, tag, devices) = await FleetAsync(cli, 2);
        var id = (await CreateAsync(cli, model, tag, "--gate", "none")).Id;

        var rollback = await cli.RunAsync("rollouts", "rollback", id, "--reason", "bad", "--json");
        var watch = await cli.RunAsync("rollouts", "watch", id, "--interval", "100ms");
        var show = await cli.RunAsync("rollouts", "show", id, "--json");

        Assert.True(rollback.Code == 0, rollback.Err);
        var r = Parse(rollback.Out);
        Assert.Contains(r.State, new[] { RolloutStates.RollingBack, RolloutStates.RolledBack });
        Assert.Equal("rolled back by admin: bad", r.Reason);

        // These devices never reported a version, so the engine has nothing to send them back to: reverted at once.
        Assert.Equal(1, watch.Code);
        Assert.EndsWith($"rollout {id} rolled_back: rolled back by admin: bad\n", watch.Out, StringComparison.Ordinal);
        var ended = Parse(show.Out);
        Assert.Equal(RolloutStates.RolledBack, ended.State);
        Assert.Equal(devices.Length, ended.Devices!.Count(d => d.State is RolloutDeviceStates.Reverted or RolloutDeviceStates.Skipped));
    }

    [Fact]
    public async Task Create_UnknownVersionOrNoDevice_ExitsOneWithTheServersError()
    {
        using var cli = CliRunner.For(_cp);
        var (model, _, _) = await FleetAsync(cli, 0);

        var unknown = await cli.RunAsync("rollouts", "create", "--model", model, "--version", "9.9.9", "--selector", "nobody=here");
        var nobody = await cli.RunAsync("rollouts", "create", "--model", model, "--version", "1.1.0", "--selector", $"{Unique.Name("nobody")}=here");

        Assert.Equal(1, unknown.Code);
        Assert.Contains($"model {model} version 9.9.9", unknown.Err, StringComparison.Ordinal);
        Assert.Equal(1, nobody.Code);
        Assert.Contains("selector: selects no device", nobody.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DevicesHistory_DeviceThatNeverReported_SaysSo_AndJsonIsTheServersBody()
    {
        var id = Unique.Name("cam");
        await _cp.EnrollDeviceAsync(id);
        using var cli = CliRunner.For(_cp);

        var human = await cli.RunAsync("devices", "history", id);
        var json = await cli.RunAsync("devices", "history", id, "--limit", "5", "--json");

        Assert.True(human.Code == 0, human.Err);
        Assert.Contains($"no deployments recorded for {id}", human.Out, StringComparison.Ordinal);
        Assert.True(json.Code == 0, json.Err);
        Assert.Equal(await GetBodyAsync($"api/v1/devices/{id}/history?limit=5") + "\n", json.Out);
    }

    [Fact]
    public async Task DevicesHistory_DeviceReportedItsModel_ListsTheRunningDeployment()
    {
        var id = Unique.Name("cam");
        var enrolled = await _cp.EnrollDeviceAsync(id);
        await using (var device = new MqttConnection(new MqttConnectionOptions
        {
            Host = "127.0.0.1",
            Port = _cp.MqttPort!.Value,
            ClientId = id,
            Username = enrolled.Mqtt.Username,
            Password = enrolled.Mqtt.Password,
        }, NullLogger.Instance))
        {
            device.Start();
            using var timeout = new CancellationTokenSource(Patience);
            await device.WaitConnectedAsync(timeout.Token);
            var status = new StatusMessage { DeviceId = id, Ts = TimeProvider.System.GetUtcNow(), Online = true, Model = new ModelRef("line-cam", "1.2.0") };
            var published = await device.PublishAsync(
                new MqttMessage(Topics.For(id, Topics.Status), JsonSerializer.SerializeToUtf8Bytes(status, WireJsonContext.Default.StatusMessage), 1, Retain: true),
                timeout.Token);
            Assert.True(published.Accepted);
        }

        using var cli = CliRunner.For(_cp);
        var waited = Stopwatch.StartNew();
        CliResult json;
        while ((json = await cli.RunAsync("devices", "history", id, "--json")).Out.Trim() == "[]")
        {
            Assert.True(waited.Elapsed < Patience, $"the status of {id} was never ingested\n{_cp.Output}");
        }

        var human = await cli.RunAsync("devices", "history", id);

        Assert.True(json.Code == 0, json.Err);
        var deployment = Assert.Single(JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.IReadOnlyListDeploymentInfo)!);
        Assert.Equal(("line-cam", "1.2.0", (DateTimeOffset?)null, (string?)null), (deployment.Model, deployment.Version, deployment.To, deployment.RolloutId));
        Assert.True(human.Code == 0, human.Err);
        Assert.Equal(["line-cam", "1.2.0", deployment.From.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture), "(running)", "–"],
            Row(human.Out, "line-cam"));
    }

    /// <summary>The cells of the one table row that contains <paramref name="marker"/>.</summary>
    private static string[] Row(string output, string marker) =>
        Assert.Single(output.Split('\n'), l => l.Contains(marker, StringComparison.Ordinal))
            .Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex("ro-[0-9a-f]{12}")]
    private static partial Regex RolloutId();
}
