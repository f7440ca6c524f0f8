using System.Globalization;

namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>
/// Judges a new model version on one metric by comparing, device by device, the updated ("treated") devices of a stage
/// with the devices of the same rollout not updated yet ("control"), at repeated looks during the bake time.
/// </summary>
/// <remarks>
/// <para>
/// The unit is the device (frames of one camera are correlated). Each device's value is a difference-in-differences
/// against its own baseline: ln(After/Before) for ratio metrics, After − Before for shares, which removes the
/// between-device spread (one camera is always slower than another) and, through the control group, common time
/// effects. Values are oriented so that higher is worse, and the control values are shifted by the margin
/// (ln(1 + m), −ln(1 − m) when lower is worse, or m for shares): the one-sided test asks whether treated devices are
/// worse than control by more than the margin.
/// </para>
/// <para>
/// Test: van Elteren's stratified rank sum when devices fall in several strata (hardware), Mann–Whitney with one; only
/// strata holding both groups count. With fewer than MinDevices comparable control devices (the last, 100 % stage) it
/// falls back to a Wilcoxon signed-rank test of the treated values against the margin; that one cannot separate the new
/// version from a change common to all devices (time of day, scenes), which the evidence says.
/// </para>
/// <para>
/// Looks: the caller passes t = elapsed/bake and the alpha spent by earlier looks; a look rejects when p is below
/// α(t) − spent (see <see cref="AlphaSpending"/>), which keeps the chance of any false alarm over the stage at or below α.
/// A look with too few devices runs no test and spends nothing. Pass means "not shown worse than the margin at the end
/// of the bake time with enough devices", not a proof of non-inferiority; the shift interval says how sure that is.
/// </para>
/// </remarks>
public static class QualityGate
{
    /// <summary>Judges one look of <paramref name="spec"/>.</summary>
    /// <param name="spec">The gate.</param>
    /// <param name="treated">Devices already on the new version.</param>
    /// <param name="control">Devices of the rollout still on the previous version.</param>
    /// <param name="informationFraction">Elapsed share of the bake time; values above 1 count as 1 (the final look).</param>
    /// <param name="alphaSpentBefore">Alpha spent by earlier looks of this gate (0 at the first look).</param>
    /// <exception cref="ArgumentException">An argument is out of range (margin, alpha, t, spent alpha, MinDevices).</exception>
    public static GateVerdict Judge(GateSpec spec, IReadOnlyList<DeviceSample> treated, IReadOnlyList<DeviceSample> control, double informationFraction,
        double alphaSpentBefore)
    {
        Validate(spec);
        ArgumentNullException.ThrowIfNull(treated);
        ArgumentNullException.ThrowIfNull(control);
        if (double.IsNaN(informationFraction) || informationFraction < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(informationFraction), informationFraction, "elapsed/bake, at least 0");
        }

