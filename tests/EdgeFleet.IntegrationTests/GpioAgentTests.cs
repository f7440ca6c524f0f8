using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The agent binary configured with GPIO on a machine without that chip (this one's kernel has no GPIO at all; chip 999
/// keeps the tests true on a board): it refuses to start like any other configuration error, exit code 2, naming the chip,
/// the key and the fix. The GPIO logic itself is tested through a fake driver in EdgeFleet.Agent.Tests/Gpio.
/// </summary>
[Trait("Category", "Integration")]
public sealed class GpioAgentTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string Config(TempDirectory dir, string gpio)
    {
        var path = dir.File("agent.json");
        File.WriteAllText(path, $$"""
            {
              "Agent": {
                "DeviceId": "gpio-01",
                "StateDirectory": "{{dir.Path}}",
                "Source": { "Uri": "testsrc://160x120@30" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
                "Inference": { "IntraOpThreads": 1 },
                "Gpio": {{gpio}}
              }
            }
            """);
        return path;
    }

    [Fact]
    public void Run_TriggerOnAChipThatDoesNotExist_ConfigurationErrorNamingChipKeyAndFix()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, """{ "Chip": "/dev/gpiochip999", "Trigger": { "Line": 17, "Edge": "falling" }, "Led": { "Line": 18 } }""");

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.True(code == 2, $"exit code {code}; stderr: {stderr}");
        Assert.Contains("error: invalid configuration:", stderr, StringComparison.Ordinal);
        Assert.Contains("Agent:Gpio:Chip: /dev/gpiochip999 does not exist on this machine", stderr, StringComparison.Ordinal);
        Assert.Contains("gpiodetect", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_GpioChipFromTheEnvironment_IsValidatedToo()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, """{ "Led": { "Line": 3, "ActiveLow": true } }""");

        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_Agent__Gpio__Chip"] = "998" },
            "run", "--config", config);

        Assert.True(code == 2, $"exit code {code}; stderr: {stderr}");
        Assert.Contains("Agent:Gpio:Chip: /dev/gpiochip998 does not exist on this machine", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MisspelledGpioKey_IsRejected()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, """{ "Chip": "0", "Trigger": { "Line": 17, "Debounce": 5 } }""");

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.True(code == 2, $"exit code {code}; stderr: {stderr}");
        Assert.Contains("Debounce", stderr, StringComparison.Ordinal); // the key is DebounceMilliseconds
    }
}
