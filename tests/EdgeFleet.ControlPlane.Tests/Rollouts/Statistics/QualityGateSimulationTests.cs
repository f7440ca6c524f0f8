using EdgeFleet.ControlPlane.Rollouts.Statistics;
using Xunit.Abstractions;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

/// <summary>Operating characteristics of the gate over seeded simulated stages (deterministic; no timing).</summary>
[Trait("Category", "Unit")]
public sealed class QualityGateSimulationTests(ITestOutputHelper output)
{
    private static readonly (string, double)[] NoStrata = [("", 1.0)];
    private static readonly (string, double)[] ThreeStrata = [("hw=orin-nano", 1.0), ("hw=orin-nx", 0.6), ("hw=rpi5", 2.5)];

    // The worst case of H₀ is a version exactly at the margin; margin 0 with an identical version is that case.
    [Theory]
    [InlineData(SpendingFunction.Pocock)]
    [InlineData(SpendingFunction.OBrienFleming)]
    public void Judge_SameVersionLatency_FalseAlarmRateAtMostAlpha(SpendingFunction spending)
    {
        const int Trials = 2000;
        var spec = new GateSpec("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0, Spending: spending);
        var random = new Random(20240601);
        var alarms = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var stage = FleetSimulation.Levels(random, random.Next(5, 21), random.Next(50, 301), 1.0, FleetSimulation.Latency, NoStrata);
            alarms += FleetSimulation.RunLooks(spec, stage).Outcome == GateOutcome.Fail ? 1 : 0;
        }

        AssertFalseAlarmRate(alarms, Trials, spec.Alpha, $"latency, {spending}");
    }

    [Fact]
    public void Judge_SameVersionLatencyInStrata_FalseAlarmRateAtMostAlpha()
    {
        const int Trials = 2000;
        var spec = new GateSpec("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0);
        var random = new Random(7);
        var alarms = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var stage = FleetSimulation.Levels(random, random.Next(5, 21), random.Next(50, 301), 1.0, FleetSimulation.Latency, ThreeStrata);
            alarms += FleetSimulation.RunLooks(spec, stage).Outcome == GateOutcome.Fail ? 1 : 0;
        }

        AssertFalseAlarmRate(alarms, Trials, spec.Alpha, "latency, 3 strata, Pocock");
    }

    [Fact]
    public void Judge_SameVersionErrorSharesMostlyZero_FalseAlarmRateAtMostAlpha()
    {
        const int Trials = 2000;
        var spec = new GateSpec("error share", MetricKind.Share, HigherIsWorse: true, Margin: 0);
        var random = new Random(99);
        var alarms = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var stage = FleetSimulation.ErrorShares(random, random.Next(5, 21), random.Next(50, 301), extraRate: 0);
            alarms += FleetSimulation.RunLooks(spec, stage).Outcome == GateOutcome.Fail ? 1 : 0;
        }

        AssertFalseAlarmRate(alarms, Trials, spec.Alpha, "error shares (ties), Pocock");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Judge_Latency40PercentWorse_DetectedAlmostAlways(int strata)
    {
        const int Trials = 500;
        var spec = new GateSpec("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0.10);
        var random = new Random(1234 + strata);
        var detected = 0;
        var ratios = new List<double>();
        var stratified = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var stage = FleetSimulation.Levels(random, 5, 295, 1.4, FleetSimulation.Latency, strata == 1 ? NoStrata : ThreeStrata);
            var verdict = FleetSimulation.RunLooks(spec, stage);
            if (verdict.Outcome == GateOutcome.Fail)
            {
                detected++;
                ratios.Add(verdict.Evidence.Ratio!.Value);
                // With 5 treated devices in 3 strata, all of them sometimes share one stratum: then it is Mann-Whitney there.
                Assert.Equal(verdict.Evidence.Strata.Count > 1 ? "van Elteren" : "Mann-Whitney", verdict.Evidence.Test);
                stratified += verdict.Evidence.Strata.Count > 1 ? 1 : 0;
            }
        }

        var rate = detected / (double)Trials;
        output.WriteLine($"latency ×1.4, {strata} strata, 5 treated / 295 control, margin 10 %: detected {detected}/{Trials} = {rate:P1}, median ratio {ratios.Order().ElementAt(ratios.Count / 2):0.000}, {stratified} by van Elteren");
        Assert.True(rate >= 0.99, $"detected only {rate:P1}");
        Assert.InRange(ratios.Average(), 1.3, 1.5);
        Assert.True(strata == 1 ? stratified == 0 : stratified > Trials / 2);
    }

    [Fact]
    public void Judge_Confidence20PercentLower_DetectedByALowerIsWorseGate()
    {
        const int Trials = 500;
        var latency = new GateSpec("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0.10);
        var confidence = new GateSpec("mean confidence", MetricKind.Ratio, HigherIsWorse: false, Margin: 0.05);
        var random = new Random(77);
        int detected = 0, latencyAlarms = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var treated = random.Next(5, 21);
            var control = random.Next(50, 301);
            var latencyStage = FleetSimulation.Levels(random, treated, control, 1.0, FleetSimulation.Latency, NoStrata);
            var confidenceStage = FleetSimulation.Levels(random, treated, control, 0.8, FleetSimulation.Confidence, NoStrata);
            latencyAlarms += FleetSimulation.RunLooks(latency, latencyStage).Outcome == GateOutcome.Fail ? 1 : 0;
            detected += FleetSimulation.RunLooks(confidence, confidenceStage).Outcome == GateOutcome.Fail ? 1 : 0;
        }

        var rate = detected / (double)Trials;
        output.WriteLine($"confidence ×0.8, margin 5 %: detected {detected}/{Trials} = {rate:P1}; latency gate (equal latency) failed {latencyAlarms}/{Trials}");
        Assert.True(rate >= 0.99, $"detected only {rate:P1}");
        Assert.Equal(0, latencyAlarms);
    }

    [Fact]
    public void Judge_NoControlLatency40PercentWorse_FallbackDetects()
    {
        const int Trials = 500;
        var spec = new GateSpec("p95 latency", MetricKind.Ratio, HigherIsWorse: true, Margin: 0.10);
        var random = new Random(4321);
        var detected = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var stage = FleetSimulation.Levels(random, 10, 0, 1.4, FleetSimulation.Latency, ThreeStrata);
            detected += FleetSimulation.RunLooks(spec, stage).Outcome == GateOutcome.Fail ? 1 : 0;
        }

        output.WriteLine($"latency ×1.4, 10 treated / 0 control (signed-rank fallback): detected {detected}/{Trials}");
        Assert.True(detected >= 0.99 * Trials);
    }

    private void AssertFalseAlarmRate(int alarms, int trials, double alpha, string scenario)
    {
        var rate = alarms / (double)trials;
        var limit = alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / trials);
        output.WriteLine($"{scenario}: false alarms {alarms}/{trials} = {rate:P2} (alpha {alpha:P0}, limit {limit:P2})");
        Assert.True(rate <= limit, $"false-alarm rate {rate:P2} above {limit:P2}");
    }
}
