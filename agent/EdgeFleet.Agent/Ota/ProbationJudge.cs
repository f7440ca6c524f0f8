using System.Globalization;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Ota;

/// <summary>What a model did over a stretch of frames, as probation compares it.</summary>
public sealed record ProbationFigures
{
    public long Frames { get; init; }

    public long Errors { get; init; }

    public long NonFiniteFrames { get; init; }

    /// <summary>p95 inference latency (ms); NaN when no frame was inferred.</summary>
    public double P95InferenceMs { get; init; } = double.NaN;

    /// <summary>Mean top-1 / box confidence; NaN when no frame had one.</summary>
    public double MeanConfidence { get; init; } = double.NaN;

    /// <summary>Worst drift severity reported; null when no drift window closed.</summary>
    public DriftSeverity? Drift { get; init; }

    public double ErrorShare => Frames + Errors == 0 ? 0 : (double)Errors / (Frames + Errors);

    public double NonFiniteShare => Frames == 0 ? 0 : (double)NonFiniteFrames / Frames;
}

/// <summary>The thresholds of one probation: the device's <see cref="ProbationOptions"/> with the assignment's overrides.</summary>
public sealed record ProbationSettings
{
    public long Frames { get; init; }

    public TimeSpan Duration { get; init; }

    public TimeSpan Timeout { get; init; }

    public long MinFramesToJudge { get; init; }

    public double MaxErrorShare { get; init; }

    public double MaxNonFiniteShare { get; init; }

    public double MaxLatencyRatio { get; init; }

    public double MinLatencyIncreaseMs { get; init; }

    public double MaxConfidenceDrop { get; init; }

    public DriftSeverity MaxDrift { get; init; }

    public static ProbationSettings From(ProbationOptions defaults, ProbationOverrides? overrides)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        var seconds = overrides?.Seconds ?? defaults.Seconds;
        var frames = overrides?.Frames ?? defaults.Frames;
        return new ProbationSettings
        {
            Frames = frames,
            Duration = TimeSpan.FromSeconds(seconds),
            Timeout = TimeSpan.FromSeconds(Math.Max(seconds, 10) * defaults.TimeoutFactor),
            MinFramesToJudge = Math.Max(1, Math.Min(defaults.MinFramesToJudge, Math.Max(1, frames))),
            MaxErrorShare = overrides?.MaxErrorShare ?? defaults.MaxErrorShare,
            MaxNonFiniteShare = overrides?.MaxNonFiniteShare ?? defaults.MaxNonFiniteShare,
            MaxLatencyRatio = overrides?.MaxLatencyRatio ?? defaults.MaxLatencyRatio,
            MinLatencyIncreaseMs = defaults.MinLatencyIncreaseMs,
            MaxConfidenceDrop = overrides?.MaxConfidenceDrop ?? defaults.MaxConfidenceDrop,
            MaxDrift = ParseSeverity(overrides?.MaxDriftSeverity ?? defaults.MaxDriftSeverity),
        };
    }

    private static DriftSeverity ParseSeverity(string value) => value switch
    {
        "none" => DriftSeverity.None,
        "alert" => DriftSeverity.Alert,
        _ => DriftSeverity.Warn,
    };
}

/// <summary>The outcome of looking at a probation once.</summary>
public sealed record ProbationVerdict
{
    public static readonly ProbationVerdict Pending = new() { Outcome = ProbationOutcome.Pending };

    public ProbationOutcome Outcome { get; init; }

    /// <summary>The failed criterion: errors, nonfinite, latency, confidence, drift, frames; null unless failed.</summary>
    public string? Criterion { get; init; }

    public string Message { get; init; } = "";

    /// <summary>Measured values and thresholds (event data).</summary>
    public IReadOnlyDictionary<string, string> Values { get; init; } = new Dictionary<string, string>();
}

/// <summary>Whether a probation is still running, passed or failed.</summary>
public enum ProbationOutcome
{
    /// <summary>Not decided yet.</summary>
    Pending,

    /// <summary>Every criterion held for the frames and seconds required.</summary>
    Passed,

    /// <summary>A criterion failed.</summary>
    Failed,
}

