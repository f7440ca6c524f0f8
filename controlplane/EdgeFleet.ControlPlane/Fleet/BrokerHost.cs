using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>Creates the control plane's own MQTT connections for whichever broker it uses.</summary>
public interface IMqttConnectionFactory
{
    /// <summary>
    /// A connection (not started) with the control plane's login on its broker; <paramref name="configure"/> adjusts
    /// the session (persistence, acknowledgement, subscriptions).
    /// </summary>
    IMqttConnection Create(string clientId, Func<MqttConnectionOptions, MqttConnectionOptions>? configure = null);

    /// <summary>
    /// Shared-subscription group of the replicas, or null for plain subscriptions. The embedded broker serves one
    /// control plane, so null: mosquitto 2.0.11 keeps a persistent session's plain subscriptions across its own
    /// restart but not its shared ones (measured), and a message published before ingestion subscribes again would
    /// find no subscriber (PUBACK 0x10) and be gone. Plain subscriptions also leave no group a device could join.
    /// </summary>
    string? ShareGroup { get; }
}

/// <summary>
/// The broker side of the fleet. With <c>--mqtt embedded</c> it starts and supervises mosquitto with a password file
/// and ACL generated from the device registry, and regenerates and reloads them whenever a device enrolls or is
/// revoked (mosquitto drops a connected client whose login disappeared). With an external broker it only connects;
/// device logins must then be provisioned in that broker.
/// </summary>
public sealed partial class BrokerHost(
    IOptions<ControlPlaneOptions> options, IOptions<BrokerOptions> brokerOptions, DeviceCredentials credentials, TimeProvider time, ILoggerFactory loggers)
    : IHostedService, IBrokerAccess, IMqttEndpoint, IMqttConnectionFactory, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger<BrokerHost>();
    private readonly SemaphoreSlim _sync = new(1, 1);
    private EmbeddedBroker? _embedded;
    private Uri? _external;

    public string? PublicHost => null;

    public string? ShareGroup => _embedded is not null || string.IsNullOrEmpty(options.Value.ShareGroup) ? null : options.Value.ShareGroup;

    public int Port => _embedded?.Port ?? _external?.Port ?? options.Value.MqttPort;

    public bool Tls => _external?.Scheme == "mqtts";

    /// <summary>The embedded broker, if there is one (for tests and /metrics).</summary>
    internal EmbeddedBroker? Embedded => _embedded;

    public string HashPassword(string username, string password) => MosquittoPasswordHasher.HashLine(username, password);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.MqttDisabled)
        {
            return;
        }

        if (!o.UsesEmbeddedBroker)
        {
            if (!Uri.TryCreate(o.Mqtt, UriKind.Absolute, out var uri) || uri.Scheme is not ("mqtt" or "mqtts") || string.IsNullOrEmpty(uri.Host))
            {
                throw new InvalidOperationException($"--mqtt '{o.Mqtt}' must be 'embedded', 'none', mqtt://host:port or mqtts://host:port");
            }

            _external = uri.IsDefaultPort || uri.Port <= 0 ? new UriBuilder(uri) { Port = uri.Scheme == "mqtts" ? 8883 : 1883 }.Uri : uri;
            LogExternal(_logger, _external.ToString());
            return;
        }

        _embedded = new EmbeddedBroker(brokerOptions.Value, time, loggers.CreateLogger<EmbeddedBroker>());
        await _embedded.StartAsync(await CredentialsAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        LogEmbedded(_logger, _embedded.Port, _embedded.Files.Directory);
    }

    private long _syncRequested;
    private long _syncCompleted;

    public async Task SyncAsync(CancellationToken cancellationToken = default)
    {
        if (_embedded is null)
        {
            return;
        }

        // Serialised: two enrollments at once must not interleave their rewrites of the password file. And coalesced: a
        // rewrite reads every credential committed so far, so the callers that waited behind it are served by the next
        // single rewrite instead of one rewrite + reload each (enrollment of a big fleet was quadratic: 1–2/s past 2,500).
        var wanted = Interlocked.Increment(ref _syncRequested);
        await _sync.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _syncCompleted) >= wanted)
            {
                return; // a rewrite that started after this request's change was committed has covered it
            }

            var covers = Volatile.Read(ref _syncRequested);
            await _embedded.UpdateCredentialsAsync(await CredentialsAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _syncCompleted, covers);
        }
        finally
        {
            _sync.Release();
        }
    }

    public IMqttConnection Create(string clientId, Func<MqttConnectionOptions, MqttConnectionOptions>? configure = null)
    {
        var o = options.Value;
        MqttConnectionOptions connection;
        if (_embedded is not null)
        {
            connection = _embedded.ServiceClientOptions(clientId);
        }
        else if (_external is not null)
        {
            connection = new MqttConnectionOptions
            {
                Host = _external.Host,
                Port = _external.Port,
                ClientId = clientId,
                Username = o.MqttUsername,
                Password = o.MqttPassword,
                CaFile = _external.Scheme == "mqtts" ? o.MqttCaFile : null,
            };
        }
        else
        {
            throw new InvalidOperationException("MQTT is disabled (--mqtt none)");
        }

        connection = connection with { ReceiveBuffer = 10_000, MaxInflight = 1000 };
        return new MqttConnection(configure is null ? connection : configure(connection), loggers.CreateLogger<MqttConnection>(), time);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_embedded is not null)
        {
            await _embedded.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_embedded is not null)
        {
            await _embedded.DisposeAsync().ConfigureAwait(false);
        }

        _sync.Dispose();
    }

    private Task<IReadOnlyList<BrokerCredential>> CredentialsAsync(CancellationToken cancellationToken) => credentials.ActiveAsync(cancellationToken);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker (mosquitto) listening on port {Port}; its files are in {Directory}")]
    private static partial void LogEmbedded(ILogger logger, int port, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Using the external MQTT broker {Broker}; device logins must be provisioned there")]
    private static partial void LogExternal(ILogger logger, string broker);
}
