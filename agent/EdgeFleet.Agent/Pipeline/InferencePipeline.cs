using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>Receives every result; called on the inference thread with a reused result object (copy to keep).</summary>
public interface IResultSink
{
    /// <param name="model">The model that produced this result (the one active when the frame started).</param>
    void OnResult(InferenceResult result, LoadedModel model);
}

/// <summary>Sees each frame's pixels (model-sized RGB) on the inference thread, before the buffer is reused.</summary>
public interface IFrameObserver
{
    void OnFrame(Frame frame);
}

/// <summary>
/// Decides, on the inference thread, whether a frame is inferred (a capture trigger) or skipped. Must not block or allocate.
/// </summary>
public interface IFrameGate
{
    /// <param name="capturedAt"><see cref="Stopwatch"/> timestamp of the frame's arrival (<see cref="Frame.CapturedAt"/>).</param>
    bool ShouldInfer(long capturedAt);
}

/// <summary>
/// The per-frame loop: newest frame → (resize stage if the frame is not the model's size) → preprocess straight into
/// the model's input tensor → run → decode → the model's statistics and drift observer → sinks.
/// The frame goes back to the pool as soon as it is preprocessed so capture can reuse it during inference.
/// Allocation-free per frame; a failing frame is counted and logged (rate-limited) and the loop goes on.
/// <para>
/// Model and capture changes (<see cref="RequestSwap"/>) are applied by the inference thread itself between two
/// frames, so a frame always finishes on the model it started with and no model is replaced under a running frame.
/// A change of capture stops the old capture first (the new one is already delivering), finishes the frames the old
/// one had handed over, then reads from the new one: nothing that was captured is lost.
/// </para>
/// </summary>
public sealed partial class InferencePipeline
{
    private static readonly TimeSpan TakeTimeout = TimeSpan.FromMilliseconds(250);
    private static readonly long ErrorLogInterval = Stopwatch.Frequency * 10;

    private readonly PipelineMetrics _metrics;
    private readonly IReadOnlyList<IResultSink> _sinks;
    private readonly IReadOnlyList<IFrameObserver> _observers;
    private readonly ILogger _logger;
    private readonly Lock _swapLock = new();
    private readonly Lock _captureLock = new();
    private LatestFrameSlot _slot;
#pragma warning disable IDISP008 // the pipeline disposes a capture only when it replaces it (a given one, or one from a swap)
    private FrameSource? _source;
    private volatile ActiveModel _active; // owned by the model host, never disposed here
#pragma warning restore IDISP008
    private volatile SwapRequest? _pending;
    private volatile ShadowRunner? _shadow;
    private volatile IFrameGate? _gate;
    private bool _running;
    private readonly List<FrameSource> _retiring = [];
    private long _retiredCaptured;
    private long _retiredDropped;
    private long _retiredRestarts;
    private long _retiredStalls;
    private long _lastErrorLog = long.MinValue;
    private long _errorsNotLogged;

    /// <summary>A pipeline over a slot someone else fills, for one model (wrapped in an <see cref="ActiveModel"/> it does not own).</summary>
    public InferencePipeline(LatestFrameSlot slot, LoadedModel model, PipelineMetrics metrics, IReadOnlyList<IResultSink> sinks,
        ILogger logger, IReadOnlyList<IFrameObserver>? observers = null)
#pragma warning disable IDISP004 // the wrapper owns nothing but the caller's model, which the caller disposes
        : this(slot, null, new ActiveModel(model, null, new ModelStats(new(model.Manifest.Name, model.Manifest.Version), DateTimeOffset.UnixEpoch)),
            metrics, sinks, logger, observers)
#pragma warning restore IDISP004
    {
    }