/// <summary>
/// Judges a model on probation against the figures of the model it replaced, measured on the same device just before the
/// swap (DESIGN.md §6). A criterion that is clearly broken fails at once, after <see cref="ProbationSettings.MinFramesToJudge"/>
/// frames (a model that outputs NaN is not left serving for a minute); the probation passes only when it has lasted its
/// frames and its seconds and every criterion holds. Pure: the caller supplies the figures and the elapsed time.
/// </summary>
public static class ProbationJudge
{
    public static ProbationVerdict Judge(ProbationFigures baseline, ProbationFigures candidate, TimeSpan elapsed, ProbationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(settings);
        var judged = candidate.Frames + candidate.Errors;
        if (judged >= settings.MinFramesToJudge)
        {
            if (candidate.ErrorShare > settings.MaxErrorShare)
            {
                return Fail("errors", $"{Pct(candidate.ErrorShare)} of frames failed, more than the {Pct(settings.MaxErrorShare)} allowed",
                    ("errorShare", candidate.ErrorShare), ("maxErrorShare", settings.MaxErrorShare), ("errors", candidate.Errors), ("frames", judged));
            }

            var nonFiniteLimit = baseline.NonFiniteShare + settings.MaxNonFiniteShare;
            if (candidate.NonFiniteShare > nonFiniteLimit)
            {
                return Fail("nonfinite", $"{Pct(candidate.NonFiniteShare)} of frames had NaN or infinite outputs (previous model {Pct(baseline.NonFiniteShare)}, allowed {Pct(nonFiniteLimit)})",
                    ("nonFiniteShare", candidate.NonFiniteShare), ("previousNonFiniteShare", baseline.NonFiniteShare), ("maxNonFiniteShare", nonFiniteLimit));
            }
        }

        if (candidate.Frames >= settings.MinFramesToJudge)
        {
            if (baseline.P95InferenceMs > 0 && candidate.P95InferenceMs / baseline.P95InferenceMs > settings.MaxLatencyRatio
                && candidate.P95InferenceMs - baseline.P95InferenceMs > settings.MinLatencyIncreaseMs)
            {
                var ratio = candidate.P95InferenceMs / baseline.P95InferenceMs;
                return Fail("latency", $"p95 inference {candidate.P95InferenceMs:0.##} ms is {ratio:0.##}× the previous model's {baseline.P95InferenceMs:0.##} ms (allowed {settings.MaxLatencyRatio:0.##}×, or up to {settings.MinLatencyIncreaseMs:0.##} ms more)",
                    ("p95InferenceMs", candidate.P95InferenceMs), ("previousP95InferenceMs", baseline.P95InferenceMs), ("latencyRatio", ratio), ("maxLatencyRatio", settings.MaxLatencyRatio),
                    ("minLatencyIncreaseMs", settings.MinLatencyIncreaseMs));
            }

            if (!double.IsNaN(baseline.MeanConfidence) && !double.IsNaN(candidate.MeanConfidence)
                && baseline.MeanConfidence - candidate.MeanConfidence > settings.MaxConfidenceDrop)
            {
                return Fail("confidence", $"mean confidence fell from {baseline.MeanConfidence:0.###} to {candidate.MeanConfidence:0.###} (allowed drop {settings.MaxConfidenceDrop:0.###})",
                    ("meanConfidence", candidate.MeanConfidence), ("previousMeanConfidence", baseline.MeanConfidence), ("maxConfidenceDrop", settings.MaxConfidenceDrop));
            }
        }

        if (candidate.Drift is { } drift && drift > settings.MaxDrift)
        {
            return Fail("drift", $"drift {Name(drift)} during probation (allowed up to {Name(settings.MaxDrift)})",
                ("drift", Name(drift)), ("maxDrift", Name(settings.MaxDrift)));
        }

        if (candidate.Frames >= settings.Frames && elapsed >= settings.Duration)
        {
            return new ProbationVerdict
            {
                Outcome = ProbationOutcome.Passed,
                Message = $"{candidate.Frames} frames in {elapsed.TotalSeconds:0} s: every criterion held",
                Values = Values(baseline, candidate, elapsed),
            };
        }

        if (elapsed >= settings.Timeout)
        {
            return Fail("frames", $"only {candidate.Frames} of {settings.Frames} frames inferred in {elapsed.TotalSeconds:0} s",
                ("frames", candidate.Frames), ("requiredFrames", settings.Frames), ("seconds", elapsed.TotalSeconds));
        }

        return ProbationVerdict.Pending;
    }

    /// <summary>The figures of a passed probation, for the <c>update.committed</c> event.</summary>
    public static IReadOnlyDictionary<string, string> Values(ProbationFigures baseline, ProbationFigures candidate, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(candidate);
        return new Dictionary<string, string>
        {
            ["frames"] = Format(candidate.Frames),
            ["seconds"] = Format(elapsed.TotalSeconds),
            ["errorShare"] = Format(candidate.ErrorShare),
            ["nonFiniteShare"] = Format(candidate.NonFiniteShare),
            ["p95InferenceMs"] = Format(candidate.P95InferenceMs),
            ["previousP95InferenceMs"] = Format(baseline.P95InferenceMs),
            ["meanConfidence"] = Format(candidate.MeanConfidence),
            ["previousMeanConfidence"] = Format(baseline.MeanConfidence),
            ["drift"] = candidate.Drift is { } d ? Name(d) : "no window",
        };
    }

    private static ProbationVerdict Fail(string criterion, string message, params (string Key, object Value)[] values) => new()
    {
        Outcome = ProbationOutcome.Failed,
        Criterion = criterion,
        Message = message,
        Values = values.ToDictionary(v => v.Key, v => v.Value switch
        {
            double d => Format(d),
            long l => Format(l),
            _ => v.Value.ToString() ?? "",
        }),
    };

    private static string Format(double value) => double.IsNaN(value) ? "n/a" : value.ToString("0.######", CultureInfo.InvariantCulture);

    private static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Pct(double share) => share.ToString("0.##%", CultureInfo.InvariantCulture);

    private static string Name(DriftSeverity severity) => severity.ToString().ToLowerInvariant();
}
