using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;
using Microsoft.Playwright;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// One running system for every dashboard test (the class fixture): the real control plane process (embedded mosquitto,
/// SQLite), simulated devices behind it (<see cref="FleetSimulator"/>: real enrollment, MQTT telemetry, drift, OTA), one
/// real agent (ONNX Runtime on a test-pattern camera) and Debian's Chromium. Tests do not depend on each other's order:
/// each works on its own device, version or rollout, or asserts what no other test changes.
/// </summary>
#pragma warning disable IDISP006, IDISP003 // xunit calls InitializeAsync once and DisposeAsync at the end
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DashboardSystem : IAsyncLifetime
{
    public const string Model = "dash-cls";
    public const string Promo = "dash-promo";
    public const string AgentId = "dash-agent";
    public const int Devices = 3;
    private readonly CancellationTokenSource _patience = new(TimeSpan.FromMinutes(10));
    private TempDirectory _agentState = null!;

    public ControlPlaneProcess Cp { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public FleetSimulator Sim { get; private set; } = null!;

    public AgentProcess Agent { get; private set; } = null!;

    public IPlaywright Playwright { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public string OperatorToken { get; private set; } = null!;

    public string ViewerToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            EmbeddedMqtt = true,
            Environment = new Dictionary<string, string> { ["ControlPlane__RolloutTickMilliseconds"] = "200" },
        });
        Admin = Cp.CreateClient(Cp.AdminToken);
        OperatorToken = await Cp.CreateTokenAsync(ApiRole.Operator, "dash-operator");
        ViewerToken = await Cp.CreateTokenAsync(ApiRole.Viewer, "dash-viewer");
        foreach (var version in new[] { "1.0.0", "1.1.0" })
        {
            await RegistryUploads.PushAsync(Admin, Model, version, OtaFixture.Good);
        }

        // The Models page's model: 1.0.0 in production, 1.1.0 in staging with lineage and a drift profile, 0.9.0 just pushed.
        foreach (var version in new[] { "0.9.0", "1.0.0", "1.1.0" })
        {
            await RegistryUploads.PushAsync(Admin, Promo, version, OtaFixture.Good);
        }

        await StageAsync(Promo, "1.0.0", Stages.Production);
        await StageAsync(Promo, "1.1.0", Stages.Staging);
        using (var patch = await Admin.PatchAsJsonAsync($"api/v1/models/{Promo}/versions/1.1.0", new ModelVersionMetadata
        {
            Metrics = new Dictionary<string, double> { ["top1"] = 0.913 },
            Parameters = new Dictionary<string, string> { ["git_commit"] = "4f2c9e1" },
            DatasetVersion = "shelves-2026-11",
            TrainingRun = "https://mlflow.example/runs/77",
            ParentVersion = "1.0.0",
        }, ApiJsonContext.Default.ModelVersionMetadata))
        {
            Assert.True(patch.IsSuccessStatusCode, await patch.Content.ReadAsStringAsync());
        }

        using (var put = await Admin.PutAsJsonAsync($"api/v1/models/{Promo}/versions/1.1.0/drift-profile", new DriftProfile
        {
            Id = "shelves-ref",
            Source = "testsrc://224x224",
            Features =
            [
                new ProfileFeature { Name = "luma_mean", Count = 5000, Mean = 0.45, Std = 0.1, Min = 0.1, Max = 0.9, Edges = [0.4, 0.5], Proportions = [0.3, 0.4, 0.3] },
                new ProfileFeature { Name = "top1_confidence", Count = 5000, Mean = 0.7, Std = 0.1, Min = 0.2, Max = 1, Edges = [0.7], Proportions = [0.5, 0.5] },
            ],
        }, ApiJsonContext.Default.DriftProfile))
        {
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        }

        var enroll = await Cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = ["fleet=dash"], MaxUses = Devices + 1 });
        Sim = new FleetSimulator(new SimulatorOptions
        {
            Server = Cp.Url,
            EnrollToken = enroll.Token,
            Devices = Devices,
            IdPrefix = "dash",
            ModelName = Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(1),
            DriftEvery = 1,
            Probation = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            Seed = 11,
        });
        await Sim.StartAsync(_patience.Token);

        // The real agent: its own tag, so the rollouts (fleet=dash) leave it alone.
        _agentState = new TempDirectory("edgefleet-dash-agent");
        var agentToken = await Cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = ["fleet=real"] });
        var (code, _, stderr) = AgentProcess.Run(TimeSpan.FromSeconds(60), null, "enroll", "--server", Cp.Url.ToString(), "--token", agentToken.Token!,
            "--device-id", AgentId, "--state-dir", _agentState.Path);
        Assert.True(code == 0, stderr);
        await File.WriteAllTextAsync(_agentState.File("agent.json"), $$"""
            { "Agent": { "StateDirectory": "{{_agentState.Path}}", "Source": { "Uri": "testsrc://160x120@10" },
              "Model": { "Path": "{{TestModels.Get(OtaFixture.Good)}}" }, "Inference": { "IntraOpThreads": 1 },
              "Drift": { "WindowFrames": 20 },
              "Telemetry": { "IntervalSeconds": 1, "Outbox": { "SynchronousFull": false } } } }
            """);
        Agent = AgentProcess.Start(null, "run", "--config", _agentState.File("agent.json"));
        await Sim.WaitAllConnectedAsync(_patience.Token);

        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
        Agent.Dispose();
        await Sim.DisposeAsync();
        Admin.Dispose();
        await Cp.DisposeAsync();
        _agentState.Dispose();
        _patience.Dispose();
    }

    public async Task StageAsync(string model, string version, string stage)
    {
        using var r = await Admin.PostAsJsonAsync($"api/v1/models/{model}/versions/{version}/stage", new StageChangeRequest { Stage = stage, Reason = "fixture" },
            ApiJsonContext.Default.StageChangeRequest);
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
    }
}

