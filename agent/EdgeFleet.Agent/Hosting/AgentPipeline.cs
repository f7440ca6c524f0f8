using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Ota;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Drift;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Hosting;

/// <summary>
/// The running pipeline's parts, shared by the hosted services: the active model, the frame source, the metrics, and
/// the model swap (<see cref="IModelHost"/>, for the OTA service). Built once at start (<see cref="Initialize"/>) by
/// <see cref="PipelineBuilder"/>, which fails the start with a clear message if the runtime, the model or its self-test
/// is not usable.
/// </summary>
public sealed partial class AgentPipeline : IModelHost, IDisposable
{
    private readonly AgentOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly List<IResultSink> _sinks = [];
    private readonly List<IFrameObserver> _observers = [];
    private readonly DeviceReporter _reporter;
    private readonly TimeProvider _time;
    private readonly OtaBootstrap _ota;
    private ModelHost? _host;

    public AgentPipeline(IOptions<AgentOptions> options, DeviceReporter reporter, OtaBootstrap ota, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _ota = ota;
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _reporter = reporter;
        _time = time;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<AgentPipeline>();
        Metrics = new PipelineMetrics(_options.Pipeline.MetricsWindow);
    }

    public event Action<ActiveModel>? Activated
    {
        add => Host.Activated += value;
        remove => Host.Activated -= value;
    }

    public PipelineMetrics Metrics { get; }

    public LatestResult LatestResult { get; } = new();

    /// <summary>The swap and the pipeline's parts.</summary>
    public ModelHost Host => _host ?? throw new InvalidOperationException("The pipeline is not initialised");

    public ActiveModel Active => Host.Active;

    public OnnxRuntime Runtime => Host.Runtime;

    public SessionSettings SessionSettings => Host.SessionSettings;

    /// <summary>The active model.</summary>
    public LoadedModel Model => Host.Active.Model;

    /// <summary>The capture feeding the pipeline now (a swap to another input size may replace it).</summary>
    public FrameSource Source => Host.Source;

    public InferencePipeline Pipeline => Host.Pipeline;

    public bool IsInitialized => _host is not null;

    /// <summary>The active model's drift observer; null when drift monitoring is off.</summary>
    public DriftObserver? Drift => _host?.Active.Drift;

    /// <summary>Samples results for the <c>results</c> topic.</summary>
    public ResultsSampler? Sampler { get; private set; }

    public ModelRef ModelRef => Host.Active.Ref;

    /// <summary>Adds a result sink; call before the services start.</summary>
    public void AddSink(IResultSink sink) => _sinks.Add(sink);

    /// <summary>Adds an observer of each frame's model-sized pixels (inference thread); call before the services start.</summary>
    public void AddObserver(IFrameObserver observer) => _observers.Add(observer);

    public string? CheckCapturable(ManifestInput input) => Host.CheckCapturable(input);

    public Task<ActiveModel> SwapAsync(LoadedModel next, CancellationToken cancellationToken) => Host.SwapAsync(next, cancellationToken);

    public Task<ActiveModel> SwapBackAsync(ActiveModel previous, CancellationToken cancellationToken) =>
        Host.SwapBackAsync(previous, cancellationToken);

    public SessionSettings ShadowSessionSettings => Host.ShadowSessionSettings;

    public void StartShadow(LoadedModel candidate, ShadowOptions options) => Host.StartShadow(candidate, options);

    public ShadowStats StopShadow() => Host.StopShadow();

    public ShadowStats? ShadowSnapshot() => _host?.ShadowSnapshot();

    public void StartCapture() => Host.StartCapture();

    public void StopCapture() => _host?.StopCapture();

