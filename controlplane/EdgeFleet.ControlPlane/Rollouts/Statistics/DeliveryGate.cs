using System.Globalization;

namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>Counts behind a delivery verdict.</summary>
/// <param name="Succeeded">Devices that installed and started the new version.</param>
/// <param name="Failed">Devices that reported a failed update.</param>
/// <param name="TimedOut">Devices that did not report in time: shown, but neither success nor failure.</param>
/// <param name="Finished">Succeeded + Failed.</param>
/// <param name="MinFinished">Finished devices needed to decide.</param>
/// <param name="FailureShare">Failed/Finished; null while nothing has finished.</param>
/// <param name="MaxFailureShare">Largest failure share that still passes.</param>
/// <param name="Explanation">One line for people.</param>
public sealed record DeliveryEvidence(int Succeeded, int Failed, int TimedOut, int Finished, int MinFinished, double? FailureShare, double MaxFailureShare,
    string Explanation);

/// <summary>Whether a stage's update was delivered well enough (never <see cref="GateOutcome.Inconclusive"/>).</summary>
public sealed record DeliveryVerdict(GateOutcome Outcome, DeliveryEvidence Evidence);

/// <summary>
/// The delivery gate of a stage: did the update itself work on enough devices? The failure share is counted over the
/// devices that finished (succeeded + failed); timed-out devices are reported and left to the stage's deadline.
/// </summary>
/// <remarks>
/// With finished ≥ minFinished: Fail when failed/finished &gt; maxFailureShare, else Pass. Before that: Fail early once
/// failed/minFinished &gt; maxFailureShare — when the minFinished-th device finishes these failures are among them, so the
/// share then can no longer be within the limit — else Pending. The caller acts on the first decisive verdict; a later
/// call with more finished devices may disagree with an earlier Pass. Pass the smaller of the configured minimum and the
/// stage size as <c>minFinished</c>.
/// </remarks>
public static class DeliveryGate
{
    /// <summary>Judges the delivery counts of a stage.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is negative, minFinished is below 1 (an empty stage has nothing to judge), or
    /// maxFailureShare is outside [0, 1].</exception>
    public static DeliveryVerdict Judge(int succeeded, int failed, int timedOut, int minFinished, double maxFailureShare)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(succeeded);
        ArgumentOutOfRangeException.ThrowIfNegative(failed);
        ArgumentOutOfRangeException.ThrowIfNegative(timedOut);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFinished, 1);
        if (!(maxFailureShare >= 0 && maxFailureShare <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(maxFailureShare), maxFailureShare, "a share in [0, 1]");
        }

        var finished = succeeded + failed;
        double? share = finished > 0 ? failed / (double)finished : null;
        GateOutcome outcome;
        string reason;
        if (finished >= minFinished)
        {
            outcome = share > maxFailureShare ? GateOutcome.Fail : GateOutcome.Pass;
            reason = outcome == GateOutcome.Fail ? "above" : "within";
        }
        else if (failed / (double)minFinished > maxFailureShare)
        {
            outcome = GateOutcome.Fail;
            reason = string.Create(CultureInfo.InvariantCulture, $"already above the limit for the first {minFinished}");
        }
        else
        {
            outcome = GateOutcome.Pending;
            reason = string.Create(CultureInfo.InvariantCulture, $"waiting for {minFinished} finished");
        }

        var shown = share is { } s ? s.ToString("0.0%", CultureInfo.InvariantCulture) : "n/a";
        var explanation = string.Create(CultureInfo.InvariantCulture,
            $"delivery: {failed} failed / {finished} finished ({shown}, limit {maxFailureShare:0.0%}; {timedOut} timed out, not counted), {reason}: {outcome.ToString().ToLowerInvariant()}");
        return new DeliveryVerdict(outcome, new DeliveryEvidence(succeeded, failed, timedOut, finished, minFinished, share, maxFailureShare, explanation));
    }
}
