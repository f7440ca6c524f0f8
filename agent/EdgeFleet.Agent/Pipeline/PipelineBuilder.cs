using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// The one place that puts a pipeline together — runtime, session settings, model, capture process, frame slot,
/// inference loop — for <c>run</c>, <c>bench</c>, <c>profile</c> and the tests alike, so all of them honour
/// <c>Agent:Source:FfmpegPath</c> / <c>GstLaunchPath</c>, the capture settings and <c>Agent:Inference</c> (including
/// <c>OrtLibraryPath</c>).
/// </summary>
public sealed class PipelineBuilder
{
    private readonly SourceOptions _source;
    private readonly InferenceOptions _inference;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private OnnxRuntime? _runtime;

    public PipelineBuilder(SourceOptions source, InferenceOptions inference, string stateDirectory, ILoggerFactory loggerFactory,
        TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(inference);
        _source = source;
        _inference = inference;
        _loggerFactory = loggerFactory;
        _time = time ?? TimeProvider.System;
        SessionSettings = inference.ToSessionSettings(stateDirectory);
        SourceSettings = source.ToSourceSettings();
    }

    /// <summary>Raised for every capture this builder creates (the first and those of later swaps), before it starts.</summary>
    public event Action<FrameSource>? CaptureCreated;

    public SessionSettings SessionSettings { get; }

    public FrameSourceSettings SourceSettings { get; }

    /// <summary>Frames per model kept for <see cref="ModelStats"/>' recent window.</summary>
    public int StatsWindow { get; init; } = 1024;

    /// <summary>How long a swap waits for a second capture's first frame before the resize stage serves the new model instead.</summary>
    public TimeSpan CaptureStartTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The ONNX Runtime (<c>Agent:Inference:OrtLibraryPath</c>, else EDGEFLEET_ORT_LIB, else the packaged one), loaded once.</summary>
    public OnnxRuntime Runtime
    {
        get
        {
            lock (_lock)
            {
                return _runtime ??= OnnxRuntime.Load(_inference.OrtLibraryPath);
            }
        }
    }

    /// <summary>Loads a model with <see cref="SessionSettings"/>; with <paramref name="selfTest"/> a failing self-test throws.</summary>
    /// <exception cref="ModelLoadException">The model cannot be used.</exception>
    public LoadedModel LoadModel(string path, bool selfTest)
    {
        var model = LoadedModel.Load(Runtime, path, SessionSettings);
        if (selfTest && model.RunSelfTest() is { } failure)
        {
            model.Dispose();
            throw new ModelLoadException($"Model {path} failed its self-test: {failure}. It will not serve frames.");
        }

        return model;
    }

    /// <summary>Wraps a loaded model for serving; its statistics start now.</summary>
    public ActiveModel Activate(LoadedModel model, DriftObserver? drift = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ActiveModel(model, drift, new ModelStats(new ModelRef(model.Manifest.Name, model.Manifest.Version), _time.GetUtcNow(), StatsWindow));
    }

    /// <summary>A capture (not started) delivering frames fitted to <paramref name="geometry"/> into a slot of its own.</summary>
    public FrameSource CreateCapture(SourceUri source, CaptureGeometry geometry, FrameSequence? sequence = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var slot = new LatestFrameSlot(new FramePool(geometry.Width, geometry.Height), dropOld: source.Realtime);
        var command = CaptureCommand.Create(source, geometry.Width, geometry.Height, geometry.Resize, _source.FfmpegPath, _source.GstLaunchPath);
        var capture = new FrameSource(source, command, slot, SourceSettings, _loggerFactory.CreateLogger<FrameSource>(), _time, sequence);
        CaptureCreated?.Invoke(capture);
        return capture;
    }

    /// <summary>A capture for <paramref name="input"/>.</summary>
    public FrameSource CreateCapture(SourceUri source, ManifestInput input, FrameSequence? sequence = null) =>
        CreateCapture(source, CaptureGeometry.Of(input), sequence);

    /// <summary>
    /// The pipeline for <paramref name="initial"/> (owned by the host from now on) on <paramref name="source"/>: a capture
    /// at the model's geometry (not started: <see cref="ModelHost.StartCapture"/>) and the inference loop.
    /// </summary>
    /// <param name="activate">How a model handed to <see cref="ModelHost.SwapAsync"/> becomes an <see cref="ActiveModel"/>
    /// (its drift observer); default: <see cref="Activate"/> without drift.</param>
    public ModelHost Build(SourceUri source, ActiveModel initial, PipelineMetrics metrics, IReadOnlyList<IResultSink> sinks,
        Func<LoadedModel, ActiveModel>? activate = null, IReadOnlyList<IFrameObserver>? observers = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(initial);
        var sequence = new FrameSequence();
        var geometry = CaptureGeometry.Of(initial.Model.Manifest.Input);
#pragma warning disable IDISP001 // the pipeline owns the capture (it replaces and disposes it), the host disposes the last one
        var capture = CreateCapture(source, geometry, sequence);
#pragma warning restore IDISP001
        var pipeline = new InferencePipeline(capture.Slot, capture, initial, metrics, sinks, _loggerFactory.CreateLogger<InferencePipeline>(), observers);
        return new ModelHost(this, source, pipeline, geometry, sequence, activate ?? (m => Activate(m)), _time, _loggerFactory.CreateLogger<ModelHost>());
    }
}
