using System.Diagnostics;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

/// <summary>The outbox publisher against the in-memory broker, with a fake clock for its resend timer.</summary>
[Trait("Category", "Unit")]
public sealed class OutboxPublisherTests : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeMqttBroker _broker = new();
    private readonly FakeMqttConnection _connection;
    private readonly Outbox _outbox;
    private readonly CancellationTokenSource _stop = new();
    private OutboxPublisher? _publisher;
    private Task? _run;

    public OutboxPublisherTests()
    {
        _outbox = new Outbox(_dir.File("outbox.db"), new OutboxLimits { SynchronousFull = false }, _time);
        _connection = _broker.CreateConnection("cam-01");
    }

    private OutboxPublisher Run(int window = 256)
    {
        Assert.Null(_publisher);
#pragma warning disable IDISP003 // one publisher per test, disposed with the test
        _publisher = new OutboxPublisher(_outbox, _connection, _time, NullLogger.Instance, window);
#pragma warning restore IDISP003
        _connection.Start();
        _run = _publisher.RunAsync(_stop.Token);
        return _publisher;
    }

    private void Enqueue(int count, string topic = "ef/v1/cam-01/telemetry")
    {
        for (var i = 0; i < count; i++)
        {
            _outbox.Enqueue(topic, seq => BitConverter.GetBytes(seq));
        }

        _publisher?.Signal();
    }

    private IEnumerable<long> PublishedSeqs => _broker.Published.Select(m => BitConverter.ToInt64(m.Payload));

    private Task PublishedAsync(int count) => _broker.WaitUntilAsync(b => b.Published.Count >= count, $"{count} publishes", Patience);

    private static async Task Until(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}");
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run;
        }

        _publisher?.Dispose();
        await _connection.DisposeAsync();
        _outbox.Dispose();
        _stop.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task RunAsync_RowsPublished_DeletedOnlyAfterTheirPuback()
    {
        _broker.HoldAcks = true;
        var publisher = Run();
        Enqueue(5);

        await PublishedAsync(5);
        Assert.Equal(5, _outbox.Stats.Pending); // sent, not acknowledged: still there
        Assert.Equal([1L, 2L, 3L, 4L, 5L], PublishedSeqs);

        _broker.ReleaseAcks(2);
        await Until(() => _outbox.Stats.Pending == 3, "the two acknowledged rows are deleted");
        Assert.Equal([3L, 4L, 5L], _outbox.ReadAfter(0, 10).Select(r => r.Seq));

        _broker.ReleaseAcks();
        await Until(() => _outbox.Stats.Pending == 0, "every row is deleted");
        Assert.Equal(5, publisher.Published);
        Assert.Equal(0, publisher.InFlight);
    }

    [Fact]
    public async Task RunAsync_WindowOfFour_NeverMoreThanFourUnacknowledged()
    {
        _broker.HoldAcks = true;
        var publisher = Run(window: 4);
        Enqueue(20);

        await PublishedAsync(4);
        Assert.Equal(4, publisher.InFlight);
        for (var published = 4; published < 20;)
        {
            _broker.ReleaseAcks(3);
            published = Math.Min(20, published + 3);
            await PublishedAsync(published);
        }

        _broker.ReleaseAcks();
        await Until(() => _outbox.Stats.Pending == 0, "every row is acknowledged and deleted");
        Assert.Equal(4, _broker.PeakHeldAcks);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), PublishedSeqs);
        Assert.Equal(0, publisher.Resent);
    }

    [Fact]
    public async Task RunAsync_ConnectionLostBeforeThePubacks_ResendsThemAfterTheReconnect()
    {
        _broker.HoldAcks = true;
        var publisher = Run();
        Enqueue(3);
        await PublishedAsync(3);

        _broker.Stop(); // the held PUBACKs never come
        await Until(() => publisher.InFlight == 0, "the lost publishes are given up");
        Enqueue(2); // written while disconnected
        Assert.Equal(5, _outbox.Stats.Pending);
        _broker.HoldAcks = false;
        _broker.Start();

        await Until(() => _outbox.Stats.Pending == 0, "everything is acknowledged after the reconnect");
        Assert.Equal([1L, 2L, 3L, 1L, 2L, 3L, 4L, 5L], PublishedSeqs);
        Assert.Equal(3, publisher.Resent);
        Assert.Equal(5, publisher.Published);
        Assert.Equal(2, _connection.Connects);
    }

    [Fact]
    public async Task RunAsync_BrokerRefusesARow_ItIsDroppedAndCounted()
    {
        _broker.ReasonCode = m => m.Topic.EndsWith("/forbidden", StringComparison.Ordinal) ? 0x87 : 0;
        var publisher = Run();
        Enqueue(2);
        Enqueue(1, "ef/v1/cam-01/forbidden");
        Enqueue(2);

        await Until(() => _outbox.Stats.Pending == 0, "every row is answered and deleted");
        Assert.Equal(1, publisher.Rejected);
        Assert.Equal(4, publisher.Published);
        Assert.Equal([1L, 2L, 3L, 4L, 5L], PublishedSeqs); // sent once each: resending a refused row cannot help
    }

    [Fact]
    public async Task RunAsync_NoPubackWithinResendAfter_SendsTheRowAgainOnce()
    {
        _broker.HoldAcks = true;
        var publisher = Run();
        Enqueue(1);
        await PublishedAsync(1);

        // Just short of the limit: the next pass (which publishes row 2) must not resend row 1.
        _time.Advance(publisher.ResendAfter - TimeSpan.FromSeconds(1));
        Enqueue(1);
        await PublishedAsync(2);
        Assert.Equal([1L, 2L], PublishedSeqs);

        _time.Advance(TimeSpan.FromSeconds(1));
        publisher.Signal();
        await PublishedAsync(3);
        Assert.Equal([1L, 2L, 1L], PublishedSeqs);

        _broker.ReleaseAcks();
        await Until(() => _outbox.Stats.Pending == 0, "both rows are deleted");
        Assert.Equal(1, publisher.Resent);
    }

    [Fact]
    public async Task DrainAsync_InFlightAcknowledged_ReturnsWithTheRowsDeleted()
    {
        _broker.HoldAcks = true;
        var publisher = Run();
        Enqueue(3);
        await PublishedAsync(3);

        var drain = publisher.DrainAsync(TimeSpan.FromSeconds(30));
        Assert.False(drain.IsCompleted);
        _broker.ReleaseAcks();
        await drain.WaitAsync(Patience);

        Assert.Equal(0, _outbox.Stats.Pending);
    }
}