    /// <summary>
    /// A pipeline reading <paramref name="slot"/>, filled by <paramref name="source"/> when given: the pipeline then
    /// replaces (and disposes) that capture when a swap brings a new one.
    /// </summary>
    public InferencePipeline(LatestFrameSlot slot, FrameSource? source, ActiveModel active, PipelineMetrics metrics,
        IReadOnlyList<IResultSink> sinks, ILogger logger, IReadOnlyList<IFrameObserver>? observers = null)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(active);
        _slot = slot;
        _source = source;
        _active = active;
        _metrics = metrics;
        _sinks = sinks;
        _observers = observers ?? [];
        _logger = logger;
    }

    /// <summary>The shadow candidate running beside the live model, if any.</summary>
    public ShadowRunner? Shadow => _shadow;

    /// <summary>Starts feeding sampled frames to <paramref name="runner"/> (null: stop); returns the one replaced.</summary>
    internal ShadowRunner? SetShadow(ShadowRunner? runner) => Interlocked.Exchange(ref _shadow, runner);

    /// <summary>
    /// Infer only the frames the gate lets through (a GPIO capture trigger); the others go back to the pool unseen and are
    /// counted as skipped (<see cref="PipelineMetrics.FramesSkipped"/>), not dropped. Null (the default): every frame.
    /// </summary>
    public IFrameGate? Gate
    {
        get => _gate;
        set => _gate = value;
    }

    /// <summary>The model the next frame will start on.</summary>
    public ActiveModel Active => _active;

    public LoadedModel Model => _active.Model;

    public PipelineMetrics Metrics => _metrics;

    /// <summary>The capture feeding the pipeline now (null when the slot is filled by someone else).</summary>
    public FrameSource? Source
    {
        get
        {
            lock (_captureLock)
            {
                return _source;
            }
        }
    }

    public LatestFrameSlot Slot
    {
        get
        {
            lock (_captureLock)
            {
                return _slot;
            }
        }
    }

    /// <summary>Frames delivered by every capture this pipeline has had.</summary>
    public long FramesCaptured
    {
        get
        {
            lock (_captureLock)
            {
                return _retiredCaptured + _retiring.Sum(r => r.FramesCaptured) + (_source?.FramesCaptured ?? 0);
            }
        }
    }

    /// <summary>Frames replaced (live sources) or discarded before inference took them, over every capture.</summary>
    public long FramesDropped
    {
        get
        {
            lock (_captureLock)
            {
                return _retiredDropped + _slot.Dropped;
            }
        }
    }

    public long SourceRestarts
    {
        get
        {
            lock (_captureLock)
            {
                return _retiredRestarts + _retiring.Sum(r => r.Restarts) + (_source?.Restarts ?? 0);
            }
        }
    }

    public long SourceStalls
    {
        get
        {
            lock (_captureLock)
            {
                return _retiredStalls + _retiring.Sum(r => r.Stalls) + (_source?.Stalls ?? 0);
            }
        }
    }

    /// <summary>
    /// Processes frames on the calling thread until cancelled, the source ends, or <paramref name="maxFrames"/>
    /// frames have been inferred. Returns the number inferred.
    /// </summary>
    public long Run(CancellationToken cancellationToken, long maxFrames = long.MaxValue)
    {
        lock (_swapLock)
        {
            if (_running)
            {
                throw new InvalidOperationException("The pipeline is already running on another thread");
            }

            _running = true;
        }

        long done = 0;
        try
        {
            while (done < maxFrames && !cancellationToken.IsCancellationRequested)
            {
                if (_pending is not null)
                {
                    done += ApplyPending();
                    continue;
                }

                var waitStart = Stopwatch.GetTimestamp();
                var slot = _slot;
                if (!slot.TryTake(TakeTimeout, cancellationToken, out var frame))
                {
                    if (slot.IsCompleted && _pending is null)
                    {
                        break;
                    }

                    continue;
                }

                if (ProcessFrame(frame!, slot, waitStart, _active))
                {
                    done++;
                }
            }
        }
        finally
        {
            lock (_swapLock)
            {
                _running = false;
                if (_pending is { } request)
                {
                    _pending = null;
                    Apply(request, processFrames: false);
                }
            }
        }

        return done;
    }

    /// <summary>Takes and drops up to <paramref name="frames"/> frames (stale ones after a pause), without inference.</summary>
    public int Discard(int frames, CancellationToken cancellationToken)
    {
        var discarded = 0;
        var slot = _slot;
        while (discarded < frames && slot.TryTake(TakeTimeout, cancellationToken, out var frame))
        {
            slot.Pool.Return(frame!);
            slot.NotifyConsumed();
            discarded++;
        }

        return discarded;
    }

    /// <summary>
    /// Makes <paramref name="next"/> the active model, and <paramref name="capture"/> (already delivering frames) the
    /// capture, between two frames. The task completes with the model that was active before, once no frame runs on
    /// it any more. If the loop is not running, this happens at once on the calling thread.
    /// </summary>
    /// <param name="startCapture">The capture is not started yet: stop the old one completely first, then start it
    /// (a camera device that one process at a time can open).</param>
    public Task<ActiveModel> RequestSwap(ActiveModel next, FrameSource? capture, bool startCapture = false)
    {
        ArgumentNullException.ThrowIfNull(next);
        var request = new SwapRequest(next, capture, startCapture);
        lock (_swapLock)
        {
            if (_pending is not null)
            {
                throw new InvalidOperationException("Another swap is pending; swaps are serialised by the model host");
            }

            if (_running)
            {
                _pending = request;
            }
            else
            {
                Apply(request, processFrames: false);
            }
        }

        return request.Done.Task;
    }

    private long ApplyPending()
    {
        SwapRequest? request;
        lock (_swapLock)
        {
            request = _pending;
            _pending = null;
        }

        return request is null ? 0 : Apply(request, processFrames: true);
    }

