using System.Diagnostics;
using System.Text;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Mqtt.Tests;

/// <summary>The MQTTnet-backed connection against a real mosquitto broker started per test.</summary>
[Trait("Category", "Integration")]
public sealed class MqttConnectionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static MqttConnectionOptions Options(MosquittoBroker broker, string id, string? user = null, string? password = null) => new()
    {
        Host = broker.Host,
        Port = broker.Port,
        ClientId = id,
        Username = user,
        Password = password,
        ReconnectDelay = TimeSpan.FromMilliseconds(200),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
        KeepAliveSeconds = 5,
    };

    private static MqttConnection Start(MqttConnectionOptions options)
    {
        var connection = new MqttConnection(options, NullLogger.Instance);
        connection.Start();
        return connection;
    }

    private static MqttConnection Start(MosquittoBroker broker, string id, params string[] subscriptions) =>
        Start(Options(broker, id) with { Subscriptions = [.. subscriptions.Select(s => new MqttSubscription(s))] });

    private static async Task<MqttReceivedMessage> NextAsync(IMqttConnection connection, string topic)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var message = await connection.Messages.ReadAsync(timeout.Token);
            if (message.Topic == topic)
            {
                return message;
            }
        }
    }

    /// <summary>Everything received up to and including the first message on <paramref name="topic"/>.</summary>
    private static async Task<List<MqttReceivedMessage>> UntilAsync(IMqttConnection connection, string topic)
    {
        using var timeout = new CancellationTokenSource(Patience);
        List<MqttReceivedMessage> messages = [];
        while (true)
        {
            var message = await connection.Messages.ReadAsync(timeout.Token);
            messages.Add(message);
            if (message.Topic == topic)
            {
                return messages;
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

    private static MqttMessage Message(string topic, string payload, int qos = 1, bool retain = false) =>
        new(topic, Encoding.UTF8.GetBytes(payload), qos, retain);

    [Fact]
    public async Task PublishAsync_Qos1ToASubscriber_ReceivedAndAcknowledged()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Start(broker, "sub", "t/#");
        await using var publisher = Start(broker, "pub");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience); // connected = SUBACK received
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var result = await publisher.PublishAsync(Message("t/a", "hello")).WaitAsync(Patience);
        var received = await NextAsync(subscriber, "t/a");

        Assert.Equal(0, result.ReasonCode);
        Assert.Equal("hello", Encoding.UTF8.GetString(received.Payload));
        Assert.Equal(1, received.Qos);
        Assert.False(received.Duplicate);
    }

    [Fact]
    public async Task PublishAsync_NoSubscriber_NoMatchingSubscribersCountsAsAccepted()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var publisher = Start(broker, "pub");
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var result = await publisher.PublishAsync(Message("nobody/listens", "x")).WaitAsync(Patience);

        Assert.Equal(0x10, result.ReasonCode);
        Assert.True(result.Accepted);
    }

    [Fact]
    public async Task SubscribeAsync_WhileConnected_ReturnsTheSubackAndDelivers()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Start(broker, "sub");
        await using var publisher = Start(broker, "pub");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        var granted = await subscriber.SubscribeAsync("late/#", 1).WaitAsync(Patience);
        await publisher.PublishAsync(Message("late/x", "after the SUBACK")).WaitAsync(Patience);

        Assert.Equal(new SubscribeResult("late/#", 1), granted);
        Assert.Equal("after the SUBACK", Encoding.UTF8.GetString((await NextAsync(subscriber, "late/x")).Payload));
    }

    [Fact]
    public async Task SubscribeAsync_BeforeTheConnection_CompletesWithItsSuback()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = new MqttConnection(Options(broker, "early-sub"), NullLogger.Instance);
        var subscribed = subscriber.SubscribeAsync("early/#", 1);
        Assert.False(subscribed.IsCompleted);

        subscriber.Start();

        Assert.True((await subscribed.WaitAsync(Patience)).Granted);
    }

    [Fact]
    public async Task RetainedMessage_ReachesALaterSubscriber()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using (var publisher = Start(broker, "pub"))
        {
            await publisher.WaitConnectedAsync().WaitAsync(Patience);
            await publisher.PublishAsync(Message("state/x", "on", retain: true)).WaitAsync(Patience);
        }

        await using var subscriber = Start(broker, "late", "state/x");

        var received = await NextAsync(subscriber, "state/x");
        Assert.True(received.Retain);
        Assert.Equal("on", Encoding.UTF8.GetString(received.Payload));
    }

    [Fact]
    public async Task DisconnectAsync_WithWill_BrokerPublishesTheWill()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var watcher = Start(broker, "watcher", "dev/status");
        await watcher.WaitConnectedAsync().WaitAsync(Patience);
        await using var device = Start(Options(broker, "device") with { Will = Message("dev/status", "offline", retain: true) });
        await device.WaitConnectedAsync().WaitAsync(Patience);

        await device.DisconnectAsync(publishWill: true);

        var will = await NextAsync(watcher, "dev/status");
        Assert.Equal("offline", Encoding.UTF8.GetString(will.Payload));
    }

    [Fact]
    public async Task DisposeAsync_NormalDisconnect_DoesNotPublishTheWill()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var watcher = Start(broker, "watcher", "dev/#");
        await watcher.WaitConnectedAsync().WaitAsync(Patience);
        var device = Start(Options(broker, "device") with { Will = Message("dev/status", "offline") });
        await device.WaitConnectedAsync().WaitAsync(Patience);

        await device.DisposeAsync();

        // Once mosquitto has handled the DISCONNECT, a Will would already be on its way to the watcher, ahead of a
        // marker published after it: reading up to the marker shows everything that came of the disconnect.
        await Until(() => broker.Log.Contains("Client device disconnected.", StringComparison.Ordinal), "mosquitto handled the DISCONNECT");
        await watcher.PublishAsync(Message("dev/marker", "after")).WaitAsync(Patience);
        var seen = await UntilAsync(watcher, "dev/marker");
        Assert.DoesNotContain(seen, m => m.Topic == "dev/status");
    }

    [Fact]
    public async Task WrongPassword_RefusedWithAReason_ConnectsOnceThePasswordFileIsFixed()
    {
        var users = new Dictionary<string, string> { ["cam-01"] = "right" };
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Users = users });
        var refused = new TaskCompletionSource<MqttConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var client = new MqttConnection(Options(broker, "cam-01", "cam-01", "wrong"), NullLogger.Instance);
        client.ConnectionChanged += e =>
        {
            if (e.State == MqttConnectionState.Refused)
            {
                refused.TrySetResult(e);
            }
        };
        client.Start();

        var e = await refused.Task.WaitAsync(Patience);
        Assert.Contains("NotAuthorized", e.Reason, StringComparison.Ordinal);
        Assert.Contains("username and password", client.LastError, StringComparison.Ordinal);
        Assert.Equal(MqttConnectionState.Refused, client.State);

        broker.Reload(new MosquittoBrokerOptions { Users = new Dictionary<string, string> { ["cam-01"] = "wrong" } });
        await client.WaitConnectedAsync().WaitAsync(Patience); // kept retrying with backoff
        Assert.Equal(1, client.Connects);
    }

    [Fact]
    public async Task PublishAsync_AclDenied_ReportsNotAuthorizedAndKeepsTheConnection()
    {
        var users = new Dictionary<string, string> { ["cam-01"] = "pw" };
        var acl = new[] { "pattern readwrite ef/v1/%u/#" };
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Users = users, Acl = acl });
        await using var client = Start(Options(broker, "cam-01", "cam-01", "pw"));
        await client.WaitConnectedAsync().WaitAsync(Patience);

        var own = await client.PublishAsync(Message("ef/v1/cam-01/telemetry", "1")).WaitAsync(Patience);
        var other = await client.PublishAsync(Message("ef/v1/cam-02/telemetry", "1")).WaitAsync(Patience);

        Assert.True(own.Accepted);
        Assert.False(other.Accepted);
        Assert.Equal(0x87, other.ReasonCode);
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task BrokerOutage_PublishFailsClearly_ThenReconnectsAndResubscribes()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Start(broker, "sub", "out/#");
        await using var publisher = Start(broker, "pub");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);

        await broker.StopAsync();
        await Until(() => !publisher.IsConnected && !subscriber.IsConnected, "both notice the outage");
        var whileDown = await Assert.ThrowsAsync<MqttNotConnectedException>(() => publisher.PublishAsync(Message("out/lost", "x")));
        await broker.StartAsync();
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        await subscriber.WaitConnectedAsync().WaitAsync(Patience); // its subscription is in force again

        Assert.True((await publisher.PublishAsync(Message("out/again", "back")).WaitAsync(Patience)).Accepted);
        Assert.Equal("back", Encoding.UTF8.GetString((await NextAsync(subscriber, "out/again")).Payload));
        Assert.Contains("out/lost", whileDown.Message, StringComparison.Ordinal);
        Assert.Contains("not connected", whileDown.Message, StringComparison.Ordinal);
        Assert.Equal(1, publisher.ConnectionLosses);
        Assert.Equal(2, publisher.Connects);
    }

    [Fact]
    public async Task BrokerDownAtStart_ConnectsOnceItComesUp()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await broker.StopAsync();
        await using var client = Start(broker, "early");

        await Until(() => client.LastError?.Contains("failed", StringComparison.Ordinal) == true, "an attempt failed"); // refused by the OS
        Assert.False(client.IsConnected);
        await broker.StartAsync();

        await client.WaitConnectedAsync().WaitAsync(Patience);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task PublishAsync_WhileDisconnected_FailsAtOnceNamingTheTopic(int qos)
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await broker.StopAsync();
        await using var client = Start(broker, "q");

        var ex = await Assert.ThrowsAsync<MqttNotConnectedException>(() => client.PublishAsync(Message("some/topic", "x", qos)));

        Assert.Contains("some/topic", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_HandlersAttachedFirst_TheFirstConnectionIsNeverMissed()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var client = new MqttConnection(Options(broker, "first"), NullLogger.Instance);
        var first = new TaskCompletionSource<MqttConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ConnectionChanged += e => first.TrySetResult(e);
        Assert.False(client.IsConnected);

        client.Start();

        Assert.Equal(MqttConnectionState.Connected, (await first.Task.WaitAsync(Patience)).State);
        Assert.Throws<InvalidOperationException>(client.Start);
    }

    [Fact]
    public async Task DisposeAsync_WhileReconnectingToADeadBroker_Returns()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        var client = Start(broker, "dying");
        await client.WaitConnectedAsync().WaitAsync(Patience);
        await broker.StopAsync();
        await Until(() => client.LastError?.Contains("failed", StringComparison.Ordinal) == true, "a reconnect attempt failed"); // in the middle of reconnecting

        Assert.False(client.IsConnected);
        await client.DisposeAsync().AsTask().WaitAsync(Patience);
    }

    [Fact]
    public async Task PublishAsync_ManyQos1_EachAcknowledgedOnceAndAllDelivered()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var subscriber = Start(Options(broker, "sink") with { Subscriptions = [new("bulk/t")], ReceiveBuffer = 10_000 });
        await using var client = Start(broker, "bulk");
        await subscriber.WaitConnectedAsync().WaitAsync(Patience);
        await client.WaitConnectedAsync().WaitAsync(Patience);

        var results = await Task.WhenAll(Enumerable.Range(0, 5000).Select(i => client.PublishAsync(new MqttMessage("bulk/t", BitConverter.GetBytes(i), 1))))
            .WaitAsync(TimeSpan.FromSeconds(60));
        var received = new HashSet<int>();
        using var timeout = new CancellationTokenSource(Patience);
        while (received.Count < 5000)
        {
            received.Add(BitConverter.ToInt32((await subscriber.Messages.ReadAsync(timeout.Token)).Payload));
        }

        Assert.All(results, r => Assert.True(r.Accepted));
        Assert.Equal(5000, results.Select(r => r.MessageId).Distinct().Count()); // one PUBACK per publish, none shared
        Assert.Equal(Enumerable.Range(0, 5000), received.Order());
        Assert.Equal(0, client.PendingPublishes);
    }

    /// <summary>
    /// MQTTnet does not honour the broker's receive maximum itself; the connection must. mosquitto announces its
    /// max_inflight_messages (default 20) as its receive maximum.
    /// </summary>
    [Fact]
    public async Task PublishAsync_ManyAtOnce_NeverMoreInFlightThanTheBrokersReceiveMaximum()
    {
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { MaxInflightMessages = 20 });
        await using var client = Start(Options(broker, "window") with { MaxInflight = 1000 });
        await client.WaitConnectedAsync().WaitAsync(Patience);
        var peak = 0;
        var sampling = true;
        var sampler = Task.Run(async () =>
        {
            while (Volatile.Read(ref sampling))
            {
                peak = Math.Max(peak, client.PendingPublishes);
                await Task.Yield();
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 3000).Select(i => client.PublishAsync(new MqttMessage("w/t", BitConverter.GetBytes(i), 1))))
            .WaitAsync(TimeSpan.FromSeconds(60));
        Volatile.Write(ref sampling, false);
        await sampler;

        Assert.Equal(20, client.PublishWindow);
        Assert.InRange(peak, 1, 20);
    }

    [Fact]
    public async Task Tls_PrivateCaWithLogin_ConnectsAndAPlainClientDoesNot()
    {
        using var dir = new TempDirectory();
        var (ca, cert, key) = TestCertificates.CreateServer(dir);
        var users = new Dictionary<string, string> { ["cam-01"] = "pw" };
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Tls = (ca, cert, key), Users = users });

        await using var secure = Start(Options(broker, "tls", "cam-01", "pw") with { Host = "localhost", CaFile = ca });
        await secure.WaitConnectedAsync().WaitAsync(Patience);
        Assert.True((await secure.PublishAsync(Message("tls/t", "1")).WaitAsync(Patience)).Accepted);

        await using var plain = Start(Options(broker, "plain", "cam-01", "pw"));
        await Until(() => plain.LastError?.Contains("failed", StringComparison.Ordinal) == true, "the plain client's attempt failed");
        Assert.Equal(0, plain.Connects);
    }

    [Fact]
    public void Constructor_UnreadableCaFile_ThrowsNamingTheFile()
    {
        var ex = Assert.Throws<MqttException>(() => new MqttConnection(new MqttConnectionOptions
        {
            Host = "127.0.0.1", ClientId = "x", CaFile = "/nonexistent/ca.pem",
        }, NullLogger.Instance));

        Assert.Contains("/nonexistent/ca.pem", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Manual acknowledgement on a persistent session: what was received but not acknowledged is sent again (DUP)
    /// after a reconnect, what was acknowledged is not.
    /// </summary>
    [Fact]
    public async Task AcknowledgeAsync_PersistentSession_RedeliversExactlyTheUnacknowledged()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        var options = Options(broker, "ingest") with
        {
            CleanStart = false,
            SessionExpiry = TimeSpan.FromMinutes(5),
            ManualAcknowledge = true,
            Subscriptions = [new("data/#")],
        };
        await using var publisher = Start(broker, "pub");
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        var first = Start(options);
        await first.WaitConnectedAsync().WaitAsync(Patience);
        for (var i = 0; i < 6; i++)
        {
            await publisher.PublishAsync(Message("data/x", $"m{i}")).WaitAsync(Patience);
        }

        var got = new List<MqttReceivedMessage>();
        while (got.Count < 6)
        {
            got.Add(await NextAsync(first, "data/x"));
        }

        foreach (var message in got.Take(3))
        {
            await first.AcknowledgeAsync(message);
        }

        await first.AcknowledgeAsync(got[0]); // twice: nothing happens
        await first.DisposeAsync(); // m3..m5 unacknowledged

        // The PUBACKs count once mosquitto has read them. A second connection with the same id that mosquitto handles
        // first takes the session over and closes the old socket with the PUBACKs still unread in it (m0..m2 would come
        // again, which at-least-once allows): wait until mosquitto has handled the DISCONNECT that follows them.
        await Until(() => broker.Log.Contains("Client ingest disconnected.", StringComparison.Ordinal), "mosquitto handled the DISCONNECT");
        await using var second = Start(options);
        var again = new List<MqttReceivedMessage>();
        while (again.Count < 3)
        {
            var message = await NextAsync(second, "data/x");
            again.Add(message);
            await second.AcknowledgeAsync(message);
        }

        await publisher.PublishAsync(Message("data/x", "end")).WaitAsync(Patience);
        var rest = (await UntilAsync(second, "data/x")).Select(m => Encoding.UTF8.GetString(m.Payload)).ToList();
        Assert.Equal(["m3", "m4", "m5"], again.Select(m => Encoding.UTF8.GetString(m.Payload)));
        Assert.All(again, m => Assert.True(m.Duplicate));
        Assert.Equal(["end"], rest);
    }

    /// <summary>
    /// mosquitto honours the receive maximum a client announces: with acknowledgements held it stops there, and
    /// sends the rest once they are given.
    /// </summary>
    [Fact]
    public async Task ManualAcknowledge_HeldAcknowledgements_BrokerSendsUpToTheReceiveMaximumThenTheRest()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        await using var consumer = Start(Options(broker, "slow") with { ManualAcknowledge = true, ReceiveMaximum = 50, Subscriptions = [new("q/#")] });
        await using var publisher = Start(broker, "pub");
        await consumer.WaitConnectedAsync().WaitAsync(Patience);
        await publisher.WaitConnectedAsync().WaitAsync(Patience);
        for (var i = 0; i < 200; i++)
        {
            await publisher.PublishAsync(Message("q/x", $"{i}")).WaitAsync(Patience);
        }

        var held = new List<MqttReceivedMessage>();
        while (held.Count < 50)
        {
            held.Add(await NextAsync(consumer, "q/x"));
        }

        foreach (var message in held)
        {
            await consumer.AcknowledgeAsync(message);
        }

        var all = held.Select(m => Encoding.UTF8.GetString(m.Payload)).ToList();
        while (all.Count < 200)
        {
            var message = await NextAsync(consumer, "q/x");
            all.Add(Encoding.UTF8.GetString(message.Payload));
            await consumer.AcknowledgeAsync(message);
        }

        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"{i}"), all);
    }
}

