using EdgeFleet.Cli.Sim;

namespace EdgeFleet.Cli.Tests;

[Trait("Category", "Unit")]
public sealed class SimUnitTests
{
    [Theory]
    [InlineData("ok", BehaviorKind.Ok, 1)]
    [InlineData("fail", BehaviorKind.Fail, 1)]
    [InlineData("nan", BehaviorKind.Nan, 0.6)]
    [InlineData("nan:0.25", BehaviorKind.Nan, 0.25)]
    [InlineData("slow", BehaviorKind.Slow, 1.4)]
    [InlineData("SLOW:1.6", BehaviorKind.Slow, 1.6)]
    [InlineData("offline", BehaviorKind.Offline, 1)]
    [InlineData("flaky", BehaviorKind.Flaky, 3)]
    [InlineData("flaky:1", BehaviorKind.Flaky, 1)]
    [InlineData("drift", BehaviorKind.Drift, 1)]
    public void VersionBehaviorTryParse_KnownKinds_ParseWithTheirDefaults(string text, BehaviorKind kind, double parameter)
    {
        Assert.True(VersionBehavior.TryParse(text, out var behavior, out var error), error);
        Assert.Equal(new VersionBehavior(kind, parameter), behavior);
    }

    [Theory]
    [InlineData("weird", "not a behaviour")]
    [InlineData("slow:x", "not a number")]
    [InlineData("slow:0", "between 0 and 100")]
    [InlineData("nan:2", "between 0 and 1")]
    [InlineData("flaky:1.5", "whole number")]
    [InlineData("fail:2", "takes no parameter")]
    public void VersionBehaviorTryParse_BadText_SaysWhy(string text, string because)
    {
        Assert.False(VersionBehavior.TryParse(text, out _, out var error));
        Assert.Contains(because, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("5s", 5)]
    [InlineData("500ms", 0.5)]
    [InlineData("10m", 600)]
    [InlineData("1h30m", 5400)]
    [InlineData("90", 90)]
    [InlineData("1.5s", 1.5)]
    [InlineData("00:02:00", 120)]
    public void TryParseDuration_UnitsAndForms_Parse(string text, double seconds)
    {
        Assert.True(SimCommand.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("5 parsecs")]
    [InlineData("5d")]
    [InlineData("-3")]
    [InlineData("s")]
    public void TryParseDuration_NotADuration_IsRefused(string text) => Assert.False(SimCommand.TryParseDuration(text, out _));

    [Fact]
    public void DeviceProfile_SameSeedAndId_SameFigures_OtherSeed_OtherFigures()
    {
        var a = DeviceProfile.Create(7, "sim-00001", []);
        var b = DeviceProfile.Create(7, "sim-00001", []);
        var c = DeviceProfile.Create(8, "sim-00001", []);

        Assert.Equal((a.BaseLatencyMs, a.P95Ratio, a.Confidence, a.MemTotalBytes), (b.BaseLatencyMs, b.P95Ratio, b.Confidence, b.MemTotalBytes));
        Assert.NotEqual(a.BaseLatencyMs, c.BaseLatencyMs);
    }

    [Fact]
    public void DeviceProfile_AFleet_HasALognormalLatencyAroundEightMs_TailsAboveTheMedian_AndSlowerHardwareByTag()
    {
        var fleet = Enumerable.Range(1, 2001).Select(i => DeviceProfile.Create(42, $"sim-{i:00000}", [])).ToList();
        var latencies = fleet.Select(p => p.BaseLatencyMs).Order().ToList();
        var logs = latencies.Select(l => Math.Log(l)).ToList();
        var mean = logs.Average();
        var sigma = Math.Sqrt(logs.Sum(l => (l - mean) * (l - mean)) / (logs.Count - 1));

        Assert.InRange(latencies[1000], 7.5, 8.5);
        Assert.InRange(sigma, 0.27, 0.33);
        Assert.All(fleet, p => Assert.True(p.P95Ratio > 1 && p.P99Ratio > 1));
        Assert.InRange(fleet.Average(p => p.Confidence), 0.78, 0.82);
        var nano = DeviceProfile.Create(42, "sim-00001", ["site=a", "hw=jetson-nano"]);
        Assert.Equal(fleet[0].BaseLatencyMs * 3.5, nano.BaseLatencyMs, 6);
    }

    [Fact]
    public void SimulatorOptions_DeviceIds_ArePaddedToFiveDigitsOrMore()
    {
        var options = new SimulatorOptions { Server = new Uri("http://cp/"), Devices = 3, IdPrefix = "edge" };

        Assert.Equal(["edge-00001", "edge-00003"], new[] { options.DeviceId(0), options.DeviceId(2) });
        Assert.Equal("edge-000042", (options with { Devices = 100_000 }).DeviceId(41));
    }

    [Fact]
    public void SimulatorOptions_Validate_NamesEveryProblem()
    {
        var options = new SimulatorOptions
        {
            Server = new Uri("ftp://cp/"),
            Devices = 5,
            OfflineDevices = 6,
            IdPrefix = "Bad_Prefix",
            ModelVersion = "one",
            Behaviors = new Dictionary<string, VersionBehavior> { ["latest"] = VersionBehavior.Ok },
            TelemetryInterval = TimeSpan.Zero,
        };

        var errors = string.Join(" | ", options.Validate());

        foreach (var expected in new[] { "--server", "--offline", "--id-prefix", "--version 'one'", "--behave 'latest'", "--telemetry-interval" })
        {
            Assert.Contains(expected, errors, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => new FleetSimulator(options));
    }
}
