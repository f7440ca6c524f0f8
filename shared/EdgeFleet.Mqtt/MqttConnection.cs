using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using Polly;

namespace EdgeFleet.Mqtt;

/// <summary>
/// <see cref="IMqttConnection"/> over MQTTnet 5. MQTTnet 5 has no reconnecting client, so this keeps one: a
/// supervisor task connects (one MQTTnet client per connection, so nothing of an old connection — an acknowledgement,
/// a packet id — can reach a new one), subscribes, waits until the connection ends and connects again, with
/// exponential backoff and jitter through Polly (a broker restart must not make a whole fleet reconnect in lockstep).
/// It caps QoS 1 messages in flight at the broker's receive maximum (MQTTnet does not), and uses 64 KiB socket
/// buffers (MQTTnet's 8 KiB stall a subscriber in a burst). Thread-safe.
/// </summary>
public sealed partial class MqttConnection : IMqttConnection
{
    private readonly MqttConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly MqttClientFactory _factory = new();
    private readonly Channel<MqttReceivedMessage> _received;
    private readonly ResiliencePipeline _reconnect;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly List<MqttSubscription> _subscriptions = [];
    private readonly Dictionary<string, int> _subscribeResults = new(StringComparer.Ordinal);
    private readonly X509Certificate2Collection? _trust;
    private readonly X509Certificate2? _clientCertificate;
    private Session? _session;
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MqttConnectionState _state = MqttConnectionState.Disconnected;
    private string? _lastError = "not connected yet";
    private long _connects;
    private long _losses;
    private int _failuresInARow;
    private Task? _supervisor;
    private int _stopped;

    public MqttConnection(MqttConnectionOptions options, ILogger logger, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrEmpty(options.Host);
        ArgumentException.ThrowIfNullOrEmpty(options.ClientId);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Port, 65535);
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _subscriptions.AddRange(options.Subscriptions);
        _received = Channel.CreateBounded<MqttReceivedMessage>(new BoundedChannelOptions(Math.Max(1, options.ReceiveBuffer))
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _reconnect = ReconnectPolicy.Create(options, _time, () => _stopping.IsCancellationRequested);
        (_trust, _clientCertificate) = LoadTls(options);
    }

    public string ClientId => _options.ClientId;

    public MqttConnectionState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Connected, and the connection not seen ending (the state follows a moment later).</summary>
    public bool IsConnected => Volatile.Read(ref _session) is { IsLost: false };

    public string? LastError
    {
        get
        {
            lock (_lock)
            {
                return _lastError;
            }
        }
    }

    public long Connects => Interlocked.Read(ref _connects);

    public long ConnectionLosses => Interlocked.Read(ref _losses);

    public int PendingPublishes => Volatile.Read(ref _session)?.Pending ?? 0;

    /// <summary>QoS 1 publishes allowed in flight on the current connection (ours and the broker's receive maximum); 0 while disconnected.</summary>
    public int PublishWindow => Volatile.Read(ref _session)?.WindowSize ?? 0;

    public ChannelReader<MqttReceivedMessage> Messages => _received.Reader;

