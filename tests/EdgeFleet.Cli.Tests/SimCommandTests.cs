using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet sim</c> as a process: argument errors, a timed run with its JSON summary, the state file, SIGTERM.</summary>
[Trait("Category", "Integration")]
public sealed class SimCommandTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;

    public async Task InitializeAsync() => _cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });

    public async Task DisposeAsync() => await _cp.DisposeAsync();

    [Theory]
    [InlineData("--server ftp://cp --enroll-token t", "--server")]
    [InlineData("--server {cp} --enroll-token t --devices 0", "--devices must be between 1 and 100000")]
    [InlineData("--server {cp} --enroll-token t --behave 2.0.0=weird", "'weird' is not a behaviour")]
    [InlineData("--server {cp} --enroll-token t --behave 2.0.0", "is not VERSION=KIND")]
    [InlineData("--server {cp} --enroll-token t --behave latest=ok", "'latest' is not a semantic version")]
    [InlineData("--server {cp} --enroll-token t --telemetry-interval fast", "--telemetry-interval 'fast' is not a positive duration")]
    [InlineData("--server {cp} --enroll-token t --drift-every 0", "drift interval")]
    [InlineData("--server {cp} --enroll-token t --devices 5 --offline 6", "--offline must be between 0 and --devices")]
    [InlineData("--server {cp} --enroll-token t --id-prefix Bad_Prefix", "--id-prefix 'Bad_Prefix'")]
    [InlineData("--server {cp} --enroll-token t --frobnicate", "--frobnicate")]
    [InlineData("--enroll-token t", "--server")]
    public async Task Sim_BadArguments_ExitWith2AndSayWhy(string arguments, string because)
    {
        using var cli = new CliRunner();
        var args = arguments.Replace("{cp}", CliRunner.Nowhere.ToString(), StringComparison.Ordinal).Split(' ');

        var result = await cli.RunAsync(["sim", .. args]);

        Assert.True(result.Code == 2, $"exit {result.Code}: {result.Err}");
        Assert.Contains(because, result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sim_UnknownEnrollmentToken_Exits1_AndAnUnreachableServer3()
    {
        using var cli = new CliRunner();

        var refused = await cli.RunAsync("sim", "--server", _cp.Url.ToString(), "--enroll-token", "efe_not-a-token", "--devices", "2");
        var unreachable = await cli.RunAsync("sim", "--server", CliRunner.Nowhere.ToString(), "--enroll-token", "efe_x", "--devices", "2");

        Assert.True(refused.Code == 1, refused.Err);
        Assert.Contains("enrollment of", refused.Err, StringComparison.Ordinal);
        Assert.True(unreachable.Code == 3, unreachable.Err);
        Assert.Contains("cannot reach the control plane", unreachable.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sim_TimedRun_PrintsAJsonSummary_AndASecondRunReusesTheStateFile()
    {
        using var dir = new TempDirectory("edgefleet-sim-cli");
        using var cli = new CliRunner();
        var token = await _cp.CreateEnrollmentTokenAsync();
        var prefix = Unique.Name("cli");
        string[] common = ["sim", "--server", _cp.Url.ToString(), "--devices", "3", "--id-prefix", prefix, "--telemetry-interval", "500ms",
            "--drift-every", "1", "--duration", "3s", "--state", dir.File("fleet.json"), "--json"];

        var first = await cli.RunAsync([.. common, "--enroll-token", token.Token!]);
        var second = await cli.RunAsync(common);

        Assert.True(first.Code == 0, first.Err);
        var one = JsonSerializer.Deserialize(first.Out, SimSummaryJsonContext.Default.SimulatorSummary)!;
        Assert.Equal((3, 3, 0), (one.Devices, one.Enrolled, one.Reused));
        Assert.True(one.Telemetry >= 3, first.Out);
        Assert.True(one.DriftReports >= 3, first.Out); // --drift-every 1: one with every telemetry message
        Assert.Contains("connected 3 devices", first.Err, StringComparison.Ordinal); // progress goes to stderr with --json
        Assert.True(second.Code == 0, second.Err);
        var two = JsonSerializer.Deserialize(second.Out, SimSummaryJsonContext.Default.SimulatorSummary)!;
        Assert.Equal((0, 3), (two.Enrolled, two.Reused));
        Assert.NotNull(two.ConnectsPerSecond);
        using var admin = _cp.CreateClient(_cp.AdminToken);
        var device = await admin.GetFromJsonAsync($"api/v1/devices/{prefix}-00001", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal(0, device!.MessagesLost);
    }

    [Fact]
    public async Task Sim_Sigterm_StopsCleanly_AndTheDevicesShowOffline()
    {
        var token = await _cp.CreateEnrollmentTokenAsync();
        var prefix = Unique.Name("term");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "edgefleet.dll"), "sim", "--server", _cp.Url.ToString(), "--enroll-token", token.Token!,
                     "--devices", "4", "--id-prefix", prefix })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("EDGEFLEET_SERVER");
        psi.Environment.Remove("EDGEFLEET_TOKEN");
        using var process = Process.Start(psi)!;
        var output = new StringBuilder();
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }

            if (e.Data?.StartsWith("connected 4 devices", StringComparison.Ordinal) == true)
            {
                connected.TrySetResult();
            }
        };
        process.BeginOutputReadLine();
        var stderr = process.StandardError.ReadToEndAsync();
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await connected.Task.WaitAsync(patience.Token);
        using var admin = _cp.CreateClient(_cp.AdminToken);
        await UntilAsync(admin, prefix, online: true);

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(patience.Token);
        }

        await process.WaitForExitAsync(patience.Token);

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await stderr} {output}");
        lock (output)
        {
            Assert.Contains("stopping: the devices publish their offline status", output.ToString(), StringComparison.Ordinal);
        }

        await UntilAsync(admin, prefix, online: false); // their clean offline status, not a Last Will
    }

    private static async Task UntilAsync(HttpClient admin, string prefix, bool online)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var devices = (await admin.GetFromJsonAsync("api/v1/devices", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!
                .Where(d => d.Id.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            if (devices.Count == 4 && devices.All(d => d.Online == online))
            {
                return;
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"the devices did not all show online={online}: {string.Join(", ", devices.Select(d => $"{d.Id} {d.Online}"))}");
            await Task.Delay(200); // the control plane's view: nothing to await but its answers
        }
    }
}
