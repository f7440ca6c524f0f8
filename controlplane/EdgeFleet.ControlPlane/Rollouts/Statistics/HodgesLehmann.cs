namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>A Hodges–Lehmann shift estimate with its distribution-free confidence interval (null ends: unbounded).</summary>
internal sealed record ShiftEstimate(double Shift, double? Lower, double? Upper);

/// <summary>
/// Hodges–Lehmann estimates: the median of the within-stratum differences x − y (two samples), or of the Walsh averages
/// (vᵢ + vⱼ)/2, i ≤ j (one sample). The interval takes the order statistics at ranks C and M + 1 − C of the M
/// differences, C = ⌊M/2 − z·sd⌋ with sd the untied null standard deviation of the rank statistic (the normal
/// approximation). The k-th difference is found by bisection over counts, O((n₁ + n₂)·log) per step, so a large fleet
/// never materialises n₁·n₂ pairs.
/// </summary>
internal static class HodgesLehmann
{
    public static ShiftEstimate TwoSample(IReadOnlyList<(double[] X, double[] Y)> strata, double z)
    {
        var sorted = strata.Select(s => (X: s.X.Order().ToArray(), Y: s.Y.Order().ToArray())).Where(s => s.X.Length > 0 && s.Y.Length > 0).ToArray();
        long pairs = 0;
        double variance = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var (x, y) in sorted)
        {
            pairs += (long)x.Length * y.Length;
            variance += x.Length * (double)y.Length * (x.Length + y.Length + 1) / 12;
            min = Math.Min(min, x[0] - y[^1]);
            max = Math.Max(max, x[^1] - y[0]);
        }

        if (pairs == 0)
        {
            throw new ArgumentException("no stratum has both samples", nameof(strata));
        }

        Probe probe = d =>
        {
            long count = 0;
            double below = double.NegativeInfinity, above = double.PositiveInfinity;
            foreach (var (x, y) in sorted)
            {
                // x[i] − y[j] falls as j rises, so the pairs with a difference ≤ d are j ≥ p; p only moves right as x[i] grows.
                var p = 0;
                foreach (var xi in x)
                {
                    while (p < y.Length && xi - y[p] > d)
                    {
                        p++;
                    }

                    count += y.Length - p;
                    if (p < y.Length)
                    {
                        below = Math.Max(below, xi - y[p]);
                    }

                    if (p > 0)
                    {
                        above = Math.Min(above, xi - y[p - 1]);
                    }
                }
            }

            return (count, below, above);
        };
        return Estimate(probe, pairs, min, max, Math.Sqrt(variance), z);
    }

    public static ShiftEstimate OneSample(IReadOnlyList<double> values, double z)
    {
        var v = values.Order().ToArray();
        var n = v.Length;
        if (n == 0)
        {
            throw new ArgumentException("no values", nameof(values));
        }

        Probe probe = d =>
        {
            long count = 0;
            double below = double.NegativeInfinity, above = double.PositiveInfinity;
            // For each i the Walsh averages ≤ d are j = i..q; q only moves left as v[i] grows.
            var q = n - 1;
            for (var i = 0; i < n; i++)
            {
                while (q >= i && (v[i] + v[q]) / 2 > d)
                {
                    q--;
                }

                if (q < i)
                {
                    above = Math.Min(above, v[i]);
                    break;
                }

                count += q - i + 1;
                below = Math.Max(below, (v[i] + v[q]) / 2);
                if (q + 1 < n)
                {
                    above = Math.Min(above, (v[i] + v[q + 1]) / 2);
                }
            }

            return (count, below, above);
        };
        var pairs = (long)n * (n + 1) / 2;
        return Estimate(probe, pairs, v[0], v[^1], Math.Sqrt(n * (n + 1.0) * (2 * n + 1) / 24), z);
    }

    /// <summary>For a cut d: how many values are ≤ d, the largest value ≤ d, the smallest value &gt; d.</summary>
    private delegate (long Count, double Below, double Above) Probe(double d);

    private static ShiftEstimate Estimate(Probe probe, long pairs, double min, double max, double sd, double z)
    {
        var shift = pairs % 2 == 1
            ? Kth(probe, (pairs + 1) / 2, min, max)
            : (Kth(probe, pairs / 2, min, max) + Kth(probe, pairs / 2 + 1, min, max)) / 2;
        var c = (long)Math.Floor(pairs / 2.0 - z * sd);
        return c < 1
            ? new ShiftEstimate(shift, null, null)
            : new ShiftEstimate(shift, Kth(probe, c, min, max), Kth(probe, pairs + 1 - c, min, max));
    }

    // The k-th smallest value (1-based). Invariant: count(lo) < k ≤ count(hi), hi a value; done when no value lies
    // strictly between lo and hi.
    private static double Kth(Probe probe, long k, double min, double max)
    {
        var (atMin, _, aboveMin) = probe(min);
        if (atMin >= k)
        {
            return min;
        }

        double lo = min, hi = max, next = aboveMin;
        for (var step = 0; step < 4000 && next < hi; step++)
        {
            var mid = lo + (hi - lo) / 2;
            if (mid <= lo || mid >= hi)
            {
                break;
            }

            var (count, below, above) = probe(mid);
            if (count >= k)
            {
                hi = below;
            }
            else
            {
                lo = mid;
                next = above;
            }
        }

        return hi;
    }
}
