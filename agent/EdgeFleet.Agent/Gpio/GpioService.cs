using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Hosting;
using EdgeFleet.Agent.Ota;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Gpio;

/// <summary>Opens a chip; the agent uses libgpiod (<see cref="GpioChip.Open"/>), tests a fake driver.</summary>
public delegate GpioChip GpioChipFactory(GpioChipName chip);

/// <summary>
/// <c>Agent:Gpio</c> for the lifetime of the host: opens the lines once the pipeline is built and before frames flow
/// (a line that cannot be opened stops the start with the reason), gates the pipeline with the <see cref="CaptureTrigger"/>,
/// drives the status LED, and turns it off and releases the lines on stop.
/// </summary>
public sealed partial class GpioService(AgentPipeline pipeline, OtaService ota, IOptions<AgentOptions> options, GpioChipFactory open,
    TimeProvider time, ILogger<GpioService> logger) : BackgroundService
{
    private GpioChip? _chip;
    private StatusLed? _led;
    private LedStateMonitor? _monitor;

    /// <summary>The trigger gating the pipeline; null without <c>Agent:Gpio:Trigger:Line</c>.</summary>
    public CaptureTrigger? Trigger { get; private set; }

    public LedState? LedState => _led?.State;

    /// <summary>The chip in use (<c>/dev/gpiochip0</c>); null without GPIO.</summary>
    public string? ChipName { get; private set; }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value.Gpio;
        if (!o.Enabled)
        {
            return Task.CompletedTask;
        }

        _ = GpioChipName.TryParse(o.Chip, out var name); // validated at start
        _chip = open(name);
        ChipName = _chip.Name;
        try
        {
            if (o.Trigger.Line is { } triggerLine)
            {
                var trigger = new CaptureTrigger(TimeSpan.FromMilliseconds(o.Trigger.DebounceMilliseconds), time);
                var edge = Enum.Parse<TriggerEdge>(o.Trigger.Edge, ignoreCase: true);
                var bias = Enum.Parse<LineBias>(o.Trigger.Bias.Replace("-", "", StringComparison.Ordinal), ignoreCase: true);
                _chip.WatchEdges(triggerLine, edge, bias, trigger.OnEdge, "Agent:Gpio:Trigger:Line");
                pipeline.Pipeline.Gate = trigger;
                Trigger = trigger;
                LogTrigger(logger, _chip.Name, triggerLine, edge.ToString().ToLowerInvariant(), o.Trigger.DebounceMilliseconds);
            }

            if (o.Led.Line is { } ledLine)
            {
                _led = StatusLed.Open(_chip, ledLine, o.Led.ActiveLow, time);
                _monitor = new LedStateMonitor(time, TimeSpan.FromSeconds(o.Led.FaultAfterSeconds));
                LogLed(logger, _chip.Name, ledLine, o.Led.ActiveLow);
            }
        }
        catch
        {
            Release();
            throw;
        }

        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_led is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(StatusLed.TickPeriod, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Look();
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    /// <summary>One look at the pipeline and the update in progress; the LED follows.</summary>
    internal void Look()
    {
        if (_led is null || _monitor is null)
        {
            return;
        }

        var m = pipeline.Metrics;
        var updating = ota.State.Job is { IsFinished: false };
        _led.Show(_monitor.Evaluate(m.FramesHandled, m.FramesInferred, m.Errors, updating));
    }

    private void Release()
    {
        if (Trigger is not null && pipeline.IsInitialized)
        {
            pipeline.Pipeline.Gate = null;
        }

        try
        {
            _led?.Show(Gpio.LedState.Off);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException)
        {
            // the chip went away; nothing left to switch off
        }

        _led = null;
        _chip?.Dispose();
        _chip = null;
    }

    public override void Dispose()
    {
        Release();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "GPIO capture trigger on {Chip} line {Line} ({Edge} edge, debounce {Debounce} ms): frames are inferred on trigger only")]
    private static partial void LogTrigger(ILogger logger, string chip, int line, string edge, double debounce);

    [LoggerMessage(Level = LogLevel.Information, Message = "GPIO status LED on {Chip} line {Line} (active low: {ActiveLow})")]
    private static partial void LogLed(ILogger logger, string chip, int line, bool activeLow);
}
