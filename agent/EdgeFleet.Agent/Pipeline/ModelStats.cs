using System.Diagnostics;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>One model's quality and speed over a span of frames (since activation, or the most recent window).</summary>
/// <param name="Frames">Frames that produced a result.</param>
/// <param name="Errors">Frames that failed (runtime or decoding error).</param>
/// <param name="NonFinite">Frames whose output held NaN or infinity.</param>
/// <param name="LatencyP50Ms">Inference (session run) latency, median, ms; 0 without frames.</param>
/// <param name="LatencyP95Ms">Inference latency, 95th percentile, ms (since activation: from a log histogram, ±2 %).</param>
/// <param name="MeanConfidence">Classification: mean top-1 probability. Detection: mean over the frames with boxes of
/// their kept boxes' mean score. Null when no frame counted.</param>
/// <param name="ConfidenceFrames">Frames the confidence is over (detection: the frames that had boxes).</param>
public sealed record ModelStatsWindow(long Frames, long Errors, long NonFinite, double LatencyP50Ms, double LatencyP95Ms,
    double? MeanConfidence, long ConfidenceFrames)
{
    /// <summary>Share of frames (results and errors) with a NaN/Inf output.</summary>
    public double NonFiniteShare => Frames + Errors == 0 ? 0 : NonFinite / (double)(Frames + Errors);

    /// <summary>Share of frames that failed.</summary>
    public double ErrorShare => Frames + Errors == 0 ? 0 : Errors / (double)(Frames + Errors);
}

/// <summary>An immutable copy of <see cref="ModelStats"/>.</summary>
public sealed record ModelStatsSnapshot(ModelRef Model, DateTimeOffset Since, ModelStatsWindow SinceActivation, ModelStatsWindow Recent,
    int RecentCapacity);

/// <summary>
/// Per active model: frames, errors, NaN/Inf outputs, inference latency and confidence, since activation and over
/// the most recent <c>window</c> frames. The inference thread records (allocation-free, a short lock); any thread
/// may take a <see cref="Snapshot"/>. OTA probation compares a new model's since-activation figures with the
/// previous model's recent window taken just before the swap.
/// </summary>
public sealed class ModelStats
{
    // Log-spaced latency buckets for "since activation" (unbounded frames, bounded memory): 2 % wide from 1 µs to ~30 s.
    private const double BucketBase = 1.02;
    private const double MinMs = 0.001;
    private static readonly int Buckets = (int)Math.Ceiling(Math.Log(30_000 / MinMs) / Math.Log(BucketBase)) + 1;

    private const byte FlagError = 1;
    private const byte FlagNonFinite = 2;
    private const byte FlagConfidence = 4;

    private readonly Lock _lock = new();
    private readonly ModelRef _model;
    private readonly long[] _histogram = new long[Buckets];
    private readonly double[] _ringLatency;
    private readonly float[] _ringConfidence;
    private readonly byte[] _ringFlags;
    private readonly double[] _scratch;
    private int _next;
    private int _filled;
    private long _frames;
    private long _errors;
    private long _nonFinite;
    private double _confidenceSum;
    private long _confidenceFrames;
    private DateTimeOffset _since;

