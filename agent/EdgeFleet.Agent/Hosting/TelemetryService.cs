using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Messaging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Hosting;

/// <summary>Raised when rows were added to the outbox.</summary>
public sealed class OutboxNotifier
{
    public event Action? Enqueued;

    public void Notify() => Enqueued?.Invoke();
}

/// <summary>
/// Writes every durable message (events, drift reports and the periodic telemetry) to the outbox, and enforces
/// the outbox's bounds, reporting evictions. Runs only when MQTT is configured: without a broker nothing would
/// ever drain the outbox.
/// </summary>
public sealed partial class TelemetryService(
    AgentPipeline pipeline,
    DeviceReporter reporter,
    Outbox outbox,
    OutboxNotifier notifier,
    MqttState mqtt,
    IOptions<AgentOptions> options,
    TimeProvider time,
    ILogger<TelemetryService> logger) : BackgroundService
{
    private readonly SystemStats _system = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(options.Value.Mqtt.Host))
        {
            return;
        }

        var writer = Task.Run(WriteAsync, CancellationToken.None);
        var interval = TimeSpan.FromSeconds(options.Value.Telemetry.IntervalSeconds);
        using var timer = new PeriodicTimer(interval, time);
        var evictedReported = outbox.Stats.Evicted;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                if (pipeline.IsInitialized)
                {
                    var message = Build(interval);
                    reporter.Telemetry(seq => message with { Seq = seq });
                }

                outbox.EvictExpired();
                var evicted = outbox.Stats.Evicted;
                if (evicted > evictedReported)
                {
                    LogEvicted(logger, evicted - evictedReported, evicted);
                    reporter.Event("outbox.evicted", "warning",
                        $"{evicted - evictedReported} undelivered messages were evicted (outbox full or too old); {evicted} in all",
                        new Dictionary<string, string> { ["evicted"] = (evicted - evictedReported).ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    evictedReported = evicted;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        reporter.Complete();
        await writer.ConfigureAwait(false);
    }

    private async Task WriteAsync()
    {
        var batch = new List<(string, Func<long, byte[]>)>();
        var deviceId = options.Value.DeviceId!;
        while (await reporter.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < 500 && reporter.Reader.TryRead(out var pending))
                {
                    batch.Add((Topics.For(deviceId, pending.Kind), pending.Build));
                }

                try
                {
                    outbox.EnqueueMany(batch);
                    notifier.Notify();
                }
                catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or IOException)
                {
                    // A full disk or a broken file: say so, count the loss, keep the agent running.
                    reporter.CountLost(batch.Count);
                    LogWriteFailed(logger, ex, batch.Count);
                }
            }
    }

    private TelemetryMessage Build(TimeSpan interval)
    {
        var m = pipeline.Snapshot();
        var source = pipeline.Source;
        var stats = outbox.Stats;
        static LatencyMs L(Percentiles p) => new(Math.Round(p.P50, 3), Math.Round(p.P95, 3), Math.Round(p.P99, 3));
        return new TelemetryMessage
        {
            DeviceId = options.Value.DeviceId!,
            Ts = time.GetUtcNow(),
            IntervalSeconds = interval.TotalSeconds,
            Model = pipeline.ModelRef,
            Fps = Math.Round(m.Fps, 2),
            LatencyMs = L(m.Stages[Stage.EndToEnd]),
            StagesMs = new Dictionary<string, LatencyMs>
            {
                ["captureWait"] = L(m.Stages[Stage.CaptureWait]),
                ["preprocess"] = L(m.Stages[Stage.Preprocess]),
                ["inference"] = L(m.Stages[Stage.Inference]),
                ["postprocess"] = L(m.Stages[Stage.Postprocess]),
            },
            Frames = new FrameCounters(m.FramesCaptured, m.FramesInferred, m.FramesDropped),
            Errors = m.Errors,
            NonFinite = m.NonFiniteOutputs,
            Confidence = pipeline.Metrics.TakeMeanConfidence() is { } c ? Math.Round(c, 4) : null,
            Source = new SourceHealth(source.State.ToString().ToLowerInvariant(), source.Restarts, source.Stalls, source.LastError),
            System = _system.Read(),
            Outbox = new OutboxHealth(stats.Pending, stats.PendingBytes, stats.Evicted, reporter.Dropped),
            RejectedMessages = mqtt.Rejected,
            DriftUsPerFrame = pipeline.Drift is { } d ? Math.Round(d.MicrosecondsPerFrame, 2) : null,
        };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox: {Count} undelivered messages evicted ({Total} in all)")]
    private static partial void LogEvicted(ILogger logger, long count, long total);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox: writing {Count} messages failed (disk full or file damaged?); they are lost and counted")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, int count);
}
