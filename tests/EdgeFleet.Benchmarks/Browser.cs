using Microsoft.Playwright;

namespace EdgeFleet.Benchmarks;

/// <summary>Debian's Chromium through Playwright, as the dashboard tests start it, and the dashboard's login form.</summary>
internal static class Browser
{
    public static BrowserTypeLaunchOptions Options { get; } = new()
    {
        ExecutablePath = Environment.GetEnvironmentVariable("EDGEFLEET_CHROMIUM") ?? "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    };

    /// <summary>Signs in through the page's form (the token goes into the HttpOnly session cookie).</summary>
    public static async Task LoginAsync(IPage page, string token)
    {
        await page.GotoAsync("/");
        await page.Locator("#token").FillAsync(token);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByTestId("who").WaitForAsync(new() { Timeout = 30_000 });
    }
}
