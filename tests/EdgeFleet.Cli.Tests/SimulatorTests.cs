using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>A real control plane with its embedded mosquitto and SQLite, and a registry of models.</summary>
#pragma warning disable IDISP006, IDISP003 // its owner calls InitializeAsync once and DisposeAsync at the end
public sealed class SimControlPlaneFixture : IAsyncLifetime
{
    public const string Model = "sim-cls";

    /// <summary>About 4.7 MB of weights: a download long enough to cut in the middle.</summary>
    public static readonly SampleModelOptions Heavy = new() { InputSize = 32, Classes = 10, Width = 128, Depth = 8, Seed = 23 };

    public ControlPlaneProcess Cp { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });
        Admin = Cp.CreateClient(Cp.AdminToken);
        foreach (var version in new[] { "1.0.0", "1.1.0", "2.0.0", "3.0.0", "4.0.0" })
        {
            await RegistryUploads.PushAsync(Admin, Model, version, TestModels.SmallClassifier);
        }

        await RegistryUploads.PushAsync(Admin, Model, "5.0.0", Heavy);
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await Cp.DisposeAsync();
    }
}
#pragma warning restore IDISP006, IDISP003

/// <summary>
/// <c>edgefleet sim</c>'s <see cref="FleetSimulator"/> in-process against the real control plane process: devices enroll
/// through the API, show online, their telemetry is stored, and assignments made through the API end as the behaviours
/// say — read back from the API the way an operator sees them.
/// </summary>
/// <remarks>
/// One control plane per test, not per class: ingestion drops the messages of a device it does not know yet and re-reads
/// the enrolled devices at most every 2 s, so devices that enroll and connect within 2 s of another test's first
/// messages lose theirs — their one retained online status among them (a control-plane issue, reported).
/// </remarks>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SimulatorTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly SimControlPlaneFixture _fixture = new();
    private readonly CancellationTokenSource _patience = new(Patience);
    private readonly SimLog _log = new();
    private readonly List<FleetSimulator> _sims = [];

    private ControlPlaneProcess Cp => _fixture.Cp;

    private HttpClient Admin => _fixture.Admin;

    private CancellationToken Hang => _patience.Token;

    public Task InitializeAsync() => _fixture.InitializeAsync();

    public async Task DisposeAsync()
    {
        foreach (var sim in _sims)
        {
            await sim.DisposeAsync();
        }

        await _fixture.DisposeAsync();
        _patience.Dispose();
        Assert.Empty(_log.Warnings);
    }

    [Fact]
    public async Task FiftyDevices_EnrollShowOnlineInTheApi_AndTheirTelemetryIsStored()
    {
        var sim = await StartAsync(50);

        await sim.WaitAllConnectedAsync(Hang);
        var ids = sim.Snapshot().Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        var online = await UntilAsync(async () =>
        {
            var devices = await Admin.GetFromJsonAsync("api/v1/devices?online=true", ApiJsonContext.Default.IReadOnlyListDeviceInfo);
            var mine = devices!.Where(d => ids.Contains(d.Id)).ToList();
            return mine.Count == 50 && mine.All(d => d.Model is { Name: SimControlPlaneFixture.Model, Version: "1.0.0" }) ? mine : null;
        }, "all 50 simulated devices are online and name their model");

        Assert.All(online, d => Assert.Equal(FleetSimulator.AgentVersion, d.AgentVersion));
        var first = sim.Snapshot()[0].Id;
        await sim.WaitUntilAsync(s => s.Device(first)!.Delivered >= 3, Hang); // a few telemetry messages at 1 s
        var telemetry = await UntilAsync(async () =>
        {
            var page = await Admin.GetFromJsonAsync($"api/v1/devices/{first}/telemetry", ApiJsonContext.Default.PageTelemetryPoint);
            return page!.Items.Count >= 2 ? page.Items : null;
        }, $"telemetry of {first} is stored");
        Assert.All(telemetry, p =>
        {
            Assert.Equal("1.0.0", p.ModelVersion);
            Assert.True(p.LatencyP50Ms < p.LatencyP95Ms && p.LatencyP95Ms < p.LatencyP99Ms, $"{p.LatencyP50Ms} < {p.LatencyP95Ms} < {p.LatencyP99Ms}");
            Assert.InRange(p.Fps!.Value, 25, 35);
            Assert.Equal(0, p.Errors);
        });
        var device = await Admin.GetFromJsonAsync($"api/v1/devices/{first}", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal(0, device!.MessagesLost);
        Assert.Equal(0, device.MessagesInvalid);
    }

    [Fact]
    public async Task AssignmentsThroughTheApi_OkCommits_FailIsRejected_NanRollsBack_SameVersionIsConfirmed()
    {
        var sim = await StartAsync(5, new Dictionary<string, VersionBehavior>
        {
            ["2.0.0"] = new(BehaviorKind.Fail, 1),
            ["3.0.0"] = new(BehaviorKind.Nan, 0.6),
            ["4.0.0"] = new(BehaviorKind.Slow, 1.5),
        });
        await sim.WaitAllConnectedAsync(Hang);
        await sim.WaitUntilAsync(s => s.Snapshot().All(d => d.Delivered >= 1), Hang); // a telemetry message on the version before
        var ids = sim.Snapshot().Select(d => d.Id).ToArray();

        await AssignAsync(ids[0], "1.1.0");
        await AssignAsync(ids[1], "2.0.0");
        await AssignAsync(ids[2], "3.0.0");
        await AssignAsync(ids[3], "4.0.0");
        await AssignAsync(ids[4], "1.0.0"); // what it runs: confirmed, not redone
        await sim.WaitUntilAsync(s => s.CountOta("1.1.0", SimOtaState.Committed) == 1 && s.CountOta("2.0.0", SimOtaState.Rejected) == 1
            && s.CountOta("3.0.0", SimOtaState.RolledBack) == 1 && s.CountOta("4.0.0", SimOtaState.Committed) == 1
            && s.CountOta("1.0.0", SimOtaState.Committed) == 1, Hang);

        var expected = new[] { ("1.1.0", "committed", (string?)null, "1.1.0"), ("2.0.0", "rejected", "load", "1.0.0"), ("3.0.0", "rolled_back", "nonfinite", "1.0.0"),
            ("4.0.0", "committed", null, "4.0.0"), ("1.0.0", "committed", null, "1.0.0") };
        for (var i = 0; i < ids.Length; i++)
        {
            var (version, state, reason, running) = expected[i];
            DeviceInfo? last = null;
            var device = await UntilAsync(async () =>
                (last = await Admin.GetFromJsonAsync($"api/v1/devices/{ids[i]}", ApiJsonContext.Default.DeviceInfo)) is { Ota: { } ota, Model: { } m } d
                    && ota.Version == version && ota.State == state && m.Version == running ? d : null,
                $"{ids[i]} shows {state} {version} and runs {running}", () => $"the API says {last}; the simulator says {sim.Device(ids[i])}; {sim.Summary().PublishFailures} publish failures; " +
                    string.Join(" | ", Cp.Output.Split('\n').Where(l => l.Contains(ids[i], StringComparison.Ordinal) || l.Contains("warn", StringComparison.Ordinal)).Take(30)));
            Assert.Equal(reason, device.Ota!.Reason);
        }

        var events = (await Admin.GetFromJsonAsync($"api/v1/devices/{ids[0]}/events?type=update.", ApiJsonContext.Default.PageEventInfo))!.Items;
        Assert.Equal([UpdateEvents.Received, UpdateEvents.Downloading, UpdateEvents.Verified, UpdateEvents.Activated, UpdateEvents.Committed],
            events.Select(e => e.Type).Distinct().Order(Comparer<string>.Create(EventOrder)).ToArray());
        var confirmed = (await Admin.GetFromJsonAsync($"api/v1/devices/{ids[4]}/events?type=update.", ApiJsonContext.Default.PageEventInfo))!.Items;
        Assert.Equal("true", Assert.Single(confirmed).Data!["alreadyRunning"]);
        var rolledBack = (await Admin.GetFromJsonAsync($"api/v1/devices/{ids[2]}/events?type=update.rolled_back", ApiJsonContext.Default.PageEventInfo))!.Items;
        Assert.Equal("nonfinite", Assert.Single(rolledBack).Data!["criterion"]);

        // The slow version's figures: its telemetry's latency is about 1.5× the device's before.
        var slow = await UntilAsync(async () =>
        {
            var page = (await Admin.GetFromJsonAsync($"api/v1/devices/{ids[3]}/telemetry", ApiJsonContext.Default.PageTelemetryPoint))!.Items;
            return page.Any(p => p.ModelVersion == "4.0.0") && page.Any(p => p.ModelVersion == "1.0.0") ? page : null;
        }, "telemetry of the slow device before and after the update");
        var ratio = slow.Where(p => p.ModelVersion == "4.0.0").Average(p => p.LatencyP50Ms!.Value) / slow.Where(p => p.ModelVersion == "1.0.0").Average(p => p.LatencyP50Ms!.Value);
        Assert.InRange(ratio, 1.3, 1.7);
    }

    [Fact]
    public async Task DownloadCutMidway_ResumesWithARangeRequestAndCommits()
    {
        await using var proxy = new CuttingProxy(Cp.Url.Port);
        var sim = await StartAsync(1, server: proxy.Url); // enrolled through the proxy: its downloads carry the token there
        await sim.WaitAllConnectedAsync(Hang);
        var id = sim.Snapshot()[0].Id;
        var size = (await Admin.GetFromJsonAsync($"api/v1/models/{SimControlPlaneFixture.Model}/versions/5.0.0", ApiJsonContext.Default.ModelVersionInfo))!.Size;
        proxy.CutNextAfter(size / 2, reset: false);

        await AssignAsync(id, "5.0.0", host: $"127.0.0.1:{proxy.Port}"); // the desired message's URLs point at the proxy
        await sim.WaitForOtaAsync("5.0.0", SimOtaState.Committed, 1, Hang);

        Assert.True(proxy.Faulted.IsCompleted);
        var requests = ArtifactRequests(id, "5.0.0");
        Assert.True(requests.Count == 2, string.Join(" | ", requests));
        Assert.Equal(("(none)", "200"), (requests[0].Range, requests[0].Status));
        Assert.Equal("206", requests[1].Status);
        var resumedFrom = long.Parse(requests[1].Range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(resumedFrom, (size / 2) - (64 * 1024), size / 2);
        Assert.Equal(size - resumedFrom, requests[1].Bytes);
        Assert.Equal(1, sim.Device(id)!.RangeRequests);
    }

    [Fact]
    public async Task FlakyVersion_DropsTheConnectionMidDownload_ReconnectsResumesWithRangeAndCommits()
    {
        var sim = await StartAsync(2, new Dictionary<string, VersionBehavior> { ["5.0.0"] = new(BehaviorKind.Flaky, 3) });
        await sim.WaitAllConnectedAsync(Hang);
        var ids = sim.Snapshot().Select(d => d.Id).ToArray();

        foreach (var id in ids)
        {
            await AssignAsync(id, "5.0.0");
        }

        await sim.WaitForOtaAsync("5.0.0", SimOtaState.Committed, 2, Hang);

        foreach (var id in ids)
        {
            var device = sim.Device(id)!;
            Assert.InRange(device.Cuts, 1, 3);
            Assert.Equal(device.Cuts, device.RangeRequests);
            Assert.Equal(1 + device.Cuts, device.Connects); // a new MQTT connection after every cut
            var requests = ArtifactRequests(id, "5.0.0");
            Assert.Equal(1 + device.Cuts, requests.Count);
            Assert.All(requests.Skip(1), r => Assert.Equal("206", r.Status));
        }

        await sim.WaitAllConnectedAsync(Hang);
    }

    [Fact]
    public async Task StateFile_SecondRunReusesTheIdentities_ContinuesTheSequence_AndRemembersTheModel()
    {
        using var dir = new TempDirectory("edgefleet-sim-state");
        var state = dir.File("fleet.json");
        var prefix = Unique.Name("st");
        var first = await StartAsync(3, stateFile: state, prefix: prefix);
        await first.WaitAllConnectedAsync(Hang);
        var ids = first.Snapshot().Select(d => d.Id).ToArray();
        await AssignAsync(ids[0], "1.1.0");
        await first.WaitForOtaAsync("1.1.0", SimOtaState.Committed, 1, Hang);
        await first.WaitUntilAsync(s => s.Snapshot().All(d => d.Delivered >= 3), Hang);
        await first.StopAsync();
        var seqs = first.Snapshot().ToDictionary(d => d.Id, d => d.Seq);
        var received = await MessagesReceivedAsync(ids[1], expectedAtLeast: seqs[ids[1]]);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state));
        var second = await StartAsync(3, stateFile: state, prefix: prefix, enrollToken: null); // no token: nothing may need enrolling
        await second.WaitAllConnectedAsync(Hang);
        await second.WaitUntilAsync(s => s.Snapshot().All(d => d.Delivered >= 2), Hang);

        var summary = second.Summary();
        Assert.Equal((0, 3), (summary.Enrolled, summary.Reused));
        Assert.Equal(new ModelRef(SimControlPlaneFixture.Model, "1.1.0"), second.Device(ids[0])!.Running);
        Assert.All(second.Snapshot(), d => Assert.True(d.Seq > seqs[d.Id], $"{d.Id}: seq {d.Seq} after {seqs[d.Id]}"));
        await second.StopAsync();
        var after = await MessagesReceivedAsync(ids[1], expectedAtLeast: second.Device(ids[1])!.Seq);
        Assert.True(after.MessagesReceived > received.MessagesReceived);
        Assert.Equal(0, after.MessagesLost); // the control plane saw one sequence without gaps or repeats
        Assert.Equal(0, after.MessagesInvalid);

        // The retained desired of the first run is settled: the second run did not redo it.
        Assert.Equal(SimOtaState.None, second.Device(ids[0])!.Ota);
    }

    [Fact]
    public async Task Tags_WithAnOperatorToken_AreSetOnTheControlPlane_AndHwShapesTheSimulatedLatency()
    {
        var operatorToken = await Cp.CreateTokenAsync(ApiRole.Operator);
        var site = Unique.Name("site");
        var sim = await StartAsync(2, tags: [$"site={site}", "hw=rpi4"], apiToken: operatorToken);
        await sim.WaitAllConnectedAsync(Hang);

        var tagged = (await Admin.GetFromJsonAsync($"api/v1/devices?tag=site={site}", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!;
        Assert.Equal(sim.Snapshot().Select(d => d.Id), tagged.Select(d => d.Id).Order(StringComparer.Ordinal));
        Assert.All(tagged, d => Assert.Contains("hw=rpi4", d.Tags));
        await sim.WaitUntilAsync(s => s.Snapshot().All(d => d.Delivered >= 1), Hang);
        var health = await UntilAsync(async () => await Admin.GetFromJsonAsync($"api/v1/devices/{tagged[0].Id}", ApiJsonContext.Default.DeviceInfo) is { Health.LatencyP95Ms: { } p95 }
            ? (object)p95 : null, "the rpi4 device's telemetry is stored");
        Assert.True((double)health > 18, $"p95 {health} ms: an rpi4 is about 6× the median device (p50 8 ms, p95 about 10 ms)");
    }

    private async Task<FleetSimulator> StartAsync(int devices, Dictionary<string, VersionBehavior>? behave = null, Uri? server = null, string? stateFile = null,
        string? prefix = null, string? enrollToken = "new", IReadOnlyList<string>? tags = null, string? apiToken = null)
    {
        var token = enrollToken is null ? null : (await Cp.CreateEnrollmentTokenAsync()).Token;
        var sim = new FleetSimulator(new SimulatorOptions
        {
            Tags = tags ?? [],
            ApiToken = apiToken,
            Server = server ?? Cp.Url,
            EnrollToken = token,
            Devices = devices,
            IdPrefix = prefix ?? Unique.Name("sim"),
            ModelName = SimControlPlaneFixture.Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(1),
            Probation = TimeSpan.FromSeconds(1),
            DownloadRetryDelay = TimeSpan.FromSeconds(0.1),
            Behaviors = behave ?? [],
            StateFile = stateFile,
            Logger = _log,
        });
        _sims.Add(sim);
        await sim.StartAsync(Hang);
        return sim;
    }

    private async Task AssignAsync(string deviceId, string version, string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/devices/{deviceId}/assignment")
        {
            Content = JsonContent.Create(new AssignmentRequest { Model = SimControlPlaneFixture.Model, Version = version }, ApiJsonContext.Default.AssignmentRequest),
        };
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await Admin.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Waits until the control plane has stored messages up to <paramref name="expectedAtLeast"/> of the device.</summary>
    private async Task<DeviceInfo> MessagesReceivedAsync(string id, long expectedAtLeast) =>
        await UntilAsync(async () => await Admin.GetFromJsonAsync($"api/v1/devices/{id}", ApiJsonContext.Default.DeviceInfo) is { } d
            && d.MessagesReceived + d.MessagesLost >= expectedAtLeast ? d : null, $"the control plane stored {id}'s messages up to seq {expectedAtLeast}");

    /// <summary>The control plane's log of each artifact request of a device, in order.</summary>
    private List<(string Range, string Status, long Bytes)> ArtifactRequests(string deviceId, string version) =>
        Regex.Matches(Cp.Output, $@"Artifact {SimControlPlaneFixture.Model} {Regex.Escape(version)} for device:{deviceId}: Range (?<range>\S+), status (?<status>\d+), (?<bytes>\d+) bytes sent")
            .Select(m => (m.Groups["range"].Value, m.Groups["status"].Value, long.Parse(m.Groups["bytes"].Value, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();

    /// <summary>
    /// The control plane's view follows the devices' with ingestion's delay; there is nothing to await there but its
    /// answers (what the simulator reports is awaited on its own events first).
    /// </summary>
    private async Task<T> UntilAsync<T>(Func<Task<T?>> probe, string what, Func<string>? context = null)
        where T : class
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}{(context is null ? "" : $": {context()}")}");
            await Task.Delay(200);
        }
    }

    private static int EventOrder(string a, string b) => Array.IndexOf(UpdateEvents.All.ToArray(), a).CompareTo(Array.IndexOf(UpdateEvents.All.ToArray(), b));
}
