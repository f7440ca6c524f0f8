using System.Diagnostics;

namespace EdgeFleet.Agent.Pipeline;

public enum Stage
{
    CaptureWait,
    Preprocess,
    Inference,
    Postprocess,
    EndToEnd,
}

/// <summary>p50/p95/p99 of one stage in milliseconds, over the sliding window.</summary>
public readonly record struct Percentiles(double P50, double P95, double P99, double Mean, int Count);

/// <summary>A point-in-time copy of the pipeline's counters and latency percentiles.</summary>
public sealed record MetricsSnapshot
{
    public required double Fps { get; init; }

    public required long FramesCaptured { get; init; }

    public required long FramesInferred { get; init; }

    public required long FramesDropped { get; init; }

    /// <summary>Frames a capture trigger let pass without inference (0 without a trigger).</summary>
    public long FramesSkipped { get; init; }

    public required long Errors { get; init; }

    public required long NonFiniteOutputs { get; init; }

    public required long SourceRestarts { get; init; }

    public required long SourceStalls { get; init; }

    public required IReadOnlyDictionary<Stage, Percentiles> Stages { get; init; }
}

/// <summary>
/// Per-stage latencies in fixed ring buffers (the last <c>window</c> frames) and frame counters. Recording is
/// allocation-free and takes a short lock; snapshots sort a copy off the hot path.
/// </summary>
public sealed class PipelineMetrics
{
    private static readonly Stage[] AllStages = Enum.GetValues<Stage>();

    private readonly Lock _lock = new();
    private readonly int _window;
    private readonly double[][] _samples;
    private readonly long[] _completions;
    private readonly double[] _scratch;
    private int _next;
    private int _filled;
    private long _inferred;
    private long _errors;
    private long _skipped;
    private long _nonFinite;
    private long _firstCompletion;
    private double _confidenceSum;
    private long _confidenceCount;

    public PipelineMetrics(int window = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 2);
        _window = window;
        _samples = AllStages.Select(_ => new double[window]).ToArray();
        _completions = new long[window];
        _scratch = new double[window];
    }

    public long FramesInferred => Interlocked.Read(ref _inferred);

    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Frames taken from the capture but not inferred because a capture trigger did not ask for them.</summary>
    public long FramesSkipped => Interlocked.Read(ref _skipped);

    /// <summary>Frames the loop took from the capture and dealt with: inferred or skipped by the trigger (liveness).</summary>
    public long FramesHandled => FramesInferred + FramesSkipped;

    public long NonFiniteOutputs => Interlocked.Read(ref _nonFinite);

    /// <summary>Records one inferred frame; every time is a <see cref="Stopwatch"/> timestamp.</summary>
    public void RecordFrame(long waitStart, long dequeued, long preprocessed, long inferred, long completed, long captured, bool nonFinite) =>
        RecordFrame(waitStart, dequeued, preprocessed, preprocessed, inferred, completed, captured, nonFinite);

    /// <summary>Records one inferred frame; between preprocessing and inference the frame observers (drift) ran.</summary>
    public void RecordFrame(long waitStart, long dequeued, long preprocessed, long inferenceStart, long inferred, long completed, long captured,
        bool nonFinite)
    {
        lock (_lock)
        {
            var i = _next;
            _samples[(int)Stage.CaptureWait][i] = Ms(dequeued - waitStart);
            _samples[(int)Stage.Preprocess][i] = Ms(preprocessed - dequeued);
            _samples[(int)Stage.Inference][i] = Ms(inferred - inferenceStart);
            _samples[(int)Stage.Postprocess][i] = Ms(completed - inferred);
            _samples[(int)Stage.EndToEnd][i] = Ms(completed - captured);
            _completions[i] = completed;
            if (_inferred == 0)
            {
                _firstCompletion = completed;
            }

            _next = (i + 1) % _window;
            if (_filled < _window)
            {
                _filled++;
            }

            _inferred++;
            if (nonFinite)
            {
                _nonFinite++;
            }
        }
    }

    public void RecordError() => Interlocked.Increment(ref _errors);

    public void RecordSkipped() => Interlocked.Increment(ref _skipped);

    /// <summary>Adds one frame's confidence (top-1 probability or mean box score) to the running interval mean.</summary>
    public void RecordConfidence(float confidence)
    {
        lock (_lock)
        {
            _confidenceSum += confidence;
            _confidenceCount++;
        }
    }

    /// <summary>The mean confidence since the previous call (null when no frame had one), and starts a new interval.</summary>
    public double? TakeMeanConfidence()
    {
        lock (_lock)
        {
            var mean = _confidenceCount == 0 ? (double?)null : _confidenceSum / _confidenceCount;
            _confidenceSum = 0;
            _confidenceCount = 0;
            return mean;
        }
    }

    /// <summary>Clears the latency window (counters keep counting), e.g. after warm-up.</summary>
    public void ResetWindow()
    {
        lock (_lock)
        {
            _next = 0;
            _filled = 0;
        }
    }

    public MetricsSnapshot Snapshot(long captured, long dropped, long restarts, long stalls)
    {
        lock (_lock)
        {
            var stages = new Dictionary<Stage, Percentiles>();
            foreach (var stage in AllStages)
            {
                stages[stage] = Compute(_samples[(int)stage]);
            }

            return new MetricsSnapshot
            {
                Fps = Fps(),
                FramesCaptured = captured,
                FramesInferred = _inferred,
                FramesDropped = dropped,
                FramesSkipped = Interlocked.Read(ref _skipped),
                Errors = Interlocked.Read(ref _errors),
                NonFiniteOutputs = _nonFinite,
                SourceRestarts = restarts,
                SourceStalls = stalls,
                Stages = stages,
            };
        }
    }

    private Percentiles Compute(double[] samples)
    {
        if (_filled == 0)
        {
            return default;
        }

        var s = _scratch.AsSpan(0, _filled);
        samples.AsSpan(0, _filled).CopyTo(s);
        s.Sort();
        double sum = 0;
        foreach (var v in s)
        {
            sum += v;
        }

        return new Percentiles(Rank(s, 0.50), Rank(s, 0.95), Rank(s, 0.99), sum / s.Length, s.Length);
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Rank(ReadOnlySpan<double> sorted, double q)
    {
        var index = (int)Math.Ceiling(q * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }

    /// <summary>
    /// Frames per second over the last <see cref="FpsHorizonSeconds"/> seconds, so the rate falls to zero when
    /// frames stop; at rates where the ring holds less than that, over the ring instead.
    /// </summary>
    private double Fps()
    {
        if (_filled == 0)
        {
            return 0;
        }

        var now = Stopwatch.GetTimestamp();
        var horizon = (long)(FpsHorizonSeconds * Stopwatch.Frequency);
        var effective = Math.Min(horizon, now - _firstCompletion);
        var inHorizon = 0;
        for (var k = 1; k <= _filled; k++)
        {
            if (now - _completions[(_next - k + _window) % _window] > horizon)
            {
                break;
            }

            inHorizon++;
        }

        if (inHorizon == _filled && _filled == _window)
        {
            var newest = _completions[(_next - 1 + _window) % _window];
            var oldest = _completions[_next];
            return newest > oldest ? (_filled - 1) * (double)Stopwatch.Frequency / (newest - oldest) : 0;
        }

        return effective <= 0 ? 0 : inHorizon * (double)Stopwatch.Frequency / effective;
    }

    public const double FpsHorizonSeconds = 5;

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
