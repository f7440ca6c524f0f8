using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

// Ownership moves on purpose here: a started capture goes to the pipeline (which disposes the one it replaces),
// _starting only tracks one being started so shutdown can stop it, and the host owns the active model.
#pragma warning disable IDISP001, IDISP003, IDISP007, IDISP011

namespace EdgeFleet.Agent.Pipeline;

/// <summary>What a capture delivers: frames of this size, fitted with this resize mode.</summary>
public readonly record struct CaptureGeometry(int Width, int Height, ResizeMode Resize)
{
    public static CaptureGeometry Of(ManifestInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new(input.Width, input.Height, input.Resize);
    }

    public override string ToString() => $"{Width}x{Height} {Resize.ToString().ToLowerInvariant()}";
}

/// <summary>How a swap to another input geometry got its frames.</summary>
public enum CaptureChange
{
    /// <summary>Same geometry: the capture stays.</summary>
    None,

    /// <summary>A new capture at the new geometry was started and delivering before the old one stopped.</summary>
    NewCapture,

    /// <summary>The capture stays (the source cannot be opened twice or re-read from here); the resize stage fits its frames.</summary>
    ResizeStage,

    /// <summary>
    /// A camera device that one process at a time can open: the resize stage served the new model at once, then the
    /// capture was stopped and reopened at the new size (frames in between are not captured, none is lost).
    /// </summary>
    Reopened,
}

/// <summary>
/// Owns the running pipeline's active model and capture and implements the swap (<see cref="IModelHost"/>). Swaps are
/// serialised; each is applied by the inference thread between two frames (<see cref="InferencePipeline.RequestSwap"/>).
/// </summary>
public sealed partial class ModelHost : IModelHost, IDisposable
{
    private readonly PipelineBuilder _builder;
    private readonly SourceUri _source;
    private readonly InferencePipeline _pipeline;
    private readonly Func<LoadedModel, ActiveModel> _activate;
    private readonly FrameSequence _sequence;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _swapGate = new(1, 1);
    private readonly Lock _lock = new();
    private CaptureGeometry _geometry;
    private FrameSource? _starting;
    private bool _stopped;
    private bool _disposed;

    internal ModelHost(PipelineBuilder builder, SourceUri source, InferencePipeline pipeline, CaptureGeometry geometry, FrameSequence sequence,
        Func<LoadedModel, ActiveModel> activate, TimeProvider time, ILogger logger)
    {
        _builder = builder;
        _source = source;
        _pipeline = pipeline;
        _geometry = geometry;
        _sequence = sequence;
        _activate = activate;
        _time = time;
        _logger = logger;
    }

    public event Action<ActiveModel>? Activated;

    public ActiveModel Active => _pipeline.Active;

    public OnnxRuntime Runtime => _builder.Runtime;

    public SessionSettings SessionSettings => _builder.SessionSettings;

    public SessionSettings ShadowSessionSettings => _builder.SessionSettings with { IntraOpThreads = 1, InterOpThreads = 1, AllowSpinning = false };

    public InferencePipeline Pipeline => _pipeline;

    public SourceUri SourceUri => _source;

    /// <summary>The capture feeding the pipeline now.</summary>
    public FrameSource Source => _pipeline.Source ?? throw new InvalidOperationException("The pipeline has no capture of its own");

    /// <summary>What the current capture delivers.</summary>
    public CaptureGeometry Geometry
    {
        get
        {
            lock (_lock)
            {
                return _geometry;
            }
        }
    }

    /// <summary>How the last swap got its frames (for logs and tests).</summary>
    public CaptureChange LastCaptureChange { get; private set; }

    /// <summary>
    /// Whether a second capture of this source can run beside the first and continue it: test patterns and network
    /// streams yes; a camera device (V4L2, a GStreamer camera) is opened by one process at a time, and a second reader
    /// of a file would start it over.
    /// </summary>
    public static bool CanRunSecondCapture(SourceUri source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.Kind is SourceKind.TestPattern or SourceKind.Rtsp;
    }

