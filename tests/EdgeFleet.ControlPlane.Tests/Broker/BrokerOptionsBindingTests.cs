using System.Globalization;
using EdgeFleet.Testing;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary><c>ControlPlane:Broker</c> is bound and validated when the control plane starts.</summary>
[Trait("Category", "Integration")]
public sealed class BrokerOptionsBindingTests
{
    [Fact]
    public async Task Start_BrokerValueOutOfRange_StopsTheStartNamingTheKey()
    {
        await using var cp = new ControlPlaneFactory(settings: new Dictionary<string, string?> { ["ControlPlane:Broker:MaxQueuedMessages"] = "5" });

        var ex = Assert.ThrowsAny<Exception>(() => cp.CreateClient());

        var validation = Assert.IsType<OptionsValidationException>(Flatten(ex).First(e => e is OptionsValidationException));
        Assert.Contains("ControlPlane:Broker:MaxQueuedMessages must be at least 1000", validation.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_BrokerValuesSet_ReachMosquittoConfAndWinOverTheGeneralKeys()
    {
        var port = FreePort.Next();
        await using var cp = new ControlPlaneFactory(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Mqtt"] = "embedded",
            ["ControlPlane:MqttPort"] = "1", // overridden by ControlPlane:Broker:Port
            ["ControlPlane:Broker:Port"] = port.ToString(CultureInfo.InvariantCulture),
            ["ControlPlane:Broker:BindAddress"] = "127.0.0.1",
            ["ControlPlane:Broker:MaxQueuedMessages"] = "123456",
            ["ControlPlane:Broker:AutosaveIntervalSeconds"] = "17",
        });
        using var client = cp.Client();

        var conf = await File.ReadAllLinesAsync(Path.Combine(cp.DataDirectory, "mqtt", "mosquitto.conf"));

        Assert.Contains($"listener {port} 127.0.0.1", conf);
        Assert.Contains("max_queued_messages 123456", conf);
        Assert.Contains("autosave_interval 17", conf);
    }

    [Fact]
    public async Task Start_OnlyTheGeneralKeys_TheBrokerTakesPortAddressAndDataDirectoryFromThem()
    {
        var port = FreePort.Next();
        await using var cp = new ControlPlaneFactory(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Mqtt"] = "embedded",
            ["ControlPlane:MqttPort"] = port.ToString(CultureInfo.InvariantCulture),
            ["ControlPlane:MqttBind"] = "127.0.0.1",
        });
        using var client = cp.Client();

        var conf = await File.ReadAllLinesAsync(Path.Combine(cp.DataDirectory, "mqtt", "mosquitto.conf"));

        Assert.Contains($"listener {port} 127.0.0.1", conf);
        Assert.Contains("max_queued_messages 100000", conf);
    }

    private static IEnumerable<Exception> Flatten(Exception ex)
    {
        yield return ex;
        if (ex is AggregateException aggregate)
        {
            foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
            {
                yield return inner;
            }
        }
        else if (ex.InnerException is { } inner)
        {
            foreach (var e in Flatten(inner))
            {
                yield return e;
            }
        }
    }
}
