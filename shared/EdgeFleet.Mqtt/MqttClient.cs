using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using EdgeFleet.Mqtt.Native;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Mqtt;

/// <summary>
/// An MQTT 5 client over libmosquitto. The library's own network thread does the I/O and reconnects with capped
/// backoff; this class turns its callbacks into awaitable publishes (completed on PUBACK), a channel of received
/// messages and connection events, none of which run user code on the network thread. Subscriptions are
/// re-issued on every connect. Thread-safe.
/// </summary>
public sealed partial class MqttClient : IAsyncDisposable
{
    private const int MaxEarlyAcks = 10_000;

    private readonly MqttClientOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<MqttMessage> _received;
    private readonly Lock _pendingLock = new();
    private readonly Dictionary<int, TaskCompletionSource<PublishResult>> _pending = [];
    private readonly Dictionary<int, int> _earlyAcks = [];
    private readonly HashSet<int> _pendingQos0 = [];
    private readonly Lock _subscriptionLock = new();
    private readonly Dictionary<string, int> _subscriptions = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _restartSignal = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _stateLock = new();
    private GCHandle _self;
    private nint _mosq;
    private Task? _supervisor;
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MqttConnectionState _state = MqttConnectionState.Disconnected;
    private string? _lastError;
    private long _connects;
    private long _connectionLosses;
    private bool _disposed;

