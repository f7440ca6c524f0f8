using EdgeFleet.Agent.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using EdgeFleet.Agent.Configuration;

namespace EdgeFleet.Agent.Hosting;

/// <summary>Builds the pipeline before anything else starts; a failure here stops the host with the reason.</summary>
public sealed class PipelineStartup(AgentPipeline pipeline) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        pipeline.Initialize();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Runs the frame source (its own capture thread) for the lifetime of the host.</summary>
public sealed class CaptureService(AgentPipeline pipeline) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        pipeline.StartCapture();
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        finally
        {
            pipeline.StopCapture();
        }
    }
}

/// <summary>Runs the inference loop on a dedicated thread.</summary>
public sealed partial class InferenceService(AgentPipeline pipeline, IHostApplicationLifetime lifetime, ILogger<InferenceService> logger)
    : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() =>
        {
            Thread.CurrentThread.Name = "inference";
            var frames = pipeline.Pipeline.Run(stoppingToken);
            if (!stoppingToken.IsCancellationRequested)
            {
                // The source ended (a file without loop): nothing more will come.
                LogSourceEnded(logger, frames);
                lifetime.StopApplication();
            }
        }, stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    [LoggerMessage(Level = LogLevel.Information, Message = "The source ended after {Frames} inferred frames; stopping")]
    private static partial void LogSourceEnded(ILogger logger, long frames);
}

/// <summary>Prints the newest result and the pipeline metrics every interval (Agent:Pipeline:ConsoleOutput).</summary>
public sealed class ConsoleReporter(AgentPipeline pipeline, IOptions<AgentOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Pipeline.ConsoleOutput)
        {
            return;
        }

        var interval = TimeSpan.FromSeconds(options.Value.Pipeline.ConsoleIntervalSeconds);
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await Console.Out.WriteLineAsync(Format(pipeline.Snapshot(), pipeline.LatestResult.Describe())).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    public static string Format(MetricsSnapshot m, string result)
    {
        ArgumentNullException.ThrowIfNull(m);
        var e2e = m.Stages[Stage.EndToEnd];
        var inf = m.Stages[Stage.Inference];
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{result} | {m.Fps:0.0} fps | end-to-end p50 {e2e.P50:0.0} p95 {e2e.P95:0.0} p99 {e2e.P99:0.0} ms | inference p50 {inf.P50:0.0} ms | " +
            $"captured {m.FramesCaptured} inferred {m.FramesInferred}{(m.FramesSkipped > 0 ? $" skipped {m.FramesSkipped}" : "")} dropped {m.FramesDropped} " +
            $"errors {m.Errors} restarts {m.SourceRestarts}");
    }
}
