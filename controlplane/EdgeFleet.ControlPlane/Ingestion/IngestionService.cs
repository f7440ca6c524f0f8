using System.Collections.Concurrent;
using System.Threading.Channels;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// Subscribes (as a shared subscription, so replicas split the load) to every device's <c>status</c>,
/// <c>telemetry</c>, <c>drift</c> and <c>events</c>, validates each payload (an invalid one is counted against its
/// device and logged, never fatal), and hands valid ones to <see cref="IngestWriter"/> in batches. A batch that fails
/// to write is retried, so a database hiccup delays messages instead of dropping them; while it is retried the
/// bounded queues fill and the broker holds the rest.
/// </summary>
public sealed partial class IngestionService(
    IMqttConnectionFactory connections, IngestWriter writer, IngestMetrics metrics, Database database, IOptions<ControlPlaneOptions> options,
    TimeProvider time, ILogger<IngestionService> logger) : BackgroundService
{
    private static readonly string[] Kinds = [Topics.Status, Topics.Telemetry, Topics.Drift, Topics.Events];
    private readonly Channel<Incoming> _valid = Channel.CreateBounded<Incoming>(new BoundedChannelOptions(50_000) { SingleReader = true, SingleWriter = true });
    private readonly ConcurrentDictionary<string, long> _invalid = new(StringComparer.Ordinal);
    private readonly KnownDevices _known = new(database, time);
    private long _lastInvalidLog = long.MinValue / 2;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.MqttDisabled)
        {
            return;
        }

        await using var client = connections.Create("edgefleet-cp-ingest");
        foreach (var kind in Kinds)
        {
            client.Subscribe(Topics.Shared(connections.ShareGroup, kind), 1);
        }

        client.Connect();
        await Task.WhenAll(ReadAsync(client, stoppingToken), WriteAsync(stoppingToken)).ConfigureAwait(false);
    }

    private async Task ReadAsync(MqttClient client, CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var message in client.Messages.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                metrics.OnReceived();
                if (await ParseAsync(message).ConfigureAwait(false) is { } incoming)
                {
                    await _valid.Writer.WriteAsync(incoming, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        finally
        {
            _valid.Writer.TryComplete();
        }
    }

    private async Task<Incoming?> ParseAsync(MqttMessage message)
    {
        if (!Topics.TryParse(message.Topic, out var deviceId, out var kind))
        {
            Invalid(null, $"topic {message.Topic} is not ef/v1/{{deviceId}}/{{kind}}", "topic");
            return null;
        }

        if (!await _known.ContainsAsync(deviceId).ConfigureAwait(false))
        {
            metrics.OnUnknownDevice();
            return null;
        }

        var now = time.GetUtcNow();
        string? reason;
        Incoming? incoming = kind switch
        {
            Topics.Telemetry => MessageParser.TryParse<TelemetryMessage>(message.Payload, out var t, out reason) ? Make(kind, t, t.Seq) : null,
            Topics.Drift => MessageParser.TryParse<DriftMessage>(message.Payload, out var d, out reason) ? Make(kind, d, d.Seq) : null,
            Topics.Events => MessageParser.TryParse<EventMessage>(message.Payload, out var e, out reason) ? Make(kind, e, e.Seq) : null,
            Topics.Status => MessageParser.TryParse<StatusMessage>(message.Payload, out var s, out reason) ? Make(kind, s, 0) : null,
            _ => Reject($"kind '{kind}' is not ingested", out reason),
        };
        if (incoming is null)
        {
            Invalid(deviceId, $"{message.Topic}: {reason}", "payload");
            return null;
        }

        if (incoming.DeviceId != deviceId)
        {
            Invalid(deviceId, $"{message.Topic}: the payload's deviceId '{incoming.DeviceId}' is not the topic's", "device id mismatch");
            return null;
        }

        if (kind != Topics.Status && incoming.Seq <= 0)
        {
            Invalid(deviceId, $"{message.Topic}: seq must be positive", "seq");
            return null;
        }

        return incoming;

        Incoming Make(string k, IDeviceMessage m, long seq) =>
            new(k, m.DeviceId, seq, m.Ts, m, message.Payload, now);

        static Incoming? Reject(string why, out string reason)
        {
            reason = why;
            return null;
        }
    }

    private void Invalid(string? deviceId, string detail, string reason)
    {
        metrics.OnInvalid(reason);
        if (deviceId is not null)
        {
            _invalid.AddOrUpdate(deviceId, 1, (_, v) => v + 1);
        }

        // At most one log line per second: a device spamming garbage must not flood the log.
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastInvalidLog);
        if (time.GetElapsedTime(last, now) >= TimeSpan.FromSeconds(1) && Interlocked.CompareExchange(ref _lastInvalidLog, now, last) == last)
        {
            LogInvalid(logger, detail);
        }
    }

    private async Task WriteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var batch = new List<Incoming>(o.IngestBatchSize);
        var reader = _valid.Reader;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                using (var window = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    window.CancelAfter(o.IngestBatchMilliseconds);
                    try
                    {
                        while (batch.Count < o.IngestBatchSize)
                        {
                            if (reader.TryRead(out var item))
                            {
                                batch.Add(item);
                            }
                            else if (!await reader.WaitToReadAsync(window.Token).ConfigureAwait(false))
                            {
                                break;
                            }
                        }
                    }
                    catch (OperationCanceledException)
                    {
                        // the batch window closed
                    }
                }

                await FlushAsync(batch, stoppingToken).ConfigureAwait(false);
                batch.Clear();
            }
        }
        finally
        {
            await FlushAsync(batch, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task FlushAsync(List<Incoming> batch, CancellationToken stoppingToken)
    {
        var invalid = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var device in _invalid.Keys)
        {
            if (_invalid.TryRemove(device, out var n))
            {
                invalid[device] = n;
            }
        }

        if (batch.Count == 0 && invalid.Count == 0)
        {
            return;
        }

        var delay = TimeSpan.FromMilliseconds(200);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await writer.WriteAsync(batch, invalid, CancellationToken.None).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or IOException or TimeoutException)
            {
                metrics.OnWriteError();
                LogWriteFailed(logger, batch.Count, attempt, ex);
                if (stoppingToken.IsCancellationRequested && attempt >= 3)
                {
                    return;
                }

                await Task.Delay(delay, CancellationToken.None).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Invalid device message rejected: {Detail}")]
    private static partial void LogInvalid(ILogger logger, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Count} device messages failed (attempt {Attempt}); retrying")]
    private static partial void LogWriteFailed(ILogger logger, int count, int attempt, Exception exception);

    /// <summary>Enrolled device ids, refreshed from the database when an unknown one shows up (at most every 2 s).</summary>
    private sealed class KnownDevices(Database database, TimeProvider time)
    {
        private readonly SemaphoreSlim _refresh = new(1, 1);
        private HashSet<string> _ids = new(StringComparer.Ordinal);
        private long _refreshedAt = long.MinValue / 2;

        public async ValueTask<bool> ContainsAsync(string id)
        {
            if (Volatile.Read(ref _ids).Contains(id))
            {
                return true;
            }

            if (time.GetElapsedTime(Interlocked.Read(ref _refreshedAt)) < TimeSpan.FromSeconds(2))
            {
                return false;
            }

            await _refresh.WaitAsync().ConfigureAwait(false);
            try
            {
                if (time.GetElapsedTime(Interlocked.Read(ref _refreshedAt)) >= TimeSpan.FromSeconds(2))
                {
                    await using var connection = await database.OpenAsync().ConfigureAwait(false);
                    var ids = await connection.QueryAsync("SELECT id FROM devices", r => r.GetString(0)).ConfigureAwait(false);
                    Volatile.Write(ref _ids, new HashSet<string>(ids, StringComparer.Ordinal));
                    Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
                }
            }
            finally
            {
                _refresh.Release();
            }

            return Volatile.Read(ref _ids).Contains(id);
        }
    }
}
