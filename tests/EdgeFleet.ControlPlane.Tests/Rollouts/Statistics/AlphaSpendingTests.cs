using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

[Trait("Category", "Unit")]
public sealed class AlphaSpendingTests
{
    [Theory]
    [InlineData(SpendingFunction.Pocock)]
    [InlineData(SpendingFunction.OBrienFleming)]
    public void Cumulative_EndsAndBeyond_AreZeroAndAlpha(SpendingFunction f)
    {
        Assert.Equal(0, AlphaSpending.Cumulative(f, 0.05, 0));
        Assert.Equal(0, AlphaSpending.Cumulative(f, 0.05, -0.5));
        Assert.Equal(0.05, AlphaSpending.Cumulative(f, 0.05, 1));
        Assert.Equal(0.05, AlphaSpending.Cumulative(f, 0.05, 1.7));
        Assert.Equal(0.05, AlphaSpending.Cumulative(f, 0.05, 1 - 1e-12), 1e-12);
    }

    [Theory]
    [InlineData(SpendingFunction.Pocock, 0.05)]
    [InlineData(SpendingFunction.OBrienFleming, 0.05)]
    [InlineData(SpendingFunction.Pocock, 0.01)]
    [InlineData(SpendingFunction.OBrienFleming, 0.2)]
    public void Cumulative_OverTime_IsMonotoneWithinZeroAndAlpha(SpendingFunction f, double alpha)
    {
        var previous = 0.0;
        for (var t = 0.001; t <= 1.0; t += 0.001)
        {
            var spent = AlphaSpending.Cumulative(f, alpha, t);
            Assert.InRange(spent, previous, alpha);
            previous = spent;
        }
    }

    [Fact]
    public void Cumulative_KnownValues_MatchTheFormulas()
    {
        // 0.05·ln(1 + (e − 1)·0.1) and 2 − 2Φ(1.959964/√0.5), from CPython.
        Assert.Equal(0.007928253937021455, AlphaSpending.Cumulative(SpendingFunction.Pocock, 0.05, 0.1), 1e-15);
        Assert.Equal(0.005574596680784421, AlphaSpending.Cumulative(SpendingFunction.OBrienFleming, 0.05, 0.5), 1e-12);
    }

    [Fact]
    public void Cumulative_Early_PocockSpendsMoreThanOBrienFleming()
    {
        Assert.True(AlphaSpending.Cumulative(SpendingFunction.Pocock, 0.05, 0.2) > 10 * AlphaSpending.Cumulative(SpendingFunction.OBrienFleming, 0.05, 0.2));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void Cumulative_AlphaOutOfRange_Throws(double alpha)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AlphaSpending.Cumulative(SpendingFunction.Pocock, alpha, 0.5));
    }
}
