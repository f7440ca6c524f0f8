using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Drift;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// Feeds the drift monitor on the inference thread: input features from each frame's pixels, output features from
/// each result (classification: top-1 confidence, entropy, predicted class; detection: boxes per frame, mean box
/// confidence, mean box area as a share of the input, box classes). Reports each completed window.
/// </summary>
public sealed partial class DriftObserver : IFrameObserver, IResultSink
{
    private readonly DriftMonitor _monitor;
    private readonly Action<DriftReport> _onReport;
    private long _evaluationTicks;
    private long _windows;
    private readonly double[] _frameFeatures = new double[FrameFeatures.Names.Count];
    private readonly FrameFeatures _extractor = new();
    private readonly int _first;
    private readonly float _inputArea;
    private long _ticks;
    private long _frames;
    private volatile bool _rebaseline;
    private int _worst = -1;

    private readonly ILogger _logger;

    public DriftObserver(ModelManifest manifest, DriftMonitorOptions options, DriftProfile? reference, TimeProvider time,
        Action<DriftReport> onReport, ILogger logger)
    {
        _logger = logger;
        ArgumentNullException.ThrowIfNull(manifest);
        _monitor = new DriftMonitor(Features(manifest), options, reference, time);
        _onReport = onReport;
        _first = 0;
        _inputArea = manifest.Input.Width * (float)manifest.Input.Height;
    }

    public DriftMonitor Monitor => _monitor;

    /// <summary>The worst severity of the windows this observer reported (baselines excluded); null before the first.</summary>
    public EdgeFleet.Contracts.Messaging.DriftSeverity? WorstSeverity => Volatile.Read(ref _worst) is var w and >= 0 ? (EdgeFleet.Contracts.Messaging.DriftSeverity)w : null;

    /// <summary>Mean cost of the drift work per frame, in microseconds.</summary>
    public double MicrosecondsPerFrame => _frames == 0 ? 0 : Stopwatch.GetElapsedTime(0, _ticks).TotalMicroseconds / _frames;

    /// <summary>The next window becomes the baseline (safe from any thread).</summary>
    public void Rebaseline() => _rebaseline = true;

    /// <summary>Mean time to compute one window's statistics (off the inference thread), in milliseconds.</summary>
    public double MillisecondsPerWindow => Interlocked.Read(ref _windows) == 0 ? 0
        : Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _evaluationTicks)).TotalMilliseconds / Interlocked.Read(ref _windows);

    private void Evaluate(PendingWindow window)
    {
        try
        {
            var start = Stopwatch.GetTimestamp();
            var report = window.Evaluate();
            Interlocked.Add(ref _evaluationTicks, Stopwatch.GetTimestamp() - start);
            Interlocked.Increment(ref _windows);
            if (!report.IsNewBaseline)
            {
                var severity = (int)report.Severity;
                int seen;
                while ((seen = Volatile.Read(ref _worst)) < severity && Interlocked.CompareExchange(ref _worst, severity, seen) != seen)
                {
                }
            }

            _onReport(report);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogWindowFailed(_logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Computing a drift window failed")]
    private static partial void LogWindowFailed(ILogger logger, Exception exception);

    public void ResetCost()
    {
        _ticks = 0;
        _frames = 0;
    }

    /// <summary>The features watched for a model's task.</summary>
    public static IReadOnlyList<FeatureDefinition> Features(ModelManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var features = FrameFeatures.Names.Select(n => new FeatureDefinition(n, FeatureKind.Numeric)).ToList();
        var classes = Math.Max(manifest.Labels.Count, 1);
        if (manifest.Task == ModelTask.Classification)
        {
            features.Add(new FeatureDefinition("top1_confidence", FeatureKind.Numeric));
            features.Add(new FeatureDefinition("entropy", FeatureKind.Numeric));
            features.Add(new FeatureDefinition("top1_class", FeatureKind.Categorical, Math.Min(classes, 4096)));
        }
        else
        {
            features.Add(new FeatureDefinition("box_count", FeatureKind.Numeric));
            features.Add(new FeatureDefinition("box_confidence_mean", FeatureKind.Numeric));
            features.Add(new FeatureDefinition("box_area_mean", FeatureKind.Numeric));
            features.Add(new FeatureDefinition("box_class", FeatureKind.Categorical, Math.Min(classes, 4096)));
        }

        return features;
    }

    public void OnFrame(Frame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var start = Stopwatch.GetTimestamp();
        _extractor.Compute(frame.Data, frame.Width, frame.Height, _frameFeatures);
        for (var i = 0; i < _frameFeatures.Length; i++)
        {
            _monitor.Add(_first + i, _frameFeatures[i]);
        }

        _ticks += Stopwatch.GetTimestamp() - start;
    }

    public void OnResult(InferenceResult result, LoadedModel model)
    {
        ArgumentNullException.ThrowIfNull(result);
        var start = Stopwatch.GetTimestamp();
        var i = FrameFeatures.Names.Count;
        if (result.NonFinite)
        {
            // NaN outputs are a model failure, not drift: they are counted by the pipeline and kept out of the statistics.
        }
        else if (result.DetectionCount == 0 && result.TopCount > 0)
        {
            _monitor.Add(i, result.TopScores[0]);
            _monitor.Add(i + 1, result.Entropy);
            _monitor.AddCategory(i + 2, result.TopClassIds[0]);
        }
        else if (result.TopCount == 0)
        {
            var boxes = result.Detections;
            _monitor.Add(i, boxes.Length);
            if (boxes.Length > 0)
            {
                double score = 0, area = 0;
                foreach (var b in boxes)
                {
                    score += b.Score;
                    area += b.Area;
                    _monitor.AddCategory(i + 3, b.ClassId);
                }

                _monitor.Add(i + 1, score / boxes.Length);
                _monitor.Add(i + 2, area / boxes.Length / _inputArea);
            }
        }

        if (_rebaseline)
        {
            _rebaseline = false;
            _monitor.Rebaseline();
        }

        var window = _monitor.EndFrameDeferred();
        _ticks += Stopwatch.GetTimestamp() - start;
        _frames++;
        if (window is not null)
        {
            // The statistics of a window take milliseconds: off the inference thread.
            ThreadPool.QueueUserWorkItem(static s => s.observer.Evaluate(s.window), (observer: this, window), preferLocal: false);
        }
    }
}
