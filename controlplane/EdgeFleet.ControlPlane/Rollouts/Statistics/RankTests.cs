namespace EdgeFleet.ControlPlane.Rollouts.Statistics;

/// <summary>How a rank test computes its p-value.</summary>
public enum RankMethod
{
    /// <summary>Exact permutation distribution when it is small (see <see cref="RankTests"/>), normal otherwise.</summary>
    Auto,

    /// <summary>Always the exact permutation distribution (conditional on the ties); cost grows quickly with n.</summary>
    Exact,

    /// <summary>Always the tie-corrected normal approximation with continuity correction.</summary>
    Normal,
}

/// <summary>The outcome of a one-sided rank test.</summary>
/// <param name="Test">Name of the test.</param>
/// <param name="Statistic">Mann–Whitney U of x; van Elteren's weighted rank sum Σ W_s/(N_s+1); signed-rank W⁺.</param>
/// <param name="Z">Standardised statistic with continuity correction (0 when the variance is 0: everything tied).</param>
/// <param name="PValue">One-sided p-value in (0, 1]; 1 when there is nothing to compare or every value is tied.</param>
/// <param name="Exact">Whether <paramref name="PValue"/> comes from the exact permutation distribution.</param>
public sealed record RankTestResult(string Test, double Statistic, double Z, double PValue, bool Exact);

