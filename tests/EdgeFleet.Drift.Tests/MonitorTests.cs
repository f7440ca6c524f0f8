using EdgeFleet.Contracts.Messaging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Drift.Tests;

[Trait("Category", "Unit")]
public sealed class MonitorTests
{
    private static FakeTimeProvider NewTime() => new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static readonly FeatureDefinition[] Features =
        [new("x", FeatureKind.Numeric), new("cls", FeatureKind.Categorical, 4)];

    private static DriftReport? Feed(DriftMonitor m, Random r, double mean, int cls)
    {
        DriftReport? last = null;
        for (var i = 0; i < 500; i++)
        {
            m.Add(0, mean + r.NextDouble());
            m.AddCategory(1, r.Next(10) == 0 ? 3 : cls);
            last = m.EndFrame() ?? last;
        }

        return last;
    }

    [Fact]
    public void FirstWindow_BecomesTheBaseline_ThenWindowsAreCompared()
    {
        var monitor = new DriftMonitor(Features, new DriftMonitorOptions { WindowFrames = 500 }, null, NewTime());
        var r = new Random(1);

        var first = Feed(monitor, r, 0, 0);
        var second = Feed(monitor, r, 0, 0);
        var shifted = Feed(monitor, r, 0.6, 2);

        Assert.True(first!.IsNewBaseline);
        Assert.StartsWith("window:", monitor.ReferenceId, StringComparison.Ordinal);
        Assert.False(second!.IsNewBaseline);
        Assert.Equal(DriftSeverity.None, second.Severity);
        Assert.Equal(2, second.Features.Count);
        Assert.Equal(DriftSeverity.Alert, shifted!.Severity);
        Assert.All(shifted.Features, f => Assert.Equal(DriftSeverity.Alert, f.Severity));
        Assert.Equal(500, shifted.Frames);
    }

    [Fact]
    public void Rebaseline_MakesTheNextWindowTheReference()
    {
        var monitor = new DriftMonitor(Features, new DriftMonitorOptions { WindowFrames = 500 }, null, NewTime());
        var r = new Random(2);
        Feed(monitor, r, 0, 0);
        Assert.Equal(DriftSeverity.Alert, Feed(monitor, r, 0.6, 2)!.Severity);

        monitor.Rebaseline();
        Assert.True(Feed(monitor, r, 0.6, 2)!.IsNewBaseline);

        Assert.Equal(DriftSeverity.None, Feed(monitor, r, 0.6, 2)!.Severity);
    }

    [Fact]
    public void WindowSeconds_ClosesAWindowByTime()
    {
        var time = NewTime();
        var monitor = new DriftMonitor(Features, new DriftMonitorOptions { WindowFrames = 1_000_000, WindowSeconds = 60 }, null, time);
        monitor.Add(0, 1);
        Assert.Null(monitor.EndFrame());
        time.Advance(TimeSpan.FromSeconds(61));
        monitor.Add(0, 1);

        Assert.NotNull(monitor.EndFrame());
    }

    [Fact]
    public void Observe_WithinAWindow_AllocatesNothing()
    {
        var monitor = new DriftMonitor(Features, new DriftMonitorOptions { WindowFrames = 100_000 }, null, NewTime());
        for (var i = 0; i < 100; i++)
        {
            monitor.Add(0, i);
            monitor.AddCategory(1, i % 4);
            monitor.EndFrame();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            monitor.Add(0, i * 0.5);
            monitor.AddCategory(1, i % 4);
            monitor.EndFrame();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Reference_ProfileEdgesAreUsedForTheWindowBins()
    {
        var monitor = new DriftMonitor(Features, new DriftMonitorOptions { WindowFrames = 500 }, null, NewTime());
        var r = new Random(3);
        Feed(monitor, r, 0, 0);

        var profile = monitor.Reference!;
        var x = profile.Features.Single(f => f.Name == "x");
        Assert.Equal(9, x.Edges.Count);
        Assert.Equal(10, x.Proportions.Count);
        Assert.Equal(1.0, x.Proportions.Sum(), 9);
        Assert.Equal(500, x.Count);
        Assert.Equal(256, x.Sample.Count);
        Assert.Equal(0.5, x.Mean, 1);
    }

    [Fact]
    public void NonFiniteValues_AreIgnored()
    {
        var acc = new NumericAccumulator("x", 16, 1);
        acc.Add(double.NaN);
        acc.Add(double.PositiveInfinity);
        acc.Add(2);

        Assert.Equal(1, acc.Count);
        Assert.Equal(2, acc.Mean);
    }
}
