namespace EdgeFleet.Cli.Sim;

/// <summary>Something the scheduler calls when it is due; returns when it is due next (a timestamp), or null to stop.</summary>
internal interface IScheduled
{
    long? OnDue(long now);
}

/// <summary>
/// One loop for the periodic work of the whole fleet (telemetry, drift reports): a priority queue of due times walked on
/// a single timer tick. Ten thousand devices with a timer each would cost ten thousand timer callbacks and state
/// machines; here they cost one heap entry each, and a tick that finds nothing due costs nothing. Work is spread over
/// the interval by each device's first due time, so a fleet does not publish in lockstep.
/// </summary>
internal sealed class TickScheduler : IAsyncDisposable
{
    private readonly PriorityQueue<IScheduled, long> _queue = new();
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<Exception> _failed;
    private readonly Task _loop;

    public TickScheduler(TimeProvider time, TimeSpan tick, Action<Exception> failed)
    {
        _time = time;
        _failed = failed;
        _loop = Task.Run(() => RunAsync(tick));
    }

    /// <summary>Items run so far (for the summary).</summary>
    public long Runs { get; private set; }

    /// <summary>The most items due in one tick.</summary>
    public int LargestBatch { get; private set; }

    public long Timestamp(TimeSpan fromNow) => _time.GetTimestamp() + Ticks(fromNow);

    public long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    public void Schedule(IScheduled item, long due)
    {
        lock (_lock)
        {
            _queue.Enqueue(item, due);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task RunAsync(TimeSpan tick)
    {
        using var timer = new PeriodicTimer(tick, _time);
        var due = new List<IScheduled>();
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var now = _time.GetTimestamp();
                due.Clear();
                lock (_lock)
                {
                    while (_queue.TryPeek(out var item, out var at) && at <= now)
                    {
                        _queue.Dequeue();
                        due.Add(item);
                    }
                }

                LargestBatch = Math.Max(LargestBatch, due.Count);
                foreach (var item in due)
                {
                    long? next;
                    try
                    {
                        next = item.OnDue(now);
                    }
#pragma warning disable CA1031 // one device's bug must not stop every other device's telemetry
                    catch (Exception ex)
#pragma warning restore CA1031
                    {
                        _failed(ex);
                        next = now + Ticks(tick * 10);
                    }

                    Runs++;
                    if (next is { } n)
                    {
                        Schedule(item, n);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }
}
