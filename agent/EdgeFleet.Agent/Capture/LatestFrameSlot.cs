namespace EdgeFleet.Agent.Capture;

/// <summary>
/// Hands frames from capture to inference keeping only the newest one. In realtime mode a frame that was not
/// taken before the next arrived is dropped (and counted) so inference always works on the freshest picture; in
/// non-realtime mode (files and test patterns read as fast as possible) the producer waits instead, so no frame
/// is dropped and no CPU is spent producing frames nobody will see.
/// </summary>
public sealed class LatestFrameSlot
{
    private const int WaitSliceMs = 50;

    private readonly object _lock = new(); // Monitor.Wait/Pulse need a monitor, not a System.Threading.Lock
    private readonly FramePool _pool;
    private Frame? _frame;
    private long _dropped;
    private bool _completed;
    private bool _closed;
    private volatile bool _takenSinceNotify;

    public LatestFrameSlot(FramePool pool, bool dropOld)
    {
        _pool = pool;
        DropOld = dropOld;
    }

    public bool DropOld { get; }

    /// <summary>Frames replaced before inference took them.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public FramePool Pool => _pool;

    /// <summary>
    /// Non-realtime mode: waits until the slot is free, so the next frame is read from the source only when it can
    /// be handed over at once (it is then as fresh as possible). Returns false if cancelled. No-op in realtime mode.
    /// </summary>
    public bool WaitForSpace(CancellationToken cancellationToken)
    {
        if (DropOld)
        {
            return true;
        }

        lock (_lock)
        {
            while (_frame is not null && !cancellationToken.IsCancellationRequested && !_closed)
            {
                Monitor.Wait(_lock, WaitSliceMs);
            }

            return !cancellationToken.IsCancellationRequested && !_closed;
        }
    }

    /// <summary>Offers a frame; returns false if cancelled or closed (the frame then goes back to the pool).</summary>
    public bool Publish(Frame frame, CancellationToken cancellationToken)
    {
        Frame? replaced = null;
        lock (_lock)
        {
            if (!DropOld)
            {
                while (_frame is not null && !cancellationToken.IsCancellationRequested && !_closed)
                {
                    Monitor.Wait(_lock, WaitSliceMs);
                }
            }

            if (cancellationToken.IsCancellationRequested || _closed)
            {
                _pool.Return(frame);
                return false;
            }

            if (_frame is not null)
            {
                replaced = _frame;
                _dropped++;
            }

            _frame = frame;
            _completed = false;
            Monitor.PulseAll(_lock);
        }

        if (replaced is not null)
        {
            _pool.Return(replaced);
        }

        return true;
    }

    /// <summary>Waits up to <paramref name="timeout"/> for a frame. The caller returns it to <see cref="Pool"/>.</summary>
    public bool TryTake(TimeSpan timeout, CancellationToken cancellationToken, out Frame? frame)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_lock)
        {
            while (_frame is null)
            {
                var remaining = deadline - Environment.TickCount64;
                if (remaining <= 0 || cancellationToken.IsCancellationRequested || _completed)
                {
                    frame = null;
                    return false;
                }

                Monitor.Wait(_lock, (int)Math.Min(remaining, WaitSliceMs));
            }

            frame = _frame;
            _frame = null;
            _takenSinceNotify = true;
            return true;
        }
    }

    /// <summary>
    /// Tells a producer waiting for the slot that it is free again. The consumer calls this once it is done with
    /// the frame's hand-over work (after preprocessing), not inside <see cref="TryTake"/>: waking the capture thread
    /// there lets it preempt the consumer on a busy CPU just when the next inference should start.
    /// </summary>
    public void NotifyConsumed()
    {
        if (DropOld || !_takenSinceNotify)
        {
            return; // a realtime producer never waits for the consumer
        }

        lock (_lock)
        {
            _takenSinceNotify = false;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// Refuses every further frame at once (its capture is being replaced) and wakes a producer waiting to hand one
    /// over; a frame already handed over stays for the consumer, and <see cref="Dropped"/> is final.
    /// </summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The source has ended for good (a file without loop): waiting consumers give up at once.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _completed = true;
            Monitor.PulseAll(_lock);
        }
    }

    public bool IsCompleted
    {
        get
        {
            lock (_lock)
            {
                return _completed && _frame is null;
            }
        }
    }
}
