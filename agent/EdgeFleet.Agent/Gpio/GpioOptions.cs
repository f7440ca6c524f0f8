using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace EdgeFleet.Agent.Gpio;

/// <summary>
/// <c>Agent:Gpio</c>: a capture trigger and a status LED on lines of one GPIO chip (agent/README.md, "GPIO").
/// GPIO is off unless a line is set.
/// </summary>
public sealed class GpioOptions
{
    /// <summary>The chip: its number (<c>0</c>), <c>gpiochip0</c> or <c>/dev/gpiochip0</c>.</summary>
    public string? Chip { get; set; }

    public GpioTriggerOptions Trigger { get; set; } = new();

    public GpioLedOptions Led { get; set; } = new();

    public bool Enabled => Trigger.Line is not null || Led.Line is not null;

    /// <summary>The checks that go beyond the annotations; <paramref name="chipExists"/> is File.Exists outside tests.</summary>
    public static IEnumerable<string> Check(GpioOptions options, Func<string, bool>? chipExists = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        chipExists ??= File.Exists;
        if (options.Trigger.Line is { } t && options.Led.Line is { } l && t == l)
        {
            yield return $"Agent:Gpio:Led:Line: line {l} is already the trigger (Agent:Gpio:Trigger:Line); use another line for the LED";
        }

        if (string.IsNullOrWhiteSpace(options.Chip))
        {
            if (options.Enabled)
            {
                yield return "Agent:Gpio:Chip: is required when a GPIO line is set (for example /dev/gpiochip0 or 0; `gpiodetect` lists the chips)";
            }

            yield break;
        }

        if (!GpioChipName.TryParse(options.Chip, out var chip))
        {
            yield return $"Agent:Gpio:Chip: '{options.Chip}' is not a chip; use its number (0), gpiochip0 or /dev/gpiochip0";
            yield break;
        }

        if (options.Enabled && !chipExists(chip.Path))
        {
            yield return $"Agent:Gpio:Chip: {chip.Path} does not exist on this machine ({GpioChipName.Present()}). " +
                "Set Agent:Gpio:Chip to a chip that exists (`gpiodetect` or `ls /dev/gpiochip*` lists them), " +
                "or remove Agent:Gpio:Trigger:Line and Agent:Gpio:Led:Line to run without GPIO";
        }
    }
}

public sealed class GpioTriggerOptions
{
    /// <summary>Line offset on the chip (as gpioinfo numbers them); null: no trigger, every frame is inferred.</summary>
    [Range(0, 4095, ErrorMessage = "must be between {1} and {2}")]
    public int? Line { get; set; }

    /// <summary>rising, falling or both.</summary>
    [RegularExpression("^(?i)(rising|falling|both)$", ErrorMessage = "must be rising, falling or both")]
    public string Edge { get; set; } = "rising";

    /// <summary>Edges within this long after an accepted edge are ignored (contact bounce).</summary>
    [Range(0, 60_000, ErrorMessage = "must be between {1} and {2} milliseconds")]
    public double DebounceMilliseconds { get; set; } = 50;

    /// <summary>none (as wired), pull-up or pull-down.</summary>
    [RegularExpression("^(?i)(none|pull-up|pull-down)$", ErrorMessage = "must be none, pull-up or pull-down")]
    public string Bias { get; set; } = "none";
}

public sealed class GpioLedOptions
{
    /// <summary>Line offset on the chip; null: no LED.</summary>
    [Range(0, 4095, ErrorMessage = "must be between {1} and {2}")]
    public int? Line { get; set; }

    /// <summary>The LED lights when the line is low (wired from the supply to the pin).</summary>
    public bool ActiveLow { get; set; }

    /// <summary>No frame inferred (or skipped by the trigger) for this long: fault.</summary>
    [Range(1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double FaultAfterSeconds { get; set; } = 10;
}

/// <summary>A chip as the kernel names it: <c>/dev/gpiochipN</c>, which libgpiod opens by its number N.</summary>
public readonly record struct GpioChipName(int Number)
{
    public string Path => $"/dev/gpiochip{Number.ToString(CultureInfo.InvariantCulture)}";

    public static bool TryParse(string? text, out GpioChipName chip)
    {
        chip = default;
        var s = text?.Trim() ?? "";
        if (s.StartsWith("/dev/", StringComparison.Ordinal))
        {
            s = s["/dev/".Length..];
        }

        if (s.StartsWith("gpiochip", StringComparison.Ordinal))
        {
            s = s["gpiochip".Length..];
        }

        if (s.Length is 0 or > 4 || !s.All(char.IsAsciiDigit))
        {
            return false;
        }

        chip = new GpioChipName(int.Parse(s, CultureInfo.InvariantCulture));
        return true;
    }

    /// <summary>The chips this machine has, for error messages.</summary>
    public static string Present()
    {
        var chips = Directory.Exists("/dev") ? Directory.GetFiles("/dev", "gpiochip*").Order(StringComparer.Ordinal).ToArray() : [];
        return chips.Length == 0 ? "it has no GPIO chip at all" : $"it has {string.Join(", ", chips)}";
    }
}