    public ModelStats(ModelRef model, DateTimeOffset since, int window = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 2);
        _model = model;
        _since = since;
        _ringLatency = new double[window];
        _ringConfidence = new float[window];
        _ringFlags = new byte[window];
        _scratch = new double[window];
    }

    public ModelRef Model => _model;

    public int Window => _ringLatency.Length;

    /// <summary>When the model was (first) activated.</summary>
    public DateTimeOffset Since
    {
        get
        {
            lock (_lock)
            {
                return _since;
            }
        }
    }

    public long Frames
    {
        get
        {
            lock (_lock)
            {
                return _frames;
            }
        }
    }

    internal void SetSince(DateTimeOffset since)
    {
        lock (_lock)
        {
            _since = since;
        }
    }

    /// <summary>
    /// The frame's confidence: classification the top-1 probability, detection the mean box score (frames without boxes
    /// and frames with NaN/Inf outputs have none).
    /// </summary>
    public static bool TryConfidence(InferenceResult result, out float confidence)
    {
        ArgumentNullException.ThrowIfNull(result);
        confidence = 0f;
        if (result.NonFinite)
        {
            return false;
        }

        if (result.TopCount > 0)
        {
            confidence = result.TopScores[0];
            return true;
        }

        if (result.DetectionCount == 0)
        {
            return false;
        }

        var sum = 0f;
        foreach (ref readonly var d in result.Detections)
        {
            sum += d.Score;
        }

        confidence = sum / result.DetectionCount;
        return true;
    }

    /// <summary>Records a frame that produced <paramref name="result"/>; <paramref name="inferenceTicks"/> in Stopwatch ticks.</summary>
    public void RecordFrame(long inferenceTicks, InferenceResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var ms = inferenceTicks * 1000.0 / Stopwatch.Frequency;
        var flags = result.NonFinite ? FlagNonFinite : (byte)0;
        if (TryConfidence(result, out var confidence))
        {
            flags |= FlagConfidence;
        }

        lock (_lock)
        {
            _frames++;
            if ((flags & FlagNonFinite) != 0)
            {
                _nonFinite++;
            }

            if ((flags & FlagConfidence) != 0)
            {
                _confidenceSum += confidence;
                _confidenceFrames++;
            }

            _histogram[Bucket(ms)]++;
            Push(ms, confidence, flags);
        }
    }

    public void RecordError()
    {
        lock (_lock)
        {
            _errors++;
            Push(0, 0, FlagError);
        }
    }

    public ModelStatsSnapshot Snapshot()
    {
        lock (_lock)
        {
            var (p50, p95) = HistogramPercentiles();
            var total = new ModelStatsWindow(_frames, _errors, _nonFinite, p50, p95,
                _confidenceFrames == 0 ? null : _confidenceSum / _confidenceFrames, _confidenceFrames);
            return new ModelStatsSnapshot(_model, _since, total, RecentWindow(), _ringLatency.Length);
        }
    }

    private void Push(double ms, float confidence, byte flags)
    {
        var i = _next;
        _ringLatency[i] = ms;
        _ringConfidence[i] = confidence;
        _ringFlags[i] = flags;
        _next = (i + 1) % _ringLatency.Length;
        if (_filled < _ringLatency.Length)
        {
            _filled++;
        }
    }

    private ModelStatsWindow RecentWindow()
    {
        long frames = 0, errors = 0, nonFinite = 0, confidenceFrames = 0;
        double confidence = 0;
        for (var k = 0; k < _filled; k++)
        {
            var flags = _ringFlags[k];
            if ((flags & FlagError) != 0)
            {
                errors++;
                continue;
            }

            _scratch[frames++] = _ringLatency[k];
            if ((flags & FlagNonFinite) != 0)
            {
                nonFinite++;
            }

            if ((flags & FlagConfidence) != 0)
            {
                confidence += _ringConfidence[k];
                confidenceFrames++;
            }
        }

        double p50 = 0, p95 = 0;
        if (frames > 0)
        {
            var sorted = _scratch.AsSpan(0, (int)frames);
            sorted.Sort();
            p50 = PipelineMetrics.Rank(sorted, 0.50);
            p95 = PipelineMetrics.Rank(sorted, 0.95);
        }

        return new ModelStatsWindow(frames, errors, nonFinite, p50, p95, confidenceFrames == 0 ? null : confidence / confidenceFrames,
            confidenceFrames);
    }

    private (double P50, double P95) HistogramPercentiles()
    {
        if (_frames == 0)
        {
            return (0, 0);
        }

        var r50 = (long)Math.Ceiling(0.50 * _frames);
        var r95 = (long)Math.Ceiling(0.95 * _frames);
        double p50 = 0, p95 = 0;
        long seen = 0;
        for (var b = 0; b < _histogram.Length; b++)
        {
            var before = seen;
            seen += _histogram[b];
            if (before < r50 && seen >= r50)
            {
                p50 = BucketValue(b);
            }

            if (before < r95 && seen >= r95)
            {
                p95 = BucketValue(b);
                break;
            }
        }

        return (p50, p95);
    }

    private static int Bucket(double ms) =>
        ms <= MinMs ? 0 : Math.Min(Buckets - 1, (int)Math.Ceiling(Math.Log(ms / MinMs) / Math.Log(BucketBase)));

    /// <summary>The bucket's upper bound: a percentile is never reported lower than it was.</summary>
    private static double BucketValue(int bucket) => MinMs * Math.Pow(BucketBase, bucket);
}
