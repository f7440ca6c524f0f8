using EdgeFleet.ControlPlane.Live;
using EdgeFleet.ControlPlane.Security;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.ControlPlane.Tests.Dashboard;

[Trait("Category", "Unit")]
public sealed class LiveEventsTests
{
    [Fact]
    public void Publish_ToASubscriberThatDoesNotRead_DropsItAtCapacity_AndKeepsTheOthers()
    {
        var live = new LiveEvents(capacity: 4);
        using var slow = live.Subscribe()!;
        using var fast = live.Subscribe()!;
        var received = 0;

        for (var i = 0; i < 10; i++)
        {
            live.Publish(LiveEvents.Devices, [$"cam-{i}"]);
            while (fast.Reader.TryRead(out _))
            {
                received++;
            }
        }

        Assert.Equal(10, received);
        Assert.Equal(1, live.Subscribers);
        Assert.Equal(1, live.Dropped);
        var queued = 0;
        while (slow.Reader.TryRead(out _))
        {
            queued++;
        }

        Assert.Equal(4, queued); // what it had queued before it was dropped stays readable, then its stream ends
        Assert.True(slow.Reader.Completion.IsFaulted);
        Assert.IsType<SlowSubscriberException>(slow.Reader.Completion.Exception!.InnerException);
    }

    [Fact]
    public void Subscribe_BeyondTheLimit_IsNull_AndDisposeUnsubscribes()
    {
        var live = new LiveEvents(maxSubscribers: 1);
        var first = live.Subscribe()!;
        Assert.Null(live.Subscribe());
        first.Dispose();
        using var second = live.Subscribe();
        Assert.NotNull(second);
    }
}

[Trait("Category", "Unit")]
public sealed class DashboardSessionsTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    [Fact]
    public void Read_OfAnIssuedCookie_GivesTheTokenAndCsrf_UntilItExpires()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var sessions = new DashboardSessions(Key, time);
        var (cookie, issued) = sessions.Issue("efp_secret");

        var read = sessions.Read(cookie);
        time.Advance(DashboardSessions.Lifetime - TimeSpan.FromSeconds(1));
        var late = sessions.Read(cookie);
        time.Advance(TimeSpan.FromSeconds(1));
        var expired = sessions.Read(cookie);

        Assert.Equal(("efp_secret", issued.Csrf), (read!.Token, read.Csrf));
        Assert.NotNull(late);
        Assert.Null(expired);
        Assert.DoesNotContain("efp_secret", cookie, StringComparison.Ordinal);
        Assert.True(DashboardSessions.CsrfMatches(read, issued.Csrf));
        Assert.False(DashboardSessions.CsrfMatches(read, null));
        Assert.False(DashboardSessions.CsrfMatches(read, issued.Csrf + "x"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not base64 !")]
    [InlineData("AAAA")]
    public void Read_OfGarbage_IsNull(string cookie) =>
        Assert.Null(new DashboardSessions(Key, TimeProvider.System).Read(cookie));

    [Fact]
    public void Read_OfACookieSealedUnderAnotherKey_IsNull()
    {
        var (cookie, _) = new DashboardSessions(Key, TimeProvider.System).Issue("efp_secret");
        var other = new DashboardSessions(Enumerable.Repeat((byte)7, 32).ToArray(), TimeProvider.System);
        Assert.Null(other.Read(cookie));
    }
}
