using System.Globalization;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Drift;

public enum FeatureKind
{
    Numeric,
    Categorical,
}

/// <summary>A monitored feature; categorical ones hold codes 0 … Categories−1 (others count as "other").</summary>
public sealed record FeatureDefinition(string Name, FeatureKind Kind, int Categories = 0);

public sealed record DriftMonitorOptions
{
    /// <summary>Frames per window.</summary>
    public int WindowFrames { get; init; } = 1000;

    /// <summary>A window also ends after this many seconds (0: only by frames).</summary>
    public double WindowSeconds { get; init; }

    /// <summary>Values kept per numeric feature per window for KS and Wasserstein.</summary>
    public int ReservoirSize { get; init; } = 256;

    public DriftThresholds Thresholds { get; init; } = new();

    /// <summary>Seed of the reservoir sampling (deterministic windows for tests).</summary>
    public ulong Seed { get; init; } = 0x5EED;
}

/// <summary>The outcome of one window.</summary>
public sealed record DriftReport(
    string ReferenceId,
    DateTimeOffset Start,
    DateTimeOffset End,
    long Frames,
    IReadOnlyList<FeatureDrift> Features,
    DriftSeverity Severity,
    bool IsNewBaseline);

/// <summary>A closed window whose statistics are computed by <see cref="Evaluate"/> (on any thread).</summary>
public sealed class PendingWindow(Func<DriftReport> evaluate)
{
    public DriftReport Evaluate() => evaluate();
}

/// <summary>
/// Watches features frame by frame and, per window, compares them with the reference (a profile of the model
/// version, or the first window seen when there is none). Fixed memory: one accumulator per feature, reset each
/// window. Not thread-safe: one inference thread feeds it.
/// </summary>
public sealed class DriftMonitor
{
    private readonly FeatureDefinition[] _features;
    private readonly NumericAccumulator?[] _numeric;
    private readonly CategoricalAccumulator?[] _categorical;
    private readonly DriftMonitorOptions _options;
    private readonly TimeProvider _time;
    private NumericData?[] _referenceNumeric;
    private CategoricalData?[] _referenceCategorical;
    private long _frames;
    private DateTimeOffset _windowStart;
    private bool _rebaseline;

    public DriftMonitor(IReadOnlyList<FeatureDefinition> features, DriftMonitorOptions options, DriftProfile? reference, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _features = [.. features];
        _options = options;
        _time = time;
        _numeric = new NumericAccumulator?[_features.Length];
        _categorical = new CategoricalAccumulator?[_features.Length];
        for (var i = 0; i < _features.Length; i++)
        {
            var f = _features[i];
            if (f.Kind == FeatureKind.Numeric)
            {
                _numeric[i] = new NumericAccumulator(f.Name, options.ReservoirSize, options.Seed + (ulong)i * 7919);
            }
            else
            {
                _categorical[i] = new CategoricalAccumulator(f.Name, Math.Max(2, f.Categories + 1));
            }
        }

        _referenceNumeric = new NumericData?[_features.Length];
        _referenceCategorical = new CategoricalData?[_features.Length];
        _windowStart = time.GetUtcNow();
        if (reference is not null)
        {
            UseReference(reference);
        }
    }

    /// <summary>What windows are compared with; null until the first window has become the baseline.</summary>
    public string? ReferenceId { get; private set; }

    /// <summary>The reference in profile form (to save or publish); null until there is one.</summary>
    public DriftProfile? Reference { get; private set; }

    public IReadOnlyList<FeatureDefinition> Features => _features;

    public int IndexOf(string name) => Array.FindIndex(_features, f => f.Name == name);

    public void Add(int feature, double value) => _numeric[feature]?.Add(value);

    public void AddCategory(int feature, int code) => _categorical[feature]?.Add(code);

    /// <summary>The next completed window becomes the new baseline (the <c>drift.rebaseline</c> command).</summary>
    public void Rebaseline() => _rebaseline = true;

    /// <summary>Closes a frame; returns the window's report when the window is complete, else null.</summary>
    public DriftReport? EndFrame() => EndFrameDeferred()?.Evaluate();