    private MqttClient(MqttClientOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _received = Channel.CreateBounded<MqttMessage>(new BoundedChannelOptions(Math.Max(1, options.ReceiveBuffer))
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Received messages, in arrival order.</summary>
    public ChannelReader<MqttMessage> Messages => _received.Reader;

    public bool IsConnected
    {
        get
        {
            lock (_stateLock)
            {
                return _state == MqttConnectionState.Connected;
            }
        }
    }

    public MqttConnectionState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>Why the last connection attempt failed or the connection was lost; null while connected.</summary>
    public string? LastError
    {
        get
        {
            lock (_stateLock)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Successful connections (reconnects included).</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Connections lost without a disconnect of ours.</summary>
    public long ConnectionLosses => Interlocked.Read(ref _connectionLosses);

    /// <summary>QoS 1 publishes sent and not yet acknowledged.</summary>
    public int PendingPublishes
    {
        get
        {
            lock (_pendingLock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Raised (on the thread pool) when the connection comes up, goes down or is refused.</summary>
    public event Action<MqttConnectionEvent>? ConnectionChanged;

    /// <summary>Creates a client and starts connecting in the background (it keeps retrying until disposed).</summary>
    /// <remarks>
    /// The connection may come up before this returns: to see the first <see cref="ConnectionChanged"/>, use
    /// <see cref="Create"/>, attach the handlers and subscriptions, then <see cref="Connect"/>.
    /// </remarks>
    /// <exception cref="MqttLibraryNotFoundException">libmosquitto is not installed.</exception>
    public static MqttClient Start(MqttClientOptions options, ILogger logger)
    {
        var client = Create(options, logger);
        try
        {
            client.Connect();
            return client;
        }
        catch
        {
            client.DestroyNative();
            throw;
        }
    }

    /// <summary>Creates a client that does not connect until <see cref="Connect"/> is called.</summary>
    /// <exception cref="MqttLibraryNotFoundException">libmosquitto is not installed.</exception>
    public static MqttClient Create(MqttClientOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        MosquittoLibrary.EnsureLoaded();
        var client = new MqttClient(options, logger);
        try
        {
            client.Create();
            return client;
        }
        catch
        {
            client.DestroyNative();
            throw;
        }
    }

    /// <summary>Starts the network thread and the first connection attempt; later attempts follow on their own.</summary>
    public void Connect()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_supervisor is not null)
        {
            throw new InvalidOperationException("the client is already connecting");
        }

        StartLoop();
        _supervisor = Task.Run(SuperviseAsync);
    }

    /// <summary>Completes when the client is connected.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken = default)
    {
        Task connected;
        lock (_stateLock)
        {
            connected = _connected.Task;
        }

        return connected.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Publishes a message. The task completes when the broker acknowledges it (QoS 1: PUBACK, with its reason
    /// code) or when it was handed to the socket (QoS 0). A QoS 1 message published while disconnected is kept by
    /// the library and sent after reconnecting; a QoS 0 one fails with <see cref="MqttException"/>.
    /// </summary>
    public Task<PublishResult> PublishAsync(string topic, ReadOnlyMemory<byte> payload, int qos = 1, bool retain = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (qos is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(qos), qos, "QoS 0 and 1 are supported");
        }

        if (qos == 0 && !IsConnected)
        {
            // libmosquitto would queue it on a socket still connecting and drop it silently if that fails.
            throw new MqttException($"publish to {topic} failed: not connected, and QoS 0 messages are not kept while disconnected (use QoS 1)", Mosquitto.ErrNoConn);
        }

        var topicBytes = Utf8(topic);
        var completion = new TaskCompletionSource<PublishResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var rc = PublishNative(topicBytes, payload.Span, qos, retain, out var mid);

        var queued = rc == Mosquitto.ErrSuccess || (rc == Mosquitto.ErrNoConn && qos > 0);
        if (!queued)
        {
            throw new MqttException($"publish to {topic} failed: {Mosquitto.ErrorText(rc)}", rc);
        }

        lock (_pendingLock)
        {
            if (_earlyAcks.Remove(mid, out var reason))
            {
                completion.SetResult(new PublishResult(mid, reason));
            }
            else
            {
                _pending[mid] = completion;
                if (qos == 0)
                {
                    _pendingQos0.Add(mid);
                }
            }
        }

        return completion.Task;
    }

    private unsafe int PublishNative(byte[] topic, ReadOnlySpan<byte> payload, int qos, bool retain, out int mid)
    {
        fixed (byte* t = topic)
        fixed (byte* p = payload)
        {
            return Mosquitto.PublishV5(_mosq, out mid, t, payload.Length, p, qos, retain, 0);
        }
    }

    /// <summary>Subscribes now (if connected) and after every reconnect.</summary>
    public void Subscribe(string filter, int qos = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(filter);
        lock (_subscriptionLock)
        {
            _subscriptions[filter] = qos;
        }

        if (IsConnected)
        {
            var rc = Mosquitto.SubscribeV5(_mosq, out _, filter, qos, 0, 0);
            if (rc != Mosquitto.ErrSuccess && rc != Mosquitto.ErrNoConn)
            {
                throw new MqttException($"subscribe to {filter} failed: {Mosquitto.ErrorText(rc)}", rc);
            }
        }
    }

    /// <summary>Disconnects cleanly (no Last Will) and releases the library's resources.</summary>
    public ValueTask DisposeAsync() => DisposeAsync(publishWill: false);

    /// <summary>
    /// Disconnects and releases everything. With <paramref name="publishWill"/> the broker publishes the Last
    /// Will as if the connection had been lost (MQTT 5 reason 0x04).
    /// </summary>
    public async ValueTask DisposeAsync(bool publishWill)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_supervisor is not null)
        {
            await _supervisor.ConfigureAwait(false);
        }

        if (await StopLoopAsync(publishWill ? Mosquitto.ReasonDisconnectWithWill : 0).ConfigureAwait(false))
        {
            DestroyNative();
        }
        _received.Writer.TryComplete();
        lock (_pendingLock)
        {
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new MqttException("the client was disposed before the broker acknowledged the message"));
            }

            _pending.Clear();
            _pendingQos0.Clear();
        }

        lock (_stateLock)
        {
            _connected.TrySetCanceled();
        }

        _stopping.Dispose();
        _restartSignal.Dispose();
    }

    /// <summary>
    /// Stops the network thread. libmosquitto's loop ends once it sees the "disconnected" state, but a reconnect
    /// already under way overwrites that state (connect sets it back to "new"), and then the loop would run on and
    /// <c>mosquitto_loop_stop</c> would wait forever. So the disconnect is repeated until the thread has ended. If
    /// it still has not ended after the longest reconnect wait plus a margin, the handle is left alive rather than
    /// freed under a running thread, and the caller goes on.
    /// </summary>
    private async Task<bool> StopLoopAsync(int reasonCode)
    {
        Mosquitto.DisconnectV5(_mosq, reasonCode, 0);
        var mosq = _mosq;
        var join = Task.Factory.StartNew(() => Mosquitto.LoopStop(mosq, false), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var limit = _options.MaxReconnectDelay + TimeSpan.FromSeconds(15);
        var waited = Stopwatch.StartNew();
        while (await Task.WhenAny(join, Task.Delay(250)).ConfigureAwait(false) != join)
        {
            if (waited.Elapsed > limit)
            {
                LogStopTimedOut(_logger, (int)limit.TotalSeconds);
                return false;
            }

            Mosquitto.DisconnectV5(_mosq, reasonCode, 0);
        }

        return true;
    }

    private unsafe void Create()
    {
        _self = GCHandle.Alloc(this);
        _mosq = Mosquitto.New(_options.ClientId, _options.CleanSession, GCHandle.ToIntPtr(_self));
        if (_mosq == 0)
        {
            throw new MqttException($"mosquitto_new failed for client id '{_options.ClientId}' (ids may not be empty with a persistent session)");
        }

        Check(Mosquitto.IntOption(_mosq, Mosquitto.OptProtocolVersion, Mosquitto.ProtocolV5), "protocol version");
        Check(Mosquitto.IntOption(_mosq, Mosquitto.OptSendMaximum, Math.Clamp(_options.MaxInflight, 1, 65535)), "send maximum");
        Check(Mosquitto.IntOption(_mosq, Mosquitto.OptTcpNodelay, 1), "TCP_NODELAY");
        if (_options.Username is not null)
        {
            Check(Mosquitto.UsernamePwSet(_mosq, _options.Username, _options.Password), "username/password");
        }

        if (_options.CaFile is not null)
        {
            Check(Mosquitto.TlsSet(_mosq, _options.CaFile, null, _options.CertFile, _options.KeyFile, 0), "TLS files");
            if (_options.TlsInsecure)
            {
                Check(Mosquitto.TlsInsecureSet(_mosq, true), "TLS insecure");
            }
        }

        if (_options.Will is { } will)
        {
            fixed (byte* p = will.Payload)
            {
                Check(Mosquitto.WillSetV5(_mosq, will.Topic, will.Payload.Length, p, will.Qos, will.Retain, 0), "last will");
            }
        }

        Check(Mosquitto.ReconnectDelaySet(_mosq, (uint)Math.Max(1, _options.ReconnectDelay.TotalSeconds),
            (uint)Math.Max(1, _options.MaxReconnectDelay.TotalSeconds), true), "reconnect delay");
        Mosquitto.ConnectV5CallbackSet(_mosq, &OnConnect);
        Mosquitto.DisconnectV5CallbackSet(_mosq, &OnDisconnect);
        Mosquitto.PublishV5CallbackSet(_mosq, &OnPublish);
        Mosquitto.MessageV5CallbackSet(_mosq, &OnMessage);
        Mosquitto.LogCallbackSet(_mosq, &OnLog);
    }

    /// <summary>The loop thread must run before connect_async, or a first failed connect is never retried.</summary>
    private void StartLoop()
    {
        Check(Mosquitto.LoopStart(_mosq), "loop start");
        var rc = Mosquitto.ConnectAsync(_mosq, _options.Host, _options.Port, Math.Max(5, _options.KeepAliveSeconds));
        if (rc != Mosquitto.ErrSuccess)
        {
            // The loop thread retries on its own; only an invalid host/port is final.
            SetState(MqttConnectionState.Disconnected, $"connecting to {_options.Host}:{_options.Port} failed: {Mosquitto.ErrorText(rc)}");
            if (rc == 3 /* MOSQ_ERR_INVAL */)
            {
                throw new MqttException($"cannot connect to {_options.Host}:{_options.Port}: {Mosquitto.ErrorText(rc)}", rc);
            }
        }
    }

    /// <summary>
    /// The library's loop thread ends for good when an MQTT 5 broker refuses the connection (bad credentials);
    /// this restarts it with backoff so a fixed password file or ACL is picked up without restarting the agent.
    /// </summary>
    private async Task SuperviseAsync()
    {
        var delay = _options.ReconnectDelay;
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _restartSignal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxReconnectDelay.Ticks));
            Mosquitto.LoopStop(_mosq, false); // the thread already ended; this joins it and resets the state
            try
            {
                StartLoop();
            }
            catch (MqttException ex)
            {
                LogRestartFailed(_logger, ex.Message);
            }
        }
    }

