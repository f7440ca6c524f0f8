using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Gpio;

namespace EdgeFleet.Agent.Tests.Gpio;

[Trait("Category", "Unit")]
public sealed class GpioOptionsTests
{
    private static AgentOptions Valid() => new()
    {
        DeviceId = "cam-01",
        StateDirectory = "/tmp",
        Source = new SourceOptions { Uri = "testsrc://64x64@30" },
        Model = new ModelOptions { Path = typeof(GpioOptionsTests).Assembly.Location },
    };

    private static GpioOptions Gpio(string? chip = "/dev/gpiochip0", int? trigger = 17, int? led = 18) => new()
    {
        Chip = chip,
        Trigger = new GpioTriggerOptions { Line = trigger },
        Led = new GpioLedOptions { Line = led },
    };

    [Theory]
    [InlineData("0", 0)]
    [InlineData("4", 4)]
    [InlineData("gpiochip1", 1)]
    [InlineData("/dev/gpiochip12", 12)]
    [InlineData(" /dev/gpiochip0 ", 0)]
    public void TryParse_ChipForms_GiveTheNumberAndDevicePath(string text, int number)
    {
        Assert.True(GpioChipName.TryParse(text, out var chip));
        Assert.Equal(number, chip.Number);
        Assert.Equal($"/dev/gpiochip{number}", chip.Path);
    }

    [Theory]
    [InlineData("")]
    [InlineData("gpiochip")]
    [InlineData("/dev/gpio0")]
    [InlineData("/sys/class/gpio/gpiochip0")]
    [InlineData("-1")]
    [InlineData("pi")]
    public void TryParse_NotAChip_False(string text) => Assert.False(GpioChipName.TryParse(text, out _));

    [Fact]
    public void Check_ChipPresent_NoErrors() => Assert.Empty(GpioOptions.Check(Gpio(), _ => true));

    [Fact]
    public void Check_NoLineSet_GpioOffAndTheChipIsNotLookedAt()
    {
        var options = Gpio(chip: "/dev/gpiochip7", trigger: null, led: null);

        Assert.False(options.Enabled);
        Assert.Empty(GpioOptions.Check(options, _ => throw new InvalidOperationException("looked at the chip")));
        Assert.True(new AgentOptionsValidator().Validate(null, Valid()).Succeeded);
    }

    [Fact]
    public void Check_ChipAbsent_NamesTheChipTheKeyAndTheFix()
    {
        var error = Assert.Single(GpioOptions.Check(Gpio(chip: "3"), _ => false));

        Assert.StartsWith("Agent:Gpio:Chip: /dev/gpiochip3 does not exist on this machine", error, StringComparison.Ordinal);
        Assert.Contains("gpiodetect", error, StringComparison.Ordinal);
        Assert.Contains("remove Agent:Gpio:Trigger:Line and Agent:Gpio:Led:Line", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_LineWithoutChip_ChipIsRequired()
    {
        var error = Assert.Single(GpioOptions.Check(Gpio(chip: null, led: null), _ => true));

        Assert.StartsWith("Agent:Gpio:Chip: is required", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ChipNotAChipName_SaysTheForms()
    {
        var error = Assert.Single(GpioOptions.Check(Gpio(chip: "/dev/ttyS0"), _ => true));

        Assert.Equal("Agent:Gpio:Chip: '/dev/ttyS0' is not a chip; use its number (0), gpiochip0 or /dev/gpiochip0", error);
    }

    [Fact]
    public void Check_LedOnTheTriggerLine_Refused()
    {
        var error = Assert.Single(GpioOptions.Check(Gpio(trigger: 5, led: 5), _ => true));

        Assert.StartsWith("Agent:Gpio:Led:Line: line 5 is already the trigger", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_BadGpioValues_EachReportedWithItsFullKey()
    {
        var options = Valid();
        options.Gpio = Gpio(trigger: -1, led: 5000);
        options.Gpio.Trigger.Edge = "up";
        options.Gpio.Trigger.Bias = "pull";
        options.Gpio.Trigger.DebounceMilliseconds = -5;
        options.Gpio.Led.FaultAfterSeconds = 0;

        var failures = new AgentOptionsValidator().Validate(null, options).Failures!.ToList();

        Assert.Contains("Agent:Gpio:Trigger:Line: must be between 0 and 4095 (got -1)", failures);
        Assert.Contains("Agent:Gpio:Led:Line: must be between 0 and 4095 (got 5000)", failures);
        Assert.Contains("Agent:Gpio:Trigger:Edge: must be rising, falling or both (got up)", failures);
        Assert.Contains("Agent:Gpio:Trigger:Bias: must be none, pull-up or pull-down (got pull)", failures);
        Assert.Contains(failures, f => f.StartsWith("Agent:Gpio:Trigger:DebounceMilliseconds: must be between 0 and 60000", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Gpio:Led:FaultAfterSeconds:", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_GpioOnAMachineWithoutThatChip_FailsNamingIt()
    {
        // This machine's kernel has no GPIO at all (no /dev/gpiochip*); a chip number no board has keeps the test true elsewhere.
        var options = Valid();
        options.Gpio = Gpio(chip: "/dev/gpiochip999");

        var failures = new AgentOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith("Agent:Gpio:Chip: /dev/gpiochip999 does not exist on this machine", StringComparison.Ordinal));
    }
}