        if (!double.IsFinite(alphaSpentBefore) || alphaSpentBefore < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alphaSpentBefore), alphaSpentBefore, "the alpha spent so far, at least 0");
        }

        var t = Math.Min(informationFraction, 1);
        var final = t >= 1;
        var treatedDevices = Usable(spec, treated, out var treatedExcluded);
        var controlDevices = Usable(spec, control, out var controlExcluded);
        var strata = treatedDevices.Select(d => d.Stratum).Intersect(controlDevices.Select(d => d.Stratum), StringComparer.Ordinal)
            .Order(StringComparer.Ordinal).ToArray();
        var shared = strata.ToHashSet(StringComparer.Ordinal);
        var matchedTreated = treatedDevices.Where(d => shared.Contains(d.Stratum)).ToArray();
        var matchedControl = controlDevices.Where(d => shared.Contains(d.Stratum)).ToArray();

        var evidence = new GateEvidence
        {
            Metric = spec.Metric,
            Kind = spec.Kind,
            HigherIsWorse = spec.HigherIsWorse,
            Margin = spec.Margin,
            TreatedCount = treatedDevices.Length,
            ControlCount = controlDevices.Length,
            ExcludedCount = treatedExcluded + controlExcluded,
            UnmatchedCount = 0,
            TreatedMedianAfter = Median(treatedDevices.Select(d => d.After)),
            ControlMedianAfter = Median(controlDevices.Select(d => d.After)),
            TreatedMedianValue = Median(treatedDevices.Select(d => d.Value)),
            ControlMedianValue = Median(controlDevices.Select(d => d.Value)),
            NominalAlpha = 0,
            AlphaSpent = alphaSpentBefore,
            Strata = [],
            InformationFraction = t,
            Explanation = "",
        };

        var twoSample = matchedTreated.Length >= spec.MinDevices && matchedControl.Length >= spec.MinDevices;
        if (!twoSample && treatedDevices.Length < spec.MinDevices)
        {
            var outcome = final ? GateOutcome.Inconclusive : GateOutcome.Pending;
            return new GateVerdict(outcome, alphaSpentBefore, evidence with
            {
                Explanation = Invariant(
                    $"{spec.Metric}: {treatedDevices.Length} treated devices with a baseline (need {spec.MinDevices}), {controlDevices.Length} control, {evidence.ExcludedCount} excluded, at look {t:0.00}: {Word(outcome)} (no alpha spent)"),
            });
        }

        var margin = OrientedMargin(spec);
        var z = Normal.Quantile(1 - spec.Alpha);
        RankTestResult result;
        ShiftEstimate effect;
        string reference;
        if (twoSample)
        {
            var groups = strata.Select(s => (
                    Name: s,
                    Treated: matchedTreated.Where(d => d.Stratum == s).Select(d => d.Value).ToArray(),
                    Control: matchedControl.Where(d => d.Stratum == s).Select(d => d.Value).ToArray()))
                .ToArray();
            var tested = groups.Select(g => new RankStratum(
                    g.Name,
                    g.Treated.Select(v => Orient(spec, v)).ToArray(),
                    g.Control.Select(v => Orient(spec, v) + margin).ToArray()))
                .ToArray();
            result = tested.Length == 1 ? RankTests.MannWhitney(tested[0].X, tested[0].Y) : RankTests.VanElteren(tested);
            effect = HodgesLehmann.TwoSample(groups.Select(g => (g.Treated, g.Control)).ToArray(), z);
            reference = "control";
            evidence = evidence with
            {
                UnmatchedCount = treatedDevices.Length + controlDevices.Length - matchedTreated.Length - matchedControl.Length,
                Strata = strata,
            };
        }
        else
        {
            var values = treatedDevices.Select(d => d.Value).ToArray();
            var signed = RankTests.SignedRank(values.Select(v => Orient(spec, v) - margin).ToArray());
            result = signed with { Test = signed.Test + (controlDevices.Length == 0 ? " (no control devices)" : " (too few comparable control devices)") };
            effect = HodgesLehmann.OneSample(values, z);
            reference = "own baseline";
            evidence = evidence with { Strata = treatedDevices.Select(d => d.Stratum).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray() };
        }

        var spent = Math.Max(alphaSpentBefore, AlphaSpending.Cumulative(spec.Spending, spec.Alpha, t));
        var nominal = spent - alphaSpentBefore;
        var fail = result.PValue < nominal;
        var verdict = fail ? GateOutcome.Fail : final ? GateOutcome.Pass : GateOutcome.Pending;
        evidence = evidence with
        {
            Shift = Finite(effect.Shift),
            Ratio = spec.Kind == MetricKind.Ratio ? Finite(Math.Exp(effect.Shift)) : null,
            ShiftLower = effect.Lower,
            ShiftUpper = effect.Upper,
            IntervalLevel = 1 - 2 * spec.Alpha,
            PValue = result.PValue,
            Z = result.Z,
            NominalAlpha = nominal,
            AlphaSpent = spent,
            Test = result.Test,
        };
        var comparison = fail ? "<" : "≥";
        var explanation = Invariant(
            $"{Effect(spec, effect.Shift, reference)}, p={Probability(result.PValue)} {comparison} {Probability(nominal)} at look {t:0.00}: {Word(verdict)}");
        return new GateVerdict(verdict, spent, evidence with { Explanation = explanation });
    }

    private static void Validate(GateSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.Metric, nameof(spec));
        var maxMargin = spec.Kind == MetricKind.Ratio && !spec.HigherIsWorse ? 1 : double.PositiveInfinity;
        if (!double.IsFinite(spec.Margin) || spec.Margin < 0 || spec.Margin >= maxMargin)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.Margin, "Margin must be finite, at least 0 (and below 1 for a ratio where lower is worse)");
        }

        if (!(spec.Alpha > 0 && spec.Alpha < 0.5))
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.Alpha, "Alpha must be in (0, 0.5)");
        }

        if (spec.MinDevices < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.MinDevices, "MinDevices must be at least 1");
        }

        if (!Enum.IsDefined(spec.Spending))
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.Spending, "unknown spending function");
        }
    }

    private static Device[] Usable(GateSpec spec, IReadOnlyList<DeviceSample> samples, out int excluded)
    {
        var usable = new List<Device>(samples.Count);
        foreach (var sample in samples)
        {
            ArgumentNullException.ThrowIfNull(sample, nameof(samples));
            double before = sample.Before, after = sample.After;
            var value = spec.Kind == MetricKind.Ratio
                ? before > 0 && after > 0 ? Math.Log(after / before) : double.NaN
                : before >= 0 && after >= 0 ? after - before : double.NaN;
            if (double.IsFinite(value) && double.IsFinite(after))
            {
                usable.Add(new Device(sample.Stratum ?? "", after, value));
            }
        }

        excluded = samples.Count - usable.Count;
        return [.. usable];
    }

    private static double Orient(GateSpec spec, double value) => spec.HigherIsWorse ? value : -value;

    private static double OrientedMargin(GateSpec spec) => spec.Kind switch
    {
        MetricKind.Ratio when spec.HigherIsWorse => Math.Log(1 + spec.Margin),
        MetricKind.Ratio => -Math.Log(1 - spec.Margin),
        _ => spec.Margin,
    };

    private static string Effect(GateSpec spec, double shift, string reference)
    {
        if (spec.Kind == MetricKind.Ratio)
        {
            var limit = spec.HigherIsWorse ? 1 + spec.Margin : 1 - spec.Margin;
            return Invariant($"{spec.Metric} {Math.Exp(shift):0.00}× {reference} (margin {limit:0.00}×)");
        }

        var sign = spec.HigherIsWorse ? "+" : "-";
        return Invariant($"{spec.Metric} {shift:+0.0000;-0.0000;0.0000} vs {reference} (margin {sign}{spec.Margin:0.0000})");
    }

    private static string Probability(double p) =>
        p is 0 or >= 0.0001 ? p.ToString("0.0000", CultureInfo.InvariantCulture) : p.ToString("0.0e+0", CultureInfo.InvariantCulture);

    private static string Word(GateOutcome outcome) => outcome switch
    {
        GateOutcome.Pass => "pass",
        GateOutcome.Fail => "fail",
        GateOutcome.Inconclusive => "inconclusive",
        _ => "pending",
    };

    private static double? Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static double? Finite(double value) => double.IsFinite(value) ? value : null;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private readonly record struct Device(string Stratum, double After, double Value);
}
