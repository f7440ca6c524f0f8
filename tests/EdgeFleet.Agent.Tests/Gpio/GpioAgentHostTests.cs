using EdgeFleet.Agent.Commands;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Gpio;
using EdgeFleet.Agent.Hosting;
using EdgeFleet.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>
/// The agent's own host (every service, real ffmpeg test camera, real ONNX Runtime) with its GPIO chip replaced by a fake
/// driver: the trigger gates the running pipeline from the first frame, the LED follows, and stopping releases the lines.
/// </summary>
[Trait("Category", "Integration")]
public sealed class GpioAgentHostTests
{
    private const int TriggerLine = 17;
    private const int LedLine = 27;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task Until(Func<bool> condition, string what)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (!condition())
        {
            Assert.False(cts.IsCancellationRequested, $"timed out waiting until {what}");
            await Task.Delay(20, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Run_TriggerAndLedOnAFakeChip_InfersOnEdgesOnlyAndReleasesTheLinesOnStop()
    {
        using var dir = new TempDirectory();
        using var driver = new FakeGpioDriver();
        var settings = new Dictionary<string, string?>
        {
            ["Agent:DeviceId"] = "gpio-host",
            ["Agent:StateDirectory"] = dir.Path,
            ["Agent:Source:Uri"] = "testsrc://160x120@30",
            ["Agent:Model:Path"] = TestModels.Get(TestModels.SmallClassifier),
            ["Agent:Inference:IntraOpThreads"] = "1",
            ["Agent:LocalApi:Enabled"] = "false",
            ["Agent:Gpio:Chip"] = "/dev/gpiochip4",
            ["Agent:Gpio:Trigger:Line"] = TriggerLine.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Agent:Gpio:Trigger:Edge"] = "both",
            ["Agent:Gpio:Trigger:DebounceMilliseconds"] = "0",
            ["Agent:Gpio:Led:Line"] = LedLine.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Agent:Gpio:Led:ActiveLow"] = "true",
        };
        using var host = RunCommand.BuildHost(null, settings, services =>
        {
            services.RemoveAll<IValidateOptions<AgentOptions>>();
            services.AddSingleton<IValidateOptions<AgentOptions>>(new AgentOptionsValidator(path => path == "/dev/gpiochip4"));
            services.AddSingleton<GpioChipFactory>(chip => new GpioChip(driver, chip.Path));
        });
        var pipeline = host.Services.GetRequiredService<AgentPipeline>();
        var gpio = host.Services.GetRequiredService<GpioService>();

        await host.StartAsync();
        try
        {
            await Until(() => pipeline.Metrics.FramesSkipped >= 5, "frames are skipped");
            Assert.Equal(0, pipeline.Metrics.FramesInferred); // gated from the very first frame
            await Until(() => !driver.LevelOf(LedLine), "the LED (active low) is lit");
            Assert.Equal(LedState.Running, gpio.LedState);

            driver.Drive(TriggerLine, high: true);
            await Until(() => pipeline.Metrics.FramesInferred == 1, "the rising edge's frame is inferred");
            var skipped = pipeline.Metrics.FramesSkipped;
            await Until(() => pipeline.Metrics.FramesSkipped >= skipped + 5, "frames are skipped again");
            Assert.Equal(1, pipeline.Metrics.FramesInferred);

            driver.Drive(TriggerLine, high: false); // both edges
            await Until(() => pipeline.Metrics.FramesInferred == 2, "the falling edge's frame is inferred");
            Assert.Equal(2, gpio.Trigger!.Edges);
            Assert.Equal(2, gpio.Trigger.Fired);
        }
        finally
        {
            await host.StopAsync();
        }

        Assert.True(driver.LevelOf(LedLine)); // off (active low)
        Assert.Empty(driver.OpenPins);
        Assert.Equal(0, driver.Callbacks);
        Assert.True(driver.Disposed);
    }
}
