using System.Globalization;

namespace EdgeFleet.Agent.Hosting;

/// <summary>What the agent tells systemd after one look at the inferred-frame counter.</summary>
public enum LivenessVerdict
{
    /// <summary>No frame inferred yet: neither READY=1 nor WATCHDOG=1 (TimeoutStartSec bounds this).</summary>
    Starting,

    /// <summary>The first frame was inferred just now: READY=1 (and the first WATCHDOG=1).</summary>
    Ready,

    /// <summary>Frames were inferred recently enough: WATCHDOG=1.</summary>
    Alive,

    /// <summary>No frame inferred for the stall window: no ping, so systemd restarts the agent after WatchdogSec.</summary>
    Stalled,
}

/// <summary>
/// Decides from the inferred-frame counter, sampled every check, whether the pipeline is progressing. Pure: the counter
/// and the clock come in, a verdict goes out. Progress is seen at the granularity of the checks, so the pipeline counts
/// as stalled once no check within <c>stallAfter</c> saw the counter move.
/// </summary>
public sealed class PipelineLiveness
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _stallAfter;
    private long _lastFrames;
    private long _lastProgress;

    public PipelineLiveness(TimeProvider time, TimeSpan stallAfter)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(stallAfter, TimeSpan.Zero);
        _time = time;
        _stallAfter = stallAfter;
        _lastProgress = time.GetTimestamp();
    }

    public bool IsReady { get; private set; }

    /// <summary>Time since a check last saw a new frame (since construction before the first one).</summary>
    public TimeSpan SinceProgress => _time.GetElapsedTime(_lastProgress);

    public LivenessVerdict Check(long framesInferred)
    {
        if (framesInferred > _lastFrames)
        {
            _lastFrames = framesInferred;
            _lastProgress = _time.GetTimestamp();
            if (!IsReady)
            {
                IsReady = true;
                return LivenessVerdict.Ready;
            }

            return LivenessVerdict.Alive;
        }

        if (!IsReady)
        {
            return LivenessVerdict.Starting;
        }

        return SinceProgress < _stallAfter ? LivenessVerdict.Alive : LivenessVerdict.Stalled;
    }

    /// <summary>
    /// The watchdog interval systemd asks for: WATCHDOG_USEC, unless WATCHDOG_PID names another process (then the
    /// watchdog is not ours, as sd_watchdog_enabled decides). Null when there is none or it is not a positive number.
    /// </summary>
    public static TimeSpan? WatchdogInterval(string? watchdogUsec, string? watchdogPid, int processId)
    {
        if (!ulong.TryParse(watchdogUsec, NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec == 0)
        {
            return null;
        }

        if (!string.IsNullOrEmpty(watchdogPid)
            && (!int.TryParse(watchdogPid, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid != processId))
        {
            return null;
        }

        return TimeSpan.FromMicroseconds(Math.Min(usec, (ulong)TimeSpan.MaxValue.TotalMicroseconds / 2));
    }
}
