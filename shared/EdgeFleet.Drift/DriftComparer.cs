using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Drift;

/// <summary>Thresholds and test settings.</summary>
public sealed record DriftThresholds
{
    /// <summary>PSI at which a feature is <c>warn</c>.</summary>
    public double PsiWarn { get; init; } = 0.1;

    /// <summary>PSI at which a feature is <c>alert</c>.</summary>
    public double PsiAlert { get; init; } = 0.25;

    /// <summary>
    /// Significance level for the KS / chi-square p-value after the Benjamini–Hochberg correction: a feature whose
    /// change is not significant is <c>none</c> whatever its PSI (small or strongly correlated samples are noisy).
    /// </summary>
    public double Alpha { get; init; } = 0.05;

    /// <summary>Bins for PSI and Jensen–Shannon.</summary>
    public int Bins { get; init; } = 10;
}

/// <summary>Values of a numeric feature: raw values (or a uniform sample of them) and, optionally, fixed bins.</summary>
public sealed record NumericData
{
    public required string Name { get; init; }

    /// <summary>Sorted values (all of them, or a uniform sample for profiles and windows).</summary>
    public required double[] Sorted { get; init; }

    /// <summary>Observations behind <see cref="Sorted"/> (≥ its length when it is a sample).</summary>
    public required long Count { get; init; }

    /// <summary>Effective sample size (correlated observations count for less); null: <see cref="Count"/>.</summary>
    public double? EffectiveCount { get; init; }

    /// <summary>Baseline only: fixed interior bin edges (a profile's); null: quantiles of <see cref="Sorted"/>.</summary>
    public double[]? Edges { get; init; }

    /// <summary>Baseline only: bin proportions matching <see cref="Edges"/>.</summary>
    public double[]? Proportions { get; init; }

    /// <summary>Current only: counts over the baseline's bins, when already binned (a device window).</summary>
    public long[]? BinCounts { get; init; }

    /// <summary>Standard deviation of all observations; null: computed from <see cref="Sorted"/>.</summary>
    public double? Std { get; init; }

    public static NumericData FromValues(string name, IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return new NumericData { Name = name, Sorted = sorted, Count = sorted.Length };
    }

    public static NumericData FromProfile(ProfileFeature f)
    {
        ArgumentNullException.ThrowIfNull(f);
        var sorted = f.Sample.ToArray();
        Array.Sort(sorted);
        return new NumericData
        {
            Name = f.Name,
            Sorted = sorted,
            Count = f.Count,
            EffectiveCount = f.EffectiveCount,
            Edges = f.Edges.Count > 0 ? f.Edges.ToArray() : null,
            Proportions = f.Proportions.Count > 0 ? f.Proportions.ToArray() : null,
            Std = f.Std,
        };
    }
}

/// <summary>Counts of a categorical feature by category code.</summary>
public sealed record CategoricalData(string Name, IReadOnlyDictionary<string, long> Counts)
{
    public long Count => Counts.Values.Sum();

    /// <summary>Effective sample size; null: <see cref="Count"/>.</summary>
    public double? EffectiveCount { get; init; }
}

/// <summary>Compares a baseline with current data, feature by feature, and grades the result.</summary>
public static class DriftComparer
{
    /// <summary>Statistics of one numeric feature (severity is set by <see cref="Grade"/>).</summary>
    public static FeatureDrift CompareNumeric(NumericData baseline, NumericData current, int bins)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(current);
        if (baseline.Sorted.Length == 0 && baseline.Proportions is null)
        {
            throw new ArgumentException($"feature '{baseline.Name}': the baseline has no values");
        }

        var edges = baseline.Edges ?? DriftStatistics.QuantileEdges(baseline.Sorted, bins);
        var expected = baseline.Proportions is { } p && p.Length == edges.Length + 1
            ? p.Select(v => v <= 0 ? DriftStatistics.EmptyBinProportion : v).ToArray()
            : DriftStatistics.Proportions(Bin(baseline.Sorted, edges));
        var actual = DriftStatistics.Proportions(current.BinCounts is { } counts && counts.Length == edges.Length + 1
            ? counts
            : Bin(current.Sorted, edges));

