using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Agent.Gpio;

/// <summary>
/// Infer on a GPIO edge instead of continuously: each accepted edge arms the trigger, and the first frame that arrived
/// after it is inferred; every other frame is skipped. Edges come from the GPIO event thread, frames from the inference
/// thread; the hand-over is one interlocked word, so the inference side neither locks nor allocates. Several edges
/// before the next frame give one inference (that frame is the first after each of them).
/// </summary>
public sealed class CaptureTrigger : IFrameGate
{
    private const long NotArmed = long.MaxValue;

    private readonly TimeSpan _debounce;
    private readonly TimeProvider _time;
    private readonly Lock _edgeLock = new();
    private long _armedAt = NotArmed;
    private long _lastAccepted = long.MinValue;
    private long _edges;
    private long _debounced;
    private long _fired;

    /// <param name="time">Its timestamps must be on the frames' clock (<see cref="TimeProvider.System"/>: the Stopwatch).</param>
    public CaptureTrigger(TimeSpan debounce, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(debounce, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        _debounce = debounce;
        _time = time;
    }

    /// <summary>Edges accepted (after debouncing).</summary>
    public long Edges => Interlocked.Read(ref _edges);

    /// <summary>Edges ignored because they came within the debounce time of an accepted one.</summary>
    public long Debounced => Interlocked.Read(ref _debounced);

    /// <summary>Frames inferred because of an edge.</summary>
    public long Fired => Interlocked.Read(ref _fired);

    /// <summary>An edge of the configured kind was seen on the line.</summary>
    public void OnEdge()
    {
        var now = _time.GetTimestamp();
        lock (_edgeLock)
        {
            if (_lastAccepted != long.MinValue && _time.GetElapsedTime(_lastAccepted, now) < _debounce)
            {
                _debounced++;
                return;
            }

            _lastAccepted = now;
            _edges++;
        }

        // Already armed: the earlier edge's frame serves this one too.
        Interlocked.CompareExchange(ref _armedAt, now, NotArmed);
    }

    public bool ShouldInfer(long capturedAt)
    {
        var armedAt = Volatile.Read(ref _armedAt);
        // Strictly after: a frame that arrived at the very tick of the edge was exposed before it.
        if (capturedAt <= armedAt || Interlocked.CompareExchange(ref _armedAt, NotArmed, armedAt) != armedAt)
        {
            return false;
        }

        Interlocked.Increment(ref _fired);
        return true;
    }
}
