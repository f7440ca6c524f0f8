using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Hosting;

/// <summary>
/// The systemd notify protocol for <c>Type=notify</c>: READY=1 once the first frame has been inferred, WATCHDOG=1 at
/// half of WATCHDOG_USEC only while frames keep being inferred (<see cref="PipelineLiveness"/>), STATUS= lines, and
/// STOPPING=1 on shutdown. Without NOTIFY_SOCKET it does nothing. It reads the pipeline's frame counter (an interlocked
/// read of <see cref="Pipeline.PipelineMetrics.FramesInferred"/>), so the inference loop does no extra work per frame.
/// </summary>
public sealed partial class SystemdNotifyService(AgentPipeline pipeline, ISystemdNotifier notifier, TimeProvider time,
    ILogger<SystemdNotifyService> logger) : BackgroundService
{
    // Without a watchdog, how often STATUS= is refreshed and, with no watchdog to tell us, when a silent pipeline is
    // reported as stalled in the status line.
    private static readonly TimeSpan StatusPeriod = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StallWithoutWatchdog = TimeSpan.FromSeconds(60);

    // Before READY=1 the counter is looked at often, so READY=1 follows the first frame closely.
    private static readonly TimeSpan StartingPeriod = TimeSpan.FromMilliseconds(100);

    private static readonly ServiceState Watchdog = new("WATCHDOG=1");

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!notifier.IsEnabled)
        {
            return Task.CompletedTask;
        }

        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (notifier.IsEnabled)
        {
            // Registered last, so stopped first: systemd hears STOPPING=1 before the pipeline winds down.
            notifier.Notify(new ServiceState("STATUS=stopping"));
            notifier.Notify(ServiceState.Stopping);
        }

        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var watchdog = PipelineLiveness.WatchdogInterval(Environment.GetEnvironmentVariable("WATCHDOG_USEC"),
            Environment.GetEnvironmentVariable("WATCHDOG_PID"), Environment.ProcessId);
        var period = watchdog is { } w ? w / 2 : StatusPeriod;
        // Pings stop once no frame was inferred for a whole watchdog interval; systemd restarts the agent one interval
        // after the last ping.
        var liveness = new PipelineLiveness(time, watchdog ?? StallWithoutWatchdog);
        if (watchdog is { } interval)
        {
            LogWatchdog(logger, interval.TotalSeconds, period.TotalSeconds);
        }

        notifier.Notify(new ServiceState("STATUS=starting: waiting for the first inferred frame"));
        var stalled = false;
        using var timer = new PeriodicTimer(period < StartingPeriod ? period : StartingPeriod, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                // With a GPIO capture trigger most frames are skipped, not inferred: they show the pipeline alive as well.
                switch (liveness.Check(pipeline.Metrics.FramesHandled))
                {
                    case LivenessVerdict.Starting:
                        continue;
                    case LivenessVerdict.Ready:
                        notifier.Notify(ServiceState.Ready);
                        LogReady(logger);
                        timer.Period = period;
                        goto case LivenessVerdict.Alive;
                    case LivenessVerdict.Alive:
                        if (watchdog is not null)
                        {
                            notifier.Notify(Watchdog);
                        }

                        if (stalled)
                        {
                            stalled = false;
                            LogResumed(logger);
                        }

                        notifier.Notify(new ServiceState(string.Create(CultureInfo.InvariantCulture,
                            $"STATUS=inferring {pipeline.Snapshot().Fps:0.0} fps, model {Model()}")));
                        break;
                    case LivenessVerdict.Stalled:
                        var silent = liveness.SinceProgress.TotalSeconds;
                        if (!stalled)
                        {
                            stalled = true;
                            LogStalled(logger, silent);
                        }

                        notifier.Notify(new ServiceState(string.Create(CultureInfo.InvariantCulture,
                            $"STATUS=stalled: no frame inferred for {silent:0} s, model {Model()}{(watchdog is null ? "" : "; watchdog pings stopped")}")));
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private string Model() => pipeline.IsInitialized ? $"{pipeline.ModelRef.Name} {pipeline.ModelRef.Version}" : "none";

    [LoggerMessage(Level = LogLevel.Information, Message = "systemd watchdog: {Interval} s, pinging every {Period} s while frames are inferred")]
    private static partial void LogWatchdog(ILogger logger, double interval, double period);

    [LoggerMessage(Level = LogLevel.Information, Message = "systemd: READY=1 (first frame inferred)")]
    private static partial void LogReady(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No frame inferred for {Seconds:0} s: the pipeline is stalled, systemd watchdog pings stopped")]
    private static partial void LogStalled(ILogger logger, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Frames are inferred again: systemd watchdog pings resumed")]
    private static partial void LogResumed(ILogger logger);
}
