using System.Threading.Channels;
using EdgeFleet.Mqtt;

namespace EdgeFleet.Testing;

/// <summary>
/// An in-memory broker for unit tests of code written against <see cref="IMqttConnection"/>: it routes publishes
/// to the fake connections subscribed to them (plain filters, <c>+</c>, <c>#</c>, <c>$share/group/…</c>), keeps
/// retained messages, answers each QoS 1 publish with a PUBACK reason of the test's choosing, and can hold the
/// PUBACKs back, go down and come back, like the real broker does to a connection.
/// </summary>
public sealed class FakeMqttBroker
{
    private readonly Lock _lock = new();
    private readonly List<FakeMqttConnection> _connections = [];
    private readonly List<MqttMessage> _published = [];
    private readonly List<(FakeMqttConnection Connection, TaskCompletionSource<PublishResult> Ack, int Reason, int Id)> _held = [];
    private readonly Dictionary<string, MqttMessage> _retained = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextId;
    private int _peakHeld;

    /// <summary>Whether connections can connect; see <see cref="Stop"/> and <see cref="Start"/>.</summary>
    public bool IsUp { get; private set; } = true;

    /// <summary>When true, QoS 1 publishes wait for <see cref="ReleaseAcks"/> instead of being acknowledged at once.</summary>
    public bool HoldAcks { get; set; }

    /// <summary>The PUBACK reason code for a publish (default 0, success; ≥ 0x80 refuses it and nothing is routed).</summary>
    public Func<MqttMessage, int> ReasonCode { get; set; } = _ => 0;

    /// <summary>Every publish the broker received while up, refused ones included, in arrival order.</summary>
    public IReadOnlyList<MqttMessage> Published
    {
        get
        {
            lock (_lock)
            {
                return [.. _published];
            }
        }
    }

    /// <summary>QoS 1 publishes waiting for their PUBACK (with <see cref="HoldAcks"/>).</summary>
    public int HeldAcks
    {
        get
        {
            lock (_lock)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>The most PUBACKs held back at one time.</summary>
    public int PeakHeldAcks
    {
        get
        {
            lock (_lock)
            {
                return _peakHeld;
            }
        }
    }

    public FakeMqttConnection CreateConnection(string clientId, MqttMessage? will = null, bool manualAcknowledge = false, params string[] subscriptions)
    {
        var connection = new FakeMqttConnection(this, clientId, will, manualAcknowledge, subscriptions);
        lock (_lock)
        {
            _connections.Add(connection);
        }

        return connection;
    }

    /// <summary>Sends the held PUBACKs, oldest first; returns how many.</summary>
    public int ReleaseAcks(int max = int.MaxValue)
    {
        List<(TaskCompletionSource<PublishResult> Ack, int Reason, int Id)> released;
        lock (_lock)
        {
            var n = Math.Min(max, _held.Count);
            released = [.. _held.Take(n).Select(h => (h.Ack, h.Reason, h.Id))];
            _held.RemoveRange(0, n);
        }

        foreach (var (ack, reason, id) in released)
        {
            ack.TrySetResult(new PublishResult(id, reason));
        }

        Changed();
        return released.Count;
    }

    /// <summary>The broker goes away: every connection is lost (unacknowledged publishes fail), new ones are refused.</summary>
    public void Stop()
    {
        FakeMqttConnection[] connections;
        lock (_lock)
        {
            IsUp = false;
            connections = [.. _connections];
        }

        foreach (var connection in connections)
        {
            connection.Lose("the broker went away");
        }

        Changed();
    }

    /// <summary>The broker is back: every started connection reconnects (and subscribes again).</summary>
    public void Start()
    {
        FakeMqttConnection[] connections;
        lock (_lock)
        {
            IsUp = true;
            connections = [.. _connections];
        }

        foreach (var connection in connections)
        {
            connection.TryConnect();
        }

        Changed();
    }

    /// <summary>Completes when <paramref name="condition"/> holds, re-checked after every publish, PUBACK and connection change.</summary>
    public async Task WaitUntilAsync(Func<FakeMqttBroker, bool> condition, string what, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                changed = _changed.Task;
            }

            if (condition(this))
            {
                return;
            }

            try
            {
                await changed.WaitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the fake broker never saw {what}; published: {Published.Count}, held PUBACKs: {HeldAcks}");
            }
        }
    }