    public event Action<MqttConnectionEvent>? ConnectionChanged;

    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopped) != 0, this);
        lock (_lock)
        {
            if (_supervisor is not null)
            {
                throw new InvalidOperationException("the connection was already started");
            }

            _supervisor = Task.Run(SuperviseAsync);
        }
    }

    public Task WaitConnectedAsync(CancellationToken cancellationToken = default)
    {
        Task connected;
        lock (_lock)
        {
            connected = _connected.Task;
        }

        return connected.WaitAsync(cancellationToken);
    }

    public Task<PublishResult> PublishAsync(MqttMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.Topic);
        if (message.Qos is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(message), message.Qos, "QoS 0 and 1 are supported");
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopped) != 0, this);
        var session = Volatile.Read(ref _session);
        if (session is null || session.IsLost)
        {
            return Task.FromException<PublishResult>(new MqttNotConnectedException(
                $"publish to {message.Topic} failed: not connected to {_options.Host}:{_options.Port} ({LastError}); nothing is queued while disconnected"));
        }

        return message.Qos == 0 ? PublishAtMostOnceAsync(session, message, cancellationToken) : PublishAtLeastOnceAsync(session, message, cancellationToken);
    }

    public async Task<SubscribeResult> SubscribeAsync(string filter, int qos = 1, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(filter);
        if (qos is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(qos), qos, "QoS 0 and 1 are supported");
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopped) != 0, this);
        Session? session;
        lock (_lock)
        {
            // Registered first: a connection published after this lock is released subscribes it too.
            _subscriptions.Add(new MqttSubscription(filter, qos));
            session = _session;
        }

        while (true)
        {
            if (session is not null)
            {
                try
                {
                    var codes = await SubscribeOnAsync(session, [new MqttSubscription(filter, qos)], cancellationToken).ConfigureAwait(false);
                    return new SubscribeResult(filter, codes[0]);
                }
                catch (MqttConnectionLostException)
                {
                    // the next connection subscribes it
                }
            }

            await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                if (_subscribeResults.TryGetValue(filter, out var code))
                {
                    return new SubscribeResult(filter, code);
                }

                session = _session;
            }
        }
    }

    public async ValueTask AcknowledgeAsync(MqttReceivedMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.AckState is not PendingAck ack || Interlocked.Exchange(ref ack.Done, 1) != 0)
        {
            return;
        }

        // A packet id belongs to its connection: acknowledging it on a later one could acknowledge another message.
        if (ack.Session.IsLost || !ReferenceEquals(Volatile.Read(ref _session), ack.Session))
        {
            return;
        }

        try
        {
            await ack.Args.AcknowledgeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The connection is going away; the broker sends the message again on the next one (persistent session).
            LogAckFailed(_logger, message.Topic, ex.Message);
        }
    }

    public async Task DisconnectAsync(bool publishWill = false, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        Task? supervisor;
        lock (_lock)
        {
            supervisor = _supervisor;
        }

        if (supervisor is not null)
        {
            await supervisor.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        Session? session;
        bool wasConnected;
        lock (_lock)
        {
            session = _session;
            _session = null;
            wasConnected = _state == MqttConnectionState.Connected;
            _state = MqttConnectionState.Disconnected;
            _lastError = "disconnected";
            _connected.TrySetCanceled(CancellationToken.None);
        }

        if (session is not null)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
                await session.Client.DisconnectAsync(new MqttClientDisconnectOptions
                {
                    Reason = publishWill ? MqttClientDisconnectOptionsReason.DisconnectWithWillMessage : MqttClientDisconnectOptionsReason.NormalDisconnection,
                }, linked.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogDisconnectFailed(_logger, ex.Message);
            }
            finally
            {
                session.End("disconnected");
                session.Dispose();
            }
        }

        _received.Writer.TryComplete();
        if (wasConnected)
        {
            Raise(new MqttConnectionEvent(MqttConnectionState.Disconnected, "disconnected"));
        }
    }

    /// <summary>Disconnects normally (the broker drops the Last Will) and releases everything.</summary>
    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync().ConfigureAwait(false);
        _stopping.Dispose();
        _clientCertificate?.Dispose();
        if (_trust is not null)
        {
            foreach (var certificate in _trust)
            {
                certificate.Dispose();
            }
        }
    }

    private async Task SuperviseAsync()
    {
        var ct = _stopping.Token;
        var first = true;
        while (!ct.IsCancellationRequested)
        {
            Session session;
            try
            {
                if (!first)
                {
                    // Every client of a restarted broker sees the loss at the same moment: spread the first attempts.
                    await Task.Delay(Jitter(_options.ReconnectDelay), _time, ct).ConfigureAwait(false);
                }

                first = false;
                session = await _reconnect.ExecuteAsync(ConnectOnceAsync, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await session.Ended.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return; // DisconnectAsync takes the session over
            }

            OnLost(session);
        }
    }

    private async ValueTask<Session> ConnectOnceAsync(CancellationToken ct)
    {
        var session = new Session(_factory);
        var client = session.Client;
        try
        {
            client.DisconnectedAsync += e =>
            {
                session.End(e.Exception is { } ex ? ex.Message : e.Reason.ToString());
                return Task.CompletedTask;
            };
            client.ApplicationMessageReceivedAsync += e => OnMessageAsync(session, e);

            MqttClientConnectResult result;
            try
            {
                using var timeout = new CancellationTokenSource(_options.OperationTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
                result = await client.ConnectAsync(ClientOptions(), linked.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                var reason = $"connecting to {_options.Host}:{_options.Port} failed: {Describe(ex)}";
                SetFailed(MqttConnectionState.Disconnected, reason);
                if (_failuresInARow++ == 0)
                {
                    LogConnectFailed(_logger, reason);
                }

                throw new MqttException(reason, ex);
            }

            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                var reason = result.ResultCode is MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized
                    ? $"the broker refused the connection: {result.ResultCode} (check the MQTT username and password, or whether the device was revoked)"
                    : $"the broker refused the connection: {result.ResultCode} (0x{(int)result.ResultCode:x2}){(result.ReasonString is { } s ? ": " + s : "")}";
                SetFailed(MqttConnectionState.Refused, reason);
                _failuresInARow++;
                LogRefused(_logger, _options.Host, _options.Port, reason);
                throw new MqttException(reason);
            }

            // 0 or absent means the protocol's maximum; mosquitto announces 20.
            var brokerMaximum = result.ReceiveMaximum is > 0 ? result.ReceiveMaximum.Value : 65535;
            session.SetWindow(Math.Clamp(Math.Min(_options.MaxInflight, brokerMaximum), 1, 65535));
            await SubscribeAllAndGoLiveAsync(session, ct).ConfigureAwait(false);
            return session;
        }
        catch
        {
            session.End("connect failed");
            session.Dispose();
            throw;
        }
    }

    /// <summary>Subscribes every registered filter, then publishes the connection, re-checking for filters registered meanwhile.</summary>
    private async Task SubscribeAllAndGoLiveAsync(Session session, CancellationToken ct)
    {
        List<MqttSubscription> todo;
        int done;
        lock (_lock)
        {
            todo = [.. _subscriptions];
            done = _subscriptions.Count;
        }

        while (true)
        {
            if (todo.Count > 0)
            {
                var codes = await SubscribeOnAsync(session, todo, ct).ConfigureAwait(false);
                for (var i = 0; i < todo.Count; i++)
                {
                    if (codes[i] >= 0x80)
                    {
                        LogSubscribeRefused(_logger, todo[i].Filter, codes[i]);
                    }
                }
            }

            bool wasConnected;
            lock (_lock)
            {
                if (_subscriptions.Count != done)
                {
                    todo = _subscriptions.GetRange(done, _subscriptions.Count - done);
                    done = _subscriptions.Count;
                    continue;
                }

                if (session.IsLost)
                {
                    throw new MqttException($"the connection to {_options.Host}:{_options.Port} was lost while subscribing");
                }

                _session = session;
                wasConnected = _state == MqttConnectionState.Connected;
                _state = MqttConnectionState.Connected;
                _lastError = null;
                _connected.TrySetResult();
            }

            Interlocked.Increment(ref _connects);
            _failuresInARow = 0;
            _ = WatchAsync(session);
            LogConnected(_logger, _options.Host, _options.Port, _options.ClientId, session.WindowSize);
            if (!wasConnected)
            {
                Raise(new MqttConnectionEvent(MqttConnectionState.Connected, $"connected to {_options.Host}:{_options.Port}"));
            }

            return;
        }
    }

    private async Task<int[]> SubscribeOnAsync(Session session, IReadOnlyList<MqttSubscription> subscriptions, CancellationToken ct)
    {
        var options = new MqttClientSubscribeOptions();
        foreach (var s in subscriptions)
        {
            options.TopicFilters.Add(new MqttTopicFilter { Topic = s.Filter, QualityOfServiceLevel = (MqttQualityOfServiceLevel)s.Qos });
        }

        using var timeout = new CancellationTokenSource(_options.OperationTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, session.Lost, timeout.Token);
        MqttClientSubscribeResult result;
        try
        {
            result = await session.Client.SubscribeAsync(options, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            if (timeout.IsCancellationRequested)
            {
                Drop(session, $"no SUBACK within {_options.OperationTimeout.TotalSeconds:0.#} s");
            }

            throw new MqttConnectionLostException($"subscribing to {string.Join(", ", subscriptions.Select(s => s.Filter))} failed: {Describe(ex)}", ex);
        }

        var codes = result.Items.Select(i => (int)i.ResultCode).ToArray();
        lock (_lock)
        {
            for (var i = 0; i < subscriptions.Count && i < codes.Length; i++)
            {
                _subscribeResults[subscriptions[i].Filter] = codes[i];
            }
        }

        return codes;
    }

    private async Task<PublishResult> PublishAtMostOnceAsync(Session session, MqttMessage message, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Lost);
        try
        {
            await session.Client.PublishAsync(ToApplicationMessage(message), linked.Token).ConfigureAwait(false);
            return new PublishResult(0, 0);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw Failure(message, ex, "the QoS 0 message may not have been sent");
        }
    }

    private async Task<PublishResult> PublishAtLeastOnceAsync(Session session, MqttMessage message, CancellationToken cancellationToken)
    {
        // At tens of thousands a second: no timer per publish (the session's watchdog times PUBACKs out), and a linked
        // source only when the caller can cancel.
        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Lost) : null;
        var token = linked?.Token ?? session.Lost;
        try
        {
            await session.Window.WaitAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MqttNotConnectedException($"publish to {message.Topic} failed: the connection to {_options.Host}:{_options.Port} was lost before it was sent");
        }

        if (Interlocked.Increment(ref session.Pending) == 1)
        {
            session.Progress(_time.GetTimestamp());
        }

        try
        {
            var result = await session.Client.PublishAsync(ToApplicationMessage(message), token).ConfigureAwait(false);
            session.Progress(_time.GetTimestamp());
            return new PublishResult(result.PacketIdentifier ?? 0, (int)result.ReasonCode);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw Failure(message, ex, "the broker may or may not have it");
        }
        finally
        {
            Interlocked.Decrement(ref session.Pending);
            session.Window.Release();
        }
    }

    /// <summary>
    /// Keep-alive pings only go out when nothing else does: a steady stream of publishes to a broker that went silent
    /// would wait forever. With PUBACKs owed and none for <see cref="MqttConnectionOptions.OperationTimeout"/>, the
    /// connection counts as dead.
    /// </summary>
    private async Task WatchAsync(Session session)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(session.Lost).ConfigureAwait(false))
            {
                if (Volatile.Read(ref session.Pending) > 0 && _time.GetElapsedTime(session.LastProgress) > _options.OperationTimeout)
                {
                    Drop(session, $"no PUBACK within {_options.OperationTimeout.TotalSeconds:0.#} s");
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the connection ended
        }
    }

    private MqttException Failure(MqttMessage message, Exception ex, string consequence) => ex is MqttClientNotConnectedException
        ? new MqttNotConnectedException($"publish to {message.Topic} failed: not connected to {_options.Host}:{_options.Port}", ex)
        : new MqttConnectionLostException(
            $"publish to {message.Topic} failed: the connection to {_options.Host}:{_options.Port} ended before the broker acknowledged it ({Describe(ex)}); {consequence}", ex);

    private async Task OnMessageAsync(Session session, MqttApplicationMessageReceivedEventArgs e)
    {
        var app = e.ApplicationMessage;
        var message = new MqttReceivedMessage(app.Topic, app.Payload.ToArray(), (int)app.QualityOfServiceLevel, app.Retain, app.Dup);
        if (_options.ManualAcknowledge && app.QualityOfServiceLevel != MqttQualityOfServiceLevel.AtMostOnce)
        {
            e.AutoAcknowledge = false;
            message.AckState = new PendingAck(session, e);
        }

        try
        {
            if (!_received.Writer.TryWrite(message))
            {
                // The consumer is behind: wait (MQTTnet hands over one message at a time; the broker stops at our receive maximum).
                await _received.Writer.WriteAsync(message, session.Lost).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            // Not handed over: leave it unacknowledged, the broker keeps it for a persistent session.
            e.AutoAcknowledge = false;
        }
    }

    private void OnLost(Session session)
    {
        bool stopping;
        lock (_lock)
        {
            if (ReferenceEquals(_session, session))
            {
                _session = null;
            }

            stopping = _stopping.IsCancellationRequested;
            if (!stopping)
            {
                _state = MqttConnectionState.Disconnected;
                _lastError = $"connection to {_options.Host}:{_options.Port} lost: {session.EndReason}";
                if (_connected.Task.IsCompleted)
                {
                    _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

#pragma warning disable IDISP007 // the supervisor owns its sessions and hands each one here when it ends
        session.Dispose();
#pragma warning restore IDISP007
        if (stopping)
        {
            return;
        }

        Interlocked.Increment(ref _losses);
        var reason = $"connection to {_options.Host}:{_options.Port} lost: {session.EndReason}";
        LogLost(_logger, reason);
        Raise(new MqttConnectionEvent(MqttConnectionState.Disconnected, reason));
    }

    private void Drop(Session session, string reason)
    {
        LogDropped(_logger, _options.Host, _options.Port, reason);
        session.End(reason);
    }

    private void SetFailed(MqttConnectionState state, string reason)
    {
        MqttConnectionState previous;
        lock (_lock)
        {
            previous = _state;
            _state = state;
            _lastError = reason;
        }

        if (previous != state || state == MqttConnectionState.Refused)
        {
            Raise(new MqttConnectionEvent(state, reason));
        }
    }

    private void Raise(MqttConnectionEvent e)
    {
        try
        {
            ConnectionChanged?.Invoke(e);
        }
#pragma warning disable CA1031 // a subscriber's bug must not stop the reconnecting
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogHandlerFailed(_logger, ex);
        }
    }

    private MqttClientOptions ClientOptions()
    {
        var tcp = new MqttClientTcpOptions
        {
            RemoteEndpoint = new DnsEndPoint(_options.Host, _options.Port),
            BufferSize = Math.Max(8192, _options.SocketBufferBytes),
            NoDelay = true,
        };
        if (_trust is not null)
        {
            tcp.TlsOptions = new MqttClientTlsOptions
            {
                UseTls = true,
                TargetHost = _options.Host,
                TrustChain = _trust,
                // A private CA publishes no revocation list; the trust anchor is the CA file alone.
                RevocationMode = X509RevocationMode.NoCheck,
                ClientCertificatesProvider = _clientCertificate is null ? null : new DefaultMqttCertificatesProvider([_clientCertificate]),
                CertificateValidationHandler = _options.TlsInsecure
                    ? e => (e.SslPolicyErrors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None
                    : e => e.SslPolicyErrors == SslPolicyErrors.None,
            };
        }

        var o = new MqttClientOptions
        {
            ChannelOptions = tcp,
            ClientId = _options.ClientId,
            ProtocolVersion = MQTTnet.Formatter.MqttProtocolVersion.V500,
            CleanSession = _options.CleanStart,
            SessionExpiryInterval = (uint)Math.Clamp(_options.SessionExpiry.TotalSeconds, 0, uint.MaxValue),
            KeepAlivePeriod = TimeSpan.FromSeconds(Math.Max(5, _options.KeepAliveSeconds)),
            ReceiveMaximum = (ushort)Math.Clamp(_options.ReceiveMaximum, 1, 65535),
            Timeout = _options.OperationTimeout,
        };
        if (_options.Username is not null)
        {
            o.Credentials = new MqttClientCredentials(_options.Username, _options.Password is null ? null : System.Text.Encoding.UTF8.GetBytes(_options.Password));
        }

        if (_options.Will is { } will)
        {
            o.WillTopic = will.Topic;
            o.WillPayload = will.Payload;
            o.WillQualityOfServiceLevel = (MqttQualityOfServiceLevel)will.Qos;
            o.WillRetain = will.Retain;
        }

        return o;
    }

    private static MqttApplicationMessage ToApplicationMessage(MqttMessage message) => new()
    {
        Topic = message.Topic,
        Payload = new ReadOnlySequence<byte>(message.Payload),
        QualityOfServiceLevel = (MqttQualityOfServiceLevel)message.Qos,
        Retain = message.Retain,
    };

    private static (X509Certificate2Collection? Trust, X509Certificate2? Client) LoadTls(MqttConnectionOptions options)
    {
        if (options.CaFile is null)
        {
            return (null, null);
        }

        var trust = new X509Certificate2Collection();
        try
        {
            trust.ImportFromPemFile(options.CaFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new MqttException($"the MQTT CA file {options.CaFile} cannot be read as PEM certificates: {ex.Message}", ex);
        }

        if (trust.Count == 0)
        {
            throw new MqttException($"the MQTT CA file {options.CaFile} holds no PEM certificate");
        }

        if (options.CertFile is null)
        {
            return (trust, null);
        }

        try
        {
            return (trust, X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            foreach (var certificate in trust)
            {
                certificate.Dispose();
            }

            throw new MqttException($"the MQTT client certificate {options.CertFile} (key {options.KeyFile ?? "in the same file"}) cannot be loaded: {ex.Message}", ex);
        }
    }


    private static TimeSpan Jitter(TimeSpan upTo) =>
        TimeSpan.FromMilliseconds(RandomNumberGenerator.GetInt32(0, (int)Math.Clamp(upTo.TotalMilliseconds, 1, int.MaxValue)));

    private static string Describe(Exception ex)
    {
        var inner = ex;
        while (inner.InnerException is not null && inner is MqttCommunicationException or MqttConnectingFailedException or AggregateException)
        {
            inner = inner.InnerException;
        }

        return inner is OperationCanceledException ? "timed out" : inner.Message;
    }

    /// <summary>One connection: its MQTTnet client, its in-flight window, and what ends it.</summary>
    /// <remarks>
    /// Its window and cancellation source are not disposed: neither holds anything unmanaged unless a wait handle is
    /// asked for, and publishes still in flight release into them after the session ended.
    /// </remarks>
#pragma warning disable IDISP002, IDISP003, IDISP006
    private sealed class Session(MqttClientFactory factory) : IDisposable
    {
        private readonly CancellationTokenSource _lost = new();
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _disposed;
        private long _lastProgress;
        public int Pending;

        public IMqttClient Client { get; } = factory.CreateMqttClient();

        /// <summary>Set once connected, before the session is published.</summary>
        public SemaphoreSlim Window { get; private set; } = null!;

        public int WindowSize { get; private set; }

        /// <summary>Cancelled when the connection ends: fails what waits on it.</summary>
        public CancellationToken Lost => _lost.Token;

        public Task Ended => _ended.Task;

        public bool IsLost => _ended.Task.IsCompleted;

        public string EndReason { get; private set; } = "";

        /// <summary>When a PUBACK last arrived, or the first of the owed publishes went out.</summary>
        public long LastProgress => Volatile.Read(ref _lastProgress);

        public void Progress(long timestamp) => Volatile.Write(ref _lastProgress, timestamp);

        public void SetWindow(int size)
        {
            Window = new SemaphoreSlim(size, size);
            WindowSize = size;
        }

        public void End(string reason)
        {
            lock (_ended)
            {
                if (_ended.Task.IsCompleted)
                {
                    return;
                }

                EndReason = reason;
                _ended.TrySetResult();
            }

            try
            {
                _lost.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // disposed meanwhile
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            End("disposed");
            Client.Dispose();
        }
    }
#pragma warning restore IDISP002, IDISP003, IDISP006

    /// <summary>A received message held for <see cref="AcknowledgeAsync"/>, tied to the connection it came over.</summary>
    private sealed class PendingAck(Session session, MqttApplicationMessageReceivedEventArgs args)
    {
        public int Done;

        public Session Session { get; } = session;

        public MqttApplicationMessageReceivedEventArgs Args { get; } = args;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} as {ClientId} (up to {Window} QoS 1 messages in flight)")]
    private static partial void LogConnected(ILogger logger, string host, int port, string clientId, int window);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT {Host}:{Port}: {Reason}; retrying with backoff")]
    private static partial void LogRefused(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT: {Reason}; retrying with backoff")]
    private static partial void LogConnectFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT: {Reason}; reconnecting")]
    private static partial void LogLost(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT {Host}:{Port}: {Reason}; dropping the connection")]
    private static partial void LogDropped(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT: the broker refused the subscription to {Filter} (0x{Code:x2})")]
    private static partial void LogSubscribeRefused(ILogger logger, string filter, int code);

    [LoggerMessage(Level = LogLevel.Debug, Message = "MQTT: acknowledging a message on {Topic} failed ({Reason}); the broker sends it again")]
    private static partial void LogAckFailed(ILogger logger, string topic, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "MQTT: the DISCONNECT could not be sent: {Reason}")]
    private static partial void LogDisconnectFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT: a connection-state handler failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception);
}
