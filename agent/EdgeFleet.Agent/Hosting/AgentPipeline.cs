using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Drift;
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
    private readonly DeviceReporter _reporter;
    private readonly TimeProvider _time;
    private LoadedModel? _model;
    private FrameSource? _source;
    private InferencePipeline? _pipeline;
    private LatestFrameSlot? _slot;

    public AgentPipeline(IOptions<AgentOptions> options, DeviceReporter reporter, TimeProvider time, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _reporter = reporter;
        _time = time;
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

    /// <summary>The drift observer; null when drift monitoring is off.</summary>
    public DriftObserver? Drift { get; private set; }

    /// <summary>Samples results for the <c>results</c> topic.</summary>
    public ResultsSampler? Sampler { get; private set; }

    public ModelRef ModelRef => new(Model.Manifest.Name, Model.Manifest.Version);

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

            var modelRef = new ModelRef(model.Manifest.Name, model.Manifest.Version);
            _reporter.Event("model.loaded", "info", $"{modelRef.Name} {modelRef.Version} ready on {model.Session.ActiveProvider}",
                new Dictionary<string, string> { ["model"] = modelRef.Name, ["version"] = modelRef.Version, ["selfTest"] = _options.Model.SelfTest ? "passed" : "skipped" });
            var observers = new List<IFrameObserver>();
            if (_options.Drift.Enabled)
            {
                Drift = CreateDriftObserver(model, modelRef);
                observers.Add(Drift);
                _sinks.Add(Drift);
            }

            if (!string.IsNullOrEmpty(_options.Mqtt.Host))
            {
                Sampler = new ResultsSampler(_options.DeviceId!, TimeSpan.FromSeconds(_options.Telemetry.Results.IntervalSeconds),
                    _options.Telemetry.Results.Enabled, _time);
                _sinks.Add(Sampler);
            }

            var source = SourceUri.Parse(_options.Source.Uri);
            var pool = new FramePool(model.InputWidth, model.InputHeight);
            var slot = new LatestFrameSlot(pool, dropOld: source.Realtime);
            var command = CaptureCommand.Create(source, model.InputWidth, model.InputHeight, model.Manifest.Input.Resize,
                _options.Source.FfmpegPath, _options.Source.GstLaunchPath);
            _sinks.Insert(0, LatestResult);
#pragma warning disable IDISP003 // Initialize returns early when already initialised, so these are null here
            _source = new FrameSource(source, command, slot, _options.Source.ToSourceSettings(),
                _loggerFactory.CreateLogger<FrameSource>(), _time);
            _source.Events += e => _reporter.Event(e.Type, e.Type is "camera.started" or "camera.ended" ? "info" : "warning", e.Message,
                e.RestartIn is { } restartIn
                    ? new Dictionary<string, string> { ["restartInSeconds"] = restartIn.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) }
                    : null);
            _pipeline = new InferencePipeline(slot, model, Metrics, _sinks, _loggerFactory.CreateLogger<InferencePipeline>(), observers);
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

    private DriftObserver CreateDriftObserver(LoadedModel model, ModelRef modelRef)
    {
        var d = _options.Drift;
        var profilePath = d.ReferenceProfile ?? DriftProfiles.PathFor(model.Path);
        DriftProfile? reference = null;
        if (File.Exists(profilePath))
        {
            reference = DriftProfiles.Load(profilePath);
            LogProfile(_logger, reference.Id, profilePath);
        }
        else
        {
            LogNoProfile(_logger, d.WindowFrames);
        }

        var monitorOptions = new DriftMonitorOptions
        {
            WindowFrames = d.WindowFrames,
            WindowSeconds = d.WindowSeconds,
            ReservoirSize = d.ReservoirSize,
            Thresholds = new DriftThresholds { Bins = d.Bins, PsiWarn = d.PsiWarn, PsiAlert = d.PsiAlert, Alpha = d.Alpha },
        };
        var logger = _loggerFactory.CreateLogger<DriftObserver>();
        return new DriftObserver(model.Manifest, monitorOptions, reference, _time, report =>
        {
            if (report.IsNewBaseline)
            {
                _reporter.Event("drift.baseline", "info", $"window of {report.Frames} frames is the new drift baseline ({report.ReferenceId})");
                return;
            }

            LogDrift(_logger, report.Severity.ToString().ToLowerInvariant(), report.Frames,
                string.Join(", ", report.Features.Where(f => f.Severity != DriftSeverity.None).Select(f => $"{f.Name} PSI {f.Psi:0.00}")));
            _reporter.Drift(report, modelRef);
            if (report.Severity != DriftSeverity.None)
            {
                _reporter.Event($"drift.{report.Severity.ToString().ToLowerInvariant()}", report.Severity == DriftSeverity.Alert ? "error" : "warning",
                    $"drift {report.Severity.ToString().ToLowerInvariant()} against {report.ReferenceId}");
            }
        }, logger);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Drift reference profile {Id} from {Path}")]
    private static partial void LogProfile(ILogger logger, string id, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "No drift reference profile: the first window of {Frames} frames becomes the baseline")]
    private static partial void LogNoProfile(ILogger logger, int frames);

    [LoggerMessage(Level = LogLevel.Information, Message = "Drift window of {Frames} frames: {Severity} {Features}")]
    private static partial void LogDrift(ILogger logger, string severity, long frames, string features);

    [LoggerMessage(Level = LogLevel.Information, Message = "Execution provider: {Note}")]
    private static partial void LogProviderNote(ILogger logger, string note);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} {Version} ({Task}) ready on {Provider}, input {Size}")]
    private static partial void LogModel(ILogger logger, string name, string version, string task, string provider, string size);
}
