using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class MetricsAndSlotTests
{
    [Fact]
    public void Snapshot_KnownLatencies_GivesNearestRankPercentiles()
    {
        var metrics = new PipelineMetrics(window: 100);
        var ms = Stopwatch.Frequency / 1000;
        for (var i = 1; i <= 100; i++)
        {
            // inference takes i ms; every other stage 0
            metrics.RecordFrame(0, 0, 0, i * ms, i * ms, 0, nonFinite: i == 7);
        }

        var s = metrics.Snapshot(captured: 120, dropped: 20, restarts: 1, stalls: 0);

        var inference = s.Stages[Stage.Inference];
        Assert.Equal((50.0, 95.0, 99.0), (Math.Round(inference.P50), Math.Round(inference.P95), Math.Round(inference.P99)));
        Assert.Equal(50.5, inference.Mean, 3);
        Assert.Equal(100, s.FramesInferred);
        Assert.Equal(1, s.NonFiniteOutputs);
        Assert.Equal((120L, 20L, 1L), (s.FramesCaptured, s.FramesDropped, s.SourceRestarts));
    }

    [Fact]
    public void Snapshot_WindowFull_OnlyRecentFramesCount()
    {
        var metrics = new PipelineMetrics(window: 10);
        var ms = Stopwatch.Frequency / 1000;
        for (var i = 0; i < 10; i++)
        {
            metrics.RecordFrame(0, 0, 0, 1000 * ms, 0, 0, false); // old slow frames
        }

        for (var i = 0; i < 10; i++)
        {
            metrics.RecordFrame(0, 0, 0, 2 * ms, 0, 0, false);
        }

        Assert.Equal(2.0, metrics.Snapshot(0, 0, 0, 0).Stages[Stage.Inference].P99, 6);
    }

    [Fact]
    public void Publish_RealtimeSlotNotTaken_DropsTheOlderFrameAndCountsIt()
    {
        var pool = new FramePool(4, 4, initial: 2);
        var slot = new LatestFrameSlot(pool, dropOld: true);
        var first = pool.Rent();
        first.Sequence = 1;
        var second = pool.Rent();
        second.Sequence = 2;

        slot.Publish(first, CancellationToken.None);
        slot.Publish(second, CancellationToken.None);

        Assert.Equal(1, slot.Dropped);
        Assert.True(slot.TryTake(TimeSpan.FromSeconds(1), CancellationToken.None, out var taken));
        Assert.Equal(2, taken!.Sequence);
        Assert.Same(first, pool.Rent()); // the dropped frame went back to the pool
    }

    [Fact]
    public async Task Publish_NonRealtimeSlotOccupied_WaitsForTheConsumer()
    {
        var pool = new FramePool(4, 4);
        var slot = new LatestFrameSlot(pool, dropOld: false);
        slot.Publish(pool.Rent(), CancellationToken.None);

        var published = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var producer = new Thread(() => published.SetResult(slot.Publish(pool.Rent(), CancellationToken.None))) { IsBackground = true };
        producer.Start();
        // A positive signal instead of a fixed wait: the producer has gone to sleep inside Publish (Monitor.Wait).
        while ((producer.ThreadState & System.Threading.ThreadState.WaitSleepJoin) == 0 && !published.Task.IsCompleted)
        {
            await Task.Delay(5);
        }

        Assert.False(published.Task.IsCompleted, "Publish returned while the slot was still occupied");
        var second = published.Task;

        Assert.True(slot.TryTake(TimeSpan.FromSeconds(1), CancellationToken.None, out _));
        slot.NotifyConsumed();
        Assert.True(await second.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, slot.Dropped);
    }

    [Fact]
    public void TryTake_Completed_ReturnsFalseAtOnce()
    {
        var slot = new LatestFrameSlot(new FramePool(4, 4), dropOld: true);
        slot.Complete();

        Assert.False(slot.TryTake(TimeSpan.FromMinutes(5), CancellationToken.None, out _));
        Assert.True(slot.IsCompleted);
    }

    [Fact]
    public void Rent_PoolExhausted_AllocatesAndCounts()
    {
        var pool = new FramePool(2, 2, initial: 1);
        pool.Rent();
        var extra = pool.Rent();

        Assert.Equal(12, extra.Data.Length);
        Assert.Equal(2, pool.Allocated);
    }
}
