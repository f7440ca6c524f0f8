using EdgeFleet.ControlPlane.Broker;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>What the embedded broker refuses before it touches a file or starts a process.</summary>
[Trait("Category", "Unit")]
public sealed class EmbeddedBrokerValidationTests
{
    [Fact]
    public async Task UpdateCredentialsAsync_DeviceNamedLikeTheServiceUser_Throws()
    {
        await using var broker = new EmbeddedBroker(new BrokerOptions { DataDirectory = "/nonexistent" }, TimeProvider.System, NullLogger.Instance);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() =>
            broker.UpdateCredentialsAsync([MosquittoPasswordHasher.CreateCredential("edgefleet-cp", "x")]));

        Assert.Contains("edgefleet-cp", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_BindAddressNotAnIp_ThrowsNamingTheSetting()
    {
        var ex = Assert.Throws<System.ComponentModel.DataAnnotations.ValidationException>(() =>
            new EmbeddedBroker(new BrokerOptions { BindAddress = "broker.local" }, TimeProvider.System, NullLogger.Instance));

        Assert.Contains("broker.local", ex.Message, StringComparison.Ordinal);
    }
}
