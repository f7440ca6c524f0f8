namespace EdgeFleet.Agent.Gpio;

/// <summary>What the status LED shows.</summary>
public enum LedState
{
    /// <summary>The agent is stopped (or has not inferred its first frame yet).</summary>
    Off,

    /// <summary>Steady on: frames are being inferred.</summary>
    Running,

    /// <summary>Slow blink (1 Hz): an over-the-air update is downloading, verifying, loading or on probation.</summary>
    Updating,

    /// <summary>Fast blink (4 Hz): no frame for a while (camera dead, pipeline stuck) or the model fails on every frame.</summary>
    Fault,
}

/// <summary>
/// Drives the LED line from a <see cref="LedState"/>: the pattern restarts lit at each change of state, and the line is
/// written only when its level changes. <see cref="Tick"/> is called often (every <see cref="TickPeriod"/>); the lit
/// half of the blink is computed from the time since the state changed, so a late tick never shifts the pattern.
/// </summary>
public sealed class StatusLed
{
    public static readonly TimeSpan SlowHalfPeriod = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan FastHalfPeriod = TimeSpan.FromMilliseconds(125);
    public static readonly TimeSpan TickPeriod = TimeSpan.FromMilliseconds(125) / 2;

    private readonly Action<bool> _write;
    private readonly TimeProvider _time;
    private long _since;
    private bool? _lit;

    /// <param name="write">Sets the LED on (true) or off; the line's polarity is the writer's business.</param>
    public StatusLed(Action<bool> write, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentNullException.ThrowIfNull(time);
        _write = write;
        _time = time;
        _since = time.GetTimestamp();
    }

    /// <summary>Opens <paramref name="line"/> of <paramref name="chip"/> as the LED, off; <paramref name="activeLow"/>: lit when low.</summary>
    public static StatusLed Open(GpioChip chip, int line, bool activeLow, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(chip);
        chip.OpenOutput(line, high: activeLow, "Agent:Gpio:Led:Line");
        var led = new StatusLed(lit => chip.Write(line, lit != activeLow), time);
        led.Show(LedState.Off);
        return led;
    }

    public LedState State { get; private set; }

    /// <summary>Whether the LED is lit now (null before the first write).</summary>
    public bool? Lit => _lit;

    /// <summary>Shows <paramref name="state"/> (a change restarts the pattern) and updates the line.</summary>
    public void Show(LedState state)
    {
        if (state != State)
        {
            State = state;
            _since = _time.GetTimestamp();
        }

        Tick();
    }

    public void Tick()
    {
        var lit = IsLit(State, _time.GetElapsedTime(_since));
        if (_lit != lit)
        {
            _write(lit);
            _lit = lit;
        }
    }

    /// <summary>The pattern: whether the LED is lit <paramref name="sinceChange"/> after it began showing <paramref name="state"/>.</summary>
    public static bool IsLit(LedState state, TimeSpan sinceChange) => state switch
    {
        LedState.Running => true,
        LedState.Updating => sinceChange.Ticks / SlowHalfPeriod.Ticks % 2 == 0,
        LedState.Fault => sinceChange.Ticks / FastHalfPeriod.Ticks % 2 == 0,
        _ => false,
    };
}

/// <summary>
/// Decides the LED state from counters sampled at each look: fault when no frame was inferred or skipped by the trigger for
/// <c>faultAfter</c> (camera dead, pipeline stuck; from the start too), or when frames failed and none was inferred since the
/// last look (a failing model); else updating while an update is in progress; else running once a frame was inferred.
/// </summary>
public sealed class LedStateMonitor
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _faultAfter;
    private long _lastProgress;
    private long _handled;
    private long _inferred;
    private long _errors;
    private bool _started;
    private bool _modelFailing;

    public LedStateMonitor(TimeProvider time, TimeSpan faultAfter)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(faultAfter, TimeSpan.Zero);
        _time = time;
        _faultAfter = faultAfter;
        _lastProgress = time.GetTimestamp();
    }

    /// <param name="framesHandled">Frames inferred plus frames skipped by the trigger.</param>
    public LedState Evaluate(long framesHandled, long framesInferred, long errors, bool updating)
    {
        if (framesHandled > _handled)
        {
            _handled = framesHandled;
            _lastProgress = _time.GetTimestamp();
            _started = true;
        }

        if (framesInferred > _inferred)
        {
            _modelFailing = false;
        }
        else if (errors > _errors)
        {
            _modelFailing = true;
        }

        _inferred = framesInferred;
        _errors = errors;
        if (_modelFailing || _time.GetElapsedTime(_lastProgress) >= _faultAfter)
        {
            return LedState.Fault;
        }

        if (updating)
        {
            return LedState.Updating;
        }

        return _started ? LedState.Running : LedState.Off;
    }
}
