using System.Globalization;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Hosting;
using EdgeFleet.Agent.LocalApi.V1;
using EdgeFleet.Agent.Ota;
using EdgeFleet.Agent.Pipeline;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>The <c>edgefleet.agent.v1.AgentLocal</c> service (shared/EdgeFleet.Contracts/Protos/agent_local.proto).</summary>
public sealed class AgentLocalService(AgentPipeline pipeline, ResultHub hub, IOptions<AgentOptions> options, TimeProvider time,
    EdgeFleet.Agent.Gpio.GpioService gpio)
    : AgentLocal.AgentLocalBase
{
    private static readonly string AgentVersion = typeof(AgentLocalService).Assembly.GetName().Version?.ToString(3) ?? "";

    public override Task<StatusReply> Status(StatusRequest request, ServerCallContext context)
    {
        var o = options.Value;
        var reply = new StatusReply
        {
            DeviceId = o.DeviceId ?? "",
            AgentVersion = AgentVersion,
            Ota = Ota(o.StateDirectory),
            ResultsSubscribers = hub.SubscriberCount,
            StateDirectory = Path.GetFullPath(o.StateDirectory),
            StatusLed = gpio.LedState?.ToString().ToLowerInvariant() ?? "",
        };
        if (gpio.Trigger is { } trigger)
        {
            reply.Trigger = new CaptureTrigger
            {
                Chip = gpio.ChipName ?? "",
                Line = o.Gpio.Trigger.Line ?? 0,
                Edge = o.Gpio.Trigger.Edge.ToLowerInvariant(),
                Edges = trigger.Edges,
                Debounced = trigger.Debounced,
                Inferred = trigger.Fired,
            };
        }

        if (!pipeline.IsInitialized)
        {
            reply.Pipeline = new PipelineCounters { Latency = new Latency(), InferenceLatency = new Latency() };
            reply.Camera = new CameraHealth { State = "not started" };
            return Task.FromResult(reply);
        }

        var model = pipeline.Model;
        reply.Model = new ModelInfo
        {
            Name = model.Manifest.Name,
            Version = model.Manifest.Version,
            Task = model.Manifest.Task.ToString().ToLowerInvariant(),
            Provider = model.Session.ActiveProvider.ToString(),
            InputWidth = model.InputWidth,
            InputHeight = model.InputHeight,
        };
        var m = pipeline.Snapshot();
        static Latency L(Percentiles p) => new() { P50Ms = Math.Round(p.P50, 3), P95Ms = Math.Round(p.P95, 3), P99Ms = Math.Round(p.P99, 3) };
        reply.Pipeline = new PipelineCounters
        {
            Captured = m.FramesCaptured,
            Inferred = m.FramesInferred,
            Dropped = m.FramesDropped,
            Skipped = m.FramesSkipped,
            Errors = m.Errors,
            NonFinite = m.NonFiniteOutputs,
            Fps = Math.Round(m.Fps, 2),
            Latency = L(m.Stages[Stage.EndToEnd]),
            InferenceLatency = L(m.Stages[Stage.Inference]),
        };
        var source = pipeline.Source;
        reply.Camera = new CameraHealth
        {
            Connected = source.State == Capture.SourceState.Running,
            State = source.State.ToString().ToLowerInvariant(),
            Restarts = m.SourceRestarts,
            Stalls = m.SourceStalls,
            LastError = source.LastError ?? "",
        };
        return Task.FromResult(reply);
    }

    public override async Task Results(ResultsRequest request, IServerStreamWriter<Result> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        if (!pipeline.IsInitialized)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "the pipeline has not started yet: no results to stream; try again"));
        }

        if (pipeline.Metrics.FramesInferred == 0)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition,
                $"no frame has been inferred yet (camera {pipeline.Source.State.ToString().ToLowerInvariant()}{(pipeline.Source.LastError is { } e ? $": {e}" : "")}); try again when it delivers"));
        }

        using var subscriber = hub.Subscribe();
        var reader = subscriber.Reader;
        try
        {
            while (await reader.WaitToReadAsync(context.CancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var result))
                {
                    var sent = result.Clone();
                    sent.Dropped = subscriber.Dropped;
                    await responseStream.WriteAsync(sent, context.CancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // the client went away
        }
    }

    public override async Task<SnapshotReply> Snapshot(SnapshotRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = options.Value.LocalApi;
        if (!pipeline.IsInitialized)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "the pipeline has not started yet: no frame to show; try again"));
        }

        var timeout = TimeSpan.FromSeconds(o.SnapshotTimeoutSeconds);
        var frame = await hub.SnapshotAsync(timeout, context.CancellationToken).ConfigureAwait(false)
            ?? throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable,
                string.Create(CultureInfo.InvariantCulture, $"no frame reached the model within {timeout.TotalSeconds:0.#} s (camera {pipeline.Source.State.ToString().ToLowerInvariant()}{(pipeline.Source.LastError is { } e ? $": {e}" : "")})")));
        return new SnapshotReply
        {
            Jpeg = UnsafeByteOperations.UnsafeWrap(JpegEncoder.Encode(frame.Pixels, frame.Width, frame.Height, o.JpegQuality)),
            Width = frame.Width,
            Height = frame.Height,
            Result = frame.Result,
        };
    }

    private OtaStatus Ota(string stateDirectory)
    {
        var state = new OtaStateStore(stateDirectory, time).Load(keepCorrupt: false, out _);
        var ota = new OtaStatus { State = "none" };
        if (state.Job is { } job)
        {
            ota.State = job.Phase.ToString().ToLowerInvariant();
            ota.Model = job.Desired.Model;
            ota.Version = job.Desired.Version;
            ota.Mode = job.Desired.Mode.ToString().ToLowerInvariant();
            ota.Bytes = job.Bytes;
            ota.Total = job.Total;
        }

        if (state.LastFailure is { } f)
        {
            ota.LastFailure = string.Create(CultureInfo.InvariantCulture, $"{f.Event} ({f.Reason}) of {f.Model} {f.Version} at {f.At:u}: {f.Message}");
        }

        return ota;
    }
}