    public void Initialize()
    {
        if (_host is not null)
        {
            return;
        }

        var builder = new PipelineBuilder(_options.Source, _options.Inference, _options.StateDirectory, _loggerFactory, _time)
        {
            StatsWindow = _options.Pipeline.MetricsWindow,
        };
        builder.CaptureCreated += OnCaptureCreated;
        var runtime = builder.Runtime;
        LogRuntime(_logger, runtime.Version, runtime.LibraryPath, string.Join(", ", runtime.AvailableProviders));
#pragma warning disable IDISP001 // moves into the active model, owned by the host; disposed here only if the start fails
        var (model, why) = LoadStartupModel(builder);
#pragma warning restore IDISP001
        try
        {
            foreach (var note in model.Session.ProviderNotes)
            {
                LogProviderNote(_logger, note);
            }

            LogModel(_logger, model.Manifest.Name, model.Manifest.Version, model.Manifest.Task.ToString().ToLowerInvariant(),
                model.Session.ActiveProvider.ToString(), $"{model.InputWidth}x{model.InputHeight}", why);
            var modelRef = new ModelRef(model.Manifest.Name, model.Manifest.Version);
            _reporter.Event("model.loaded", "info", $"{modelRef.Name} {modelRef.Version} ready on {model.Session.ActiveProvider}",
                new Dictionary<string, string> { ["model"] = modelRef.Name, ["version"] = modelRef.Version, ["selfTest"] = _options.Model.SelfTest ? "passed" : "skipped" });
            if (!string.IsNullOrEmpty(_options.Mqtt.Host))
            {
                Sampler = new ResultsSampler(_options.DeviceId!, TimeSpan.FromSeconds(_options.Telemetry.Results.IntervalSeconds),
                    _options.Telemetry.Results.Enabled, _time);
                _sinks.Add(Sampler);
            }

            _sinks.Insert(0, LatestResult);
            var source = SourceUri.Parse(_options.Source.Uri);
#pragma warning disable IDISP001 // the host owns it
            var active = Activate(builder, model, _options.Drift.ReferenceProfile);
#pragma warning restore IDISP001
#pragma warning disable IDISP003 // Initialize returns early when already initialised, so this is null here
            _host = builder.Build(source, active, Metrics, _sinks, m => Activate(builder, m, null), _observers);
#pragma warning restore IDISP003
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The model to start on: the committed over-the-air model, else the previous one, else Agent:Model:Path (each
    /// hash-checked and, when it has one, self-tested); a model that fails is skipped with a <c>model.fallback</c> event.
    /// </summary>
    private (LoadedModel Model, string Why) LoadStartupModel(PipelineBuilder builder)
    {
        var skipped = new List<string>();
        var candidates = _ota.StartupModels(_options.Model.Path, skipped);
        Exception? last = null;
        foreach (var candidate in candidates)
        {
            var configured = candidate == candidates[^1] && candidate.Path == _options.Model.Path;
            LoadedModel? model = null;
            try
            {
                model = builder.LoadModel(candidate.Path, selfTest: false);
                if ((configured ? _options.Model.SelfTest : model.Manifest.SelfTest is not null) && model.RunSelfTest() is { } failure)
                {
                    throw new ModelLoadException($"Model {model.Path} failed its self-test: {failure}. It will not serve frames.");
                }

                foreach (var note in skipped)
                {
                    LogFallback(_logger, note);
                    _reporter.Event("model.fallback", "warning", note);
                }

                return (model, candidate.Why);
            }
            catch (Exception ex) when (!configured && ex is ModelLoadException or OnnxRuntimeException)
            {
                model?.Dispose();
                skipped.Add($"{candidate.Path} ({candidate.Why}) cannot be used: {ex.Message}");
                last = ex;
            }
            catch
            {
                model?.Dispose();
                throw;
            }
        }

        throw last ?? new ModelLoadException("no model to start on");
    }

    private void OnCaptureCreated(FrameSource source) =>
        source.Events += e => _reporter.Event(e.Type, e.Type is "camera.started" or "camera.ended" ? "info" : "warning", e.Message,
            e.RestartIn is { } restartIn
                ? new Dictionary<string, string> { ["restartInSeconds"] = restartIn.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) }
                : null);

    /// <summary>The model with its drift observer: the configured profile for the configured model, else <c>NAME.profile.json</c> beside it.</summary>
    private ActiveModel Activate(PipelineBuilder builder, LoadedModel model, string? profilePath)
    {
        var drift = _options.Drift.Enabled
            ? CreateDriftObserver(model, new ModelRef(model.Manifest.Name, model.Manifest.Version), profilePath ?? DriftProfiles.PathFor(model.Path))
            : null;
        return builder.Activate(model, drift);
    }

    private DriftObserver CreateDriftObserver(LoadedModel model, ModelRef modelRef, string profilePath)
    {
        var d = _options.Drift;
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

    public MetricsSnapshot Snapshot() => _host is { Pipeline: var p }
        ? Metrics.Snapshot(p.FramesCaptured, p.FramesDropped, p.SourceRestarts, p.SourceStalls)
        : Metrics.Snapshot(0, 0, 0, 0);

    public void Dispose() => _host?.Dispose();

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} {Version} ({Task}) ready on {Provider}, input {Size} ({Why})")]
    private static partial void LogModel(ILogger logger, string name, string version, string task, string provider, string size, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Start model skipped: {Note}")]
    private static partial void LogFallback(ILogger logger, string note);
}
