using System.Device.Gpio;
using EdgeFleet.Agent.Gpio;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>The capture trigger on its own and wired to a line of a fake chip (System.Device.Gpio's controller over a fake driver).</summary>
[Trait("Category", "Unit")]
public sealed class CaptureTriggerTests
{
    private const int Line = 17;
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(50);

    private readonly FakeTimeProvider _time = new();

    /// <summary>A frame that arrived <paramref name="after"/> from now on the trigger's clock.</summary>
    private long FrameAt(TimeSpan after) => _time.GetTimestamp() + (long)(after.TotalSeconds * _time.TimestampFrequency);

    private static int Inferred(CaptureTrigger trigger, params long[] frames) => frames.Count(trigger.ShouldInfer);

    [Fact]
    public void ShouldInfer_NoEdge_SkipsEveryFrame()
    {
        var trigger = new CaptureTrigger(Debounce, _time);

        Assert.Equal(0, Inferred(trigger, FrameAt(TimeSpan.Zero), FrameAt(TimeSpan.FromSeconds(1))));
        Assert.Equal(0, trigger.Fired);
    }

    [Fact]
    public void OnEdge_FramesAfterIt_InfersExactlyTheFirst()
    {
        var trigger = new CaptureTrigger(Debounce, _time);
        var before = FrameAt(TimeSpan.Zero);
        _time.Advance(TimeSpan.FromMilliseconds(10));

        trigger.OnEdge();

        Assert.False(trigger.ShouldInfer(before)); // arrived before the edge: stale
        Assert.True(trigger.ShouldInfer(FrameAt(TimeSpan.FromMilliseconds(33))));
        Assert.Equal(0, Inferred(trigger, FrameAt(TimeSpan.FromMilliseconds(66)), FrameAt(TimeSpan.FromMilliseconds(99))));
        Assert.Equal(1, trigger.Fired);
        Assert.Equal(1, trigger.Edges);
    }

    [Fact]
    public void OnEdge_BounceWithinDebounce_IsIgnored()
    {
        var trigger = new CaptureTrigger(Debounce, _time);

        trigger.OnEdge();
        Assert.True(trigger.ShouldInfer(FrameAt(TimeSpan.FromMilliseconds(1))));
        _time.Advance(TimeSpan.FromMilliseconds(20));
        trigger.OnEdge(); // contact bounce
        _time.Advance(TimeSpan.FromMilliseconds(29));
        trigger.OnEdge();

        Assert.False(trigger.ShouldInfer(FrameAt(TimeSpan.FromMilliseconds(1))));
        Assert.Equal(1, trigger.Edges);
        Assert.Equal(2, trigger.Debounced);

        _time.Advance(TimeSpan.FromMilliseconds(1)); // 50 ms after the accepted edge
        trigger.OnEdge();

        Assert.True(trigger.ShouldInfer(FrameAt(TimeSpan.FromMilliseconds(1))));
        Assert.Equal(2, trigger.Edges);
    }

    [Fact]
    public void OnEdge_ZeroDebounce_AcceptsEveryEdge()
    {
        var trigger = new CaptureTrigger(TimeSpan.Zero, _time);

        trigger.OnEdge();
        trigger.OnEdge();

        Assert.Equal(2, trigger.Edges);
    }

    [Fact]
    public void OnEdge_SeveralBeforeTheNextFrame_OneInference()
    {
        var trigger = new CaptureTrigger(Debounce, _time);
        trigger.OnEdge();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        trigger.OnEdge();

        Assert.Equal(1, Inferred(trigger, FrameAt(TimeSpan.FromMilliseconds(1)), FrameAt(TimeSpan.FromMilliseconds(2))));
        Assert.Equal(2, trigger.Edges);
    }

    [Theory]
    [InlineData(TriggerEdge.Rising, 1, 0)]
    [InlineData(TriggerEdge.Falling, 0, 1)]
    [InlineData(TriggerEdge.Both, 1, 1)]
    public void WatchEdges_LineGoesHighThenLow_TriggersOnTheConfiguredEdges(TriggerEdge edge, int onRise, int onFall)
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");
        var trigger = new CaptureTrigger(Debounce, _time);
        chip.WatchEdges(Line, edge, LineBias.None, trigger.OnEdge, "Agent:Gpio:Trigger:Line");

        driver.Drive(Line, high: true);
        Assert.Equal(onRise, Inferred(trigger, FrameAt(TimeSpan.FromMilliseconds(1)), FrameAt(TimeSpan.FromMilliseconds(2))));
        _time.Advance(TimeSpan.FromSeconds(1));
        driver.Drive(Line, high: false);
        Assert.Equal(onFall, Inferred(trigger, FrameAt(TimeSpan.FromMilliseconds(1)), FrameAt(TimeSpan.FromMilliseconds(2))));

        Assert.Equal(onRise + onFall, trigger.Fired);
    }

    [Fact]
    public void WatchEdges_BothEdgesOfOneShortPulse_SecondIsDebounced()
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");
        var trigger = new CaptureTrigger(Debounce, _time);
        chip.WatchEdges(Line, TriggerEdge.Both, LineBias.None, trigger.OnEdge, "Agent:Gpio:Trigger:Line");

        driver.Drive(Line, high: true);
        _time.Advance(TimeSpan.FromMilliseconds(5));
        driver.Drive(Line, high: false);

        Assert.Equal(1, trigger.Edges);
        Assert.Equal(1, trigger.Debounced);
    }

    [Theory]
    [InlineData(LineBias.None, PinMode.Input)]
    [InlineData(LineBias.PullUp, PinMode.InputPullUp)]
    [InlineData(LineBias.PullDown, PinMode.InputPullDown)]
    public void WatchEdges_Bias_SetsTheLineMode(LineBias bias, PinMode expected)
    {
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");

        chip.WatchEdges(Line, TriggerEdge.Rising, bias, () => { }, "Agent:Gpio:Trigger:Line");

        Assert.Equal(expected, driver.ModeOf(Line));
    }

    [Fact]
    public void WatchEdges_BiasTheChipCannotDo_NamesTheKeyAndTheFix()
    {
        using var driver = new FakeGpioDriver();
        driver.Unsupported.Add(PinMode.InputPullUp);
        using var chip = new GpioChip(driver, "/dev/gpiochip0");

        var ex = Assert.Throws<GpioException>(() => chip.WatchEdges(Line, TriggerEdge.Rising, LineBias.PullUp, () => { }, "Agent:Gpio:Trigger:Line"));

        Assert.Contains("Agent:Gpio:Trigger:Line: line 17 of /dev/gpiochip0 does not support InputPullUp", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Agent:Gpio:Trigger:Bias", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WatchEdges_LineBeyondTheChip_NamesKeyLineAndChip()
    {
        using var chip = new GpioChip(new FakeGpioDriver(pinCount: 8), "/dev/gpiochip3");

        var ex = Assert.Throws<GpioException>(() => chip.WatchEdges(40, TriggerEdge.Rising, LineBias.None, () => { }, "Agent:Gpio:Trigger:Line"));

        Assert.StartsWith("Agent:Gpio:Trigger:Line: cannot use line 40 of /dev/gpiochip3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("gpioinfo /dev/gpiochip3", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_TriggerAndLed_ReleasesEveryLineAndTheDriver()
    {
        using var driver = new FakeGpioDriver();
        var chip = new GpioChip(driver, "/dev/gpiochip0");
        chip.WatchEdges(Line, TriggerEdge.Both, LineBias.None, () => { }, "Agent:Gpio:Trigger:Line");
        _ = StatusLed.Open(chip, 18, activeLow: false, _time);
        Assert.Equal(new[] { 17, 18 }, driver.OpenPins.Order());
        Assert.Equal(1, driver.Callbacks);

        chip.Dispose();

        Assert.Empty(driver.OpenPins);
        Assert.Equal(0, driver.Callbacks);
        Assert.True(driver.Disposed);
    }
}
