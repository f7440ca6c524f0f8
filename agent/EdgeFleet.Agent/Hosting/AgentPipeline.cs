using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Hosting;

/// <summary>
/// The running pipeline's parts, shared by the hosted services: the model, the frame source, the hand-over slot
/// and the metrics. Built once at start (<see cref="Initialize"/>), which fails the start with a clear message
/// if the runtime, the model or its self-test is not usable.
/// </summary>
public sealed partial class AgentPipeline : IDisposable
{
    private readonly AgentOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly List<IResultSink> _sinks = [];
    private LoadedModel? _model;
    private FrameSource? _source;
    private InferencePipeline? _pipeline;
    private LatestFrameSlot? _slot;

    public AgentPipeline(IOptions<AgentOptions> options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<AgentPipeline>();
        Metrics = new PipelineMetrics(_options.Pipeline.MetricsWindow);
    }

    public PipelineMetrics Metrics { get; }

    public LatestResult LatestResult { get; } = new();

    public LoadedModel Model => _model ?? throw new InvalidOperationException("The pipeline is not initialised");

    public FrameSource Source => _source ?? throw new InvalidOperationException("The pipeline is not initialised");

    public InferencePipeline Pipeline => _pipeline ?? throw new InvalidOperationException("The pipeline is not initialised");

    public bool IsInitialized => _pipeline is not null;

    /// <summary>Adds a result sink; call before the services start.</summary>
    public void AddSink(IResultSink sink) => _sinks.Add(sink);

    public void Initialize()
    {
        if (_pipeline is not null)
        {
            return;
        }

        var runtime = OnnxRuntime.Load(_options.Inference.OrtLibraryPath);
        LogRuntime(_logger, runtime.Version, runtime.LibraryPath, string.Join(", ", runtime.AvailableProviders));
        var model = LoadedModel.Load(runtime, _options.Model.Path, _options.Inference.ToSessionSettings(_options.StateDirectory));
        try
        {
            foreach (var note in model.Session.ProviderNotes)
            {
                LogProviderNote(_logger, note);
            }

            LogModel(_logger, model.Manifest.Name, model.Manifest.Version, model.Manifest.Task.ToString().ToLowerInvariant(),
                model.Session.ActiveProvider.ToString(), $"{model.InputWidth}x{model.InputHeight}");
            if (_options.Model.SelfTest && model.RunSelfTest() is { } failure)
            {
                throw new ModelLoadException($"Model {model.Path} failed its self-test: {failure}. It will not serve frames.");
            }

            var source = SourceUri.Parse(_options.Source.Uri);
            var pool = new FramePool(model.InputWidth, model.InputHeight);
            var slot = new LatestFrameSlot(pool, dropOld: source.Realtime);
            var command = CaptureCommand.Create(source, model.InputWidth, model.InputHeight, model.Manifest.Input.Resize,
                _options.Source.FfmpegPath, _options.Source.GstLaunchPath);
            _sinks.Insert(0, LatestResult);
#pragma warning disable IDISP003 // Initialize returns early when already initialised, so these are null here
            _source = new FrameSource(source, command, slot, _options.Source.ToSourceSettings(),
                _loggerFactory.CreateLogger<FrameSource>());
            _pipeline = new InferencePipeline(slot, model, Metrics, _sinks, _loggerFactory.CreateLogger<InferencePipeline>());
            _slot = slot;
            _model = model;
#pragma warning restore IDISP003
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public MetricsSnapshot Snapshot() =>
        Metrics.Snapshot(_source?.FramesCaptured ?? 0, _slot?.Dropped ?? 0, _source?.Restarts ?? 0, _source?.Stalls ?? 0);

    public void Dispose()
    {
        _source?.Dispose();
        _model?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ONNX Runtime {Version} loaded from {Path}; providers in this build: {Providers}")]
    private static partial void LogRuntime(ILogger logger, string version, string path, string providers);

    [LoggerMessage(Level = LogLevel.Information, Message = "Execution provider: {Note}")]
    private static partial void LogProviderNote(ILogger logger, string note);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} {Version} ({Task}) ready on {Provider}, input {Size}")]
    private static partial void LogModel(ILogger logger, string name, string version, string task, string provider, string size);
}
