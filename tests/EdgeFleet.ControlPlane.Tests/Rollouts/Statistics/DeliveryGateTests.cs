using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

[Trait("Category", "Unit")]
public sealed class DeliveryGateTests
{
    [Theory]
    [InlineData(9, 1, 0, 10, 0.1, GateOutcome.Pass)]    // exactly at the limit
    [InlineData(8, 2, 0, 10, 0.1, GateOutcome.Fail)]
    [InlineData(8, 1, 1, 10, 0.1, GateOutcome.Pending)] // 9 finished; one failure is not yet too many
    [InlineData(3, 2, 0, 10, 0.1, GateOutcome.Fail)]    // 2 of the first 10 already exceed 10 %
    [InlineData(0, 0, 5, 3, 0.5, GateOutcome.Pending)]  // only timeouts: neither success nor failure
    [InlineData(2, 0, 0, 2, 0.0, GateOutcome.Pass)]     // a stage smaller than the configured minimum
    [InlineData(29, 1, 0, 30, 0.0, GateOutcome.Fail)]
    [InlineData(97, 3, 0, 30, 0.03, GateOutcome.Pass)]
    public void Judge_Counts_GiveTheOutcome(int succeeded, int failed, int timedOut, int minFinished, double maxShare, GateOutcome expected)
    {
        var verdict = DeliveryGate.Judge(succeeded, failed, timedOut, minFinished, maxShare);

        Assert.Equal(expected, verdict.Outcome);
        Assert.Equal(succeeded + failed, verdict.Evidence.Finished);
        Assert.Equal(timedOut, verdict.Evidence.TimedOut);
    }

    [Fact]
    public void Judge_Evidence_ExplainsTheShare()
    {
        var verdict = DeliveryGate.Judge(18, 2, 3, 10, 0.05);

        Assert.Equal(0.1, verdict.Evidence.FailureShare);
        Assert.Equal("delivery: 2 failed / 20 finished (10.0%, limit 5.0%; 3 timed out, not counted), above: fail", verdict.Evidence.Explanation);
        Assert.Null(DeliveryGate.Judge(0, 0, 1, 5, 0.1).Evidence.FailureShare);
    }

    [Fact]
    public void Judge_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DeliveryGate.Judge(-1, 0, 0, 1, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeliveryGate.Judge(0, 0, 0, 0, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeliveryGate.Judge(0, 0, 0, 1, 1.5));
    }
}
