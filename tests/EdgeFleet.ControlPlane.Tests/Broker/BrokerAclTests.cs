using System.Text;
using EdgeFleet.Mqtt;
using static EdgeFleet.ControlPlane.Tests.Broker.BrokerTestHost;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>The generated ACL as the real mosquitto 2.0 applies it.</summary>
[Trait("Category", "Integration")]
public sealed class BrokerAclTests
{
    private static string Text(MqttReceivedMessage message) => Encoding.UTF8.GetString(message.Payload);

    /// <summary>Reads everything up to and including the message with <paramref name="payload"/>.</summary>
    private static async Task<List<MqttReceivedMessage>> ReadUntilAsync(IMqttConnection client, string payload)
    {
        using var timeout = new CancellationTokenSource(Patience);
        List<MqttReceivedMessage> messages = [];
        while (true)
        {
            var message = await client.Messages.ReadAsync(timeout.Token);
            messages.Add(message);
            if (Text(message) == payload)
            {
                return messages;
            }
        }
    }

    [Fact]
    public async Task DevicePublish_OwnTelemetry_AcceptedAndDeliveredToTheServiceSharedSubscription()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a");
        var cp = host.Service();
        await cp.SubscribeAsync("$share/cp/ef/v1/+/telemetry").WaitAsync(Patience);
        var device = host.Device("cam-a");
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        await device.WaitConnectedAsync().WaitAsync(Patience);

        var ack = await device.PublishAsync(new MqttMessage("ef/v1/cam-a/telemetry", "t1"u8.ToArray(), 1)).WaitAsync(Patience);
        var received = await NextAsync(cp);

