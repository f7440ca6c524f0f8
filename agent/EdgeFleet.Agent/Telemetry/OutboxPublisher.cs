using EdgeFleet.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>
/// Publishes the outbox in sequence order at QoS 1 with a bounded number in flight and deletes each row only when the
/// broker has acknowledged it. The connection queues nothing while it is down: a publish that fails (not connected,
/// or the connection lost before its PUBACK) puts the read position back, so the row goes out again once the
/// connection is back. A row not acknowledged within <see cref="ResendAfter"/> is sent again as well. Either way a
/// duplicate at worst, which the control plane's (deviceId, seq) de-duplication removes. A row the broker refuses
/// (PUBACK ≥ 0x80, e.g. not allowed by the ACL) is dropped and counted: sending it again cannot help. After a restart
/// everything left in the outbox is sent again from the oldest.
/// </summary>
public sealed partial class OutboxPublisher : IDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private readonly Outbox _outbox;
    private readonly IMqttConnection _connection;
    private readonly ILogger _logger;
    private readonly int _window;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Lock _lock = new();
    private readonly SortedDictionary<long, DateTimeOffset> _inflight = [];
    private readonly HashSet<long> _acked = [];
    private readonly TimeProvider _time;
    private TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _cursor;
    private long _rewind = long.MaxValue;
    private long _published;
    private long _rejected;
    private long _resent;

    public OutboxPublisher(Outbox outbox, IMqttConnection connection, TimeProvider time, ILogger logger, int window = 256)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        _outbox = outbox;
        _connection = connection;
        _time = time;
        _logger = logger;
        _window = window;
        _idle.TrySetResult();
        _connection.ConnectionChanged += OnConnectionChanged;
    }

    /// <summary>A row still unacknowledged this long after it was sent is sent again.</summary>
    public TimeSpan ResendAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Messages acknowledged by the broker since start.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Messages the broker refused (e.g. not allowed by the ACL); deleted, since resending cannot help.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Rows sent again: after a failed publish or a missing PUBACK.</summary>
    public long Resent => Interlocked.Read(ref _resent);

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
                if (_connection.IsConnected)
                {
                    ResendStale();
                    SendMore();
                }

                // The tick only re-checks for stale rows; everything else signals.
                await _wake.WaitAsync(Tick, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or IOException)
            {
                LogPublishFailed(_logger, ex);
                await Task.Delay(Tick, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        FlushAcks();
    }

    /// <summary>Waits up to <paramref name="timeout"/> for everything in flight to be acknowledged (on shutdown).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        Task idle;
        lock (_lock)
        {
            idle = _idle.Task;
        }

        if (_connection.IsConnected)
        {
            await idle.WaitAsync(timeout, _time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        FlushAcks();
    }

    public void Dispose()
    {
        _connection.ConnectionChanged -= OnConnectionChanged;
        _wake.Dispose();
    }

    private void OnConnectionChanged(MqttConnectionEvent e)
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
    }

    private void SendMore()
    {
        while (_connection.IsConnected)
        {
            int free;
            long after;
            lock (_lock)
            {
                // A failure moves the cursor back through _rewind, so a read in progress cannot advance past it again.
                _cursor = Math.Min(_cursor, _rewind);
                _rewind = long.MaxValue;
                free = _window - _inflight.Count;
                after = _cursor;
            }

            if (free <= 0)
            {
                return;
            }

            var rows = _outbox.ReadAfter(after, free);
            if (rows.Count == 0)
            {
                return;
            }

            foreach (var row in rows)
            {
                bool skip;
                lock (_lock)
                {
                    // After the cursor went back, rows still in flight or acknowledged (not yet deleted) come again.
                    skip = _inflight.ContainsKey(row.Seq) || _acked.Contains(row.Seq);
                    _cursor = Math.Max(_cursor, row.Seq);
                }

                if (!skip)
                {
                    Send(row);
                }
            }
        }
    }

    private void Send(OutboxItem item)
    {
        lock (_lock)
        {
            _inflight[item.Seq] = _time.GetUtcNow();
            if (_idle.Task.IsCompleted)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        Task<PublishResult> task;
        try
        {
            task = _connection.PublishAsync(new MqttMessage(item.Topic, item.Payload, Qos: 1));
        }
        catch (MqttException ex)
        {
            task = Task.FromException<PublishResult>(ex);
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
        catch (Exception ex) when (ex is MqttException or ObjectDisposedException)
        {
            // Not acknowledged: the row stays; send it again from the cursor once connected (or at the next start).
            lock (_lock)
            {
                if (_inflight.Remove(seq))
                {
                    _rewind = Math.Min(_rewind, seq - 1);
                    Interlocked.Increment(ref _resent);
                }

                CompleteIdle();
            }

            Wake();
            return;
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
            // Also the PUBACK of a second copy of a row already deleted: deleting it again does nothing.
            _inflight.Remove(seq);
            _acked.Add(seq);
            CompleteIdle();
        }

        Wake();
    }

    private void CompleteIdle()
    {
        if (_inflight.Count == 0)
        {
            _idle.TrySetResult();
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
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
        }

        _outbox.Acknowledge(acked);
        lock (_lock)
        {
            _acked.ExceptWith(acked); // deleted now: a row the cursor reaches again is no longer read
        }
    }

    private void ResendStale()
    {
        var now = _time.GetUtcNow();
        var cutoff = now - ResendAfter;
        HashSet<long> stale;
        lock (_lock)
        {
            stale = [.. _inflight.Where(p => p.Value <= cutoff).Select(p => p.Key)];
        }

        if (stale.Count == 0)
        {
            return;
        }

        foreach (var item in _outbox.ReadAfter(stale.Min() - 1, _window).Where(i => stale.Contains(i.Seq)))
        {
            LogResend(_logger, item.Seq);
            Interlocked.Increment(ref _resent);
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
