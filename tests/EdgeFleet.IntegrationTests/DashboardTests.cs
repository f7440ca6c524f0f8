using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;
using Microsoft.Playwright;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The dashboard in real Chromium (Debian's /usr/bin/chromium through Microsoft.Playwright) against the real control
/// plane process (embedded mosquitto, SQLite) with simulated devices behind it (<see cref="FleetSimulator"/>: real
/// enrollment, MQTT telemetry, OTA). Every wait is one of Playwright's auto-waiting expectations; no fixed sleeps.
/// </summary>
#pragma warning disable IDISP006, IDISP003 // xunit calls InitializeAsync once and DisposeAsync at the end
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class DashboardTests : IAsyncLifetime
{
    private const string Model = "dash-cls";
    private const int Devices = 3;
    private static readonly LocatorAssertionsToHaveCountOptions Patient = new() { Timeout = 60_000 };
    private readonly CancellationTokenSource _patience = new(TimeSpan.FromMinutes(4));
    private ControlPlaneProcess _cp = null!;
    private HttpClient _admin = null!;
    private FleetSimulator _sim = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(30_000);
        _cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            EmbeddedMqtt = true,
            Environment = new Dictionary<string, string> { ["ControlPlane__RolloutTickMilliseconds"] = "200" },
        });
        _admin = _cp.CreateClient(_cp.AdminToken);
        foreach (var version in new[] { "1.0.0", "1.1.0" })
        {
            await RegistryUploads.PushAsync(_admin, Model, version, OtaFixture.Good);
        }

        var enroll = await _cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = ["fleet=dash"], MaxUses = Devices + 1 });
        _sim = new FleetSimulator(new SimulatorOptions
        {
            Server = _cp.Url,
            EnrollToken = enroll.Token,
            Devices = Devices,
            IdPrefix = "dash",
            ModelName = Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(1),
            Probation = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            Seed = 11,
        });
        await _sim.StartAsync(_patience.Token);
        await _sim.WaitAllConnectedAsync(_patience.Token);

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _sim.DisposeAsync();
        _admin.Dispose();
        await _cp.DisposeAsync();
        _patience.Dispose();
    }

    [GeneratedRegex("^[1-9][0-9]*$")]
    private static partial Regex Positive();

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

    private async Task<string> CsrfAsync(IPage page) =>
        await page.EvaluateAsync<string>("async () => (await (await fetch('/api/v1/session')).json()).csrf");

    [Fact]
    public async Task Fleet_AfterLoginWithAToken_ShowsTheSimulatedDevicesWithTheirModel()
    {
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;

        var rows = page.GetByTestId("fleet-table").Locator("tbody tr[data-device]");
        await Assertions.Expect(rows).ToHaveCountAsync(Devices, Patient);
        for (var i = 1; i <= Devices; i++)
        {
            var row = page.Locator($"tr[data-device='dash-{i:00000}']");
            await Assertions.Expect(row).ToBeVisibleAsync();
            await Assertions.Expect(row.Locator("[data-col=model]")).ToHaveTextAsync($"{Model} 1.0.0");
        }

        await Assertions.Expect(page.GetByTestId("count-total")).ToHaveTextAsync(Devices.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.GetByTestId("who")).ToContainTextAsync("admin");
    }

    [Fact]
    public async Task DevicePage_OfASimulatedDevice_ChartsFpsAndLatencyPointsFromTheTelemetryApi()
    {
        var (context, page) = await LoginAsync(_cp.AdminToken);
        await using var _ = context;

        await page.Locator("a", new() { HasText = "dash-00001" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("device-id")).ToHaveTextAsync("dash-00001");
        // The live stream refetches the telemetry as the device sends it, so the points appear without a reload.
        await Assertions.Expect(page.GetByTestId("chart-fps").Locator("polyline[data-series=fps]")).ToHaveAttributeAsync("data-count", Positive(), new() { Timeout = 60_000 });
        await Assertions.Expect(page.GetByTestId("chart-latency").Locator("polyline[data-series=p95]")).ToHaveAttributeAsync("data-count", Positive());
        await Assertions.Expect(page.GetByTestId("chart-latency").Locator("polyline[data-series=p50]")).ToHaveAttributeAsync("data-count", Positive());
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
        var (context, page) = await LoginAsync(await _cp.CreateTokenAsync(ApiRole.Viewer, "dash-viewer"));
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
}
