namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>Lan–DeMets alpha-spending functions: how much of the one-sided false-alarm budget α may be spent by time t.</summary>
public enum SpendingFunction
{
    /// <summary>Pocock type, α·ln(1 + (e − 1)t): spends much early, so a bad version is stopped sooner.</summary>
    Pocock,

    /// <summary>O'Brien–Fleming type, 2 − 2Φ(z₁₋α/₂ / √t): spends almost nothing early and nearly all of α at the end.</summary>
    OBrienFleming,
}

/// <summary>
/// Alpha spending across the repeated looks of a quality gate. At look k the gate may reject at the nominal level
/// α(t_k) − α(t_{k−1}) (the increment over what earlier looks spent). By the union bound the probability that any look
/// falsely rejects is at most the sum of those increments, α(t_K) ≤ α, whatever the correlation between looks: valid and
/// conservative (a group-sequential boundary computed from the joint distribution would be less conservative, but needs
/// that distribution, which rank tests on changing device sets do not give).
/// </summary>
public static class AlphaSpending
{
    /// <summary>
    /// α(t), the alpha that may have been spent by information fraction <paramref name="t"/>: 0 for t ≤ 0, α for t ≥ 1,
    /// non-decreasing in between.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alpha"/> is not in (0, 1), or t is NaN.</exception>
    public static double Cumulative(SpendingFunction f, double alpha, double t)
    {
        if (!(alpha > 0 && alpha < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "a one-sided level in (0, 1)");
        }

        if (double.IsNaN(t))
        {
            throw new ArgumentOutOfRangeException(nameof(t), t, "an information fraction");
        }

        if (t <= 0)
        {
            return 0;
        }

        if (t >= 1)
        {
            return alpha;
        }

        var spent = f switch
        {
            SpendingFunction.Pocock => alpha * Math.Log(1 + (Math.E - 1) * t),
            SpendingFunction.OBrienFleming => 2 * Normal.UpperTail(-Normal.Quantile(alpha / 2) / Math.Sqrt(t)),
            _ => throw new ArgumentOutOfRangeException(nameof(f), f, "a spending function"),
        };
        return Math.Min(spent, alpha);
    }
}
