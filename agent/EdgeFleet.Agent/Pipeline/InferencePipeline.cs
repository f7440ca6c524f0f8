using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>Receives every result; called on the inference thread with a reused result object (copy to keep).</summary>
public interface IResultSink
{
    void OnResult(InferenceResult result, LoadedModel model);
}

/// <summary>Sees each frame's pixels (model-sized RGB) on the inference thread, before the buffer is reused.</summary>
public interface IFrameObserver
{
    void OnFrame(Frame frame);
}

/// <summary>
/// The per-frame loop: newest frame → preprocess straight into the model's input tensor → run → decode → sinks.
/// The frame goes back to the pool as soon as it is preprocessed so capture can reuse it during inference.
/// Allocation-free per frame; a failing frame is counted and logged (rate-limited) and the loop goes on.
/// </summary>
public sealed partial class InferencePipeline
{
    private static readonly TimeSpan TakeTimeout = TimeSpan.FromMilliseconds(250);
    private static readonly long ErrorLogInterval = Stopwatch.Frequency * 10;

    private readonly LatestFrameSlot _slot;
    private readonly PipelineMetrics _metrics;
    private readonly IReadOnlyList<IResultSink> _sinks;
    private readonly IReadOnlyList<IFrameObserver> _observers;
    private readonly ILogger _logger;
    private LoadedModel _model;
    private InferenceResult _result;
    private long _lastErrorLog = long.MinValue;
    private long _errorsNotLogged;

    public InferencePipeline(LatestFrameSlot slot, LoadedModel model, PipelineMetrics metrics, IReadOnlyList<IResultSink> sinks,
        ILogger logger, IReadOnlyList<IFrameObserver>? observers = null)
    {
        _slot = slot;
        _model = model;
        _metrics = metrics;
        _sinks = sinks;
        _observers = observers ?? [];
        _logger = logger;
        _result = model.Decoder.CreateResult();
    }

    public LoadedModel Model => _model;

    public PipelineMetrics Metrics => _metrics;

    /// <summary>
    /// Processes frames on the calling thread until cancelled, the source ends, or <paramref name="maxFrames"/>
    /// frames have been inferred. Returns the number inferred.
    /// </summary>
    public long Run(CancellationToken cancellationToken, long maxFrames = long.MaxValue)
    {
        long done = 0;
        while (done < maxFrames && !cancellationToken.IsCancellationRequested)
        {
            var waitStart = Stopwatch.GetTimestamp();
            if (!_slot.TryTake(TakeTimeout, cancellationToken, out var frame))
            {
                if (_slot.IsCompleted)
                {
                    break;
                }

                continue;
            }

            if (ProcessFrame(frame!, waitStart))
            {
                done++;
            }
        }

        return done;
    }

    /// <summary>Takes and drops up to <paramref name="frames"/> frames (stale ones after a pause), without inference.</summary>
    public int Discard(int frames, CancellationToken cancellationToken)
    {
        var discarded = 0;
        while (discarded < frames && _slot.TryTake(TakeTimeout, cancellationToken, out var frame))
        {
            _slot.Pool.Return(frame!);
            _slot.NotifyConsumed();
            discarded++;
        }

        return discarded;
    }

    private bool ProcessFrame(Frame frame, long waitStart)
    {
        var model = _model;
        var result = _result;
        var dequeued = Stopwatch.GetTimestamp();
        long preprocessed;
        try
        {
            model.Preprocessor.Run(frame.Data, model.Runner.Input<float>(0));
            result.FrameSequence = frame.Sequence;
            result.CapturedAt = frame.CapturedAt;
            preprocessed = Stopwatch.GetTimestamp();
            foreach (var observer in _observers)
            {
                observer.OnFrame(frame); // timed by the observer itself, not as preprocessing
            }
        }
        finally
        {
            _slot.Pool.Return(frame);
            _slot.NotifyConsumed();
        }

        var inferenceStart = Stopwatch.GetTimestamp();
        try
        {
            model.Runner.Run();
            var inferred = Stopwatch.GetTimestamp();
            model.Decoder.Decode(model.Runner.Output<float>(model.OutputIndex), model.Runner.OutputShape(model.OutputIndex), result);
            var completed = Stopwatch.GetTimestamp();
            result.CompletedAt = completed;
            _metrics.RecordFrame(waitStart, dequeued, preprocessed, inferenceStart, inferred, completed, result.CapturedAt, result.NonFinite);
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or InvalidOperationException)
        {
            _metrics.RecordError();
            ReportError(ex);
            return false;
        }

        foreach (var sink in _sinks)
        {
            try
            {
                sink.OnResult(result, model);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _metrics.RecordError();
                ReportError(ex);
            }
        }

        return true;
    }

    private void ReportError(Exception ex)
    {
        var now = Stopwatch.GetTimestamp();
        if (_lastErrorLog != long.MinValue && now - _lastErrorLog < ErrorLogInterval)
        {
            _errorsNotLogged++;
            return;
        }

        LogFrameFailed(_logger, ex, _errorsNotLogged);
        _lastErrorLog = now;
        _errorsNotLogged = 0;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A frame failed ({Suppressed} more failures since the last report)")]
    private static partial void LogFrameFailed(ILogger logger, Exception exception, long suppressed);
}
