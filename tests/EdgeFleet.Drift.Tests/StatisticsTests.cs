using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Drift.Tests;

/// <summary>The statistics against values computed by hand (and, where noted, what scipy / Evidently give).</summary>
[Trait("Category", "Unit")]
public sealed class StatisticsTests
{
    [Fact]
    public void Psi_TwoBins_MatchesHandComputed()
    {
        // (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5) = 0.17329 + 0.10137
        Assert.Equal(0.274653, DriftStatistics.Psi([0.5, 0.5], [0.25, 0.75]), 5);
        Assert.Equal(0, DriftStatistics.Psi([0.2, 0.8], [0.2, 0.8]));
    }

    [Fact]
    public void Proportions_EmptyBin_BecomesOneTenThousandth()
    {
        Assert.Equal([0.0001, 1.0], DriftStatistics.Proportions([0, 10]));
    }

    [Fact]
    public void JensenShannonDistance_DisjointAndIdentical()
    {
        Assert.Equal(Math.Sqrt(Math.Log(2)), DriftStatistics.JensenShannonDistance([1, 0], [0, 1]), 9);
        Assert.Equal(0, DriftStatistics.JensenShannonDistance([0.3, 0.7], [0.3, 0.7]), 9);
        // p = (0.5, 0.5), q = (0.9, 0.1): m = (0.7, 0.3); JS = ½[0.5 ln(0.5/0.7) + 0.5 ln(0.5/0.3)] + ½[0.9 ln(0.9/0.7) + 0.1 ln(0.1/0.3)]
        var js = 0.5 * (0.5 * Math.Log(0.5 / 0.7) + 0.5 * Math.Log(0.5 / 0.3)) + 0.5 * (0.9 * Math.Log(0.9 / 0.7) + 0.1 * Math.Log(0.1 / 0.3));
        Assert.Equal(Math.Sqrt(js), DriftStatistics.JensenShannonDistance([0.5, 0.5], [0.9, 0.1]), 9);
    }

    [Fact]
    public void KsStatistic_SmallSamples_MatchesHandComputed()
    {
        Assert.Equal(1.0 / 3, DriftStatistics.KsStatistic([1, 2, 3], [2, 3, 4]), 9);
        Assert.Equal(1, DriftStatistics.KsStatistic([1, 2, 3], [4, 5, 6]), 9);
        Assert.Equal(0, DriftStatistics.KsStatistic([1, 2, 3], [1, 2, 3]), 9);
    }

    [Theory]
    [InlineData(3, 3, 1.0, 0.1)]                  // 2 / C(6,3): only the two fully separated orderings
    [InlineData(5, 5, 1.0, 2.0 / 252)]            // 2 / C(10,5)
    [InlineData(3, 3, 1.0 / 3, 1.0)]              // scipy.stats.ks_2samp([1,2,3],[2,3,4]) → p = 1.0
    [InlineData(2, 4, 1.0, 2.0 / 15)]             // 2 / C(6,2)
    public void KsPValue_Exact_MatchesCounting(int n, int m, double d, double expected)
    {
        Assert.Equal(expected, DriftStatistics.KsPValue(d, n, m), 6);
    }

    [Fact]
    public void KsPValue_LargeSamples_UsesTheKolmogorovDistribution()
    {
        // Q(1.3581) = 0.05 is the classic 5 % critical value.
        Assert.Equal(0.05, DriftStatistics.KolmogorovSurvival(1.3581), 3);
        var d = 1.3581 / Math.Sqrt(2000 * 2000 / 4000.0);
        Assert.Equal(0.05, DriftStatistics.KsPValue(d, 2000, 2000), 3);
    }

    [Fact]
    public void KsPValue_ExactAndAsymptoticAgreeAtTheBoundary()
    {
        var exact = DriftStatistics.ExactKsPValue(0.1, 1000, 1000);
        var asymptotic = DriftStatistics.KolmogorovSurvival(Math.Sqrt(500) * 0.1);
        Assert.Equal(asymptotic, exact, 2);
    }

