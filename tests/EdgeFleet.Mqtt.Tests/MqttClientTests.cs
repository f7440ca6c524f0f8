using System.Diagnostics;
using System.Text;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Mqtt.Tests;

/// <summary>The client against a real mosquitto broker started per test.</summary>
[Trait("Category", "Integration")]
public sealed class MqttClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static MqttClient Client(MosquittoBroker broker, string id, string? user = null, string? password = null, MqttMessage? will = null) =>
        MqttClient.Start(new MqttClientOptions
        {
            Host = broker.Host,
            Port = broker.Port,
            ClientId = id,
            Username = user,
            Password = password,
            Will = will,
            ReconnectDelay = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            KeepAliveSeconds = 5,
        }, NullLogger.Instance);

    private static async Task<MqttMessage> NextAsync(MqttClient client, string topic)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var message = await client.Messages.ReadAsync(timeout.Token);
            if (message.Topic == topic)
            {
                return message;
            }
        }
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task PublishQos1_SubscriberReceivesAndPublisherGetsPuback()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Client(broker, "sub");
        await using var publisher = Client(broker, "pub");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        subscriber.Subscribe("t/#", 1);
        await Task.Delay(200); // SUBACK
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var result = await publisher.PublishAsync("t/a", "hello"u8.ToArray(), qos: 1).WaitAsync(Patience);
        var received = await NextAsync(subscriber, "t/a");

        Assert.True(result.Accepted);
        Assert.Equal("hello", Encoding.UTF8.GetString(received.Payload));
        Assert.Equal(1, received.Qos);
    }

    [Fact]
    public async Task RetainedMessage_ReachesALaterSubscriber()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using (var publisher = Client(broker, "pub"))
        {
            await publisher.WaitConnectedAsync().WaitAsync(Patience);
            await publisher.PublishAsync("state/x", "on"u8.ToArray(), qos: 1, retain: true).WaitAsync(Patience);
        }

        await using var subscriber = Client(broker, "late");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        subscriber.Subscribe("state/x");

        var received = await NextAsync(subscriber, "state/x");
        Assert.True(received.Retain);
        Assert.Equal("on", Encoding.UTF8.GetString(received.Payload));
    }

    [Fact]
    public async Task LastWill_IsPublishedWhenTheClientVanishes()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var watcher = Client(broker, "watcher");
        await watcher.WaitConnectedAsync().WaitAsync(Patience);
        watcher.Subscribe("dev/status");
        await Task.Delay(200);

        var device = Client(broker, "device", will: new MqttMessage("dev/status", "offline"u8.ToArray(), 1, Retain: true));
        await device.WaitConnectedAsync().WaitAsync(Patience);
        await device.DisposeAsync(publishWill: true);

        var will = await NextAsync(watcher, "dev/status");
        Assert.Equal("offline", Encoding.UTF8.GetString(will.Payload));
    }

    [Fact]
    public async Task NormalDispose_DoesNotPublishTheWill()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var watcher = Client(broker, "watcher");
        await watcher.WaitConnectedAsync().WaitAsync(Patience);
        watcher.Subscribe("dev/#");
        await Task.Delay(200);

        var device = Client(broker, "device", will: new MqttMessage("dev/status", "offline"u8.ToArray(), 1));
        await device.WaitConnectedAsync().WaitAsync(Patience);
        await device.PublishAsync("dev/marker", new byte[] { 1 }, 1).WaitAsync(Patience);
        await device.DisposeAsync();
        await NextAsync(watcher, "dev/marker");

        await Task.Delay(500);
        Assert.False(watcher.Messages.TryRead(out var extra) && extra.Topic == "dev/status");
    }

    [Fact]
    public async Task WrongPassword_IsRefusedWithAReasonAndRecoversWhenFixed()
    {
        var users = new Dictionary<string, string> { ["cam-01"] = "right" };
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Users = users });
        await using var client = Client(broker, "cam-01", "cam-01", "wrong");

        await Until(() => client.State == MqttConnectionState.Refused, "the broker refuses");
        Assert.Contains("username and password", client.LastError, StringComparison.Ordinal);

        broker.Reload(new MosquittoBrokerOptions { Users = new Dictionary<string, string> { ["cam-01"] = "wrong" } });
        await client.WaitConnectedAsync().WaitAsync(Patience); // the supervisor restarted the loop
    }

    [Fact]
    public async Task AclDeniedPublish_ReportsTheBrokersRefusal()
    {
        var users = new Dictionary<string, string> { ["cam-01"] = "pw" };
        var acl = new[] { "pattern readwrite ef/v1/%u/#" };
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Users = users, Acl = acl });
        await using var client = Client(broker, "cam-01", "cam-01", "pw");
        await client.WaitConnectedAsync().WaitAsync(Patience);

        var own = await client.PublishAsync("ef/v1/cam-01/telemetry", new byte[] { 1 }, 1).WaitAsync(Patience);
        var other = await client.PublishAsync("ef/v1/cam-02/telemetry", new byte[] { 1 }, 1).WaitAsync(Patience);

        Assert.True(own.Accepted);
        Assert.False(other.Accepted);
        Assert.Equal(0x87, other.ReasonCode);
    }

    [Fact]
    public async Task BrokerOutage_ReconnectsResubscribesAndDeliversWhatWasQueued()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Client(broker, "sub");
        await using var publisher = Client(broker, "pub");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        subscriber.Subscribe("out/#", 1);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        await broker.StopAsync();
        await Until(() => !publisher.IsConnected && !subscriber.IsConnected, "both notice the outage");
        // Kept by the library until it reconnects; retained, because the subscriber (a clean session) may resubscribe
        // only after the publisher has already delivered it.
        var whileDown = publisher.PublishAsync("out/queued", "late"u8.ToArray(), 1, retain: true);
        await broker.StartAsync();

        var ack = await whileDown.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(ack.Accepted);
        Assert.Equal("late", Encoding.UTF8.GetString((await NextAsync(subscriber, "out/queued")).Payload));
        Assert.True(publisher.ConnectionLosses >= 1);
        Assert.True(publisher.Connects >= 2);
    }

    [Fact]
    public async Task BrokerDownAtStart_ConnectsOnceItComesUp()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await broker.StopAsync();
        await using var client = Client(broker, "early");
        await Task.Delay(500);
        Assert.False(client.IsConnected);

        await broker.StartAsync();

        await client.WaitConnectedAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Qos0WhileDisconnected_FailsClearly()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await broker.StopAsync();
        await using var client = Client(broker, "q0");

        var ex = await Assert.ThrowsAsync<MqttException>(() => client.PublishAsync("x", new byte[] { 1 }, qos: 0));
        Assert.Contains("x", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateThenConnect_TheFirstConnectionIsNeverMissed()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var client = MqttClient.Create(new MqttClientOptions { Host = broker.Host, Port = broker.Port, ClientId = "first" }, NullLogger.Instance);
        var first = new TaskCompletionSource<MqttConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ConnectionChanged += e => first.TrySetResult(e);
        Assert.False(client.IsConnected);

        client.Connect();

        Assert.Equal(MqttConnectionState.Connected, (await first.Task.WaitAsync(Patience)).State);
        Assert.Throws<InvalidOperationException>(client.Connect);
    }

    [Fact]
    public async Task Dispose_WhileReconnectingToADeadBroker_Returns()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        var client = Client(broker, "dying");
        await client.WaitConnectedAsync().WaitAsync(Patience);
        await broker.StopAsync();
        await Until(() => !client.IsConnected, "the outage is noticed");
        await Task.Delay(1500); // into the reconnect attempts

        await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task ManyQos1Publishes_AllAcknowledged()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var client = Client(broker, "bulk");
        await client.WaitConnectedAsync().WaitAsync(Patience);

        var results = await Task.WhenAll(Enumerable.Range(0, 5000).Select(i => client.PublishAsync("bulk/t", BitConverter.GetBytes(i), 1)))
            .WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(results, r => Assert.True(r.Accepted));
        Assert.Equal(5000, results.Select(r => r.MessageId).Count());
        Assert.Equal(0, client.PendingPublishes);
    }

    [Fact]
    public async Task Tls_ConnectsWithTheCaAndRefusesWithoutIt()
    {
        using var dir = new TempDirectory();
        var (ca, cert, key) = TestCertificates.CreateServer(dir);
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Tls = (ca, cert, key) });

        await using var secure = MqttClient.Start(new MqttClientOptions
        {
            Host = "localhost", Port = broker.Port, ClientId = "tls", CaFile = ca,
        }, NullLogger.Instance);
        await secure.WaitConnectedAsync().WaitAsync(Patience);
        Assert.True((await secure.PublishAsync("tls/t", new byte[] { 1 }, 1).WaitAsync(Patience)).Accepted);

        await using var plain = Client(broker, "plain");
        await Task.Delay(1500);
        Assert.False(plain.IsConnected);
    }
}
