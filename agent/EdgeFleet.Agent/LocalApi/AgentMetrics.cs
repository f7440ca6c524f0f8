using EdgeFleet.Agent.Hosting;
using EdgeFleet.Agent.Pipeline;
using Prometheus;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>
/// The telemetry message's figures as Prometheus metrics, read from the pipeline at each scrape (nothing on the hot
/// path). Names follow the control plane's: <c>edgefleet_</c>, the area, the telemetry field, <c>_total</c> for counters.
/// </summary>
public sealed class AgentMetrics
{
    private static readonly (Stage Stage, string Name)[] Stages =
    [
        (Stage.EndToEnd, "end_to_end"), (Stage.CaptureWait, "capture_wait"), (Stage.Preprocess, "preprocess"),
        (Stage.Inference, "inference"), (Stage.Postprocess, "postprocess"),
    ];

    public AgentMetrics(AgentPipeline pipeline, ResultHub hub)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(hub);
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        string[] model = ["model", "version"];
        var captured = f.CreateCounter("edgefleet_agent_frames_captured_total", "Frames delivered by the camera", model);
        var inferred = f.CreateCounter("edgefleet_agent_frames_inferred_total", "Frames the model ran on", model);
        var dropped = f.CreateCounter("edgefleet_agent_frames_dropped_total", "Frames replaced by a newer one before inference took them", model);
        var errors = f.CreateCounter("edgefleet_agent_errors_total", "Frames that failed", model);
        var nonFinite = f.CreateCounter("edgefleet_agent_nonfinite_total", "Frames with NaN or infinite outputs", model);
        var fps = f.CreateGauge("edgefleet_agent_fps", "Inferred frames per second, recent", model);
        // Percentiles the pipeline already keeps, as gauges in base units like the control plane's
        // edgefleet_device_latency_p95_seconds (a gauge may not carry a "quantile" label; a summary would observe on the hot path).
        string[] staged = ["model", "version", "stage"];
        var p50 = f.CreateGauge("edgefleet_agent_latency_p50_seconds", "Median latency of a stage over the metrics window", staged);
        var p95 = f.CreateGauge("edgefleet_agent_latency_p95_seconds", "95th-percentile latency of a stage over the metrics window", staged);
        var p99 = f.CreateGauge("edgefleet_agent_latency_p99_seconds", "99th-percentile latency of a stage over the metrics window", staged);
        var restarts = f.CreateCounter("edgefleet_agent_source_restarts_total", "Capture process restarts");
        var stalls = f.CreateCounter("edgefleet_agent_source_stalls_total", "Capture stalls (no frame for StallTimeoutSeconds)");
        var connected = f.CreateGauge("edgefleet_agent_source_connected", "1 while the capture delivers frames");
        var subscribers = f.CreateGauge("edgefleet_agent_localapi_subscribers", "Local API Results streams open");
        Registry.AddBeforeCollectCallback(() =>
        {
            if (!pipeline.IsInitialized)
            {
                return;
            }

            var m = pipeline.Snapshot();
            var r = pipeline.ModelRef;
            string[] labels = [r.Name, r.Version];
            captured.WithLabels(labels).IncTo(m.FramesCaptured);
            inferred.WithLabels(labels).IncTo(m.FramesInferred);
            dropped.WithLabels(labels).IncTo(m.FramesDropped);
            errors.WithLabels(labels).IncTo(m.Errors);
            nonFinite.WithLabels(labels).IncTo(m.NonFiniteOutputs);
            fps.WithLabels(labels).Set(m.Fps);
            foreach (var (stage, name) in Stages)
            {
                var p = m.Stages[stage];
                p50.WithLabels(r.Name, r.Version, name).Set(p.P50 / 1000);
                p95.WithLabels(r.Name, r.Version, name).Set(p.P95 / 1000);
                p99.WithLabels(r.Name, r.Version, name).Set(p.P99 / 1000);
            }

            restarts.IncTo(m.SourceRestarts);
            stalls.IncTo(m.SourceStalls);
            connected.Set(pipeline.Source.State == Capture.SourceState.Running ? 1 : 0);
            subscribers.Set(hub.SubscriberCount);
        });
    }

    public CollectorRegistry Registry { get; }
}