#pragma warning disable IDISP016 // a stopped capture's counters stay readable
    /// <summary>On the inference thread between frames (or under the swap lock when the loop is not running).</summary>
    private long Apply(SwapRequest request, bool processFrames)
    {
        long processed = 0;
        var previous = _active;
        try
        {
            if (request.Capture is { } next)
            {
                var oldSource = _source;
                var oldSlot = _slot;
                // The new capture already delivers. The old one stops handing over at once (what it handed over stays in
                // its slot); reaping its process, which can take tens of milliseconds, happens off this thread.
                if (oldSource is null)
                {
                    oldSlot.Close();
                }
                else if (request.StartCapture)
                {
#pragma warning disable IDISP007 // the pipeline owns the captures it feeds from
                    oldSource.Dispose(); // the device must be free before the new capture opens it
#pragma warning restore IDISP007
                }
                else
                {
                    oldSource.Retire();
                }
                long discarded = 0;
                while (oldSlot.TryTake(TimeSpan.Zero, CancellationToken.None, out var frame))
                {
                    if (processFrames)
                    {
                        // Captured for the old model: it finishes them.
                        if (ProcessFrame(frame!, oldSlot, Stopwatch.GetTimestamp(), previous))
                        {
                            processed++;
                        }
                    }
                    else
                    {
                        oldSlot.Pool.Return(frame!);
                        discarded++;
                    }
                }

                if (request.StartCapture)
                {
                    next.Start();
                }

                lock (_captureLock)
                {
                    _retiredDropped += oldSlot.Dropped + discarded;
                    if (oldSource is not null && !request.StartCapture)
                    {
                        _retiring.Add(oldSource);
                    }
                    else if (oldSource is not null)
                    {
                        _retiredCaptured += oldSource.FramesCaptured; // stopped above: final
                        _retiredRestarts += oldSource.Restarts;
                        _retiredStalls += oldSource.Stalls;
                    }

                    _source = next;
                    _slot = next.Slot;
                }

                if (oldSource is not null && !request.StartCapture)
                {
                    ThreadPool.UnsafeQueueUserWorkItem(static s => s.pipeline.Reap(s.oldSource), (pipeline: this, oldSource), preferLocal: false);
                }
            }

            _active = request.Next;
            request.Done.TrySetResult(previous);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            request.Done.TrySetException(ex);
        }

        return processed;
    }

