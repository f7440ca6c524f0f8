using EdgeFleet.Benchmarks;
using Xunit.Abstractions;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// The done-when of issue 7 at test-suite size (the full 50 × 2000 is <c>tests/EdgeFleet.Benchmarks -- ingest --kill</c>):
/// the real control plane process is killed with -9 while devices publish into its embedded broker, and restarted on
/// the same data directory and ports. Its mosquitto gets SIGTERM from the kernel (parent-death signal) and saves what
/// it had acknowledged to devices but not yet delivered to ingestion; ingestion acknowledged only what it had committed.
/// </summary>
[Trait("Category", "Integration")]
public sealed class IngestionKillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task KillDashNine_MidIngestion_EverySeqStoredExactlyOnceAfterTheRestart()
    {
        var result = await IngestKillRun.RunAsync(devices: 10, perDevice: 1000, killAt: 0.4, output.WriteLine, TimeSpan.FromMinutes(4));
        output.WriteLine(result.ToString());

        Assert.True(result.StoredAtKill < result.Expected, $"ingestion had already finished when it was killed: {result}");
        Assert.Equal(0, result.Lost);
        Assert.Equal(0, result.Duplicated);
        Assert.Equal(result.Expected, result.Stored);
        Assert.Equal(result.Expected, result.ReceivedCounted); // redeliveries are not counted twice either
        Assert.Equal(result.Devices, result.DevicesComplete);
    }
}