/// <summary>
/// The dashboard in real Chromium (Debian's /usr/bin/chromium through Microsoft.Playwright) against <see cref="DashboardSystem"/>.
/// Every wait is one of Playwright's auto-waiting expectations; no fixed sleeps.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class DashboardTests(DashboardSystem system) : IClassFixture<DashboardSystem>, IDisposable
{
    private const string Model = DashboardSystem.Model;
    private const int Devices = DashboardSystem.Devices;
    private static readonly LocatorAssertionsToHaveCountOptions Patient = new() { Timeout = 60_000 };
    private static readonly LocatorAssertionsToHaveAttributeOptions PatientAttribute = new() { Timeout = 60_000 };
    private readonly CancellationTokenSource _patience = new(TimeSpan.FromMinutes(4));
    private readonly ControlPlaneProcess _cp = system.Cp;
    private readonly HttpClient _admin = system.Admin;
    private readonly IBrowser _browser = system.Browser;

    static DashboardTests() => Assertions.SetDefaultExpectTimeout(30_000);

    public void Dispose() => _patience.Dispose();

    [GeneratedRegex("^[1-9][0-9]*$")]
    private static partial Regex Positive();

    [GeneratedRegex(@"^dash-cls 1\.[01]\.0$")]
    private static partial Regex SimModel();

    private async Task<(IBrowserContext Context, IPage Page)> LoginAsync(string token)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = _cp.Url.ToString() });
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        await page.Locator("#token").FillAsync(token);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("who")).ToBeVisibleAsync();
        return (context, page);
    }

    /// <summary>A rollout that stays running (its first stage bakes for 10 minutes), superseding any earlier one.</summary>
    private async Task<RolloutInfo> StartRolloutAsync()
    {
        using var response = await _admin.PostAsJsonAsync("api/v1/rollouts", new RolloutRequest
        {
            Model = Model,
            Version = "1.1.0",
            Selector = ["fleet=dash"],
            Stages = [new RolloutStageRequest { Count = 1, BakeSeconds = 600 }, new RolloutStageRequest { Percent = 100, BakeSeconds = 600 }],
            Probation = OtaFixture.Quick,
            Supersede = true,
            RatePerMinute = 1000,
        }, ApiJsonContext.Default.RolloutRequest, _patience.Token);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_patience.Token));
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.RolloutInfo, _patience.Token))!;
    }

    private static async Task<string> CsrfAsync(IPage page) =>
        await page.EvaluateAsync<string>("async () => (await (await fetch('/api/v1/session')).json()).csrf");

    private async Task<ModelVersionInfo> VersionAsync(string model, string version) =>
        (await _admin.GetFromJsonAsync($"api/v1/models/{model}/versions/{version}", ApiJsonContext.Default.ModelVersionInfo, _patience.Token))!;

    private async Task<DeviceInfo> DeviceAsync(string id) =>
        (await _admin.GetFromJsonAsync($"api/v1/devices/{id}", ApiJsonContext.Default.DeviceInfo, _patience.Token))!;

    [Fact]
    public async Task Fleet_AfterLoginWithAToken_ShowsTheSimulatedDevicesWithTheirModel()
    {
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;

        var rows = page.GetByTestId("fleet-table").Locator("tbody tr[data-device]");
        await Assertions.Expect(rows).ToHaveCountAsync(Devices + 1, Patient);
        for (var i = 1; i <= Devices; i++)
        {
            var row = page.Locator($"tr[data-device='dash-{i:00000}']");
            await Assertions.Expect(row).ToBeVisibleAsync();
            // 1.1.0 once a rollout test has updated the device: the tests share one system, in any order.
            await Assertions.Expect(row.Locator("[data-col=model]")).ToHaveTextAsync(SimModel(), new() { Timeout = 60_000 });
        }

        await Assertions.Expect(page.Locator($"tr[data-device='{DashboardSystem.AgentId}']")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("count-total")).ToHaveTextAsync((Devices + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.GetByTestId("who")).ToContainTextAsync("admin");
    }

    [Fact]
    public async Task DevicePage_OfASimulatedDevice_ChartsFpsLatencyCpuTemperatureAndDriftFromTheApi()
    {
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;

        await page.Locator("a", new() { HasText = "dash-00001" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("device-id")).ToHaveTextAsync("dash-00001");
        // The live stream refetches the telemetry as the device sends it, so the points appear without a reload.
        await Assertions.Expect(page.GetByTestId("chart-fps").Locator("polyline[data-series=fps]")).ToHaveAttributeAsync("data-count", Positive(), PatientAttribute);
        await Assertions.Expect(page.GetByTestId("chart-latency").Locator("polyline[data-series=p95]")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("chart-latency").Locator("polyline[data-series=p50]")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("chart-temperature").Locator("polyline[data-series=temperature]")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("chart-cpu").Locator("polyline[data-series=cpu]")).ToHaveAttributeAsync("data-count", Positive());
        // The simulator reports drift every tick: the severity strip and the per-feature score chart fill in.
        await Assertions.Expect(page.GetByTestId("strip-drift-severity")).ToHaveAttributeAsync("data-count", Positive(), PatientAttribute);
        await Assertions.Expect(page.GetByTestId("chart-drift-psi")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("device-tags")).ToContainTextAsync("fleet=dash");
    }

    [Fact]
    public async Task Rollout_StartedThroughTheApi_AppearsLive_AndPausingItFromThePageChangesItInTheApi()
    {
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;
        await page.GotoAsync("/#/rollouts");
        await Assertions.Expect(page.GetByTestId("live")).ToHaveTextAsync("● live");
        await page.EvaluateAsync("() => { window.notReloaded = true; }");

        var rollout = await StartRolloutAsync();

        // Pushed over /api/v1/live: the row appears, and the page was not reloaded.
        var row = page.Locator($"tr[data-rollout='{rollout.Id}']");
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(row.Locator("[data-col=state]")).ToHaveTextAsync("running");
        Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"));

        await row.Locator("a").ClickAsync();
        await Assertions.Expect(page.GetByTestId("rollout-state")).ToHaveTextAsync("running");
        await page.Locator("button[data-action=pause]").ClickAsync();
        var dialog = page.GetByTestId("confirm-dialog");
        await Assertions.Expect(dialog).ToBeVisibleAsync();
        await dialog.Locator("textarea[name=reason]").FillAsync("paused from the dashboard test");
        await dialog.GetByTestId("confirm").ClickAsync();

        await Assertions.Expect(dialog).ToBeHiddenAsync();
        await Assertions.Expect(page.GetByTestId("rollout-state")).ToHaveTextAsync("paused");
        var stored = await _admin.GetFromJsonAsync($"api/v1/rollouts/{rollout.Id}", ApiJsonContext.Default.RolloutInfo, _patience.Token);
        Assert.Equal(RolloutStates.Paused, stored!.State);
        await Assertions.Expect(page.Locator("button[data-action=resume]")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task Viewer_SeesTheRolloutWithoutActionButtons_AndAForgedPostWithTheViewersCookieIs403()
    {
        var rollout = await StartRolloutAsync();
        var (context, page) = await LoginAsync(system.ViewerToken);
        await using var _ = context;

        await page.GotoAsync($"/#/rollouts/{rollout.Id}");

        await Assertions.Expect(page.GetByTestId("rollout-state")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("who")).ToContainTextAsync("viewer");
        await Assertions.Expect(page.GetByTestId("rollout-actions")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("button[data-action]")).ToHaveCountAsync(0);
        // A forged request with the viewer's session cookie and even the right CSRF header: the role check refuses it.
        var csrf = await CsrfAsync(page);
        var forged = await context.APIRequest.PostAsync($"api/v1/rollouts/{rollout.Id}/pause", new()
        {
            Headers = new Dictionary<string, string> { ["X-EdgeFleet-CSRF"] = csrf },
            DataObject = new { reason = "forged" },
        });
        Assert.Equal(403, forged.Status);
        var stored = await _admin.GetFromJsonAsync($"api/v1/rollouts/{rollout.Id}", ApiJsonContext.Default.RolloutInfo, _patience.Token);
        Assert.NotEqual(RolloutStates.Paused, stored!.State);
    }

    [Fact]
    public async Task CookieAuthenticatedPost_WithoutTheCsrfHeader_Is403_AndChangesNothing()
    {
        var rollout = await StartRolloutAsync();
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;

        var withoutHeader = await context.APIRequest.PostAsync($"api/v1/rollouts/{rollout.Id}/pause", new() { DataObject = new { reason = "no csrf" } });
        var fromPage = await page.EvaluateAsync<int>(
            $"async () => (await fetch('/api/v1/rollouts/{rollout.Id}/pause', {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }}, body: '{{}}' }})).status");

        Assert.Equal(403, withoutHeader.Status);
        Assert.Contains("CSRF", await withoutHeader.TextAsync(), StringComparison.Ordinal);
        Assert.Equal(403, fromPage);
        var stored = await _admin.GetFromJsonAsync($"api/v1/rollouts/{rollout.Id}", ApiJsonContext.Default.RolloutInfo, _patience.Token);
        Assert.NotEqual(RolloutStates.Paused, stored!.State);
    }

    [Fact]
    public async Task DevicePage_OfARealAgent_ChartsCpuAndMemoryFromItsTelemetry_AndItsDriftWindows()
    {
        var (context, page) = await LoginAsync(system.ViewerToken);
        await using var _ = context;

        await page.GotoAsync($"/#/devices/{DashboardSystem.AgentId}");

        await Assertions.Expect(page.GetByTestId("device-id")).ToHaveTextAsync(DashboardSystem.AgentId);
        var cpu = page.GetByTestId("chart-cpu").Locator("polyline[data-series=cpu]");
        await Assertions.Expect(cpu).ToHaveAttributeAsync("data-count", Positive(), PatientAttribute);
        await Assertions.Expect(page.GetByTestId("chart-memory").Locator("polyline[data-series=memory]")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("chart-fps").Locator("polyline[data-series=fps]")).ToHaveAttributeAsync("data-count", Positive());
        if (Directory.Exists("/sys/class/thermal") && Directory.EnumerateDirectories("/sys/class/thermal", "thermal_zone*").Any())
        {
            await Assertions.Expect(page.GetByTestId("chart-temperature").Locator("polyline[data-series=temperature]")).ToHaveAttributeAsync("data-count", Positive());
        }
        else
        {
            // No thermal zone on this machine (a VM): the agent reports no temperature, and the chart says so.
            await Assertions.Expect(page.GetByTestId("chart-temperature")).ToContainTextAsync("no data");
        }

        // The agent's own drift windows (the first one is its baseline; every later one is a report).
        await Assertions.Expect(page.GetByTestId("strip-drift-severity")).ToHaveAttributeAsync("data-count", Positive(), PatientAttribute);
        await Assertions.Expect(page.GetByTestId("drift-features").Locator("tbody tr").First).ToBeVisibleAsync();
        var points = await page.EvaluateAsync<int>(
            $"async () => (await (await fetch('/api/v1/devices/{DashboardSystem.AgentId}/telemetry?limit=1000')).json()).items.filter(p => p.cpuPercent != null).length");
        Assert.True(points > 0, "the API has CPU points of the agent too");
    }

    [Fact]
    public async Task ModelsPage_OperatorPromotesAVersion_TheApiShowsTheNewStage_AndTheHistoryShowsIt()
    {
        var (context, page) = await LoginAsync(system.OperatorToken);
        await using var _ = context;
        await page.GotoAsync($"/#/models/{DashboardSystem.Promo}");
        var row = page.Locator("tr[data-version='1.1.0']").First;
        await Assertions.Expect(row.Locator("[data-col=stage]")).ToHaveTextAsync(Stages.Staging);
        // Lineage and the drift profile summary of the selected version.
        await page.GetByTestId($"versions-{DashboardSystem.Promo}").Locator("a", new() { HasText = "1.1.0" }).ClickAsync();
        var lineage = page.GetByTestId("lineage-1.1.0");
        await Assertions.Expect(lineage.Locator("[data-field=parentVersion]")).ToHaveTextAsync("1.0.0");
        await Assertions.Expect(lineage.Locator("[data-field=datasetVersion]")).ToHaveTextAsync("shelves-2026-11");
        await Assertions.Expect(lineage.Locator("[data-field=metrics]")).ToContainTextAsync("top1 0.913");
        await Assertions.Expect(lineage.Locator("[data-field=parameters]")).ToContainTextAsync("git_commit=4f2c9e1");
        await Assertions.Expect(page.GetByTestId("profile-1.1.0").Locator("tr[data-feature]")).ToHaveCountAsync(2);
        await Assertions.Expect(page.GetByTestId("profile-1.1.0")).ToContainTextAsync("shelves-ref");

        await row.Locator("button[data-stage-action=production]").ClickAsync();
        var dialog = page.GetByTestId("stage-dialog");
        await Assertions.Expect(dialog).ToBeVisibleAsync();
        await Assertions.Expect(dialog).ToContainTextAsync("1.0.0 leaves production");
        await dialog.Locator("textarea[name=reason]").FillAsync("promoted from the dashboard test");
        await dialog.GetByTestId("stage-confirm").ClickAsync();

        await Assertions.Expect(dialog).ToBeHiddenAsync();
        await Assertions.Expect(row.Locator("[data-col=stage]")).ToHaveTextAsync(Stages.Production);
        await Assertions.Expect(page.Locator("tr[data-version='1.0.0']").First.Locator("[data-col=stage]")).ToHaveTextAsync(Stages.Archived);
        await Assertions.Expect(page.GetByTestId($"history-{DashboardSystem.Promo}").Locator("tr[data-version='1.1.0'][data-to=production]")).ToContainTextAsync("promoted from the dashboard test");
        await Assertions.Expect(page.Locator($"tr[data-model='{DashboardSystem.Promo}'] [data-col=production]")).ToHaveTextAsync("1.1.0");
        Assert.Equal(Stages.Production, (await VersionAsync(DashboardSystem.Promo, "1.1.0")).Stage);
        Assert.Equal(Stages.Archived, (await VersionAsync(DashboardSystem.Promo, "1.0.0")).Stage);
    }

    [Fact]
    public async Task ModelsPage_AStageChangeTheApiRefuses_ShowsTheProblemInTheDialog_AndTheRowUpdatesLive()
    {
        var (context, page) = await LoginAsync(system.OperatorToken);
        await using var _ = context;
        await page.GotoAsync($"/#/models/{DashboardSystem.Promo}");
        var row = page.Locator("tr[data-version='0.9.0']").First;
        await Assertions.Expect(row.Locator("[data-col=stage]")).ToHaveTextAsync(Stages.None);
        await row.Locator("button[data-stage-action=archived]").ClickAsync();
        var dialog = page.GetByTestId("stage-dialog");
        await Assertions.Expect(dialog).ToBeVisibleAsync();

        // Someone else archives it first (the CLI, through the API): the open page shows it without a reload ('models' live event) ...
        await system.StageAsync(DashboardSystem.Promo, "0.9.0", Stages.Archived);
        await Assertions.Expect(row.Locator("[data-col=stage]")).ToHaveTextAsync(Stages.Archived);
        // ... and the stale confirmation gets the registry's 409, shown in the dialog, which stays open.
        await dialog.GetByTestId("stage-confirm").ClickAsync();
        await Assertions.Expect(dialog.GetByTestId("stage-error")).ToContainTextAsync("already in archived");
        await Assertions.Expect(dialog).ToBeVisibleAsync();
    }

    [Fact]
    public async Task DevicePage_OperatorAddsAndRemovesATag_TheApiShowsIt()
    {
        const string Device = "dash-00002";
        var (context, page) = await LoginAsync(system.OperatorToken);
        await using var _ = context;
        await page.GotoAsync($"/#/devices/{Device}");
        await Assertions.Expect(page.GetByTestId("device-tags")).ToContainTextAsync("fleet=dash");

        await page.GetByTestId("tag-editor").Locator("input[name=new-tag]").FillAsync("zone=dock-7");
        await page.GetByTestId("tag-add").ClickAsync();

        await Assertions.Expect(page.Locator("[data-tag='zone=dock-7']")).ToBeVisibleAsync();
        Assert.Contains("zone=dock-7", (await DeviceAsync(Device)).Tags);

        await page.Locator("[data-remove-tag='zone=dock-7']").ClickAsync();
        await Assertions.Expect(page.Locator("[data-tag='zone=dock-7']")).ToHaveCountAsync(0);
        Assert.DoesNotContain("zone=dock-7", (await DeviceAsync(Device)).Tags);

        // A bad tag is the API's 400, shown by the editor; nothing changes.
        await page.GetByTestId("tag-editor").Locator("input[name=new-tag]").FillAsync("Bad Tag!");
        await page.GetByTestId("tag-add").ClickAsync();
        await Assertions.Expect(page.GetByTestId("tag-error")).ToContainTextAsync("not a valid tag");
        Assert.Equal(["fleet=dash"], (await DeviceAsync(Device)).Tags);
    }

    [Fact]
    public async Task Viewer_SeesNoPromoteOrTagControls_AndTheApiRefusesTheViewersStageAndTagChanges()
    {
        var (context, page) = await LoginAsync(system.ViewerToken);
        await using var _ = context;
        var before = (await VersionAsync(DashboardSystem.Promo, "1.0.0")).Stage;

        await page.GotoAsync($"/#/models/{DashboardSystem.Promo}");
        await Assertions.Expect(page.Locator("tr[data-version='1.0.0']").First).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("lineage-1.1.0").Or(page.GetByTestId("lineage-1.0.0"))).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("button[data-stage-action]")).ToHaveCountAsync(0);
        var csrf = await CsrfAsync(page);
        var stage = await context.APIRequest.PostAsync($"api/v1/models/{DashboardSystem.Promo}/versions/1.0.0/stage", new()
        {
            Headers = new Dictionary<string, string> { ["X-EdgeFleet-CSRF"] = csrf },
            DataObject = new { stage = before == Stages.Production ? Stages.Archived : Stages.Production },
        });
        Assert.Equal(403, stage.Status);
        Assert.Equal(before, (await VersionAsync(DashboardSystem.Promo, "1.0.0")).Stage);

        await page.GotoAsync("/#/devices/dash-00001");
        await Assertions.Expect(page.GetByTestId("device-tags")).ToContainTextAsync("fleet=dash");
        await Assertions.Expect(page.GetByTestId("tag-editor")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("[data-remove-tag]")).ToHaveCountAsync(0);
        var tags = await context.APIRequest.PutAsync("api/v1/devices/dash-00001/tags", new()
        {
            Headers = new Dictionary<string, string> { ["X-EdgeFleet-CSRF"] = csrf },
            DataObject = new { add = new[] { "zone=forged" } },
        });
        Assert.Equal(403, tags.Status);
        Assert.DoesNotContain("zone=forged", (await DeviceAsync("dash-00001")).Tags);
    }

    [Fact]
    public async Task FleetPage_ATagChangeThroughTheApi_AppearsWithoutAReload()
    {
        const string Device = "dash-00003";
        var (context, page) = await LoginAsync(system.ViewerToken);
        await using var _ = context;
        var tags = page.Locator($"tr[data-device='{Device}'] [data-col=tags]");
        await Assertions.Expect(tags).ToContainTextAsync("fleet=dash");
        await Assertions.Expect(page.GetByTestId("live")).ToHaveTextAsync("● live");
        await page.EvaluateAsync("() => { window.notReloaded = true; }");
        var requested = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Request += (_, request) => requested.Enqueue(request.Url);

        await ChangeTagsAsync(Device, new TagChangeRequest { Add = ["shift=night"] });

        await Assertions.Expect(tags).ToContainTextAsync("shift=night");
        Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"));
        // The page fetched the devices the change named, not the whole fleet again.
        Assert.Contains(requested, u => u.Contains("/api/v1/devices?", StringComparison.Ordinal) && u.Contains("ids=", StringComparison.Ordinal)
            && Uri.UnescapeDataString(u).Contains(Device, StringComparison.Ordinal));

        // Sorting is the page's own work: the device column again turns the order around.
        var rows = page.GetByTestId("fleet-table").Locator("tbody tr");
        await Assertions.Expect(rows.First).ToHaveAttributeAsync("data-device", "dash-00001");
        await page.Locator("th[data-sort=device]").ClickAsync();
        await Assertions.Expect(rows.First).ToHaveAttributeAsync("data-device", DashboardSystem.AgentId);
        await Assertions.Expect(rows.Last).ToHaveAttributeAsync("data-device", "dash-00001");
        await Assertions.Expect(page.Locator("th[data-sort=device]")).ToHaveAttributeAsync("aria-sort", "descending");

        // Filtered by the new tag: the device is the only row, and leaves the list when the tag goes, without a reload.
        await page.Locator("input[name=tag]").FillAsync("shift=night");
        await page.Locator("input[name=tag]").PressAsync("Enter"); // the filter applies on change, as when a user presses Enter or leaves the field
        await Assertions.Expect(rows).ToHaveCountAsync(1);
        await ChangeTagsAsync(Device, new TagChangeRequest { Remove = ["shift=night"] });
        await Assertions.Expect(rows).ToHaveCountAsync(0);
        Assert.True(await page.EvaluateAsync<bool>("() => window.notReloaded === true"));
    }

    private async Task ChangeTagsAsync(string device, TagChangeRequest change)
    {
        using var put = await _admin.PutAsJsonAsync($"api/v1/devices/{device}/tags", change, ApiJsonContext.Default.TagChangeRequest, _patience.Token);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync(_patience.Token));
    }
}
