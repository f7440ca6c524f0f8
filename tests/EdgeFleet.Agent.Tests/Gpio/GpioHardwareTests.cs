using System.Globalization;
using EdgeFleet.Agent.Gpio;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>
/// A real chip through libgpiod. Excluded by default (<c>./test.sh</c> leaves Category=Hardware out); the project's build
/// machines cannot run it: their kernel has no GPIO (no /dev/gpiochip*, no gpio-sim). On a board, with libgpiod2 installed:
/// <c>EDGEFLEET_GPIO_CHIP=/dev/gpiochip0 EDGEFLEET_GPIO_LINE=17 dotnet test tests/EdgeFleet.Agent.Tests --filter "Category=Hardware&amp;FullyQualifiedName~Gpio"</c>.
/// The line is driven as an output: pick one with nothing attached but an LED, or the test drives whatever is there.
/// Without the chip it fails saying so; it never passes silently.
/// </summary>
[Trait("Category", "Hardware")]
public sealed class GpioHardwareTests
{
    private static (GpioChipName Chip, int Line) Target()
    {
        var chipText = Environment.GetEnvironmentVariable("EDGEFLEET_GPIO_CHIP") is { Length: > 0 } c ? c : "/dev/gpiochip0";
        var lineText = Environment.GetEnvironmentVariable("EDGEFLEET_GPIO_LINE") is { Length: > 0 } l ? l : "0";
        Assert.True(GpioChipName.TryParse(chipText, out var chip), $"EDGEFLEET_GPIO_CHIP={chipText} is not a chip (0, gpiochip0 or /dev/gpiochip0)");
        Assert.True(int.TryParse(lineText, NumberStyles.None, CultureInfo.InvariantCulture, out var line), $"EDGEFLEET_GPIO_LINE={lineText} is not a line number");
        Assert.True(File.Exists(chip.Path), $"{chip.Path} does not exist: this test needs a real GPIO chip (this project's build machines have " +
            "none; their kernel has no GPIO). Run it on a board, or set EDGEFLEET_GPIO_CHIP to a chip that exists (`gpiodetect` lists them).");
        return (chip, line);
    }

    [Fact]
    public void Open_RealChip_WritesAndReadsBackALine()
    {
        var (name, line) = Target();
        using var chip = GpioChip.Open(name);

        chip.OpenOutput(line, high: false, "EDGEFLEET_GPIO_LINE");
        Assert.False(chip.Read(line));
        chip.Write(line, high: true);
        Assert.True(chip.Read(line));
        chip.Write(line, high: false);
        Assert.False(chip.Read(line));
    }

    [Fact]
    public void StatusLed_RealChip_TogglesTheLine()
    {
        var (name, line) = Target();
        using var chip = GpioChip.Open(name);
        var led = StatusLed.Open(chip, line, activeLow: false, TimeProvider.System);

        led.Show(LedState.Running);
        Assert.True(chip.Read(line));
        led.Show(LedState.Off);
        Assert.False(chip.Read(line));
    }
}