    /// <summary>Whether the capture can be stopped and opened again at another size: camera devices and GStreamer pipelines.</summary>
    public static bool CanReopen(SourceUri source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.Kind is SourceKind.V4l2 or SourceKind.GStreamer;
    }

    public void StartCapture() => Source.Start();

    /// <summary>Stops the capture for good (host shutdown); later swaps fail.</summary>
    public void StopCapture()
    {
        FrameSource? starting;
        lock (_lock)
        {
            _stopped = true;
            starting = _starting;
        }

        starting?.Dispose();
        _pipeline.StopCaptures();
    }

    public string? CheckCapturable(ManifestInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!string.Equals(input.Layout, "NCHW", StringComparison.Ordinal))
        {
            return $"input layout {input.Layout}: the pipeline feeds NCHW tensors only";
        }

        if (input.ColorOrder is not ("RGB" or "BGR"))
        {
            return $"input colour order {input.ColorOrder}: the capture delivers RGB (or BGR by swapping channels)";
        }

        if (!string.Equals(input.ElementType, "float32", StringComparison.Ordinal))
        {
            return $"input element type {input.ElementType}: only float32 is fed";
        }

        if (input.Shape.Count != 4 || input.Shape[1] != 3)
        {
            return $"input shape [{string.Join(",", input.Shape)}]: expected [1,3,H,W]";
        }

        if (input.Shape[0] is not (1 or -1))
        {
            return $"input batch {input.Shape[0]}: the pipeline feeds one frame at a time";
        }

        if (input.Width is < 1 or > 8192 || input.Height is < 1 or > 8192)
        {
            return $"input size {input.Width}x{input.Height}: width and height must be known and at most 8192";
        }

        if (input.Mean.Count != 3 || input.Std.Count != 3 || input.Std.Any(s => !(s != 0 && float.IsFinite(s))))
        {
            return "input mean/std must have 3 finite values, std non-zero";
        }

