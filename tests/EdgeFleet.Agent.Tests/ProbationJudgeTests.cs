using EdgeFleet.Agent.Ota;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Tests;

public sealed class ProbationJudgeTests
{
    private static readonly ProbationSettings Settings = ProbationSettings.From(new ProbationOptions
    {
        Frames = 300,
        Seconds = 60,
        MinFramesToJudge = 30,
    }, null);

    private static readonly ProbationFigures Baseline = new()
    {
        Frames = 1024,
        P95InferenceMs = 10,
        MeanConfidence = 0.8,
    };

    private static ProbationFigures Healthy(long frames) => new() { Frames = frames, P95InferenceMs = 11, MeanConfidence = 0.78 };

    [Fact]
    public void Judge_HealthyButShort_IsPendingUntilFramesAndSecondsAreBothReached()
    {
        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(Baseline, Healthy(299), TimeSpan.FromSeconds(120), Settings).Outcome);
        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(Baseline, Healthy(5000), TimeSpan.FromSeconds(59), Settings).Outcome);

        var passed = ProbationJudge.Judge(Baseline, Healthy(300), TimeSpan.FromSeconds(60), Settings);

        Assert.Equal(ProbationOutcome.Passed, passed.Outcome);
        Assert.Equal("300", passed.Values["frames"]);
        Assert.Equal("11", passed.Values["p95InferenceMs"]);
    }

    [Fact]
    public void Judge_NaNOutputs_FailAsSoonAsEnoughFramesWereSeen()
    {
        var nan = new ProbationFigures { Frames = 30, NonFiniteFrames = 30, P95InferenceMs = 10, MeanConfidence = double.NaN };

        var verdict = ProbationJudge.Judge(Baseline, nan, TimeSpan.FromSeconds(1), Settings);

        Assert.Equal(ProbationOutcome.Failed, verdict.Outcome);
        Assert.Equal("nonfinite", verdict.Criterion);
        Assert.Equal("1", verdict.Values["nonFiniteShare"]);
        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(Baseline, nan with { Frames = 29, NonFiniteFrames = 29 }, TimeSpan.FromSeconds(1), Settings).Outcome);
    }

    [Fact]
    public void Judge_NaNShare_IsMeasuredAboveThePreviousModelsShare()
    {
        var baseline = Baseline with { NonFiniteFrames = 1024 / 10 }; // the old model already had 10 %
        var candidate = Healthy(100) with { NonFiniteFrames = 10 };

        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(baseline, candidate, TimeSpan.FromSeconds(1), Settings).Outcome);
        Assert.Equal("nonfinite", ProbationJudge.Judge(Baseline, candidate, TimeSpan.FromSeconds(1), Settings).Criterion);
    }

    [Fact]
    public void Judge_TenTimesSlower_FailsOnLatencyWithValuesAndThreshold()
    {
        var slow = Healthy(40) with { P95InferenceMs = 100 };

        var verdict = ProbationJudge.Judge(Baseline, slow, TimeSpan.FromSeconds(5), Settings);

        Assert.Equal("latency", verdict.Criterion);
        Assert.Equal("10", verdict.Values["latencyRatio"]);
        Assert.Equal("2", verdict.Values["maxLatencyRatio"]);
        Assert.Equal("10", verdict.Values["previousP95InferenceMs"]);
    }

    [Theory]
    [InlineData(0.38, 0.79, ProbationOutcome.Passed)] // 2.08×, measured on a loaded machine: 0.41 ms nobody notices
    [InlineData(0.5, 1.49, ProbationOutcome.Passed)] // 2.98×, still under the 1 ms slack
    [InlineData(0.46, 3.25, ProbationOutcome.Failed)] // the 7× slower test model: 2.8 ms more
    [InlineData(10, 19.9, ProbationOutcome.Passed)] // 9.9 ms more, but within the ratio
    public void Judge_LatencyRatio_CountsOnlyAboveTheAbsoluteSlack(double previousP95, double p95, ProbationOutcome expected)
    {
        var verdict = ProbationJudge.Judge(Baseline with { P95InferenceMs = previousP95 }, Healthy(300) with { P95InferenceMs = p95 }, TimeSpan.FromSeconds(60), Settings);

        Assert.Equal(expected, verdict.Outcome);
        if (expected == ProbationOutcome.Failed)
        {
            Assert.Equal("latency", verdict.Criterion);
            Assert.Equal("1", verdict.Values["minLatencyIncreaseMs"]);
        }
    }

    [Fact]
    public void Judge_Errors_FailOnTheirShare()
    {
        var failing = Healthy(20) with { Errors = 20 };

        Assert.Equal("errors", ProbationJudge.Judge(Baseline, failing, TimeSpan.FromSeconds(1), Settings).Criterion);
    }

    [Fact]
    public void Judge_ConfidenceDrop_Fails()
    {
        Assert.Equal("confidence", ProbationJudge.Judge(Baseline, Healthy(50) with { MeanConfidence = 0.5 }, TimeSpan.FromSeconds(1), Settings).Criterion);
        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(Baseline, Healthy(50) with { MeanConfidence = 0.6 }, TimeSpan.FromSeconds(1), Settings).Outcome);
    }

    [Fact]
    public void Judge_DriftAlert_FailsAndWarnIsTolerated()
    {
        Assert.Equal("drift", ProbationJudge.Judge(Baseline, Healthy(10) with { Drift = DriftSeverity.Alert }, TimeSpan.FromSeconds(1), Settings).Criterion);
        Assert.Equal(ProbationOutcome.Passed, ProbationJudge.Judge(Baseline, Healthy(300) with { Drift = DriftSeverity.Warn }, TimeSpan.FromSeconds(60), Settings).Outcome);
    }

    [Fact]
    public void Judge_NoBaselineLatency_SkipsTheRatioRatherThanDividingByZero()
    {
        var baseline = new ProbationFigures();

        Assert.Equal(ProbationOutcome.Passed, ProbationJudge.Judge(baseline, Healthy(300) with { P95InferenceMs = 500 }, TimeSpan.FromSeconds(60), Settings).Outcome);
    }

    [Fact]
    public void Judge_NoFramesAtAll_FailsOnFramesAtTheTimeout()
    {
        var nothing = new ProbationFigures();

        Assert.Equal(ProbationOutcome.Pending, ProbationJudge.Judge(Baseline, nothing, TimeSpan.FromSeconds(599), Settings).Outcome);
        var verdict = ProbationJudge.Judge(Baseline, nothing, TimeSpan.FromSeconds(600), Settings);
        Assert.Equal("frames", verdict.Criterion);
    }

    [Fact]
    public void From_OverridesReplaceOnlyTheFieldsTheyName()
    {
        var settings = ProbationSettings.From(new ProbationOptions(), new ProbationOverrides { Frames = 10, MaxLatencyRatio = 1.2, MaxDriftSeverity = "alert" });

        Assert.Equal(10, settings.Frames);
        Assert.Equal(1.2, settings.MaxLatencyRatio);
        Assert.Equal(DriftSeverity.Alert, settings.MaxDrift);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Duration);
        Assert.Equal(10, settings.MinFramesToJudge); // never more than the frames the probation needs
        Assert.Equal(0.01, settings.MaxErrorShare);
    }
}