/// <summary>What mosquitto 2.0.11 keeps of a persistent session across its own restart (SIGTERM, persistence on).</summary>
[Trait("Category", "Integration")]
public sealed class MosquittoPersistenceTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task PersistentSession_BrokerRestarted_QueuedAndLaterMessagesArrive()
    {
        var (after, got) = await RestartRoundAsync("data/#");

        Assert.Equal(0, after.ReasonCode);
        Assert.Equal(["before", "after"], got);
    }

    /// <summary>Why ingestion on the embedded broker subscribes without a shared group.</summary>
    [Fact]
    public async Task PersistentSession_SharedSubscription_DoesNotSurviveTheBrokerRestart()
    {
        var (after, got) = await RestartRoundAsync("$share/g/data/#");

        Assert.Equal(0x10, after.ReasonCode); // no matching subscribers: the device would count it delivered
        Assert.Equal(["before"], got);
    }

    /// <summary>
    /// A persistent session subscribes to <paramref name="filter"/> and goes away; "before" is published; mosquitto
    /// restarts; "after" is published; the session comes back without subscribing. Returns the PUBACK of "after" and
    /// what the session received (up to a marker).
    /// </summary>
    private static async Task<(PublishResult After, List<string> Got)> RestartRoundAsync(string filter)
    {
        await using var broker = await MosquittoBroker.StartAsync();
        var session = new MqttConnectionOptions
        {
            Host = broker.Host, Port = broker.Port, ClientId = "ingest", CleanStart = false, SessionExpiry = TimeSpan.FromHours(1),
            ManualAcknowledge = true, Subscriptions = [new(filter)], ReconnectDelay = TimeSpan.FromMilliseconds(200), MaxReconnectDelay = TimeSpan.FromSeconds(1),
        };
        var publisherOptions = session with { ClientId = "pub", CleanStart = true, SessionExpiry = TimeSpan.Zero, ManualAcknowledge = false, Subscriptions = [] };
        await using (var first = new MqttConnection(session, NullLogger.Instance))
        {
            first.Start();
            await first.WaitConnectedAsync().WaitAsync(Patience);
        }

        await using (var publisher = new MqttConnection(publisherOptions, NullLogger.Instance))
        {
            publisher.Start();
            await publisher.WaitConnectedAsync().WaitAsync(Patience);
            await publisher.PublishAsync(new MqttMessage("data/x", "before"u8.ToArray(), 1)).WaitAsync(Patience); // queued for the offline session
        }

        await broker.StopAsync();
        await broker.StartAsync();
        PublishResult after;
        await using (var publisher = new MqttConnection(publisherOptions, NullLogger.Instance))
        {
            publisher.Start();
            await publisher.WaitConnectedAsync().WaitAsync(Patience);
            after = await publisher.PublishAsync(new MqttMessage("data/x", "after"u8.ToArray(), 1)).WaitAsync(Patience); // session still offline
        }

        await using var second = new MqttConnection(session with { Subscriptions = [new("marker")] }, NullLogger.Instance);
        second.Start();
        await second.WaitConnectedAsync().WaitAsync(Patience);
        await using (var publisher = new MqttConnection(publisherOptions, NullLogger.Instance))
        {
            publisher.Start();
            await publisher.WaitConnectedAsync().WaitAsync(Patience);
            await publisher.PublishAsync(new MqttMessage("marker", "end"u8.ToArray(), 1)).WaitAsync(Patience);
        }

        using var timeout = new CancellationTokenSource(Patience);
        var got = new List<string>();
        while (true)
        {
            var message = await second.Messages.ReadAsync(timeout.Token);
            if (message.Topic == "marker")
            {
                return (after, got);
            }

            got.Add(System.Text.Encoding.UTF8.GetString(message.Payload));
        }
    }
}
