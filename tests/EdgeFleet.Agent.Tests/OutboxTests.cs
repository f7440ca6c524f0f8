using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

/// <summary>The outbox on a real SQLite file.</summary>
[Trait("Category", "Integration")]
public sealed class OutboxTests
{
    private static FakeTimeProvider NewTime() => new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static byte[] Body(long seq, int size = 100)
    {
        var b = new byte[size];
        BitConverter.TryWriteBytes(b, seq);
        return b;
    }

    [Fact]
    public void Enqueue_AssignsGrowingSeqsThatThePayloadCarries()
    {
        using var dir = new TempDirectory();
        using var outbox = new Outbox(dir.File("o.db"), new OutboxLimits(), TimeProvider.System);

        var a = outbox.Enqueue("t", s => Body(s));
        var b = outbox.EnqueueMany([("t", s => Body(s)), ("u", s => Body(s))]);

        Assert.Equal(1, a);
        Assert.Equal([2L, 3L], b);
        var items = outbox.ReadAfter(0, 10);
        Assert.Equal([1L, 2L, 3L], items.Select(i => i.Seq));
        Assert.All(items, i => Assert.Equal(i.Seq, BitConverter.ToInt64(i.Payload)));
        Assert.Equal("u", items[2].Topic);
    }

    [Fact]
    public void Acknowledge_RemovesOnlyThoseRows()
    {
        using var dir = new TempDirectory();
        using var outbox = new Outbox(dir.File("o.db"), new OutboxLimits(), TimeProvider.System);
        for (var i = 0; i < 5; i++)
        {
            outbox.Enqueue("t", s => Body(s));
        }

        outbox.Acknowledge([2, 4, 99]);

        Assert.Equal([1L, 3L, 5L], outbox.ReadAfter(0, 10).Select(i => i.Seq));
        Assert.Equal((3L, 300L), (outbox.Stats.Pending, outbox.Stats.PendingBytes));
        Assert.Equal([5L], outbox.ReadAfter(3, 10).Select(i => i.Seq));
    }

    [Fact]
    public void Reopen_KeepsRowsAndTheSeqKeepsGrowingEvenWhenEmpty()
    {
        using var dir = new TempDirectory();
        var path = dir.File("o.db");
        using (var outbox = new Outbox(path, new OutboxLimits(), TimeProvider.System))
        {
            for (var i = 0; i < 3; i++)
            {
                outbox.Enqueue("t", s => Body(s));
            }

            outbox.Acknowledge([1, 2, 3]);
        }

        using (var reopened = new Outbox(path, new OutboxLimits(), TimeProvider.System))
        {
            Assert.Equal(0, reopened.Stats.Pending);
            Assert.Equal(4, reopened.Enqueue("t", s => Body(s)));
        }

        using var again = new Outbox(path, new OutboxLimits(), TimeProvider.System);
        Assert.Equal([4L], again.ReadAfter(0, 10).Select(i => i.Seq));
        Assert.Equal(5, again.Enqueue("t", s => Body(s)));
    }

    [Fact]
    public void Full_EvictsTheOldestAndCountsThem()
    {
        using var dir = new TempDirectory();
        using var outbox = new Outbox(dir.File("o.db"), new OutboxLimits { MaxBytes = 1000 }, TimeProvider.System);

        for (var i = 0; i < 25; i++)
        {
            outbox.Enqueue("t", s => Body(s));
        }

        Assert.Equal(15, outbox.Stats.Evicted);
        Assert.Equal(10, outbox.Stats.Pending);
        Assert.Equal(16, outbox.ReadAfter(0, 100)[0].Seq);
        Assert.True(outbox.Stats.PendingBytes <= 1000);
    }

    [Fact]
    public void Expired_RowsAreEvictedByAge()
    {
        using var dir = new TempDirectory();
        var time = NewTime();
        using var outbox = new Outbox(dir.File("o.db"), new OutboxLimits { MaxAge = TimeSpan.FromHours(1) }, time);
        outbox.Enqueue("t", s => Body(s));
        time.Advance(TimeSpan.FromMinutes(50));
        outbox.Enqueue("t", s => Body(s));
        time.Advance(TimeSpan.FromMinutes(20));

        Assert.Equal(1, outbox.EvictExpired());
        Assert.Equal([2L], outbox.ReadAfter(0, 10).Select(i => i.Seq));
    }

    [Fact]
    public void EvictedCount_SurvivesRestart()
    {
        using var dir = new TempDirectory();
        var path = dir.File("o.db");
        using (var outbox = new Outbox(path, new OutboxLimits { MaxBytes = 200 }, TimeProvider.System))
        {
            for (var i = 0; i < 5; i++)
            {
                outbox.Enqueue("t", s => Body(s));
            }
        }

        using var reopened = new Outbox(path, new OutboxLimits { MaxBytes = 200 }, TimeProvider.System);
        Assert.Equal(3, reopened.Stats.Evicted);
    }
}
