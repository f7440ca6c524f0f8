using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>The <see cref="ControlPlaneProcess"/> fixture itself.</summary>
[Trait("Category", "Integration")]
public sealed class ControlPlaneProcessTests
{
    [Fact]
    public async Task StartAsync_ControlPlaneRefusesItsSettings_FailsWithItsOutput()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            Environment = new Dictionary<string, string> { ["ControlPlane__MaxUploadBytes"] = "1" },
        }));

        Assert.Contains("edgefleet-controlplane exited with", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MaxUploadBytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DisposeAsync_RunningControlPlane_StopsItAndDeletesItsData()
    {
        var cp = await ControlPlaneProcess.StartAsync();
        var data = cp.DataDirectory;
        using var client = cp.CreateClient(token: null);
        Assert.Equal("""{"status":"ok"}""", await client.GetStringAsync(new Uri("healthz", UriKind.Relative)));

        await cp.DisposeAsync();

        Assert.False(Directory.Exists(data));
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync(new Uri("healthz", UriKind.Relative)));
    }
}
