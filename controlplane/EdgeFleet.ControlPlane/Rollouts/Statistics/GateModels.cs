namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>How a device's value is formed from its baseline and its current aggregate.</summary>
public enum MetricKind
{
    /// <summary>A positive level (p95 latency, mean confidence): value ln(After/Before), margin relative.</summary>
    Ratio,

    /// <summary>A share in [0, 1] (errors, NaN/Inf outputs, drift windows at warn or worse): value After − Before, margin absolute.</summary>
    Share,
}

/// <summary>What a gate concluded at one look.</summary>
public enum GateOutcome
{
    /// <summary>Not rejected before the end of the bake time, or not enough devices yet.</summary>
    Pending,

    /// <summary>At the end of the bake time, with enough devices, the new version was not shown worse than the margin.</summary>
    Pass,

    /// <summary>The new version is worse than the margin allows (p below this look's nominal level).</summary>
    Fail,

    /// <summary>At the end of the bake time there were not enough devices to judge: no data is never a pass.</summary>
    Inconclusive,
}

/// <summary>
/// One device's telemetry aggregate over its baseline window on the previous model (<paramref name="Before"/>) and since
/// the stage started or it was updated (<paramref name="After"/>). NaN marks a missing aggregate.
/// </summary>
/// <param name="DeviceId">The device.</param>
/// <param name="Stratum">Hardware stratum such as <c>hw=orin-nano</c>; empty when there is none.</param>
/// <param name="Before">Aggregate over the baseline window.</param>
/// <param name="After">Aggregate over the window being judged.</param>
public sealed record DeviceSample(string DeviceId, string Stratum, double Before, double After);

/// <summary>A quality gate on one metric.</summary>
/// <param name="Metric">Human name, e.g. <c>p95 latency</c>.</param>
/// <param name="Kind">Ratio (relative margin) or share (absolute margin).</param>
/// <param name="HigherIsWorse">True for latency, errors, NaN share, drift; false for confidence.</param>
/// <param name="Margin">
/// Non-inferiority margin: ratio metrics relative (0.10: fail only beyond +10 %, or below −10 % when lower is worse; must
/// then be below 1), share metrics absolute (0.01: beyond one percentage point). Zero judges any degradation.
/// </param>
/// <param name="Alpha">One-sided false-alarm budget over all looks of the stage.</param>
/// <param name="MinDevices">Devices needed in each group (treated only, with the one-sample fallback) to test at all.</param>
/// <param name="Spending">How alpha is spread over the looks.</param>
public sealed record GateSpec(
    string Metric,
    MetricKind Kind,
    bool HigherIsWorse,
    double Margin,
    double Alpha = 0.05,
    int MinDevices = 5,
    SpendingFunction Spending = SpendingFunction.Pocock);

/// <summary>
/// Why a gate concluded what it did; plain properties so that it serialises with System.Text.Json as it is. Values that
/// do not exist at this look (no test, no devices) are null rather than NaN, which JSON cannot carry.
/// </summary>
public sealed record GateEvidence
{
    /// <summary>The gate's metric name.</summary>
    public required string Metric { get; init; }

    /// <summary>Ratio or share.</summary>
    public required MetricKind Kind { get; init; }

    /// <summary>Whether a higher value is worse.</summary>
    public required bool HigherIsWorse { get; init; }

    /// <summary>The margin as specified (relative for ratios, absolute for shares).</summary>
    public required double Margin { get; init; }

    /// <summary>Treated devices with a usable baseline and current value.</summary>
    public required int TreatedCount { get; init; }

    /// <summary>Control devices with a usable baseline and current value.</summary>
    public required int ControlCount { get; init; }

    /// <summary>Devices of either group left out for a missing, NaN or (for ratios) non-positive Before or After.</summary>
    public required int ExcludedCount { get; init; }

    /// <summary>Usable devices the two-sample test left out because no device of the other group shares their stratum.</summary>
    public required int UnmatchedCount { get; init; }

    /// <summary>Median raw After of the usable treated devices.</summary>
    public double? TreatedMedianAfter { get; init; }

    /// <summary>Median raw After of the usable control devices.</summary>
    public double? ControlMedianAfter { get; init; }

    /// <summary>Median device value (ln(After/Before) or After − Before) of the usable treated devices.</summary>
    public double? TreatedMedianValue { get; init; }

    /// <summary>Median device value of the usable control devices.</summary>
    public double? ControlMedianValue { get; init; }

    /// <summary>
    /// Hodges–Lehmann shift of the device values, not shifted by the margin: treated − control (median of within-stratum
    /// pairwise differences), or with the one-sample fallback the treated pseudo-median against their own baseline.
    /// </summary>
    public double? Shift { get; init; }

    /// <summary>For ratio metrics exp(<see cref="Shift"/>): treated relative to control, e.g. 1.41.</summary>
    public double? Ratio { get; init; }

    /// <summary>Lower end of the two-sided <see cref="IntervalLevel"/> interval for the shift (null: unbounded).</summary>
    public double? ShiftLower { get; init; }

    /// <summary>Upper end of that interval.</summary>
    public double? ShiftUpper { get; init; }

    /// <summary>Two-sided level 1 − 2α of the shift interval, so each end is a one-sided (1 − α) bound.</summary>
    public double? IntervalLevel { get; init; }

    /// <summary>One-sided p-value of "worse than the margin"; null when no test ran.</summary>
    public double? PValue { get; init; }

    /// <summary>The test's standardised statistic.</summary>
    public double? Z { get; init; }

    /// <summary>Level p had to be below to fail at this look: α(t) minus what earlier looks spent (0 when no test ran).</summary>
    public required double NominalAlpha { get; init; }

    /// <summary>Alpha spent by this and all earlier looks.</summary>
    public required double AlphaSpent { get; init; }

    /// <summary>"van Elteren", "Mann-Whitney", "Wilcoxon signed-rank (no control devices)", …; null when no test ran.</summary>
    public string? Test { get; init; }

    /// <summary>Strata the test compared (empty string: no stratum).</summary>
    public required IReadOnlyList<string> Strata { get; init; }

    /// <summary>Information fraction t of this look, capped at 1.</summary>
    public required double InformationFraction { get; init; }

    /// <summary>One line for people, e.g. "p95 latency 1.41× control (margin 1.10×), p=0.0003 &lt; 0.0079 at look 0.30: fail".</summary>
    public required string Explanation { get; init; }
}

/// <summary>A gate's conclusion at one look; the caller stores <paramref name="AlphaSpent"/> and passes it to the next look.</summary>
public sealed record GateVerdict(GateOutcome Outcome, double AlphaSpent, GateEvidence Evidence);
