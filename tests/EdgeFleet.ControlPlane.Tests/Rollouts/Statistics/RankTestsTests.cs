using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

[Trait("Category", "Unit")]
public sealed class RankTestsTests
{
    [Fact]
    public void MannWhitney_XAllAbove_ExactIsOneInTenAndNormalIsHandComputed()
    {
        var exact = RankTests.MannWhitney([3, 4, 5], [1, 2]);
        var normal = RankTests.MannWhitney([3, 4, 5], [1, 2], RankMethod.Normal);

        Assert.True(exact.Exact);
        Assert.Equal(6, exact.Statistic);
        Assert.Equal(0.1, exact.PValue, 1e-12);
        // U = 6, mean 3, variance 3·2·6/12 = 3: z = (6 − 3 − ½)/√3.
        Assert.Equal(2.5 / Math.Sqrt(3), normal.Z, 1e-12);
        Assert.Equal(0.07445733658938283, normal.PValue, 1e-12);
    }

    [Fact]
    public void MannWhitney_Mixed_CountsTheSubsetsAtLeastAsLarge()
    {
        // U = 2 for n₁ = 3, n₂ = 2; the ten subsets have U = 0,1,2,2,3,3,4,4,5,6.
        var result = RankTests.MannWhitney([1, 2, 5], [3, 4]);

        Assert.Equal(2, result.Statistic);
        Assert.Equal(0.8, result.PValue, 1e-12);
    }

    [Fact]
    public void MannWhitney_Ties_UsesMidRanksInTheExactDistribution()
    {
        // Pooled 1, 2, 2, 2, 3 has mid-ranks 1, 3, 3, 3, 5; x = {2, 2, 3} sums to 11, which 3 of the 10 subsets reach.
        var result = RankTests.MannWhitney([2, 2, 3], [1, 2]);

        Assert.Equal(11 - 6, result.Statistic);
        Assert.Equal(0.3, result.PValue, 1e-12);
    }

    [Theory]
    [InlineData(RankMethod.Auto, 3, 4)]
    [InlineData(RankMethod.Auto, 10, 300)]
    [InlineData(RankMethod.Exact, 10, 30)]
    [InlineData(RankMethod.Normal, 3, 4)]
    public void MannWhitney_AllValuesEqual_PIsOne(RankMethod method, int n1, int n2)
    {
        var result = RankTests.MannWhitney(new double[n1], new double[n2], method);

        Assert.Equal(1, result.PValue);
        Assert.Equal(0, result.Z);
    }

    [Fact]
    public void MannWhitney_FloatingPointNoise_CountsAsATie()
    {
        // 0.03 − 0.02 is 0.009999999999999998, a hair below 0 + 0.01.
        var result = RankTests.MannWhitney([0.03 - 0.02, 0.03 - 0.02], [0 + 0.01, 0 + 0.01]);

        Assert.Equal(1, result.PValue);
    }

    [Fact]
    public void MannWhitney_NoValuesInAGroup_PIsOne()
    {
        Assert.Equal(1, RankTests.MannWhitney([1, 2, 3], []).PValue);
    }

    [Fact]
    public void MannWhitney_ModerateSamples_ExactAndNormalAgree()
    {
        var random = new Random(11);
        for (var trial = 0; trial < 40; trial++)
        {
            var x = Enumerable.Range(0, 15).Select(_ => random.NextDouble() + 0.3).ToArray();
            // Rounded to one decimal so that some values tie.
            var y = Enumerable.Range(0, 18).Select(_ => Math.Round(random.NextDouble(), 1)).ToArray();

            var exact = RankTests.MannWhitney(x, y, RankMethod.Exact);
            var normal = RankTests.MannWhitney(x, y, RankMethod.Normal);

            Assert.True(exact.Exact);
            Assert.Equal(exact.Statistic, normal.Statistic);
            Assert.Equal(exact.PValue, normal.PValue, 0.01);
        }
    }