#pragma warning restore IDISP016

    /// <summary>Stops the capture and any replaced one still being reaped; afterwards every counter is final.</summary>
    public void StopCaptures()
    {
        FrameSource[] retiring;
        FrameSource? current;
        lock (_captureLock)
        {
            retiring = [.. _retiring];
            current = _source;
        }

#pragma warning disable IDISP007 // the pipeline owns the captures it feeds from
        current?.Dispose();
        foreach (var r in retiring)
        {
            r.Dispose(); // waits for its capture thread, as the reaper does
        }
#pragma warning restore IDISP007
    }

    private void Reap(FrameSource retired)
    {
#pragma warning disable IDISP007 // the pipeline owns the captures it feeds from (see the constructor) and replaced this one
        retired.Dispose();
#pragma warning restore IDISP007
        lock (_captureLock)
        {
            // Its counters are final now: fold them in.
            _retiredCaptured += retired.FramesCaptured;
            _retiredRestarts += retired.Restarts;
            _retiredStalls += retired.Stalls;
            _retiring.Remove(retired);
        }
    }

    private bool ProcessFrame(Frame frame, LatestFrameSlot slot, long waitStart, ActiveModel active)
    {
        if (_gate is { } gate && !gate.ShouldInfer(frame.CapturedAt))
        {
            slot.Pool.Return(frame);
            slot.NotifyConsumed();
            _metrics.RecordSkipped();
            return false;
        }

        var model = active.Model;
        var result = active.Result;
        var shadow = _shadow;
        ShadowSample? sample = null;
        var dequeued = Stopwatch.GetTimestamp();
        long preprocessed;
        try
        {
            try
            {
                sample = shadow?.TryCapture(frame); // a copy, before the frame goes back to the pool
                var fitted = active.Fit(frame);
                model.Preprocessor.Run(fitted.Data, model.Runner.Input<float>(0));
                result.FrameSequence = frame.Sequence;
                result.CapturedAt = frame.CapturedAt;
                preprocessed = Stopwatch.GetTimestamp();
                active.Drift?.OnFrame(fitted);
                foreach (var observer in _observers)
                {
                    observer.OnFrame(fitted); // timed by the observer itself, not as preprocessing
                }
            }
            finally
            {
                slot.Pool.Return(frame);
                slot.NotifyConsumed();
            }
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or InvalidOperationException or ArgumentException)
        {
            Failed(active, ex, shadow, sample);
            return false;
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
            active.Stats.RecordFrame(inferred - inferenceStart, result);
            if (ModelStats.TryConfidence(result, out var confidence))
            {
                _metrics.RecordConfidence(confidence);
            }
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or InvalidOperationException)
        {
            Failed(active, ex, shadow, sample);
            return false;
        }

        if (sample is not null)
        {
            shadow!.Offer(sample, result, active); // never waits: a busy candidate skips it
        }

        if (active.Drift is { } drift)
        {
            Deliver(drift, result, active);
        }

        foreach (var sink in _sinks)
        {
            Deliver(sink, result, active);
        }

        return true;
    }

    private void Deliver(IResultSink sink, InferenceResult result, ActiveModel active)
    {
        try
        {
            sink.OnResult(result, active.Model);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            _metrics.RecordError();
            ReportError(ex);
        }
    }

    private void Failed(ActiveModel active, Exception ex, ShadowRunner? shadow, ShadowSample? sample)
    {
        if (sample is not null)
        {
            shadow!.Abandon(sample);
        }

        _metrics.RecordError();
        active.Stats.RecordError();
        ReportError(ex);
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

    private sealed class SwapRequest(ActiveModel next, FrameSource? capture, bool startCapture)
    {
        public bool StartCapture { get; } = startCapture;

        public ActiveModel Next { get; } = next;

        public FrameSource? Capture { get; } = capture;

        public TaskCompletionSource<ActiveModel> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A frame failed ({Suppressed} more failures since the last report)")]
    private static partial void LogFrameFailed(ILogger logger, Exception exception, long suppressed);
}