    internal Task<PublishResult> Publish(FakeMqttConnection from, MqttMessage message)
    {
        int reason;
        int id;
        TaskCompletionSource<PublishResult>? held = null;
        lock (_lock)
        {
            _published.Add(message);
            reason = message.Qos == 0 ? 0 : ReasonCode(message);
            id = ++_nextId;
            if (message.Qos == 1 && HoldAcks)
            {
                held = new TaskCompletionSource<PublishResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                _held.Add((from, held, reason, id));
                _peakHeld = Math.Max(_peakHeld, _held.Count);
            }

            if (reason < 0x80 && message.Retain)
            {
                _retained[message.Topic] = message;
            }
        }

        if (reason < 0x80)
        {
            Route(message);
        }

        Changed();
        return held?.Task ?? Task.FromResult(new PublishResult(id, reason));
    }

    internal void Route(MqttMessage message)
    {
        FakeMqttConnection[] connections;
        lock (_lock)
        {
            connections = [.. _connections];
        }

        foreach (var connection in connections)
        {
            connection.Deliver(message, retained: false);
        }
    }

    internal IReadOnlyList<MqttMessage> Retained(string filter)
    {
        lock (_lock)
        {
            return [.. _retained.Values.Where(m => Matches(filter, m.Topic))];
        }
    }

    /// <summary>Fails the held PUBACKs of a connection that was lost.</summary>
    internal void FailHeld(FakeMqttConnection connection, string reason)
    {
        List<TaskCompletionSource<PublishResult>> failed;
        lock (_lock)
        {
            failed = [.. _held.Where(h => h.Connection == connection).Select(h => h.Ack)];
            _held.RemoveAll(h => h.Connection == connection);
        }

        foreach (var ack in failed)
        {
            ack.TrySetException(new MqttConnectionLostException($"connection lost before the PUBACK: {reason}"));
        }
    }

    internal void Changed()
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>MQTT topic filter matching, with <c>$share/group/</c> stripped.</summary>
    public static bool Matches(string filter, string topic)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(topic);
        if (filter.StartsWith("$share/", StringComparison.Ordinal))
        {
            filter = filter[(filter.IndexOf('/', 7) + 1)..];
        }

        var f = filter.Split('/');
        var t = topic.Split('/');
        for (var i = 0; i < f.Length; i++)
        {
            if (f[i] == "#")
            {
                return true;
            }

            if (i >= t.Length || (f[i] != "+" && f[i] != t[i]))
            {
                return false;
            }
        }

        return f.Length == t.Length;
    }
}

/// <summary>A connection to a <see cref="FakeMqttBroker"/>.</summary>
public sealed class FakeMqttConnection : IMqttConnection
{
    private readonly FakeMqttBroker _broker;
    private readonly MqttMessage? _will;
    private readonly bool _manualAcknowledge;
    private readonly Lock _lock = new();
    private readonly List<string> _filters;
    private readonly Channel<MqttReceivedMessage> _received = Channel.CreateUnbounded<MqttReceivedMessage>();
    private readonly HashSet<MqttReceivedMessage> _unacknowledged = [];
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MqttConnectionState _state = MqttConnectionState.Disconnected;
    private string? _lastError = "not connected yet";
    private bool _started;
    private bool _stopped;
    private long _connects;
    private long _losses;

    internal FakeMqttConnection(FakeMqttBroker broker, string clientId, MqttMessage? will, bool manualAcknowledge, string[] subscriptions)
    {
        _broker = broker;
        ClientId = clientId;
        _will = will;
        _manualAcknowledge = manualAcknowledge;
        _filters = [.. subscriptions];
    }

    public string ClientId { get; }

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

    public bool IsConnected => State == MqttConnectionState.Connected;

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

    public int PendingPublishes => 0;

    /// <summary>Messages received with manual acknowledgement and not acknowledged yet.</summary>
    public int Unacknowledged
    {
        get
        {
            lock (_lock)
            {
                return _unacknowledged.Count;
            }
        }
    }

    public ChannelReader<MqttReceivedMessage> Messages => _received.Reader;