    [Fact]
    public void Wasserstein1_KnownShiftsAndShapes()
    {
        Assert.Equal(5, DriftStatistics.Wasserstein1([0, 1, 3], [5, 6, 8]), 9);
        Assert.Equal(1, DriftStatistics.Wasserstein1([0, 0], [1, 1]), 9);
        // scipy.stats.wasserstein_distance([0, 1], [0, 2]) = 0.5
        Assert.Equal(0.5, DriftStatistics.Wasserstein1([0, 1], [0, 2]), 9);
        Assert.Equal(0, DriftStatistics.Wasserstein1([1, 2, 3], new double[] { 3, 2, 1 }.Order().ToArray()), 9);
    }

    [Fact]
    public void ChiSquare_HandComputed()
    {
        var same = DriftStatistics.ChiSquare([10, 10], [10, 10]);
        Assert.Equal((0, 1.0, 1), (same.Statistic, Math.Round(same.PValue, 9), same.DegreesOfFreedom));

        // [20, 0] vs [0, 20]: every expected count is 10 → 4 · (10²/10) = 40 on 1 df, p = 2.54e-10
        var opposite = DriftStatistics.ChiSquare([20, 0], [0, 20]);
        Assert.Equal(40, opposite.Statistic, 9);
        Assert.Equal(2.5396e-10, opposite.PValue, 13);

        // 2x3: baseline [30, 20, 50], current [20, 30, 50]: chi2 = 4.0, df 2 → p = e^(−2) = 0.13534
        var three = DriftStatistics.ChiSquare([30, 20, 50], [20, 30, 50]);
        Assert.Equal(4.0, three.Statistic, 9);
        Assert.Equal(Math.Exp(-2), three.PValue, 9);
    }

    [Fact]
    public void BenjaminiHochberg_HandComputed()
    {
        var adjusted = DriftStatistics.BenjaminiHochberg([0.01, 0.04, 0.03, double.NaN]);

        Assert.Equal(0.03, adjusted[0], 9);
        Assert.Equal(0.04, adjusted[1], 9);
        Assert.Equal(0.04, adjusted[2], 9);
        Assert.True(double.IsNaN(adjusted[3]));
    }

    [Fact]
    public void QuantileEdges_NumpyLinearInterpolation()
    {
        var sorted = Enumerable.Range(1, 10).Select(i => (double)i).ToArray();

        Assert.Equal([2.8, 4.6, 6.4, 8.2], DriftStatistics.QuantileEdges(sorted, 5).Select(e => Math.Round(e, 9)));
        Assert.Equal([1.0], DriftStatistics.QuantileEdges([1, 1, 1, 1], 4)); // ties collapse to one edge
    }

    [Fact]
    public void BinOf_RightClosedBins()
    {
        double[] edges = [1, 2, 3];
        Assert.Equal(0, DriftStatistics.BinOf(edges, 0.5));
        Assert.Equal(0, DriftStatistics.BinOf(edges, 1));
        Assert.Equal(1, DriftStatistics.BinOf(edges, 1.5));
        Assert.Equal(3, DriftStatistics.BinOf(edges, 99));
    }

    [Fact]
    public void EffectiveSampleSize_Ar1()
    {
        Assert.Equal(100.0 / 3, DriftStatistics.EffectiveSampleSize(100, 0.5), 9);
        Assert.Equal(100, DriftStatistics.EffectiveSampleSize(100, -0.2));
        Assert.Equal(100, DriftStatistics.EffectiveSampleSize(100, double.NaN));
    }

    [Fact]
    public void Grade_SignificantChangeIsGradedByPsi_InsignificantIsNone()
    {
        var big = new FeatureDrift { Name = "a", N = new SampleSizes(100, 100), Psi = 0.4, Ks = new TestResult(0.5, 1e-9) };
        var moderate = new FeatureDrift { Name = "b", N = new SampleSizes(100, 100), Psi = 0.15, Ks = new TestResult(0.3, 1e-4) };
        var noisy = new FeatureDrift { Name = "c", N = new SampleSizes(5, 5), Psi = 3.0, Ks = new TestResult(0.6, 0.3) };

        var graded = DriftComparer.Grade([big, moderate, noisy], new DriftThresholds());

        Assert.Equal([DriftSeverity.Alert, DriftSeverity.Warn, DriftSeverity.None], graded.Select(f => f.Severity));
        Assert.Equal(DriftSeverity.Alert, DriftComparer.Worst(graded));
    }
}