    /// <summary>
    /// Closes a frame; when the window is complete returns it as a snapshot whose <see cref="PendingWindow.Evaluate"/>
    /// (the statistics, a few milliseconds) can run on another thread. The accumulators are already reset.
    /// </summary>
    public PendingWindow? EndFrameDeferred()
    {
        _frames++;
        var now = _time.GetUtcNow();
        var full = _frames >= _options.WindowFrames
            || (_options.WindowSeconds > 0 && (now - _windowStart).TotalSeconds >= _options.WindowSeconds && _frames >= 2);
        return full ? CloseWindow(now) : null;
    }

    /// <summary>Replaces the reference with <paramref name="profile"/> (e.g. the model version's profile).</summary>
    public void UseReference(DriftProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        _referenceNumeric = new NumericData?[_features.Length];
        _referenceCategorical = new CategoricalData?[_features.Length];
        for (var i = 0; i < _features.Length; i++)
        {
            var match = profile.Features.FirstOrDefault(p => p.Name == _features[i].Name);
            if (match is null)
            {
                continue;
            }

            if (_features[i].Kind == FeatureKind.Numeric && match.Kind == "numeric" && match.Sample.Count > 0)
            {
                _referenceNumeric[i] = NumericData.FromProfile(match);
                _numeric[i]!.SetEdges(match.Edges);
            }
            else if (_features[i].Kind == FeatureKind.Categorical && match.Kind == "categorical")
            {
                _referenceCategorical[i] = new CategoricalData(match.Name, match.Categories) { EffectiveCount = match.EffectiveCount };
            }
        }

        Reference = profile;
        ReferenceId = profile.Id;
    }

    private PendingWindow CloseWindow(DateTimeOffset now)
    {
        var start = _windowStart;
        var frames = _frames;
        PendingWindow pending;
        if (ReferenceId is null || _rebaseline)
        {
            var profile = new DriftProfile
            {
                Id = string.Create(CultureInfo.InvariantCulture, $"window:{start:yyyy-MM-ddTHH:mm:ssZ}"),
                CreatedAt = now,
                Source = "first window after start",
                Features = _features.Select((f, i) => f.Kind == FeatureKind.Numeric
                    ? _numeric[i]!.ToProfile(_options.Thresholds.Bins)
                    : _categorical[i]!.ToProfile()).ToList(),
            };
            _rebaseline = false;
            ResetAccumulators();
            UseReference(profile);
            var baseline = new DriftReport(profile.Id, start, now, frames, [], DriftSeverity.None, IsNewBaseline: true);
            pending = new PendingWindow(() => baseline);
        }
        else
        {
            var comparisons = new List<Func<FeatureDrift>>();
            for (var i = 0; i < _features.Length; i++)
            {
                if (_numeric[i] is { Count: > 0 } n && _referenceNumeric[i] is { } refN)
                {
                    var current = n.ToCurrent();
                    var bins = _options.Thresholds.Bins;
                    comparisons.Add(() => DriftComparer.CompareNumeric(refN, current, bins));
                }
                else if (_categorical[i] is { Count: > 0 } c && _referenceCategorical[i] is { Count: > 0 } refC)
                {
                    var current = c.ToCurrent();
                    comparisons.Add(() => DriftComparer.CompareCategorical(refC, current));
                }
            }

            var referenceId = ReferenceId;
            var thresholds = _options.Thresholds;
            pending = new PendingWindow(() =>
            {
                var graded = DriftComparer.Grade(comparisons.Select(c => c()).ToList(), thresholds);
                return new DriftReport(referenceId, start, now, frames, graded, DriftComparer.Worst(graded), IsNewBaseline: false);
            });
            ResetAccumulators();
        }

        _frames = 0;
        _windowStart = now;
        return pending;
    }

    private void ResetAccumulators()
    {
        foreach (var n in _numeric)
        {
            n?.Reset();
        }

        foreach (var c in _categorical)
        {
            c?.Reset();
        }
    }
}
