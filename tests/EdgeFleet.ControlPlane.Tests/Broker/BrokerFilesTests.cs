using EdgeFleet.ControlPlane.Broker;

namespace EdgeFleet.ControlPlane.Tests.Broker;

[Trait("Category", "Unit")]
public sealed class BrokerFilesTests
{
    private static readonly BrokerOptions Options = new() { DataDirectory = "/srv/cp", Port = 18830, BindAddress = "0.0.0.0" };

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void RenderConfig_Defaults_ListensOnAllInterfacesWithLoginsAclPersistenceAndQueueLimits()
    {
        var lines = Lines(new BrokerFiles(Options).RenderConfig(runningAsRoot: false));

        Assert.Contains("listener 18830 0.0.0.0", lines);
        Assert.Contains("allow_anonymous false", lines);
        Assert.Contains("password_file /srv/cp/mqtt/passwd", lines);
        Assert.Contains("acl_file /srv/cp/mqtt/acl", lines);
        Assert.Contains("persistence true", lines);
        Assert.Contains("persistence_location /srv/cp/mqtt/data/", lines);
        Assert.Contains("max_queued_messages 100000", lines);
        Assert.Contains("max_inflight_messages 1000", lines);
        Assert.Contains("log_dest file /srv/cp/mqtt/mosquitto.log", lines);
        Assert.Contains("log_type information", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("user ", StringComparison.Ordinal));
    }

    [Fact]
    public void RenderConfig_AsRoot_StaysRoot()
    {
        var lines = Lines(new BrokerFiles(Options).RenderConfig(runningAsRoot: true));

        Assert.Contains("user root", lines);
    }

    [Fact]
    public void RenderAcl_Always_ServiceUserOwnsTheTreeAndDevicesOnlyTheirOwnTopics()
    {
        var rules = Lines(new BrokerFiles(Options).RenderAcl()).Where(l => !l.StartsWith('#')).ToArray();

        Assert.Equal(
        [
            "pattern write ef/v1/%u/status",
            "pattern write ef/v1/%u/telemetry",
            "pattern write ef/v1/%u/drift",
            "pattern write ef/v1/%u/events",
            "pattern write ef/v1/%u/results",
            "pattern read ef/v1/%u/desired",
            "pattern read ef/v1/%u/cmd",
            "user edgefleet-cp",
            "topic readwrite ef/v1/#",
        ], rules);
    }

    [Fact]
    public void RenderPasswd_Credentials_OneLinePerUserSorted()
    {
        var b = MosquittoPasswordHasher.CreateCredential("cam-b", "1");
        var a = MosquittoPasswordHasher.CreateCredential("cam-a", "2");

        var lines = Lines(BrokerFiles.RenderPasswd([b, a])).Where(l => !l.StartsWith('#')).ToArray();

        Assert.Equal([a.PasswordLine, b.PasswordLine], lines);
    }

    [Fact]
    public void RenderPasswd_SameUserTwice_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => BrokerFiles.RenderPasswd(
            [MosquittoPasswordHasher.CreateCredential("cam-a", "1"), MosquittoPasswordHasher.CreateCredential("cam-a", "2")]));

        Assert.Contains("cam-a", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RenderPasswd_LineOfAnotherUser_Throws()
    {
        var other = MosquittoPasswordHasher.CreateCredential("cam-a", "1");

        var ex = Assert.Throws<ArgumentException>(() => BrokerFiles.RenderPasswd([new BrokerCredential("cam-b", other.PasswordLine)]));

        Assert.Contains("cam-b", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RenderPasswd_ClearTextPassword_Throws()
    {
        Assert.Throws<ArgumentException>(() => BrokerFiles.RenderPasswd([new BrokerCredential("cam-a", "cam-a:secret")]));
    }
}
