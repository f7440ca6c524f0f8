using EdgeFleet.Agent.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class PipelineLivenessTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Check = TimeSpan.FromSeconds(5);

    [Fact]
    public void Check_NoFrameYet_StaysStartingHoweverLongItTakes()
    {
        var time = new FakeTimeProvider();
        var liveness = new PipelineLiveness(time, Interval);

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(LivenessVerdict.Starting, liveness.Check(0));
            time.Advance(Check);
        }

        Assert.False(liveness.IsReady);
    }

    [Fact]
    public void Check_FirstFrame_IsReadyOnceThenAlive()
    {
        var time = new FakeTimeProvider();
        var liveness = new PipelineLiveness(time, Interval);
        Assert.Equal(LivenessVerdict.Starting, liveness.Check(0));

        Assert.Equal(LivenessVerdict.Ready, liveness.Check(1));
        time.Advance(Check);
        Assert.Equal(LivenessVerdict.Alive, liveness.Check(150));
        Assert.True(liveness.IsReady);
    }

    [Fact]
    public void Check_CounterStopsMoving_AliveUntilAWholeIntervalWithoutFramesThenStalled()
    {
        var time = new FakeTimeProvider();
        var liveness = new PipelineLiveness(time, Interval);
        Assert.Equal(LivenessVerdict.Ready, liveness.Check(30));

        time.Advance(Check);
        Assert.Equal(LivenessVerdict.Alive, liveness.Check(30));
        time.Advance(Check - TimeSpan.FromMilliseconds(1));
        Assert.Equal(LivenessVerdict.Alive, liveness.Check(30));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(LivenessVerdict.Stalled, liveness.Check(30));
        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(LivenessVerdict.Stalled, liveness.Check(30));
        Assert.Equal(TimeSpan.FromHours(1) + Interval, liveness.SinceProgress);
    }

    [Fact]
    public void Check_FramesAgainAfterAStall_AliveAgainWithoutASecondReady()
    {
        var time = new FakeTimeProvider();
        var liveness = new PipelineLiveness(time, Interval);
        Assert.Equal(LivenessVerdict.Ready, liveness.Check(1));
        time.Advance(Interval * 3);
        Assert.Equal(LivenessVerdict.Stalled, liveness.Check(1));

        Assert.Equal(LivenessVerdict.Alive, liveness.Check(2));
        time.Advance(Check);
        Assert.Equal(LivenessVerdict.Alive, liveness.Check(2));
    }

    [Fact]
    public void Check_SlowButSteadyFrames_StayAlive()
    {
        // One frame per check, far below the camera's rate: still progress.
        var time = new FakeTimeProvider();
        var liveness = new PipelineLiveness(time, Interval);
        Assert.Equal(LivenessVerdict.Ready, liveness.Check(1));
        for (var frames = 2; frames < 50; frames++)
        {
            time.Advance(Check);
            Assert.Equal(LivenessVerdict.Alive, liveness.Check(frames));
        }
    }

    [Theory]
    [InlineData("30000000", null, 30.0)]
    [InlineData("30000000", "", 30.0)]
    [InlineData("30000000", "4242", 30.0)]
    [InlineData("500000", "4242", 0.5)]
    public void WatchdogInterval_ForThisProcess_IsWatchdogUsec(string usec, string? pid, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), PipelineLiveness.WatchdogInterval(usec, pid, 4242));

    [Theory]
    [InlineData(null, null)]
    [InlineData("", null)]
    [InlineData("0", null)]
    [InlineData("-5", null)]
    [InlineData("ten", null)]
    [InlineData("30000000", "1")]
    [InlineData("30000000", "x")]
    public void WatchdogInterval_MissingInvalidOrAnotherProcess_IsNull(string? usec, string? pid) =>
        Assert.Null(PipelineLiveness.WatchdogInterval(usec, pid, 4242));
}
