using System.Diagnostics;
using System.Text;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>
/// An <see cref="EmbeddedBroker"/> on a free loopback port in a temporary directory, with MQTT clients for its
/// devices and its service user; everything is stopped and removed on dispose.
/// </summary>
internal sealed class BrokerTestHost : IAsyncDisposable
{
    /// <summary>How long a test waits for something that should happen (a hang guard, not a speed requirement).</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private const string SyncPrefix = "sync-";

    private readonly TempDirectory _dir = new("cp-broker");
    private readonly List<MqttClient> _clients = [];

    private BrokerTestHost(Action<BrokerOptions>? configure)
    {
        Options = new BrokerOptions
        {
            DataDirectory = _dir.Path,
            Port = FreePort.Next(),
            BindAddress = "127.0.0.1",
            RestartDelaySeconds = 0.2,
            MaxRestartDelaySeconds = 1,
        };
        configure?.Invoke(Options);
        Broker = new EmbeddedBroker(Options, TimeProvider.System, Logger);
    }

    public BrokerOptions Options { get; }

    public RecordingLogger Logger { get; } = new();

    public EmbeddedBroker Broker { get; }

    public string DataDirectory => _dir.Path;

    /// <summary>Creates the host without starting the broker.</summary>
    public static BrokerTestHost Create(Action<BrokerOptions>? configure = null) => new(configure);

    /// <summary>Starts a broker that knows the given devices (each with the password "pw-{id}").</summary>
    public static async Task<BrokerTestHost> StartAsync(params string[] devices)
    {
        var host = new BrokerTestHost(null);
        try
        {
            await host.Broker.StartAsync(host.Credentials(devices)).WaitAsync(Patience);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public static string PasswordOf(string device) => $"pw-{device}";

    /// <summary>Hashed credentials for the devices, as the control plane would keep them.</summary>
    public IReadOnlyList<BrokerCredential> Credentials(params string[] devices) =>
        [.. devices.Select(d => MosquittoPasswordHasher.CreateCredential(d, PasswordOf(d)))];

    /// <summary>A client for a device (client id = username = device id), connecting in the background.</summary>
    public MqttClient Device(string id, string? password = null)
    {
        var client = MqttClient.Start(new MqttClientOptions
        {
            Host = Broker.Host,
            Port = Broker.Port,
            ClientId = id,
            Username = id,
            Password = password ?? PasswordOf(id),
            ReconnectDelay = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            KeepAliveSeconds = 5,
        }, NullLogger.Instance);
        _clients.Add(client);
        return client;
    }

    /// <summary>A client with the control plane's own login.</summary>
    public MqttClient Service(string clientId = "cp-test")
    {
        var client = MqttClient.Start(Broker.ServiceClientOptions(clientId) with
        {
            ReconnectDelay = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            KeepAliveSeconds = 5,
        }, NullLogger.Instance);
        _clients.Add(client);
        return client;
    }

    /// <summary>
    /// Makes sure <paramref name="subscriber"/>'s subscriptions are in force (the client does not await SUBACK):
    /// publishes markers on <paramref name="topic"/> until one arrives. Later reads skip markers.
    /// </summary>
    public static async Task SyncAsync(MqttClient publisher, string topic, MqttClient subscriber)
    {
        var sw = Stopwatch.StartNew();
        var n = 0;
        while (true)
        {
            Assert.True(sw.Elapsed < Patience, $"no marker on {topic} reached the subscriber");
            var ack = await publisher.PublishAsync(topic, Encoding.UTF8.GetBytes($"{SyncPrefix}{n++}"), 1).WaitAsync(Patience);
            Assert.True(ack.Accepted, $"the marker on {topic} was refused with 0x{ack.ReasonCode:x2}");
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            try
            {
                while (true)
                {
                    var message = await subscriber.Messages.ReadAsync(wait.Token);
                    if (message.Topic == topic && IsSync(message))
                    {
                        return;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // not subscribed yet: publish another marker
            }
        }
    }

    /// <summary>The next message that is not a marker.</summary>
    public static async Task<MqttMessage> NextAsync(MqttClient client)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var message = await client.Messages.ReadAsync(timeout.Token);
            if (!IsSync(message))
            {
                return message;
            }
        }
    }

    /// <summary>Messages received so far that are not markers (does not wait).</summary>
    public static List<MqttMessage> Drain(MqttClient client)
    {
        List<MqttMessage> messages = [];
        while (client.Messages.TryRead(out var message))
        {
            if (!IsSync(message))
            {
                messages.Add(message);
            }
        }

        return messages;
    }

    public static async Task Until(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await Broker.DisposeAsync();
        _dir.Dispose();
    }

    private static bool IsSync(MqttMessage message) =>
        Encoding.UTF8.GetString(message.Payload).StartsWith(SyncPrefix, StringComparison.Ordinal);
}
