using System.Diagnostics;
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

    private readonly TempDirectory _dir = new("cp-broker");
    private readonly List<MqttConnection> _clients = [];

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

    /// <summary>A connection for a device (client id = username = device id), connecting in the background.</summary>
    public MqttConnection Device(string id, string? password = null) => Track(new MqttConnectionOptions
    {
        Host = Broker.Host,
        Port = Broker.Port,
        ClientId = id,
        Username = id,
        Password = password ?? PasswordOf(id),
        ReconnectDelay = TimeSpan.FromMilliseconds(200),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
        KeepAliveSeconds = 5,
    });

    /// <summary>A connection with the control plane's own login.</summary>
    public MqttConnection Service(string clientId = "cp-test") => Track(Broker.ServiceClientOptions(clientId) with
    {
        ReconnectDelay = TimeSpan.FromMilliseconds(200),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
        KeepAliveSeconds = 5,
    });

    /// <summary>The next message (waits).</summary>
    public static async Task<MqttReceivedMessage> NextAsync(IMqttConnection client)
    {
        using var timeout = new CancellationTokenSource(Patience);
        return await client.Messages.ReadAsync(timeout.Token);
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

    private MqttConnection Track(MqttConnectionOptions options)
    {
        var client = new MqttConnection(options, NullLogger.Instance);
        _clients.Add(client);
        client.Start();
        return client;
    }
}