    public event Action<MqttConnectionEvent>? ConnectionChanged;

    public void Start()
    {
        lock (_lock)
        {
            if (_started)
            {
                throw new InvalidOperationException("the connection was already started");
            }

            _started = true;
        }

        TryConnect();
    }

    public Task WaitConnectedAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return _connected.Task.WaitAsync(cancellationToken);
        }
    }

    public Task<PublishResult> PublishAsync(MqttMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!IsConnected)
        {
            return Task.FromException<PublishResult>(new MqttNotConnectedException($"publish to {message.Topic} failed: not connected (fake)"));
        }

        return _broker.Publish(this, message).WaitAsync(cancellationToken);
    }

    public Task<SubscribeResult> SubscribeAsync(string filter, int qos = 1, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _filters.Add(filter);
        }

        if (IsConnected)
        {
            DeliverRetained(filter);
        }

        return WaitConnectedAsync(cancellationToken).ContinueWith(_ => new SubscribeResult(filter, qos), cancellationToken,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    public ValueTask AcknowledgeAsync(MqttReceivedMessage message, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _unacknowledged.Remove(message);
        }

        _broker.Changed();
        return ValueTask.CompletedTask;
    }

    public Task DisconnectAsync(bool publishWill = false, CancellationToken cancellationToken = default)
    {
        bool wasConnected;
        lock (_lock)
        {
            if (_stopped)
            {
                return Task.CompletedTask;
            }

            _stopped = true;
            wasConnected = _state == MqttConnectionState.Connected;
            _state = MqttConnectionState.Disconnected;
            _lastError = "disconnected";
            _connected.TrySetCanceled(CancellationToken.None);
        }

        _broker.FailHeld(this, "disconnected");
        if (wasConnected && publishWill && _will is not null)
        {
            _broker.Route(_will);
        }

        _received.Writer.TryComplete();
        if (wasConnected)
        {
            ConnectionChanged?.Invoke(new MqttConnectionEvent(MqttConnectionState.Disconnected, "disconnected"));
        }

        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await DisconnectAsync().ConfigureAwait(false);

    /// <summary>The connection drops (the broker stays up) and comes back at once, as after a network blip.</summary>
    public void Blip()
    {
        Lose("network blip");
        TryConnect();
    }

    internal void TryConnect()
    {
        string[] filters;
        lock (_lock)
        {
            if (!_started || _stopped || _state == MqttConnectionState.Connected || !_broker.IsUp)
            {
                return;
            }

            _state = MqttConnectionState.Connected;
            _lastError = null;
            _connected.TrySetResult();
            filters = [.. _filters];
        }

        Interlocked.Increment(ref _connects);
        foreach (var filter in filters)
        {
            DeliverRetained(filter);
        }

        ConnectionChanged?.Invoke(new MqttConnectionEvent(MqttConnectionState.Connected, "connected (fake)"));
        _broker.Changed();
    }

    internal void Lose(string reason)
    {
        lock (_lock)
        {
            if (_state != MqttConnectionState.Connected)
            {
                return;
            }

            _state = MqttConnectionState.Disconnected;
            _lastError = reason;
            _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        Interlocked.Increment(ref _losses);
        _broker.FailHeld(this, reason);
        if (_will is not null)
        {
            _broker.Route(_will);
        }

        ConnectionChanged?.Invoke(new MqttConnectionEvent(MqttConnectionState.Disconnected, reason));
        _broker.Changed();
    }

    internal void Deliver(MqttMessage message, bool retained)
    {
        bool matches;
        lock (_lock)
        {
            matches = _state == MqttConnectionState.Connected && _filters.Exists(f => FakeMqttBroker.Matches(f, message.Topic));
        }

        if (!matches)
        {
            return;
        }

        var received = new MqttReceivedMessage(message.Topic, message.Payload, message.Qos, retained, duplicate: false);
        if (_manualAcknowledge && message.Qos > 0)
        {
            lock (_lock)
            {
                _unacknowledged.Add(received);
            }
        }

        _received.Writer.TryWrite(received);
    }

    private void DeliverRetained(string filter)
    {
        foreach (var message in _broker.Retained(filter))
        {
            Deliver(message, retained: true);
        }
    }
}
