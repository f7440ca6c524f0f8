using System.Device.Gpio;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>
/// A chip in memory behind System.Device.Gpio's own <see cref="GpioController"/>: lines opened and closed, modes, the levels
/// written (in order), and edges the test fires, delivered only to callbacks registered for that kind of edge.
/// </summary>
internal sealed class FakeGpioDriver(int pinCount = 32) : GpioDriver
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, PinMode> _open = [];
    private readonly Dictionary<int, PinValue> _values = [];
    private readonly List<(int Pin, PinEventTypes Types, PinChangeEventHandler Callback)> _callbacks = [];

    public List<(int Pin, bool High)> Writes { get; } = [];

    public HashSet<PinMode> Unsupported { get; } = [];

    public bool Disposed { get; private set; }

    public IReadOnlyCollection<int> OpenPins
    {
        get
        {
            lock (_lock)
            {
                return [.. _open.Keys];
            }
        }
    }

    public int Callbacks
    {
        get
        {
            lock (_lock)
            {
                return _callbacks.Count;
            }
        }
    }

    public PinMode ModeOf(int pin)
    {
        lock (_lock)
        {
            return _open[pin];
        }
    }

    public bool LevelOf(int pin)
    {
        lock (_lock)
        {
            return _values.TryGetValue(pin, out var v) && v == PinValue.High;
        }
    }

    /// <summary>Drives an input line to <paramref name="high"/>, as the outside world would; raises the edge if it changes.</summary>
    public void Drive(int pin, bool high)
    {
        List<PinChangeEventHandler> matching;
        PinEventTypes edge;
        lock (_lock)
        {
            var was = _values.TryGetValue(pin, out var v) && v == PinValue.High;
            _values[pin] = high ? PinValue.High : PinValue.Low;
            if (was == high)
            {
                return;
            }

            edge = high ? PinEventTypes.Rising : PinEventTypes.Falling;
            matching = [.. _callbacks.Where(c => c.Pin == pin && (c.Types & edge) != 0).Select(c => c.Callback)];
        }

        foreach (var callback in matching)
        {
            callback(this, new PinValueChangedEventArgs(edge, pin));
        }
    }

    protected override int PinCount => pinCount;

    protected override void OpenPin(int pinNumber)
    {
        if (pinNumber >= pinCount)
        {
            throw new ArgumentOutOfRangeException(nameof(pinNumber), $"the chip has {pinCount} lines");
        }

        lock (_lock)
        {
            _open[pinNumber] = PinMode.Input;
        }
    }

    protected override void ClosePin(int pinNumber)
    {
        lock (_lock)
        {
            _open.Remove(pinNumber);
            _callbacks.RemoveAll(c => c.Pin == pinNumber);
        }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        lock (_lock)
        {
            _open[pinNumber] = mode;
        }
    }

    protected override PinMode GetPinMode(int pinNumber) => ModeOf(pinNumber);

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => !Unsupported.Contains(mode);

    protected override PinValue Read(int pinNumber)
    {
        lock (_lock)
        {
            return _values.TryGetValue(pinNumber, out var v) ? v : PinValue.Low;
        }
    }

    protected override void Write(int pinNumber, PinValue value)
    {
        lock (_lock)
        {
            _values[pinNumber] = value;
            Writes.Add((pinNumber, value == PinValue.High));
        }
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the agent uses callbacks");

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        lock (_lock)
        {
            _callbacks.Add((pinNumber, eventTypes, callback));
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        lock (_lock)
        {
            _callbacks.RemoveAll(c => c.Pin == pinNumber && c.Callback == callback);
        }
    }

    protected override void Dispose(bool disposing)
    {
        Disposed = true;
        base.Dispose(disposing);
    }
}
