using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// A model as the pipeline serves it: the loaded model (session runner, preprocessor, decoder), its drift observer,
/// its reference and its statistics, plus the per-model buffers the inference thread reuses (the result, and a frame
/// for the resize stage). Immutable once built; the pipeline reads the active one once per frame, so a frame that
/// started on a model finishes on it. Disposing it disposes the session: only its owner does that, and never while it
/// is active (the host owns the active one; <see cref="IModelHost.SwapAsync"/> hands the previous one to the caller).
/// </summary>
public sealed class ActiveModel : IDisposable
{
    private readonly FrameResizer _resizer = new();
    private Frame? _resized;
    private long _resizedFrames;
    private bool _disposed;

    public ActiveModel(LoadedModel model, DriftObserver? drift, ModelStats stats)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stats);
        Model = model;
        Drift = drift;
        Stats = stats;
        Ref = new ModelRef(model.Manifest.Name, model.Manifest.Version);
        Result = model.Decoder.CreateResult();
    }

    public LoadedModel Model { get; }

    /// <summary>Null when drift monitoring is off.</summary>
    public DriftObserver? Drift { get; }

    public ModelRef Ref { get; }

    public ModelStats Stats { get; }

    /// <summary>The result object this model's frames are decoded into (reused; inference thread only).</summary>
    internal InferenceResult Result { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed);

    /// <summary>Frames that went through the resize stage because the capture delivered another size.</summary>
    public long ResizedFrames => Volatile.Read(ref _resizedFrames);

    public int InputWidth => Model.InputWidth;

    public int InputHeight => Model.InputHeight;

    /// <summary>
    /// <paramref name="frame"/> if it already has this model's input size, else a copy fitted to it by the resize
    /// stage (the manifest's resize mode) in a buffer kept for the next frame. Inference thread only.
    /// </summary>
    internal Frame Fit(Frame frame)
    {
        if (frame.Width == InputWidth && frame.Height == InputHeight)
        {
            return frame;
        }

        var target = _resized ??= new Frame(InputWidth, InputHeight);
        _resizer.Resize(frame.Data, frame.Width, frame.Height, target.Data, InputWidth, InputHeight, Model.Manifest.Input.Resize);
        target.Sequence = frame.Sequence;
        target.CapturedAt = frame.CapturedAt;
        Volatile.Write(ref _resizedFrames, _resizedFrames + 1); // one writer: the inference thread
        return target;
    }

    public override string ToString() => $"{Ref.Name} {Ref.Version}";

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Volatile.Write(ref _disposed, true);
#pragma warning disable IDISP007 // the active model owns its loaded model (see the class summary)
        Model.Dispose();
#pragma warning restore IDISP007
    }
}
