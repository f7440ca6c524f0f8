using System.Text.Json;
using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

[Trait("Category", "Unit")]
public sealed class QualityGateTests
{
    private static readonly GateSpec Latency = new("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0.10);

    [Fact]
    public void Judge_NoDevicesAtTheEnd_IsInconclusiveAndSpendsNothing()
    {
        var verdict = QualityGate.Judge(Latency, [], [], 1.0, 0.02);

        Assert.Equal(GateOutcome.Inconclusive, verdict.Outcome);
        Assert.Equal(0.02, verdict.AlphaSpent);
        Assert.Equal(0, verdict.Evidence.NominalAlpha);
        Assert.Null(verdict.Evidence.PValue);
        Assert.Null(verdict.Evidence.Test);
    }

    [Fact]
    public void Judge_TooFewTreated_InconclusiveAtTheEndPendingBefore()
    {
        var treated = Devices(3, "", i => (20 + i, 40 + i));
        var control = Devices(50, "", i => (20 + i, 20 + i));

        var early = QualityGate.Judge(Latency, treated, control, 0.5, 0.001);
        var end = QualityGate.Judge(Latency, treated, control, 1.0, 0.001);

        Assert.Equal(GateOutcome.Pending, early.Outcome);
        Assert.Equal(GateOutcome.Inconclusive, end.Outcome);
        Assert.Equal(0.001, early.AlphaSpent);
        Assert.Equal(0.001, end.AlphaSpent);
        Assert.Equal(3, end.Evidence.TreatedCount);
        Assert.Contains("need 5", end.Evidence.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Judge_LookAfterALookWithTooFewDevices_GetsTheUnspentAlpha()
    {
        var control = Devices(20, "", i => (20 + i, 20 + i));
        var skipped = QualityGate.Judge(Latency, Devices(2, "", i => (20, 20)), control, 0.3, 0);
        var next = QualityGate.Judge(Latency, Devices(6, "", i => (20 + i, 20 + i)), control, 0.4, skipped.AlphaSpent);

        Assert.Equal(0, skipped.AlphaSpent);
        Assert.Equal(AlphaSpending.Cumulative(SpendingFunction.Pocock, 0.05, 0.4), next.Evidence.NominalAlpha, 1e-15);
        Assert.Equal(next.Evidence.NominalAlpha, next.AlphaSpent, 1e-15);
    }

    [Fact]
    public void Judge_TreatedMuchSlower_FailsWithEvidence()
    {
        var treated = Devices(10, "", i => (20 + i, 1.4 * (20 + i)));
        var control = Devices(20, "", i => (30 + i, 30 + i));

        var verdict = QualityGate.Judge(Latency, treated, control, 0.3, 0);

        Assert.Equal(GateOutcome.Fail, verdict.Outcome);
        var evidence = verdict.Evidence;
        Assert.Equal("Mann-Whitney", evidence.Test);
        Assert.Equal(1.4, evidence.Ratio!.Value, 1e-9);
        Assert.Equal(Math.Log(1.4), evidence.Shift!.Value, 1e-9);
        Assert.Equal(1 / 30045015.0, evidence.PValue!.Value, 1e-15); // exact: all 10 treated above all 20 controls, 1/C(30, 10)
        Assert.Equal(AlphaSpending.Cumulative(SpendingFunction.Pocock, 0.05, 0.3), evidence.NominalAlpha, 1e-15);
        Assert.Equal(evidence.NominalAlpha, evidence.AlphaSpent);
        Assert.Equal((10, 20, 0, 0), (evidence.TreatedCount, evidence.ControlCount, evidence.ExcludedCount, evidence.UnmatchedCount));
        Assert.Equal(1.4 * 24.5, evidence.TreatedMedianAfter!.Value, 1e-9);
        Assert.Equal(39.5, evidence.ControlMedianAfter!.Value, 1e-9);
        Assert.Equal(0, evidence.ControlMedianValue!.Value, 1e-12);
        Assert.Equal("p95 latency 1.40× control (margin 1.10×), p=3.3e-8 < 0.0208 at look 0.30: fail", evidence.Explanation);
    }

    [Fact]
    public void Judge_TreatedSlowerWithinTheMargin_PassesAtTheEnd()
    {
        var treated = Devices(10, "", i => (20 + i, 1.05 * (20 + i)));
        var control = Devices(20, "", i => (30 + i, 30 + i));

        Assert.Equal(GateOutcome.Pending, QualityGate.Judge(Latency, treated, control, 0.5, 0).Outcome);
        var end = QualityGate.Judge(Latency, treated, control, 1.0, 0.03);

        Assert.Equal(GateOutcome.Pass, end.Outcome);
        Assert.Equal(0.05, end.AlphaSpent);
        Assert.Equal(0.02, end.Evidence.NominalAlpha, 1e-15);
        Assert.Equal(1.05, end.Evidence.Ratio!.Value, 1e-9);
        Assert.EndsWith("at look 1.00: pass", end.Evidence.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Judge_InformationFractionAboveOne_IsTheFinalLook()
    {
        var treated = Devices(10, "", i => (20 + i, 20 + i));
        var control = Devices(20, "", i => (30 + i, 30 + i));

        var verdict = QualityGate.Judge(Latency, treated, control, 1.3, 0);

        Assert.Equal(GateOutcome.Pass, verdict.Outcome);
        Assert.Equal(1, verdict.Evidence.InformationFraction);
    }

    [Fact]
    public void Judge_MissingOrNonPositiveBaselines_AreExcludedAndCounted()
    {
        var treated = Devices(6, "", i => (20 + i, 20 + i)).Append(new DeviceSample("cam-x", "", double.NaN, 30)).Append(new DeviceSample("cam-y", "", 0, 30));
        var control = Devices(8, "", i => (20 + i, 20 + i)).Append(new DeviceSample("cam-z", "", 25, double.NaN));

        var verdict = QualityGate.Judge(Latency, treated.ToArray(), control.ToArray(), 1.0, 0);

        Assert.Equal(3, verdict.Evidence.ExcludedCount);
        Assert.Equal(6, verdict.Evidence.TreatedCount);
        Assert.Equal(8, verdict.Evidence.ControlCount);
        Assert.Equal(GateOutcome.Pass, verdict.Outcome);
    }

    [Fact]
    public void Judge_AllErrorSharesZero_PIsOneAndPasses()
    {
        var errors = new GateSpec("error share", MetricKind.Share, HigherIsWorse: true, Margin: 0);

        var verdict = QualityGate.Judge(errors, Devices(10, "", _ => (0, 0)), Devices(40, "", _ => (0, 0)), 1.0, 0);

        Assert.Equal(1, verdict.Evidence.PValue);
        Assert.Equal(GateOutcome.Pass, verdict.Outcome);
        Assert.Equal("error share 0.0000 vs control (margin +0.0000), p=1.0000 ≥ 0.0500 at look 1.00: pass", verdict.Evidence.Explanation);
    }

    [Fact]
    public void Judge_ErrorShareUpByMoreThanTheMargin_Fails()
    {
        var errors = new GateSpec("error share", MetricKind.Share, HigherIsWorse: true, Margin: 0.01);

        var verdict = QualityGate.Judge(errors, Devices(10, "", i => (0.001 * i, 0.001 * i + 0.05)), Devices(40, "", i => (0.001 * i, 0.001 * i)), 0.5, 0);

        Assert.Equal(GateOutcome.Fail, verdict.Outcome);
        Assert.Equal(0.05, verdict.Evidence.Shift!.Value, 1e-12);
        Assert.Null(verdict.Evidence.Ratio);
    }

    [Fact]
    public void Judge_ConfidenceDrop_FailsOnlyWhenLowerIsWorse()
    {
        var treated = Devices(10, "", i => (0.7 + 0.01 * i, 0.8 * (0.7 + 0.01 * i)));
        var control = Devices(30, "", i => (0.6 + 0.01 * i, 0.6 + 0.01 * i));
        var lowerIsWorse = new GateSpec("mean confidence", MetricKind.Ratio, HigherIsWorse: false, Margin: 0.05);

        var verdict = QualityGate.Judge(lowerIsWorse, treated, control, 0.2, 0);
        var wrongWay = QualityGate.Judge(lowerIsWorse with { HigherIsWorse = true }, treated, control, 1.0, 0);

        Assert.Equal(GateOutcome.Fail, verdict.Outcome);
        Assert.Equal(0.8, verdict.Evidence.Ratio!.Value, 1e-9);
        Assert.StartsWith("mean confidence 0.80× control (margin 0.95×)", verdict.Evidence.Explanation, StringComparison.Ordinal);
        Assert.Equal(GateOutcome.Pass, wrongWay.Outcome);
    }

    [Fact]
    public void Judge_SeveralStrata_UsesVanEltereAndLeavesOutUnmatchedStrata()
    {
        var treated = Devices(4, "hw=a", i => (20 + i, 20 + i)).Concat(Devices(4, "hw=b", i => (60 + i, 60 + i))).Append(new DeviceSample("cam-c", "hw=c", 5, 50));
        var control = Devices(10, "hw=a", i => (20 + i, 20 + i)).Concat(Devices(10, "hw=b", i => (60 + i, 60 + i))).Concat(Devices(3, "hw=d", i => (9, 9)));

        var verdict = QualityGate.Judge(Latency, treated.ToArray(), control.ToArray(), 1.0, 0);

        Assert.Equal("van Elteren", verdict.Evidence.Test);
        Assert.Equal(["hw=a", "hw=b"], verdict.Evidence.Strata);
        Assert.Equal(4, verdict.Evidence.UnmatchedCount);
        Assert.Equal(1, verdict.Evidence.Ratio!.Value, 1e-12);
        Assert.Equal(GateOutcome.Pass, verdict.Outcome);
    }

    [Fact]
    public void Judge_NoControlTreatedMuchSlower_SignedRankFallbackFails()
    {
        var treated = Devices(10, "hw=a", i => (20 + i, 1.4 * (20 + i) * (1 + 0.01 * (i % 3))));

        var verdict = QualityGate.Judge(Latency, treated, [], 0.2, 0);

        Assert.Equal(GateOutcome.Fail, verdict.Outcome);
        Assert.Equal("Wilcoxon signed-rank (no control devices)", verdict.Evidence.Test);
        Assert.Equal(1 / 1024.0, verdict.Evidence.PValue!.Value, 1e-15);
        Assert.InRange(verdict.Evidence.Ratio!.Value, 1.4, 1.43);
        Assert.Contains("own baseline", verdict.Evidence.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Judge_NoControlSameVersion_PendingThenPassAtTheEnd()
    {
        var treated = Devices(10, "", i => (20 + i, (20 + i) * (1 + 0.01 * (i % 5 - 2))));
        var spent = 0.0;
        for (var k = 1; k <= 10; k++)
        {
            var verdict = QualityGate.Judge(Latency, treated, [], k / 10.0, spent);
            spent = verdict.AlphaSpent;
            Assert.Equal(k < 10 ? GateOutcome.Pending : GateOutcome.Pass, verdict.Outcome);
        }

        Assert.Equal(0.05, spent);
    }

    [Fact]
    public void Judge_FewControlsButEnoughTreated_FallsBackToSignedRank()
    {
        var verdict = QualityGate.Judge(Latency, Devices(8, "", i => (20 + i, 20 + i)), Devices(2, "", i => (20, 20)), 1.0, 0);

        Assert.Equal("Wilcoxon signed-rank (too few comparable control devices)", verdict.Evidence.Test);
        Assert.Equal(GateOutcome.Pass, verdict.Outcome);
    }

    [Fact]
    public void Verdict_SerializedWithSystemTextJson_RoundTrips()
    {
        var verdict = QualityGate.Judge(Latency, Devices(10, "hw=a", i => (20 + i, 1.4 * (20 + i))), Devices(20, "hw=a", i => (30 + i, 30 + i)), 0.3, 0);
        var pending = QualityGate.Judge(Latency, [], [], 0.3, 0);

        var json = JsonSerializer.Serialize(verdict);
        var back = JsonSerializer.Deserialize<GateVerdict>(json)!;
        var pendingBack = JsonSerializer.Deserialize<GateVerdict>(JsonSerializer.Serialize(pending))!;

        Assert.Equal(verdict.Outcome, back.Outcome);
        Assert.Equal(verdict.Evidence.Explanation, back.Evidence.Explanation);
        Assert.Equal(verdict.Evidence.PValue, back.Evidence.PValue);
        Assert.Equal(verdict.Evidence.Strata, back.Evidence.Strata);
        Assert.Equal(verdict.Evidence with { Strata = back.Evidence.Strata }, back.Evidence);
        Assert.Null(pendingBack.Evidence.PValue);
        Assert.Null(pendingBack.Evidence.TreatedMedianAfter);
    }

    [Theory]
    [InlineData(-0.1, false)]
    [InlineData(1.0, false)]
    [InlineData(double.NaN, true)]
    public void Judge_InvalidMargin_Throws(double margin, bool higherIsWorse)
    {
        var spec = new GateSpec("mean confidence", MetricKind.Ratio, higherIsWorse, margin);

        Assert.Throws<ArgumentOutOfRangeException>(() => QualityGate.Judge(spec, [], [], 0.5, 0));
    }

    [Fact]
    public void Judge_NegativeInformationFraction_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => QualityGate.Judge(Latency, [], [], -0.1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => QualityGate.Judge(Latency, [], [], 0.5, double.NaN));
    }

    private static DeviceSample[] Devices(int count, string stratum, Func<int, (double Before, double After)> values) =>
        Enumerable.Range(0, count).Select(i => (i, values(i))).Select(x => new DeviceSample($"{stratum}cam-{x.i}", stratum, x.Item2.Before, x.Item2.After)).ToArray();
}
