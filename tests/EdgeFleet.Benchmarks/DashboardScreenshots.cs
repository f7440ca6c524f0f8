using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using Microsoft.Playwright;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// The README's screenshots, taken in real Chromium from a running control plane (normally <c>./demo.sh</c>): fleet,
/// a device, models, rollouts, the newest succeeded and rolled-back rollout, events. Each page is captured once its data
/// is on it (table rows, chart points), never after a fixed wait.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- screenshots --server URL --token TOKEN [--out docs/screenshots] [--device ID]</c>
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
internal static class DashboardScreenshots
{
    public static async Task<int> RunAsync(string[] args)
    {
        var server = BenchmarkArgs.Value(args, "--server");
        var token = BenchmarkArgs.Value(args, "--token") ?? Environment.GetEnvironmentVariable("EDGEFLEET_TOKEN");
        if (server is null || token is null || !Uri.TryCreate(server, UriKind.Absolute, out var url))
        {
            await Console.Error.WriteLineAsync("usage: screenshots --server URL --token TOKEN [--out DIR] [--device ID]");
            return 2;
        }

        var output = Path.GetFullPath(BenchmarkArgs.Value(args, "--out") ?? "docs/screenshots");
        Directory.CreateDirectory(output);
        using var api = new HttpClient { BaseAddress = url };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var devices = (await api.GetFromJsonAsync("api/v1/devices", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!;
        var rollouts = (await api.GetFromJsonAsync("api/v1/rollouts?limit=200", ApiJsonContext.Default.IReadOnlyListRolloutInfo))!;
        var device = BenchmarkArgs.Value(args, "--device")
            ?? devices.Where(d => d.Online).OrderBy(d => d.Id, StringComparer.Ordinal).FirstOrDefault(d => !d.Id.StartsWith("sim", StringComparison.Ordinal))?.Id
            ?? devices.FirstOrDefault()?.Id;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(Browser.Options);
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = url.ToString(), ViewportSize = new() { Width = 1440, Height = 900 } });
        var page = await context.NewPageAsync();
        await Browser.LoginAsync(page, token);

        async Task ShotAsync(string name, string route, Func<Task> ready, bool fullPage = false)
        {
            await page.GotoAsync("/" + route);
            await ready();
            var file = Path.Combine(output, name + ".png");
            await page.ScreenshotAsync(new() { Path = file, FullPage = fullPage });
            Console.WriteLine($"{file} ({route})");
        }

        Task Rows(string testId) => page.Locator($"[data-testid={testId}] tbody tr").First.WaitForAsync(new() { Timeout = 30_000 });

        await ShotAsync("fleet", "#/fleet", () => Rows("fleet-table"));
        if (device is not null)
        {
            await ShotAsync("device", "#/devices/" + Uri.EscapeDataString(device), () =>
                page.WaitForFunctionAsync("() => [...document.querySelectorAll('[data-testid^=chart-]')].some(c => Number(c.dataset.count) > 0)"
                    + " && document.querySelectorAll('[data-loading]').length === 0", null, new() { Timeout = 30_000 }), fullPage: true);
        }

        await ShotAsync("models", "#/models", async () =>
        {
            await Rows("models-table");
            await page.Locator("[data-testid=models-table] tbody tr a").First.ClickAsync();
            await page.Locator("[data-testid^=versions-] tbody tr").First.WaitForAsync(new() { Timeout = 30_000 });
        }, fullPage: true);
        await ShotAsync("rollouts", "#/rollouts", () => Rows("rollouts-table"));
        foreach (var state in new[] { "succeeded", "rolled_back" })
        {
            if (rollouts.Where(r => r.State == state).OrderByDescending(r => r.CreatedAt).FirstOrDefault() is { } rollout)
            {
                await ShotAsync("rollout-" + state.Replace('_', '-'), "#/rollouts/" + Uri.EscapeDataString(rollout.Id), () => Rows("rollout-stages"), fullPage: true);
            }
        }

        await ShotAsync("events", "#/events", () => Rows("events-table"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"screenshots of {url} ({devices.Count} devices, {rollouts.Count} rollouts) in {output}"));
        return 0;
    }
}