/// <summary>One stratum of a stratified two-sample test: x (the sample suspected larger) and y.</summary>
public sealed record RankStratum(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>
/// One-sided rank tests. Ties get mid-ranks; values closer than 1e-12 (relative, absolute below 1) count as tied, so
/// that floating-point noise in differences such as 0.03 − 0.02 versus 0 + 0.01 does not break a tie.
/// </summary>
public static class RankTests
{
    /// <summary>Mann–Whitney with <see cref="RankMethod.Auto"/> is exact when n₁·n₂ is at most this.</summary>
    public const int ExactMaxPairs = 400;

    /// <summary>The signed-rank test with <see cref="RankMethod.Auto"/> is exact for at most this many non-zero values.</summary>
    public const int ExactMaxSignedRank = 50;

    private const double TieTolerance = 1e-12;

    /// <summary>
    /// Wilcoxon–Mann–Whitney rank-sum test of H₁: x tends to be larger than y. p = P(U ≥ u) under random assignment of
    /// the pooled values to the two groups: exact (conditional on the ties) when small, else the normal approximation
    /// with tie-corrected variance n₁n₂/12·(N + 1 − Σ(t³ − t)/(N(N − 1))) and a continuity correction of ½.
    /// </summary>
    public static RankTestResult MannWhitney(IReadOnlyList<double> x, IReadOnlyList<double> y, RankMethod method = RankMethod.Auto)
    {
        const string Name = "Mann-Whitney";
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        RequireFinite(x, nameof(x));
        RequireFinite(y, nameof(y));
        int n1 = x.Count, n2 = y.Count, n = n1 + n2;
        if (n1 == 0 || n2 == 0)
        {
            return new RankTestResult(Name, 0, 0, 1, false);
        }

        var pooled = new double[n];
        for (var i = 0; i < n1; i++)
        {
            pooled[i] = x[i];
        }

        for (var j = 0; j < n2; j++)
        {
            pooled[n1 + j] = y[j];
        }

        var ranks = MidRanks(pooled, out var tieTerm);
        long doubledSum = 0;
        for (var i = 0; i < n1; i++)
        {
            doubledSum += ranks[i];
        }

        var u = doubledSum / 2.0 - n1 * (n1 + 1) / 2.0;
        var variance = RankSumVariance(n1, n2, tieTerm);
        var z = variance > 0 ? (u - n1 * (double)n2 / 2 - 0.5) / Math.Sqrt(variance) : 0;
        var exact = method == RankMethod.Exact || (method == RankMethod.Auto && (long)n1 * n2 <= ExactMaxPairs);
        double p;
        if (variance <= 0)
        {
            p = 1;
        }
        else if (exact)
        {
            p = RankSumUpperTail(ranks, n1, doubledSum);
        }
        else
        {
            p = Normal.UpperTail(z);
        }

        return new RankTestResult(Name, u, z, p, exact && variance > 0);
    }

    /// <summary>
    /// Van Elteren's stratified rank-sum test of H₁: within strata, x tends to be larger than y. Each stratum s with both
    /// groups present contributes its rank sum W_s of x (ranked within the stratum), weighted by 1/(N_s + 1); the weighted
    /// sum is compared with its mean and tie-corrected variance (normal approximation; continuity correction of ½ times the
    /// largest weight, so that with one stratum z equals Mann–Whitney's). Strata missing either group contribute nothing.
    /// </summary>
    public static RankTestResult VanElteren(IReadOnlyList<RankStratum> strata)
    {
        const string Name = "van Elteren";
        ArgumentNullException.ThrowIfNull(strata);
        double statistic = 0, mean = 0, variance = 0, largestWeight = 0;
        foreach (var stratum in strata)
        {
            ArgumentNullException.ThrowIfNull(stratum);
            RequireFinite(stratum.X, nameof(strata));
            RequireFinite(stratum.Y, nameof(strata));
            int n1 = stratum.X.Count, n2 = stratum.Y.Count;
            if (n1 == 0 || n2 == 0)
            {
                continue;
            }

            var pooled = stratum.X.Concat(stratum.Y).ToArray();
            var ranks = MidRanks(pooled, out var tieTerm);
            long doubledSum = 0;
            for (var i = 0; i < n1; i++)
            {
                doubledSum += ranks[i];
            }

            var weight = 1.0 / (n1 + n2 + 1);
            statistic += weight * doubledSum / 2.0;
            mean += weight * n1 * (n1 + n2 + 1) / 2.0;
            variance += weight * weight * RankSumVariance(n1, n2, tieTerm);
            largestWeight = Math.Max(largestWeight, weight);
        }

        if (variance <= 0)
        {
            return new RankTestResult(Name, statistic, 0, 1, false);
        }

        var z = (statistic - mean - 0.5 * largestWeight) / Math.Sqrt(variance);
        return new RankTestResult(Name, statistic, z, Normal.UpperTail(z), false);
    }

    /// <summary>
    /// Wilcoxon signed-rank test of H₁: the median of <paramref name="d"/> is above 0. Zeros are dropped (Wilcoxon's
    /// handling, as R's wilcox.test; not Pratt's) and |d| gets mid-ranks. p = P(W⁺ ≥ w) under random signs: exact
    /// (conditional on the ties) for small n, else normal with variance n(n+1)(2n+1)/24 − Σ(t³ − t)/48 and a continuity
    /// correction of ½. No non-zero value gives p = 1.
    /// </summary>
    public static RankTestResult SignedRank(IReadOnlyList<double> d, RankMethod method = RankMethod.Auto)
    {
        const string Name = "Wilcoxon signed-rank";
        ArgumentNullException.ThrowIfNull(d);
        RequireFinite(d, nameof(d));
        var nonZero = d.Where(v => !Tied(v, 0)).ToArray();
        var n = nonZero.Length;
        if (n == 0)
        {
            return new RankTestResult(Name, 0, 0, 1, false);
        }

        var ranks = MidRanks(nonZero.Select(Math.Abs).ToArray(), out var tieTerm);
        long doubledPositive = 0;
        for (var i = 0; i < n; i++)
        {
            if (nonZero[i] > 0)
            {
                doubledPositive += ranks[i];
            }
        }

        var wPlus = doubledPositive / 2.0;
        var variance = n * (n + 1.0) * (2 * n + 1) / 24 - tieTerm / 48;
        var z = (wPlus - n * (n + 1.0) / 4 - 0.5) / Math.Sqrt(variance);
        var exact = method == RankMethod.Exact || (method == RankMethod.Auto && n <= ExactMaxSignedRank);
        var p = exact ? SignedRankUpperTail(ranks, doubledPositive) : Normal.UpperTail(z);
        return new RankTestResult(Name, wPlus, z, p, exact);
    }

    internal static bool Tied(double a, double b) =>
        a == b || Math.Abs(a - b) <= TieTolerance * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b)));

    /// <summary>Twice the mid-ranks (1-based) of <paramref name="values"/>, integers; Σ(t³ − t) over tie groups.</summary>
    internal static int[] MidRanks(double[] values, out double tieTerm)
    {
        var n = values.Length;
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }

        var sorted = (double[])values.Clone();
        Array.Sort(sorted, order);
        var ranks = new int[n];
        tieTerm = 0;
        for (var i = 0; i < n;)
        {
            var j = i + 1;
            while (j < n && Tied(sorted[i], sorted[j]))
            {
                j++;
            }

            // Positions i..j−1 hold ranks i+1..j; twice their mean is i+1+j.
            var doubled = i + 1 + j;
            double t = j - i;
            tieTerm += t * t * t - t;
            for (var k = i; k < j; k++)
            {
                ranks[order[k]] = doubled;
            }

            i = j;
        }

        return ranks;
    }

    private static double RankSumVariance(int n1, int n2, double tieTerm)
    {
        double n = n1 + n2;
        return n1 * (double)n2 / 12 * (n + 1 - tieTerm / (n * (n - 1)));
    }

    // P(sum of the doubled ranks of a random n1-subset ≥ observed): counts subsets by size and sum, for the smaller of
    // the two groups (the larger one's sum is the total minus it).
    private static double RankSumUpperTail(int[] doubledRanks, int n1, long observed)
    {
        var n = doubledRanks.Length;
        var m = n1;
        var complement = false;
        long total = doubledRanks.Sum(r => (long)r);
        if (n1 > n - n1)
        {
            m = n - n1;
            complement = true;
            observed = total - observed;
        }

        var descending = doubledRanks.OrderByDescending(r => r).ToArray();
        var maxSum = 0;
        for (var i = 0; i < m; i++)
        {
            maxSum += descending[i];
        }

        var ways = new double[m + 1][];
        for (var j = 0; j <= m; j++)
        {
            ways[j] = new double[maxSum + 1];
        }

        ways[0][0] = 1;
        var reach = 0;
        for (var i = 0; i < n; i++)
        {
            var r = descending[i];
            for (var j = Math.Min(i + 1, m); j >= 1; j--)
            {
                var from = ways[j - 1];
                var to = ways[j];
                for (var s = Math.Min(reach, maxSum - r); s >= 0; s--)
                {
                    if (from[s] != 0)
                    {
                        to[s + r] += from[s];
                    }
                }
            }

            reach = Math.Min(maxSum, reach + r);
        }

        double all = 0, tail = 0;
        for (var s = 0; s <= maxSum; s++)
        {
            var count = ways[m][s];
            all += count;
            if (complement ? s <= observed : s >= observed)
            {
                tail += count;
            }
        }

        return Math.Min(1, tail / all);
    }

    // P(sum of the doubled ranks given a + sign ≥ observed) when each sign is + with probability ½.
    private static double SignedRankUpperTail(int[] doubledRanks, long observed)
    {
        var total = doubledRanks.Sum();
        var probability = new double[total + 1];
        probability[0] = 1;
        var reach = 0;
        foreach (var r in doubledRanks)
        {
            for (var s = reach; s >= 0; s--)
            {
                var half = 0.5 * probability[s];
                probability[s] = half;
                probability[s + r] += half;
            }

            reach += r;
        }

        double tail = 0;
        for (var s = (int)Math.Max(0, observed); s <= total; s++)
        {
            tail += probability[s];
        }

        return Math.Min(1, tail);
    }

    private static void RequireFinite(IReadOnlyList<double> values, string name)
    {
        ArgumentNullException.ThrowIfNull(values, name);
        foreach (var v in values)
        {
            if (!double.IsFinite(v))
            {
                throw new ArgumentException("values must be finite", name);
            }
        }
    }
}
