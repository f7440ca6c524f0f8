using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// The running pipeline as the OTA service sees it: which model is active, the runtime and session settings to load a
/// candidate with, and an atomic swap that never stops the pipeline.
/// </summary>
public interface IModelHost
{
    ActiveModel Active { get; }

    /// <summary>The loaded runtime, to load candidates with.</summary>
    OnnxRuntime Runtime { get; }

    /// <summary>What <c>run</c> uses.</summary>
    SessionSettings SessionSettings { get; }

    /// <summary>
    /// Null when the capture can deliver frames for this input, else why not (e.g. layout/colour the capture cannot
    /// produce).
    /// </summary>
    string? CheckCapturable(ManifestInput input);

    /// <summary>
    /// Activates <paramref name="next"/> (already loaded and self-tested by the caller). If its input width/height/resize
    /// differ, a new capture is started BEFORE the old one stops so no frame is lost (where the source can be opened
    /// twice; else the resize stage serves it, see the agent's README). Completes once the new model has been installed
    /// and every frame that started on the old one has finished. Returns the previous <see cref="ActiveModel"/>, NOT
    /// disposed: the caller owns it (keeps it for a rollback, disposes it after commit). On failure or cancellation
    /// nothing changed and the caller still owns <paramref name="next"/>.
    /// </summary>
    Task<ActiveModel> SwapAsync(LoadedModel next, CancellationToken cancellationToken);

    /// <summary>Re-activates a kept ActiveModel (rollback): same guarantees; returns the one replaced (caller disposes it).</summary>
    Task<ActiveModel> SwapBackAsync(ActiveModel previous, CancellationToken cancellationToken);

    /// <summary>
    /// Settings for a shadow candidate: those of <see cref="SessionSettings"/> with one intra-op thread and no spinning,
    /// so it computes on the low-priority shadow thread and does not take CPU from the live model's threads.
    /// </summary>
    SessionSettings ShadowSessionSettings { get; }

    /// <summary>
    /// Runs <paramref name="candidate"/> (loaded and self-tested by the caller, who keeps owning it) beside the live model
    /// on a sampled share of frames, on its own low-priority thread. Its results are never published; only
    /// <see cref="ShadowStats"/> report on it. One shadow at a time; the candidate cannot be swapped in while it shadows.
    /// </summary>
    void StartShadow(LoadedModel candidate, ShadowOptions options);

    /// <summary>Stops the shadow (after the frame it is on) and returns its final statistics; the candidate is then free.</summary>
    ShadowStats StopShadow();

    /// <summary>The running shadow's statistics so far; null when none runs.</summary>
    ShadowStats? ShadowSnapshot();

    /// <summary>Raised after a model became active (on the thread that asked for the swap).</summary>
    event Action<ActiveModel>? Activated;
}
