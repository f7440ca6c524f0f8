using System.Device.Gpio;
using System.Device.Gpio.Drivers;

namespace EdgeFleet.Agent.Gpio;

/// <summary>A GPIO line could not be opened or used; the message says which chip, line and key, and how to fix it.</summary>
public sealed class GpioException : Exception
{
    public GpioException()
    {
    }

    public GpioException(string message)
        : base(message)
    {
    }

    public GpioException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

public enum TriggerEdge
{
    Rising,
    Falling,
    Both,
}

public enum LineBias
{
    None,
    PullUp,
    PullDown,
}

/// <summary>
/// The one place that sees System.Device.Gpio: a chip's lines as the agent uses them (an input watched for edges, an
/// output). Real chips go through libgpiod (<see cref="Open"/>); tests hand in their own <see cref="GpioDriver"/>.
/// Disposing releases every line it opened.
/// </summary>
public sealed class GpioChip : IDisposable
{
    private readonly GpioController _controller;
    private readonly List<(int Line, PinChangeEventHandler? Handler)> _opened = [];
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="driver"/>.</summary>
    public GpioChip(GpioDriver driver, string name)
    {
        ArgumentNullException.ThrowIfNull(driver);
        _controller = new GpioController(driver);
        Name = name;
    }

    /// <summary>For messages: <c>/dev/gpiochip0</c>.</summary>
    public string Name { get; }

    /// <summary>
    /// Opens <paramref name="chip"/> through libgpiod: the v2 library (libgpiod.so.3) when installed, else v1
    /// (libgpiod.so.2, Debian 12's and JetPack's <c>libgpiod2</c> package).
    /// </summary>
    /// <exception cref="GpioException">No libgpiod, no such chip, or no permission.</exception>
    public static GpioChip Open(GpioChipName chip)
    {
        Exception? v2Failure = null;
        foreach (var v2 in new[] { true, false })
        {
            GpioDriver? driver = null;
            try
            {
#pragma warning disable IDISP001 // handed to the chip below, which owns it
                driver = v2 ? new LibGpiodV2Driver(chip.Number) : new LibGpiodDriver(chip.Number);
#pragma warning restore IDISP001
                return new GpioChip(driver, chip.Path);
            }
            catch (Exception ex) when (IsMissingLibrary(ex))
            {
                driver?.Dispose();
                v2Failure ??= ex;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                driver?.Dispose();
                throw new GpioException($"Agent:Gpio:Chip: cannot open {chip.Path}: {Reason(ex)}. {Fix(chip)}", ex);
            }
        }

        throw new GpioException($"Agent:Gpio:Chip: cannot open {chip.Path}: libgpiod is not installed. Install it " +
            "(Debian/Ubuntu/JetPack: apt install libgpiod2; deploy/install-agent.sh does not) or remove the Agent:Gpio lines " +
            "from the configuration", v2Failure!);
    }

    /// <summary>Opens <paramref name="line"/> as an input and calls <paramref name="onEdge"/> on each matching edge (driver thread).</summary>
    public void WatchEdges(int line, TriggerEdge edge, LineBias bias, Action onEdge, string key)
    {
        ArgumentNullException.ThrowIfNull(onEdge);
        var mode = bias switch
        {
            LineBias.PullUp => PinMode.InputPullUp,
            LineBias.PullDown => PinMode.InputPullDown,
            _ => PinMode.Input,
        };
        var events = edge switch
        {
            TriggerEdge.Rising => PinEventTypes.Rising,
            TriggerEdge.Falling => PinEventTypes.Falling,
            _ => PinEventTypes.Rising | PinEventTypes.Falling,
        };
        Use(line, key, () =>
        {
            if (!_controller.IsPinModeSupported(line, mode))
            {
                throw new GpioException($"{key}: line {line} of {Name} does not support {mode} (set Agent:Gpio:Trigger:Bias to none and wire a resistor)");
            }

#pragma warning disable IDISP004 // the controller keeps the pin; ClosePin in Dispose releases it
            _controller.OpenPin(line, mode);
#pragma warning restore IDISP004
            _opened.Add((line, null));
            void Handler(object sender, PinValueChangedEventArgs e) => onEdge();
            _controller.RegisterCallbackForPinValueChangedEvent(line, events, Handler);
            _opened[^1] = (line, Handler);
        });
    }

    /// <summary>Opens <paramref name="line"/> as an output at <paramref name="high"/>.</summary>
    public void OpenOutput(int line, bool high, string key) => Use(line, key, () =>
    {
#pragma warning disable IDISP004 // the controller keeps the pin; ClosePin in Dispose releases it
        _controller.OpenPin(line, PinMode.Output, high ? PinValue.High : PinValue.Low);
#pragma warning restore IDISP004
        _opened.Add((line, null));
    });

    public void Write(int line, bool high) => _controller.Write(line, high ? PinValue.High : PinValue.Low);

    public bool Read(int line) => _controller.Read(line) == PinValue.High;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var (line, handler) in _opened)
        {
            try
            {
                if (handler is not null)
                {
                    _controller.UnregisterCallbackForPinValueChangedEvent(line, handler);
                }

                _controller.ClosePin(line);
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException)
            {
                // Releasing a line of a chip that went away: the driver's dispose below closes what is left.
            }
        }

        _controller.Dispose();
    }

    private void Use(int line, string key, Action open)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            open();
        }
        catch (GpioException)
        {
            throw;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new GpioException($"{key}: cannot use line {line} of {Name}: {Reason(ex)}. Check the line with `gpioinfo {Name}` " +
                "(is it in range, or used by another process or a kernel driver?)", ex);
        }
    }

    // System.Device.Gpio 4.2 reports a missing libgpiod as PlatformNotSupportedException ("Libgpiod driver not installed"),
    // inside a TypeInitializationException; a bare P/Invoke failure would be DllNotFoundException.
    private static bool IsMissingLibrary(Exception ex) =>
        ex is DllNotFoundException or PlatformNotSupportedException || ex.InnerException is { } inner && IsMissingLibrary(inner);

    private static string Reason(Exception ex) => ex.InnerException is { } inner && ex is TypeInitializationException ? Reason(inner) : ex.Message;

    private static string Fix(GpioChipName chip) =>
        $"The agent's user needs read and write access to {chip.Path} (`ls -l {chip.Path}`: add the user to the group that owns it, " +
        "e.g. gpio, or add a udev rule), and the systemd unit must allow it (DeviceAllow=char-gpiochip rw, in deploy/systemd)";
}
