using MathNet.Numerics;

namespace EdgeFleet.Drift;

/// <summary>
/// The drift statistics, with the definitions other tools use so results are comparable (Evidently, scipy):
/// PSI and Jensen–Shannon over bins whose edges are the baseline's equal-frequency quantiles, empty-bin
/// proportions replaced by 0.0001, natural logarithm; JS distance is the square root of the JS divergence;
/// two-sample Kolmogorov–Smirnov on raw values with an exact p-value for small samples and the asymptotic one
/// for large; Wasserstein-1 on raw values; chi-square test of homogeneity for categorical features.
/// </summary>
public static class DriftStatistics
{
    /// <summary>Proportion used for a bin that holds nothing (as Evidently does).</summary>
    public const double EmptyBinProportion = 0.0001;

    /// <summary>Above this n·m the KS p-value uses the asymptotic distribution.</summary>
    public const long ExactKsLimit = 1_000_000;

    /// <summary>
    /// Interior bin edges: the baseline's quantiles at 1/K … (K−1)/K (linear interpolation between order
    /// statistics, numpy's default), duplicates removed. Bin i holds values in (edge[i−1], edge[i]].
    /// </summary>
    public static double[] QuantileEdges(ReadOnlySpan<double> sortedBaseline, int bins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 2);
        if (sortedBaseline.IsEmpty)
        {
            throw new ArgumentException("the baseline is empty", nameof(sortedBaseline));
        }

        var edges = new List<double>(bins - 1);
        for (var i = 1; i < bins; i++)
        {
            var q = Quantile(sortedBaseline, i / (double)bins);
            if (edges.Count == 0 || q > edges[^1])
            {
                edges.Add(q);
            }
        }

