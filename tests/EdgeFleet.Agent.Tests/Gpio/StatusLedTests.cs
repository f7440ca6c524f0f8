using System.Device.Gpio;
using EdgeFleet.Agent.Gpio;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>LED patterns per state, transitions, polarity, and the state the agent's counters lead to.</summary>
[Trait("Category", "Unit")]
public sealed class StatusLedTests
{
    private const int Line = 18;
    private static readonly TimeSpan FaultAfter = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new();

    /// <summary>The LED's level at each tick over <paramref name="span"/>, as '#' (lit) and '.'; one character per tick.</summary>
    private string Watch(StatusLed led, FakeGpioDriver driver, TimeSpan span, bool activeLow = false)
    {
        var chars = new List<char>();
        for (var t = TimeSpan.Zero; t < span; t += StatusLed.TickPeriod)
        {
            led.Tick();
            chars.Add(driver.LevelOf(Line) != activeLow ? '#' : '.');
            _time.Advance(StatusLed.TickPeriod);
        }

        return new string([.. chars]);
    }

    [Theory]
    [InlineData(LedState.Off, "................")]
    [InlineData(LedState.Running, "################")]
    [InlineData(LedState.Updating, "########........")] // 1 Hz: 500 ms on, 500 ms off
    [InlineData(LedState.Fault, "##..##..##..##..")] // 4 Hz: 125 ms on, 125 ms off
    public void Show_EachState_DrivesItsPattern(LedState state, string oneSecond)
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");
        var led = StatusLed.Open(chip, Line, activeLow: false, _time);

        led.Show(state);

        Assert.Equal(oneSecond, Watch(led, driver, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Open_ActiveLow_OffIsHighAndLitIsLow()
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");

        var led = StatusLed.Open(chip, Line, activeLow: true, _time);

        Assert.True(driver.LevelOf(Line)); // off
        Assert.Equal(PinMode.Output, driver.ModeOf(Line));
        led.Show(LedState.Running);
        Assert.False(driver.LevelOf(Line));
        Assert.Equal("##..##..", Watch(ShowFault(led), driver, TimeSpan.FromMilliseconds(500), activeLow: true));
    }

    private static StatusLed ShowFault(StatusLed led)
    {
        led.Show(LedState.Fault);
        return led;
    }

    [Fact]
    public void Show_Transitions_RestartThePatternLitAndSteadyStatesWriteOnce()
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");
        var led = StatusLed.Open(chip, Line, activeLow: false, _time);
        led.Show(LedState.Updating);
        Assert.Equal("########....", Watch(led, driver, TimeSpan.FromMilliseconds(750)));

        led.Show(LedState.Fault); // in the middle of the slow blink's dark half: lit at once
        Assert.Equal("##..", Watch(led, driver, TimeSpan.FromMilliseconds(250)));

        driver.Writes.Clear();
        led.Show(LedState.Running);
        Watch(led, driver, TimeSpan.FromSeconds(2));
        led.Show(LedState.Running);
        Assert.Equal(new[] { (Line, true) }, driver.Writes);

        led.Show(LedState.Off);
        Assert.False(driver.LevelOf(Line));
    }

    [Fact]
    public void Evaluate_NoFrameYet_OffThenFaultAfterTheWindow()
    {
        var monitor = new LedStateMonitor(_time, FaultAfter);

        Assert.Equal(LedState.Off, monitor.Evaluate(0, 0, 0, updating: false));
        _time.Advance(FaultAfter);
        Assert.Equal(LedState.Fault, monitor.Evaluate(0, 0, 0, updating: false));
    }

    [Fact]
    public void Evaluate_FramesFlowThenStop_RunningThenFaultThenRunningAgain()
    {
        var monitor = new LedStateMonitor(_time, FaultAfter);

        Assert.Equal(LedState.Running, monitor.Evaluate(5, 5, 0, updating: false));
        _time.Advance(FaultAfter - TimeSpan.FromMilliseconds(1));
        Assert.Equal(LedState.Running, monitor.Evaluate(5, 5, 0, updating: false));
        _time.Advance(TimeSpan.FromMilliseconds(1)); // camera dead: nothing for the whole window
        Assert.Equal(LedState.Fault, monitor.Evaluate(5, 5, 0, updating: false));
        Assert.Equal(LedState.Running, monitor.Evaluate(6, 6, 0, updating: false));
    }

    [Fact]
    public void Evaluate_TriggerSkipsFrames_RunningWithoutInference()
    {
        var monitor = new LedStateMonitor(_time, FaultAfter);

        for (var i = 1; i <= 30; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(LedState.Running, monitor.Evaluate(i * 30, 1, 0, updating: false));
        }
    }

    [Fact]
    public void Evaluate_ModelFailsEveryFrame_FaultUntilAFrameIsInferred()
    {
        var monitor = new LedStateMonitor(_time, FaultAfter);
        Assert.Equal(LedState.Running, monitor.Evaluate(10, 10, 0, updating: false));

        Assert.Equal(LedState.Fault, monitor.Evaluate(10, 10, 4, updating: false)); // failures, nothing inferred
        Assert.Equal(LedState.Fault, monitor.Evaluate(10, 10, 4, updating: false));
        Assert.Equal(LedState.Running, monitor.Evaluate(11, 11, 4, updating: false));
        Assert.Equal(LedState.Running, monitor.Evaluate(20, 20, 5, updating: false)); // one failure among many frames
    }

    [Fact]
    public void Evaluate_Updating_SlowBlinkUnlessFaulty()
    {
        var monitor = new LedStateMonitor(_time, FaultAfter);

        Assert.Equal(LedState.Updating, monitor.Evaluate(10, 10, 0, updating: true));
        Assert.Equal(LedState.Fault, monitor.Evaluate(10, 10, 3, updating: true));
        Assert.Equal(LedState.Updating, monitor.Evaluate(11, 11, 3, updating: true));
        Assert.Equal(LedState.Running, monitor.Evaluate(12, 12, 3, updating: false));
    }
}