    [Fact]
    public void VanElteren_OneStratum_EqualsMannWhitney()
    {
        var random = new Random(5);
        var x = Enumerable.Range(0, 12).Select(_ => Math.Round(random.NextDouble(), 1) + 0.1).ToArray();
        var y = Enumerable.Range(0, 40).Select(_ => Math.Round(random.NextDouble(), 1)).ToArray();

        var stratified = RankTests.VanElteren([new RankStratum("hw=a", x, y)]);
        var plain = RankTests.MannWhitney(x, y, RankMethod.Normal);

        Assert.Equal(plain.Z, stratified.Z, 1e-12);
        Assert.Equal(plain.PValue, stratified.PValue, 1e-12);
    }

    [Fact]
    public void VanElteren_TwoStrata_MatchesHandComputation()
    {
        // A: W = 3 + 4 = 7, E = 5, V = 2·2·5/12, weight 1/5. B: W = 1, E = 2, V = 1·2·4/12, weight 1/4.
        // A stratum without one of the groups contributes nothing.
        var result = RankTests.VanElteren([
            new RankStratum("hw=a", [3, 4], [1, 2]),
            new RankStratum("hw=b", [1], [2, 3]),
            new RankStratum("hw=c", [], [5, 6]),
        ]);

        var expected = (0.2 * 2 + 0.25 * -1 - 0.5 * 0.25) / Math.Sqrt(0.04 * 5 / 3 + 0.0625 * 2 / 3);
        Assert.Equal(0.2 * 7 + 0.25 * 1, result.Statistic, 1e-12);
        Assert.Equal(expected, result.Z, 1e-12);
        Assert.Equal(Normal.UpperTail(expected), result.PValue, 1e-12);
    }

    [Fact]
    public void VanElteren_NothingComparable_PIsOne()
    {
        Assert.Equal(1, RankTests.VanElteren([new RankStratum("hw=a", [1, 2], []), new RankStratum("hw=b", [], [3])]).PValue);
        Assert.Equal(1, RankTests.VanElteren([new RankStratum("hw=a", [0, 0], [0, 0, 0])]).PValue);
    }

    [Fact]
    public void SignedRank_SmallSample_ExactIsHandComputed()
    {
        // |d| ranks 2, 3, 4 positive, 1 negative: W⁺ = 9, reached by 2 of the 16 sign patterns.
        var mixed = RankTests.SignedRank([1, 2, 3, -0.5]);
        // All positive: W⁺ = 10, 1 of 16; the zero is dropped.
        var positive = RankTests.SignedRank([1, 2, 0, 3, 4]);
        // Tied |d| get rank 2 each: W⁺ = 4 needs two or three + signs, 4 of 8.
        var tied = RankTests.SignedRank([1, 1, -1]);

        Assert.Equal(9, mixed.Statistic);
        Assert.Equal(2.0 / 16, mixed.PValue, 1e-12);
        Assert.Equal(10, positive.Statistic);
        Assert.Equal(1.0 / 16, positive.PValue, 1e-12);
        Assert.Equal(4, tied.Statistic);
        Assert.Equal(0.5, tied.PValue, 1e-12);
    }

    [Fact]
    public void SignedRank_OnlyZeros_PIsOne()
    {
        Assert.Equal(1, RankTests.SignedRank([0, 0, 0]).PValue);
        Assert.Equal(1, RankTests.SignedRank([]).PValue);
    }

    [Fact]
    public void SignedRank_ModerateSample_ExactAndNormalAgree()
    {
        var random = new Random(3);
        for (var trial = 0; trial < 40; trial++)
        {
            var d = Enumerable.Range(0, 40).Select(_ => Math.Round(random.NextDouble() - 0.4, 2)).ToArray();

            var exact = RankTests.SignedRank(d, RankMethod.Exact);
            var normal = RankTests.SignedRank(d, RankMethod.Normal);

            Assert.Equal(exact.PValue, normal.PValue, 0.01);
        }
    }

    [Fact]
    public void Tests_NonFiniteValue_Throw()
    {
        Assert.Throws<ArgumentException>(() => RankTests.MannWhitney([double.NaN], [1]));
        Assert.Throws<ArgumentException>(() => RankTests.SignedRank([double.PositiveInfinity]));
    }
}
