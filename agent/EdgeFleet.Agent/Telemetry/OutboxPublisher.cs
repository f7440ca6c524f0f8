using EdgeFleet.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>
/// Publishes the outbox in sequence order at QoS 1 with a bounded number in flight and deletes each row when the
/// broker acknowledges it. Rows sent before a connection loss stay with libmosquitto, which resends them after
/// reconnecting; a row not acknowledged within <see cref="ResendAfter"/> of being connected is sent again (a
/// duplicate at worst, removed by the control plane's (deviceId, seq) de-duplication). After a restart everything
/// left in the outbox is sent again from the oldest.
/// </summary>
public sealed partial class OutboxPublisher
{
    private readonly Outbox _outbox;
    private readonly MqttClient _client;
    private readonly ILogger _logger;
    private readonly int _window;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Lock _lock = new();
    private readonly SortedDictionary<long, DateTimeOffset> _inflight = [];
    private readonly List<long> _acked = [];
    private readonly TimeProvider _time;
    private long _lastSent;
    private long _published;
    private long _rejected;

    public OutboxPublisher(Outbox outbox, MqttClient client, TimeProvider time, ILogger logger, int window = 256)
    {
        _outbox = outbox;
        _client = client;
        _time = time;
        _logger = logger;
        _window = window;
        _client.ConnectionChanged += e =>
        {
            if (e.State == MqttConnectionState.Connected)
            {
                RestartResendClock(); // libmosquitto resends what was in flight; give it time before we do
            }

            Signal();
        };
    }

    public TimeSpan ResendAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Messages acknowledged by the broker since start.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Messages the broker refused (e.g. not allowed by the ACL); deleted, since resending cannot help.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return _inflight.Count;
            }
        }
    }

    /// <summary>New rows are in the outbox.</summary>
    public void Signal() => _wake.Release();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                FlushAcks();
                if (_client.IsConnected)
                {
                    ResendStale();
                    SendMore();
                }

                await _wake.WaitAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex) when (ex is MqttException or Microsoft.Data.Sqlite.SqliteException or IOException)
            {
                LogPublishFailed(_logger, ex);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
        }

        FlushAcks();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for everything in flight to be acknowledged (on shutdown).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var deadline = _time.GetUtcNow() + timeout;
        while (InFlight > 0 && _client.IsConnected && _time.GetUtcNow() < deadline)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }

        FlushAcks();
    }

    private void SendMore()
    {
        int free;
        long after;
        lock (_lock)
        {
            free = _window - _inflight.Count;
            after = _lastSent;
        }

        if (free <= 0)
        {
            return;
        }

        foreach (var item in _outbox.ReadAfter(after, free))
        {
            Send(item);
        }
    }

    private void Send(OutboxItem item)
    {
        var task = _client.PublishAsync(item.Topic, item.Payload, qos: 1);
        lock (_lock)
        {
            _inflight[item.Seq] = _time.GetUtcNow();
            _lastSent = Math.Max(_lastSent, item.Seq);
        }

        _ = AwaitAckAsync(item.Seq, task);
    }

    private async Task AwaitAckAsync(long seq, Task<PublishResult> task)
    {
        PublishResult result;
        try
        {
            result = await task.ConfigureAwait(false);
        }
        catch (MqttException)
        {
            return; // the client was disposed: the row stays in the outbox for the next start
        }

        if (!result.Accepted)
        {
            Interlocked.Increment(ref _rejected);
            LogRejected(_logger, seq, result.ReasonCode);
        }
        else
        {
            Interlocked.Increment(ref _published);
        }

        lock (_lock)
        {
            if (_inflight.Remove(seq))
            {
                _acked.Add(seq);
            }
        }

        _wake.Release();
    }

    private void FlushAcks()
    {
        long[] acked;
        lock (_lock)
        {
            if (_acked.Count == 0)
            {
                return;
            }

            acked = [.. _acked];
            _acked.Clear();
        }

        _outbox.Acknowledge(acked);
    }

    private void RestartResendClock()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            foreach (var seq in _inflight.Keys.ToList())
            {
                _inflight[seq] = now;
            }
        }
    }

    private void ResendStale()
    {
        var cutoff = _time.GetUtcNow() - ResendAfter;
        List<long> stale;
        lock (_lock)
        {
            stale = _inflight.Where(p => p.Value < cutoff).Select(p => p.Key).ToList();
        }

        if (stale.Count == 0)
        {
            return;
        }

        var first = stale[0];
        foreach (var item in _outbox.ReadAfter(first - 1, stale.Count * 2).Where(i => stale.Contains(i.Seq)))
        {
            LogResend(_logger, item.Seq);
            Send(item);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing from the outbox failed; retrying")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The broker refused message {Seq} (reason 0x{Reason:x2}); it is dropped")]
    private static partial void LogRejected(ILogger logger, long seq, int reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Message {Seq} was not acknowledged in time; sending it again")]
    private static partial void LogResend(ILogger logger, long seq);
}