        var d = DriftStatistics.KsStatistic(baseline.Sorted, current.Sorted);
        var nBase = (double)Math.Min(baseline.Sorted.Length, baseline.EffectiveCount ?? baseline.Count);
        var nCur = (double)Math.Min(current.Sorted.Length, current.EffectiveCount ?? current.Count);
        var w = DriftStatistics.Wasserstein1(baseline.Sorted, current.Sorted);
        var std = baseline.Std ?? DriftStatistics.StdDev(baseline.Sorted);
        return new FeatureDrift
        {
            Name = baseline.Name,
            Kind = "numeric",
            N = new SampleSizes(baseline.Count, current.Count),
            NEffective = current.EffectiveCount is { } e ? Math.Round(e, 1) : null,
            Psi = DriftStatistics.Psi(expected, actual),
            JsDistance = DriftStatistics.JensenShannonDistance(expected, actual),
            Ks = new TestResult(d, DriftStatistics.KsPValue(d, nBase, nCur)),
            Wasserstein = w,
            WassersteinNormed = std > 0 ? w / std : (w == 0 ? 0 : double.PositiveInfinity),
        };
    }

    /// <summary>Statistics of one categorical feature over the union of categories.</summary>
    public static FeatureDrift CompareCategorical(CategoricalData baseline, CategoricalData current)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(current);
        var categories = baseline.Counts.Keys.Union(current.Counts.Keys).Order(StringComparer.Ordinal).ToArray();
        var b = categories.Select(c => baseline.Counts.GetValueOrDefault(c)).ToArray();
        var a = categories.Select(c => current.Counts.GetValueOrDefault(c)).ToArray();
        var expected = DriftStatistics.Proportions(b);
        var actual = DriftStatistics.Proportions(a);
        static double Weight(CategoricalData d) => d.EffectiveCount is { } e && d.Count > 0 ? Math.Min(1, e / d.Count) : 1;
        var (chi2, p, _) = DriftStatistics.ChiSquare(b, a, Weight(current), Weight(baseline));
        return new FeatureDrift
        {
            Name = baseline.Name,
            Kind = "categorical",
            N = new SampleSizes(baseline.Count, current.Count),
            NEffective = current.EffectiveCount is { } eff ? Math.Round(eff, 1) : null,
            Psi = categories.Length == 0 ? 0 : DriftStatistics.Psi(expected, actual),
            JsDistance = categories.Length == 0 ? 0 : DriftStatistics.JensenShannonDistance(expected, actual),
            Chi2 = new TestResult(chi2, p),
        };
    }

    /// <summary>
    /// Applies the Benjamini–Hochberg correction across features and sets each severity: a feature whose change
    /// is significant (adjusted p &lt; alpha) is graded by its PSI; one that is not is <c>none</c>.
    /// </summary>
    public static IReadOnlyList<FeatureDrift> Grade(IReadOnlyList<FeatureDrift> features, DriftThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(thresholds);
        var adjusted = DriftStatistics.BenjaminiHochberg(features.Select(f => f.Ks?.PValue ?? f.Chi2?.PValue ?? double.NaN).ToList());
        return features.Select((f, i) =>
        {
            var significant = adjusted[i] < thresholds.Alpha;
            var severity = !significant ? DriftSeverity.None
                : f.Psi >= thresholds.PsiAlert ? DriftSeverity.Alert
                : f.Psi >= thresholds.PsiWarn ? DriftSeverity.Warn
                : DriftSeverity.None;
            return f with { PValueAdjusted = double.IsNaN(adjusted[i]) ? null : adjusted[i], Severity = severity };
        }).ToList();
    }

    /// <summary>The highest severity of a report.</summary>
    public static DriftSeverity Worst(IEnumerable<FeatureDrift> features) =>
        features.Select(f => f.Severity).DefaultIfEmpty(DriftSeverity.None).Max();

    private static long[] Bin(ReadOnlySpan<double> values, ReadOnlySpan<double> edges)
    {
        var counts = new long[edges.Length + 1];
        foreach (var v in values)
        {
            counts[DriftStatistics.BinOf(edges, v)]++;
        }

        return counts;
    }
}