    private void SetState(MqttConnectionState state, string reason)
    {
        MqttConnectionState previous;
        lock (_stateLock)
        {
            previous = _state;
            _state = state;
            _lastError = state == MqttConnectionState.Connected ? null : reason;
            if (state == MqttConnectionState.Connected)
            {
                _connected.TrySetResult();
            }
            else if (_connected.Task.IsCompleted)
            {
                _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        if (previous != state || state == MqttConnectionState.Refused)
        {
            var handler = ConnectionChanged;
            if (handler is not null)
            {
                var e = new MqttConnectionEvent(state, reason);
                ThreadPool.QueueUserWorkItem(static s => s.handler(s.e), (handler, e), preferLocal: false);
            }
        }
    }

    private void HandleConnect(int rc)
    {
        if (rc == 0)
        {
            Interlocked.Increment(ref _connects);
            KeyValuePair<string, int>[] subscriptions;
            lock (_subscriptionLock)
            {
                subscriptions = [.. _subscriptions];
            }

            foreach (var (filter, qos) in subscriptions)
            {
                Mosquitto.SubscribeV5(_mosq, out _, filter, qos, 0, 0);
            }

            SetState(MqttConnectionState.Connected, $"connected to {_options.Host}:{_options.Port}");
            LogConnected(_logger, _options.Host, _options.Port, _options.ClientId);
            return;
        }

        var reason = rc is 0x86 or 0x87 or 4 or 5
            ? $"the broker refused the connection: {Mosquitto.ReasonText(rc)} (check the MQTT username and password, or whether the device was revoked)"
            : $"the broker refused the connection: {Mosquitto.ReasonText(rc)} ({rc})";
        SetState(MqttConnectionState.Refused, reason);
        LogRefused(_logger, _options.Host, _options.Port, reason);
        if (rc >= 0x80)
        {
            _restartSignal.Release(); // MQTT 5 refusals end libmosquitto's loop thread
        }
    }

    private void HandleDisconnect(int rc)
    {
        FailUnsentQos0();
        if (rc == 0 || _disposed)
        {
            SetState(MqttConnectionState.Disconnected, "disconnected");
            return;
        }

        if (State == MqttConnectionState.Refused)
        {
            return; // already reported by the CONNACK
        }

        Interlocked.Increment(ref _connectionLosses);
        var reason = $"connection to {_options.Host}:{_options.Port} lost: {Mosquitto.ErrorText(rc)}";
        SetState(MqttConnectionState.Disconnected, reason);
        LogLost(_logger, reason);
    }

    /// <summary>QoS 0 messages still queued when the connection goes are dropped by the library without a callback.</summary>
    private void FailUnsentQos0()
    {
        List<TaskCompletionSource<PublishResult>> unsent = [];
        lock (_pendingLock)
        {
            foreach (var mid in _pendingQos0)
            {
                if (_pending.Remove(mid, out var completion))
                {
                    unsent.Add(completion);
                }
            }

            _pendingQos0.Clear();
        }

        foreach (var completion in unsent)
        {
            completion.TrySetException(new MqttException("the connection was lost before the QoS 0 message was sent", Mosquitto.ErrConnLost));
        }
    }

    private void HandlePublish(int mid, int reasonCode)
    {
        TaskCompletionSource<PublishResult>? completion;
        lock (_pendingLock)
        {
            _pendingQos0.Remove(mid);
            if (!_pending.Remove(mid, out completion))
            {
                if (_earlyAcks.Count >= MaxEarlyAcks)
                {
                    _earlyAcks.Clear();
                }

                _earlyAcks[mid] = reasonCode; // acknowledged before PublishAsync registered it
                return;
            }
        }

        completion.TrySetResult(new PublishResult(mid, reasonCode));
    }

    private unsafe void HandleMessage(MosquittoMessage* message)
    {
        var topic = Marshal.PtrToStringUTF8((nint)message->Topic) ?? "";
        var payload = message->PayloadLength <= 0 ? [] : new ReadOnlySpan<byte>(message->Payload, message->PayloadLength).ToArray();
        var item = new MqttMessage(topic, payload, message->Qos, message->Retain != 0);
        while (!_received.Writer.TryWrite(item))
        {
            if (_disposed || _stopping.IsCancellationRequested)
            {
                return;
            }

            Thread.Sleep(1); // consumer behind: hold the network thread, the broker queues for us
        }
    }

    private void DestroyNative()
    {
        if (_mosq != 0)
        {
            Mosquitto.Destroy(_mosq);
            _mosq = 0;
        }

        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }

    private void Check(int rc, string what)
    {
        if (rc != Mosquitto.ErrSuccess)
        {
            throw new MqttException($"MQTT client setup ({what}) failed: {Mosquitto.ErrorText(rc)}", rc);
        }
    }

    private static byte[] Utf8(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    private static MqttClient? From(nint obj) => obj == 0 ? null : GCHandle.FromIntPtr(obj).Target as MqttClient;

    // Callbacks run on libmosquitto's thread. An exception escaping them would end the process: catch everything.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnConnect(nint mosq, nint obj, int rc, int flags, nint properties)
    {
        try
        {
            From(obj)?.HandleConnect(rc);
        }
        catch (Exception ex)
        {
            Fatal(obj, ex);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnDisconnect(nint mosq, nint obj, int rc, nint properties)
    {
        try
        {
            From(obj)?.HandleDisconnect(rc);
        }
        catch (Exception ex)
        {
            Fatal(obj, ex);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnPublish(nint mosq, nint obj, int mid, int reasonCode, nint properties)
    {
        try
        {
            From(obj)?.HandlePublish(mid, reasonCode);
        }
        catch (Exception ex)
        {
            Fatal(obj, ex);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe void OnMessage(nint mosq, nint obj, MosquittoMessage* message, nint properties)
    {
        try
        {
            From(obj)?.HandleMessage(message);
        }
        catch (Exception ex)
        {
            Fatal(obj, ex);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe void OnLog(nint mosq, nint obj, int level, byte* text)
    {
        try
        {
            if ((level & 0x0C) != 0 && From(obj) is { } client) // MOSQ_LOG_WARNING | MOSQ_LOG_ERR
            {
                LogLibrary(client._logger, Marshal.PtrToStringUTF8((nint)text) ?? "");
            }
        }
        catch (Exception ex)
        {
            Fatal(obj, ex);
        }
    }

    private static void Fatal(nint obj, Exception ex)
    {
        try
        {
            if (From(obj) is { } client)
            {
                LogCallbackFailed(client._logger, ex);
            }
        }
        catch (Exception)
        {
            // nothing else can be done on the network thread
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} as {ClientId}")]
    private static partial void LogConnected(ILogger logger, string host, int port, string clientId);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT {Host}:{Port}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT: {Reason}; reconnecting")]
    private static partial void LogLost(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "libmosquitto: {Text}")]
    private static partial void LogLibrary(ILogger logger, string text);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT: restarting the network loop failed: {Reason}")]
    private static partial void LogRestartFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT: the network thread did not stop within {Seconds} s; leaving it behind")]
    private static partial void LogStopTimedOut(ILogger logger, int seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT: a callback failed")]
    private static partial void LogCallbackFailed(ILogger logger, Exception exception);
}