        Assert.True(ack.Accepted);
        Assert.Equal(0, ack.ReasonCode);
        Assert.Equal(("ef/v1/cam-a/telemetry", "t1"), (received.Topic, Text(received)));
        Assert.Empty(host.Logger.Errors);
    }

    [Theory]
    [InlineData("ef/v1/cam-b/telemetry")]
    [InlineData("ef/v1/cam-b/status")]
    [InlineData("ef/v1/cam-a/cmd")]
    [InlineData("ef/v1/cam-a/desired")]
    [InlineData("ef/v1/cam-a/other")]
    [InlineData("elsewhere")]
    public async Task DevicePublish_TopicNotItsOwnReport_RefusedWithNotAuthorizedAndNotDelivered(string topic)
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a", "cam-b");
        var cp = host.Service();
        await cp.SubscribeAsync("#").WaitAsync(Patience);
        var device = host.Device("cam-a");
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        await device.WaitConnectedAsync().WaitAsync(Patience);

        var forged = await device.PublishAsync(new MqttMessage(topic, "forged"u8.ToArray(), 1)).WaitAsync(Patience);
        var after = await device.PublishAsync(new MqttMessage("ef/v1/cam-a/telemetry", "after"u8.ToArray(), 1)).WaitAsync(Patience);

        Assert.False(forged.Accepted);
        Assert.Equal(0x87, forged.ReasonCode); // MQTT 5 "not authorized" in the PUBACK
        Assert.True(after.Accepted);
        // One publisher's messages arrive in order: had the forged one been routed, it would come first.
        Assert.Equal("after", Text(await NextAsync(cp)));
        Assert.True(device.IsConnected); // a refused publish does not cost the connection
    }

    /// <summary>
    /// mosquitto 2.0's ACL file does not check subscriptions (its SUBACK grants any filter); read access is checked
    /// for each message at delivery, so a filter reaching other devices' topics simply receives nothing from them.
    /// </summary>
    [Fact]
    public async Task DeviceSubscribe_OtherDevicesTopics_ReceivesOnlyItsOwnCommands()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a", "cam-b");
        var cp = host.Service();
        var a = host.Device("cam-a");
        var b = host.Device("cam-b");
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        await a.WaitConnectedAsync().WaitAsync(Patience);
        await b.WaitConnectedAsync().WaitAsync(Patience);
        await a.SubscribeAsync("ef/v1/cam-b/cmd").WaitAsync(Patience);
        await a.SubscribeAsync("ef/v1/#").WaitAsync(Patience);
        await a.SubscribeAsync("ef/v1/cam-a/cmd").WaitAsync(Patience);
        await b.SubscribeAsync("ef/v1/cam-b/cmd").WaitAsync(Patience);

        await cp.PublishAsync(new MqttMessage("ef/v1/cam-b/cmd", "for-b"u8.ToArray(), 1)).WaitAsync(Patience);
        await b.PublishAsync(new MqttMessage("ef/v1/cam-b/telemetry", "b-telemetry"u8.ToArray(), 1)).WaitAsync(Patience);
        await cp.PublishAsync(new MqttMessage("ef/v1/cam-a/cmd", "for-a"u8.ToArray(), 1)).WaitAsync(Patience);

        Assert.Equal(("ef/v1/cam-b/cmd", "for-b"), (await NextAsync(b) is var m ? (m.Topic, Text(m)) : default));
        var toA = await ReadUntilAsync(a, "for-a");
        Assert.All(toA, message => Assert.Equal("ef/v1/cam-a/cmd", message.Topic));
        Assert.True(a.IsConnected);
    }

    [Fact]
    public async Task DeviceSubscribe_OwnDesired_ReceivesTheRetainedAssignment()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a");
        var cp = host.Service();
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        var published = await cp.PublishAsync(new MqttMessage("ef/v1/cam-a/desired", "model-v2"u8.ToArray(), 1, Retain: true)).WaitAsync(Patience);
        Assert.True(published.Accepted);

        var device = host.Device("cam-a");
        await device.SubscribeAsync("ef/v1/cam-a/desired").WaitAsync(Patience);
        var received = await NextAsync(device);

        Assert.Equal(("ef/v1/cam-a/desired", "model-v2", true), (received.Topic, Text(received), received.Retain));
    }

    /// <summary>A shared subscription is checked against each message's real topic, for a device as for the control plane.</summary>
    [Fact]
    public async Task DeviceSharedSubscription_OtherDevicesTelemetry_NothingDelivered()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a", "cam-b");
        var cp = host.Service();
        var a = host.Device("cam-a");
        var b = host.Device("cam-b");
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        await a.WaitConnectedAsync().WaitAsync(Patience);
        await b.WaitConnectedAsync().WaitAsync(Patience);
        await a.SubscribeAsync("$share/spy/ef/v1/+/telemetry").WaitAsync(Patience);
        await a.SubscribeAsync("ef/v1/cam-a/cmd").WaitAsync(Patience);

        var telemetry = await b.PublishAsync(new MqttMessage("ef/v1/cam-b/telemetry", "b-telemetry"u8.ToArray(), 1)).WaitAsync(Patience);
        await cp.PublishAsync(new MqttMessage("ef/v1/cam-a/cmd", "after"u8.ToArray(), 1)).WaitAsync(Patience);

        Assert.True(telemetry.Accepted);
        Assert.All(await ReadUntilAsync(a, "after"), message => Assert.Equal("ef/v1/cam-a/cmd", message.Topic));
    }

    /// <summary>
    /// Why <see cref="ControlPlane.Broker.EmbeddedBroker.ServiceSharedGroup"/> is random: mosquitto 2.0 lets a device
    /// join any shared group, hands it its round-robin share and then drops those messages (not readable by it).
    /// </summary>
    [Fact]
    public async Task DeviceInAGuessedSharedGroup_TakesItsShareAndMosquittoDropsIt()
    {
        var (cpReceived, deviceReceived) = await SharedGroupRoundAsync(cpGroup: "cp", deviceGroup: "cp");

        Assert.Equal(10, cpReceived.Count); // every other message went to the device's "share"...
        Assert.Empty(deviceReceived); // ...and was dropped there
    }

    [Fact]
    public async Task ServiceSharedGroup_DeviceInAGuessedGroup_ControlPlaneReceivesEverything()
    {
        var (cpReceived, deviceReceived) = await SharedGroupRoundAsync(cpGroup: null, deviceGroup: "cp");

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"m{i}"), cpReceived);
        Assert.Empty(deviceReceived);
    }

    /// <summary>
    /// The control plane subscribes to telemetry in a shared group (null: the broker's secret one), device cam-a joins
    /// <paramref name="deviceGroup"/>, cam-b publishes m0..m19. Returns what each received.
    /// </summary>
    private static async Task<(List<string> Cp, List<MqttReceivedMessage> Device)> SharedGroupRoundAsync(string? cpGroup, string deviceGroup)
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a", "cam-b");
        var cp = host.Service();
        var a = host.Device("cam-a");
        var b = host.Device("cam-b");
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        await a.WaitConnectedAsync().WaitAsync(Patience);
        await b.WaitConnectedAsync().WaitAsync(Patience);
        await cp.SubscribeAsync($"$share/{cpGroup ?? host.Broker.ServiceSharedGroup}/ef/v1/+/telemetry").WaitAsync(Patience);
        await cp.SubscribeAsync("ef/v1/cam-b/status").WaitAsync(Patience);
        await a.SubscribeAsync($"$share/{deviceGroup}/ef/v1/+/telemetry").WaitAsync(Patience);
        await a.SubscribeAsync("ef/v1/cam-a/cmd").WaitAsync(Patience);

        for (var i = 0; i < 20; i++)
        {
            Assert.True((await b.PublishAsync(new MqttMessage("ef/v1/cam-b/telemetry", Encoding.UTF8.GetBytes($"m{i}"), 1)).WaitAsync(Patience)).Accepted);
        }

        await b.PublishAsync(new MqttMessage("ef/v1/cam-b/status", "end"u8.ToArray(), 1)).WaitAsync(Patience);
        await cp.PublishAsync(new MqttMessage("ef/v1/cam-a/cmd", "end"u8.ToArray(), 1)).WaitAsync(Patience);
        // Each connection delivers in order: everything routed to a client comes before its "end".
        var toCp = (await ReadUntilAsync(cp, "end")).Where(m => m.Topic == "ef/v1/cam-b/telemetry").Select(Text).ToList();
        var toDevice = (await ReadUntilAsync(a, "end")).Where(m => m.Topic != "ef/v1/cam-a/cmd").ToList();
        return (toCp, toDevice);
    }
}