        return null;
    }

    public void StartShadow(LoadedModel candidate, ShadowOptions options)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(options);
        if (CheckCapturable(candidate.Manifest.Input) is { } why)
        {
            throw new InvalidOperationException($"{candidate.Manifest.Name} {candidate.Manifest.Version} cannot be fed by this capture: {why}");
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_pipeline.Shadow is not null)
            {
                throw new InvalidOperationException("A shadow model is already running; stop it first");
            }

            if (ReferenceEquals(candidate, Active.Model))
            {
                throw new InvalidOperationException("The live model cannot shadow itself");
            }

            var runner = new ShadowRunner(candidate, options, _time, _logger, _geometry.Width, _geometry.Height);
            runner.Start();
            _pipeline.SetShadow(runner);
        }

        LogShadowStarted(_logger, candidate.Manifest.Name, candidate.Manifest.Version, options.SampleShare);
    }

    public ShadowStats StopShadow()
    {
        ShadowRunner? runner;
        lock (_lock)
        {
            runner = _pipeline.SetShadow(null);
        }

        if (runner is null)
        {
            throw new InvalidOperationException("No shadow model is running");
        }

        runner.Stop();
        var stats = runner.Snapshot();
        runner.Dispose();
        LogShadowStopped(_logger, stats.Candidate.Name, stats.Candidate.Version, stats.FramesCompared, stats.FramesSkipped);
        return stats;
    }

    public ShadowStats? ShadowSnapshot() => _pipeline.Shadow?.Snapshot();

    public Task<ActiveModel> SwapAsync(LoadedModel next, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(next);
        return ActivateAsync(next, null, cancellationToken);
    }

    public Task<ActiveModel> SwapBackAsync(ActiveModel previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(previous);
        return ActivateAsync(previous.Model, previous, cancellationToken);
    }

    private async Task<ActiveModel> ActivateAsync(LoadedModel model, ActiveModel? kept, CancellationToken cancellationToken)
    {
        if (CheckCapturable(model.Manifest.Input) is { } why)
        {
            throw new InvalidOperationException($"{model.Manifest.Name} {model.Manifest.Version} cannot be fed by this capture: {why}");
        }

        if (model.Session.IsDisposed)
        {
            throw new ObjectDisposedException(model.Path, "The model's session is disposed");
        }

        await _swapGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (ReferenceEquals(model, Active.Model))
            {
                throw new InvalidOperationException($"{Active} is already active");
            }

            if (ReferenceEquals(model, _pipeline.Shadow?.Candidate))
            {
                throw new InvalidOperationException($"{model.Manifest.Name} {model.Manifest.Version} is running as the shadow; stop the shadow first");
            }

            var wanted = CaptureGeometry.Of(model.Manifest.Input);
            var change = wanted == Geometry ? CaptureChange.None
                : CanRunSecondCapture(_source) ? CaptureChange.NewCapture : CaptureChange.ResizeStage;
            var capture = change == CaptureChange.NewCapture ? await StartCaptureAsync(wanted, cancellationToken).ConfigureAwait(false) : null;
            if (capture is null && change == CaptureChange.NewCapture)
            {
                change = CaptureChange.ResizeStage;
            }

            var next = kept ?? _activate(model);
            if (kept is null)
            {
                next.Stats.SetSince(_time.GetUtcNow());
            }

            ActiveModel previous;
            try
            {
                previous = await _pipeline.RequestSwap(next, capture).ConfigureAwait(false);
            }
            catch
            {
                capture?.Dispose();
                throw;
            }

            if (change == CaptureChange.ResizeStage && CanReopen(_source) && !_stopped)
            {
                // The resize stage serves the new model now; the camera comes back at its size.
                var reopened = _builder.CreateCapture(_source, wanted, _sequence);
                await _pipeline.RequestSwap(next, reopened, startCapture: true).ConfigureAwait(false);
                capture = reopened;
                change = CaptureChange.Reopened;
            }

            lock (_lock)
            {
                _starting = null;
                if (capture is not null)
                {
                    _geometry = wanted;
                }
            }

            LastCaptureChange = change;
            LogSwapped(_logger, previous.ToString(), next.ToString(), change.ToString(), Geometry.ToString());
            try
            {
                Activated?.Invoke(next);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogHandlerFailed(_logger, ex);
            }

            return previous;
        }
        finally
        {
            _swapGate.Release();
        }
    }

    /// <summary>Starts a capture at <paramref name="geometry"/> and waits for its first frame; null if it does not deliver in time.</summary>
    private async Task<FrameSource?> StartCaptureAsync(CaptureGeometry geometry, CancellationToken cancellationToken)
    {
        var capture = _builder.CreateCapture(_source, geometry, _sequence);
        lock (_lock)
        {
            if (_stopped)
            {
                capture.Dispose();
                throw new InvalidOperationException("The capture is stopped");
            }

            _starting = capture;
        }

        try
        {
            capture.Start();
            await capture.FirstFrame.WaitAsync(_builder.CaptureStartTimeout, _time, cancellationToken).ConfigureAwait(false);
            return capture;
        }
        catch (TimeoutException)
        {
            LogNoSecondCapture(_logger, geometry.ToString(), _builder.CaptureStartTimeout.TotalSeconds, capture.LastError ?? "no frame");
            Forget(capture);
            return null;
        }
        catch
        {
            Forget(capture);
            throw;
        }
    }

    private void Forget(FrameSource capture)
    {
        lock (_lock)
        {
            _starting = null;
        }

        capture.Dispose();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _pipeline.SetShadow(null)?.Dispose();
        StopCapture();
        Active.Dispose();
        _swapGate.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Shadow model {Name} {Version} started on {Share:P0} of the frames")]
    private static partial void LogShadowStarted(ILogger logger, string name, string version, double share);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shadow model {Name} {Version} stopped: {Compared} frames compared, {Skipped} skipped")]
    private static partial void LogShadowStopped(ILogger logger, string name, string version, long compared, long skipped);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model swap: {Previous} → {Next} (capture: {Change}, {Geometry})")]
    private static partial void LogSwapped(ILogger logger, string previous, string next, string change, string geometry);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A second capture at {Geometry} delivered nothing within {Seconds} s ({Error}); the resize stage serves the new model")]
    private static partial void LogNoSecondCapture(ILogger logger, string geometry, double seconds, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "A handler of Activated failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception);
}
