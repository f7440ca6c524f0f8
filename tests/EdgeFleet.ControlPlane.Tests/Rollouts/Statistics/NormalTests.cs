using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

[Trait("Category", "Unit")]
public sealed class NormalTests
{
    // 0.5·erfc(−x/√2) from CPython's math.erfc.
    [Theory]
    [InlineData(0.0, 0.5)]
    [InlineData(0.5, 0.6914624612740131)]
    [InlineData(1.96, 0.9750021048517795)]
    [InlineData(3.0, 0.9986501019683699)]
    [InlineData(6.0, 0.9999999990134123)]
    [InlineData(-1.0, 0.15865525393145707)]
    [InlineData(-2.5, 0.006209665325776139)]
    [InlineData(-5.0, 2.866515718791946e-07)]
    [InlineData(-8.0, 6.220960574271819e-16)]
    [InlineData(-12.0, 1.776482112077702e-33)]
    [InlineData(-37.0, 5.725571222525139e-300)]
    public void Cdf_KnownValues_MatchToRelativeAccuracy(double x, double expected)
    {
        Assert.Equal(expected, Normal.Cdf(x), expected * 1e-12);
        Assert.Equal(1 - expected, Normal.UpperTail(x), 1e-15);
        Assert.Equal(expected, Normal.UpperTail(-x), expected * 1e-12);
    }

    // From CPython's statistics.NormalDist.inv_cdf (Wichura's AS241).
    [Theory]
    [InlineData(0.5, 0.0)]
    [InlineData(0.975, 1.9599639845400536)]
    [InlineData(0.95, 1.6448536269514715)]
    [InlineData(0.3, -0.5244005127080407)]
    [InlineData(0.02425, -1.9729610513118845)]
    [InlineData(0.001, -3.090232306167813)]
    [InlineData(1e-10, -6.361340902404056)]
    [InlineData(0.999999, 4.753424308817089)]
    [InlineData(1e-300, -37.0470962993612)]
    public void Quantile_KnownValues_MatchTo1e9(double p, double expected)
    {
        Assert.Equal(expected, Normal.Quantile(p), 1e-9);
    }

    [Fact]
    public void Quantile_OfCdf_ReturnsTheArgument()
    {
        for (var x = -37.0; x <= 8.0; x += 0.137)
        {
            // Above 0 a Cdf near 1 has lost digits (1 − 4e-9 at x = 5.76): allow the error of rounding p, ½ulp(1)/φ(x).
            var density = Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);
            var tolerance = x <= 0 ? 1e-12 * Math.Max(1, -x) : 1e-12 + 2e-16 / density;
            Assert.Equal(x, Normal.Quantile(Normal.Cdf(x)), tolerance);
        }
    }

    [Fact]
    public void Quantile_Limits_AreInfiniteAndOutOfRangeThrows()
    {
        Assert.Equal(double.NegativeInfinity, Normal.Quantile(0));
        Assert.Equal(double.PositiveInfinity, Normal.Quantile(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Normal.Quantile(1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Normal.Quantile(double.NaN));
    }
}