        return [.. edges];
    }

    /// <summary>Quantile of sorted values with linear interpolation (type 7, numpy's default).</summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        var h = (sorted.Length - 1) * q;
        var lo = (int)Math.Floor(h);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Index of the bin (0 … edges.Length) that holds <paramref name="value"/>.</summary>
    public static int BinOf(ReadOnlySpan<double> edges, double value)
    {
        // first edge ≥ value: bins are right-closed, (e[i-1], e[i]]
        int lo = 0, hi = edges.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (edges[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>Counts → proportions with empty bins set to <see cref="EmptyBinProportion"/>.</summary>
    public static double[] Proportions(ReadOnlySpan<long> counts)
    {
        long total = 0;
        foreach (var c in counts)
        {
            total += c;
        }

        var p = new double[counts.Length];
        for (var i = 0; i < counts.Length; i++)
        {
            p[i] = counts[i] == 0 || total == 0 ? EmptyBinProportion : counts[i] / (double)total;
        }

        return p;
    }

    /// <summary>Population stability index Σ (actual − expected)·ln(actual / expected).</summary>
    public static double Psi(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual)
    {
        CheckSameLength(expected, actual);
        double psi = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            psi += (actual[i] - expected[i]) * Math.Log(actual[i] / expected[i]);
        }

        return psi;
    }

    /// <summary>Jensen–Shannon distance: √(½KL(p‖m) + ½KL(q‖m)), m = (p+q)/2, natural log (0 … √ln 2).</summary>
    public static double JensenShannonDistance(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        CheckSameLength(p, q);
        double sp = 0, sq = 0;
        for (var i = 0; i < p.Length; i++)
        {
            sp += p[i];
            sq += q[i];
        }

        double js = 0;
        for (var i = 0; i < p.Length; i++)
        {
            var a = p[i] / sp;
            var b = q[i] / sq;
            var m = (a + b) / 2;
            if (a > 0)
            {
                js += 0.5 * a * Math.Log(a / m);
            }

            if (b > 0)
            {
                js += 0.5 * b * Math.Log(b / m);
            }
        }

        return Math.Sqrt(Math.Max(0, js));
    }

    /// <summary>Two-sample Kolmogorov–Smirnov statistic D = sup |F₁ − F₂| on sorted samples.</summary>
    public static double KsStatistic(ReadOnlySpan<double> sortedA, ReadOnlySpan<double> sortedB)
    {
        if (sortedA.IsEmpty || sortedB.IsEmpty)
        {
            return double.NaN;
        }

        int i = 0, j = 0;
        double n = sortedA.Length, m = sortedB.Length, d = 0;
        while (i < sortedA.Length && j < sortedB.Length)
        {
            var x = Math.Min(sortedA[i], sortedB[j]);
            while (i < sortedA.Length && sortedA[i] <= x)
            {
                i++;
            }

            while (j < sortedB.Length && sortedB[j] <= x)
            {
                j++;
            }

            d = Math.Max(d, Math.Abs(i / n - j / m));
        }

        return d;
    }

    /// <summary>
    /// Two-sided p-value of the two-sample KS statistic <paramref name="d"/> for sample sizes n and m: exact
    /// (lattice-path count, continuous data) when n·m ≤ <see cref="ExactKsLimit"/>, else the asymptotic
    /// Kolmogorov distribution at √(nm/(n+m))·d. Sizes may be effective sample sizes (non-integer); the exact
    /// method then uses them rounded.
    /// </summary>
    public static double KsPValue(double d, double n, double m)
    {
        if (double.IsNaN(d) || n < 1 || m < 1)
        {
            return double.NaN;
        }

        if (d <= 0)
        {
            return 1;
        }

        var ni = (long)Math.Round(n);
        var mi = (long)Math.Round(m);
        if (ni * mi <= ExactKsLimit)
        {
            return Math.Clamp(ExactKsPValue(d, (int)ni, (int)mi), 0, 1);
        }

        var en = n * m / (n + m);
        return KolmogorovSurvival(Math.Sqrt(en) * d);
    }

    /// <summary>
    /// P(D ≥ d) for samples of size n and m under the null: 1 − (paths from (0,0) to (n,m) staying strictly
    /// inside |i/n − j/m| &lt; d) / C(n+m, n), counted with path probabilities to avoid overflow.
    /// </summary>
    internal static double ExactKsPValue(double d, int n, int m)
    {
        if (n > m)
        {
            (n, m) = (m, n);
        }

        // A small tolerance so that a statistic equal to a lattice value counts as reaching it.
        var limit = d - 1e-12;
        var u = new double[m + 1];
        for (var j = 0; j <= m; j++)
        {
            u[j] = Math.Abs(j / (double)m) >= limit ? 0 : 1;
        }

        for (var i = 1; i <= n; i++)
        {
            var w = (double)i / (i + m); // rescaling keeps u a probability
            u[0] = Math.Abs(i / (double)n) >= limit ? 0 : w * u[0];
            for (var j = 1; j <= m; j++)
            {
                u[j] = Math.Abs(i / (double)n - j / (double)m) >= limit ? 0 : w * u[j] + u[j - 1];
            }
        }

        return 1 - u[m];
    }

    /// <summary>Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²), the Kolmogorov distribution's survival function.</summary>
    public static double KolmogorovSurvival(double lambda)
    {
        if (lambda < 0.2)
        {
            return 1;
        }

        double sum = 0;
        for (var k = 1; k <= 100; k++)
        {
            var term = Math.Exp(-2.0 * k * k * lambda * lambda);
            sum += (k % 2 == 1 ? 1 : -1) * term;
            if (term < 1e-17)
            {
                break;
            }
        }

        return Math.Clamp(2 * sum, 0, 1);
    }

    /// <summary>Wasserstein-1 distance between two empirical distributions: ∫ |F₁(x) − F₂(x)| dx.</summary>
    public static double Wasserstein1(ReadOnlySpan<double> sortedA, ReadOnlySpan<double> sortedB)
    {
        if (sortedA.IsEmpty || sortedB.IsEmpty)
        {
            return double.NaN;
        }

        int i = 0, j = 0;
        double n = sortedA.Length, m = sortedB.Length, w = 0;
        var previous = Math.Min(sortedA[0], sortedB[0]);
        while (i < sortedA.Length || j < sortedB.Length)
        {
            var x = j >= sortedB.Length || (i < sortedA.Length && sortedA[i] <= sortedB[j]) ? sortedA[i] : sortedB[j];
            w += Math.Abs(i / n - j / m) * (x - previous);
            previous = x;
            while (i < sortedA.Length && sortedA[i] <= x)
            {
                i++;
            }

            while (j < sortedB.Length && sortedB[j] <= x)
            {
                j++;
            }
        }

        return w;
    }

    /// <summary>
    /// Chi-square test of homogeneity of two count vectors over the same categories (categories empty in both
    /// are ignored); the weights scale each side's counts to its effective sample size (effective / actual n).
    /// </summary>
    public static (double Statistic, double PValue, int DegreesOfFreedom) ChiSquare(ReadOnlySpan<long> baseline,
        ReadOnlySpan<long> current, double currentWeight = 1, double baselineWeight = 1)
    {
        if (baseline.Length != current.Length)
        {
            throw new ArgumentException("baseline and current have different category counts");
        }

        double nb = 0, nc = 0;
        for (var k = 0; k < baseline.Length; k++)
        {
            nb += baseline[k] * baselineWeight;
            nc += current[k] * currentWeight;
        }

        if (nb <= 0 || nc <= 0)
        {
            return (double.NaN, double.NaN, 0);
        }

        double chi2 = 0;
        var categories = 0;
        var total = nb + nc;
        for (var k = 0; k < baseline.Length; k++)
        {
            var c = current[k] * currentWeight;
            var b = baseline[k] * baselineWeight;
            var column = b + c;
            if (column <= 0)
            {
                continue;
            }

            categories++;
            var expectedB = column * nb / total;
            var expectedC = column * nc / total;
            chi2 += (b - expectedB) * (b - expectedB) / expectedB;
            chi2 += (c - expectedC) * (c - expectedC) / expectedC;
        }

        var df = categories - 1;
        if (df < 1)
        {
            return (0, 1, 0);
        }

        return (chi2, SpecialFunctions.GammaUpperRegularized(df / 2.0, chi2 / 2), df);
    }

    /// <summary>Benjamini–Hochberg adjusted p-values (false discovery rate across features); NaN stays NaN.</summary>
    public static double[] BenjaminiHochberg(IReadOnlyList<double> pValues)
    {
        var indexed = pValues.Select((p, i) => (p, i)).Where(t => !double.IsNaN(t.p)).OrderBy(t => t.p).ToArray();
        var adjusted = Enumerable.Repeat(double.NaN, pValues.Count).ToArray();
        var m = indexed.Length;
        var running = 1.0;
        for (var r = m - 1; r >= 0; r--)
        {
            running = Math.Min(running, indexed[r].p * m / (r + 1));
            adjusted[indexed[r].i] = Math.Min(1, running);
        }

        return adjusted;
    }

    /// <summary>
    /// Effective sample size of an AR(1)-like series: n·(1 − ρ)/(1 + ρ) for lag-1 autocorrelation ρ &gt; 0, else n.
    /// Consecutive video frames are strongly correlated; tests use this n so that a slowly moving scene is not
    /// "significant" just because it was sampled 30 times a second.
    /// </summary>
    public static double EffectiveSampleSize(long n, double lag1Autocorrelation)
    {
        if (n <= 1 || double.IsNaN(lag1Autocorrelation) || lag1Autocorrelation <= 0)
        {
            return n;
        }

        var rho = Math.Min(lag1Autocorrelation, 0.999);
        return Math.Max(1, n * (1 - rho) / (1 + rho));
    }

    /// <summary>Population standard deviation.</summary>
    public static double StdDev(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
        {
            return double.NaN;
        }

        double mean = 0;
        foreach (var v in values)
        {
            mean += v;
        }

        mean /= values.Length;
        double ss = 0;
        foreach (var v in values)
        {
            ss += (v - mean) * (v - mean);
        }

        return Math.Sqrt(ss / values.Length);
    }

    private static void CheckSameLength(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"distributions have {a.Length} and {b.Length} bins");
        }
    }
}
