using System.Collections.Concurrent;
using System.Threading.Channels;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// Subscribes (with an external broker as a shared subscription, so replicas split the load) to every device's <c>status</c>,
/// <c>telemetry</c>, <c>drift</c> and <c>events</c>, validates each payload (an invalid one is counted against its
/// device and logged, never fatal), and hands valid ones to <see cref="IngestWriter"/> in batches.
/// <para>
/// Nothing is acknowledged to the broker before it is committed: the session is persistent (a stable client id,
/// <c>CleanStart = false</c>, a session expiry) and acknowledgement manual, so a valid message's PUBACK goes out only
/// after the transaction of its batch commits, and an invalid, unknown-device or duplicate one once it has been
/// handled. A control plane that dies mid-batch gets the unacknowledged messages again from the broker (de-duplicated
/// by (device, seq)); while it is away the broker queues for it. A batch that fails to write is retried with jittered
/// backoff, so a database hiccup delays messages instead of dropping them; meanwhile the broker stops at ingestion's
/// receive maximum and holds the rest.
/// </para>
/// </summary>
public sealed partial class IngestionService(
    IMqttConnectionFactory connections, IngestWriter writer, IngestMetrics metrics, Database database, IOptions<ControlPlaneOptions> options,
    TimeProvider time, ILogger<IngestionService> logger) : BackgroundService
{
    private static readonly string[] Kinds = [Topics.Status, Topics.Telemetry, Topics.Drift, Topics.Events];
    private static readonly TimeSpan FinalFlushGrace = TimeSpan.FromSeconds(10);
    private readonly Channel<Pending> _valid = Channel.CreateBounded<Pending>(new BoundedChannelOptions(65_536) { SingleReader = true, SingleWriter = true });
    // Committed batches, acknowledged by their own loop so the next batch is not kept waiting for 2000 PUBACKs.
    private readonly Channel<MqttReceivedMessage[]> _committed = Channel.CreateUnbounded<MqttReceivedMessage[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly ConcurrentDictionary<string, long> _invalid = new(StringComparer.Ordinal);
    private readonly KnownDevices _known = new(database, time);
    private readonly ResiliencePipeline _writeRetry = new ResiliencePipelineBuilder { TimeProvider = time }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<System.Data.Common.DbException>().Handle<InvalidOperationException>()
                .Handle<IOException>().Handle<TimeoutException>(),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = TimeSpan.FromSeconds(10),
            OnRetry = args =>
            {
                metrics.OnWriteError();
                LogWriteFailed(logger, args.AttemptNumber + 1, args.RetryDelay.TotalSeconds, args.Outcome.Exception!);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    private long _lastInvalidLog = long.MinValue / 2;

    /// <summary>A valid message waiting for its batch's commit, with what acknowledges it.</summary>
    private sealed record Pending(Incoming Incoming, MqttReceivedMessage Message);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.MqttDisabled)
        {
            return;
        }

        await using var client = connections.Create(o.IngestClientId, c => c with
        {
            CleanStart = false,
            SessionExpiry = TimeSpan.FromSeconds(o.IngestSessionExpirySeconds),
            ManualAcknowledge = true,
            ReceiveMaximum = o.IngestReceiveMaximum,
            ReceiveBuffer = Math.Max(o.IngestReceiveMaximum, 1000),
            Subscriptions = [.. Kinds.Select(kind => new MqttSubscription(connections.ShareGroup is { } group
                ? Topics.Shared(group, kind)
                : $"{Topics.Root}/+/{kind}"))],
        });
        client.Start();
        await Task.WhenAll(ReadAsync(client, stoppingToken), WriteAsync(client, stoppingToken), AcknowledgeAsync(client)).ConfigureAwait(false);
    }

    private async Task ReadAsync(IMqttConnection client, CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var message in client.Messages.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                metrics.OnReceived();
                if (await ParseAsync(message).ConfigureAwait(false) is { } incoming)
                {
                    await _valid.Writer.WriteAsync(new Pending(incoming, message), stoppingToken).ConfigureAwait(false);
                }
                else
                {
                    await client.AcknowledgeAsync(message, stoppingToken).ConfigureAwait(false); // handled: counted and dropped
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

    private async Task<Incoming?> ParseAsync(MqttReceivedMessage message)
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
            new(k, m.DeviceId, seq, m.Ts, m, message.Payload, now, Retained: message.Retain);

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

    private async Task WriteAsync(IMqttConnection client, CancellationToken stoppingToken)
    {
        var o = options.Value;
        var batch = new List<Pending>(o.IngestBatchSize);
        var reader = _valid.Reader;
        // Once stopping, a failing write gets a bounded grace; what is not committed by then stays unacknowledged.
        using var giveUp = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        using var onStop = stoppingToken.Register(() => giveUp.CancelAfter(FinalFlushGrace));
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

                await FlushAsync(batch, giveUp.Token).ConfigureAwait(false);
                batch.Clear();
            }
        }
        finally
        {
            await FlushAsync(batch, giveUp.Token).ConfigureAwait(false);
            _committed.Writer.TryComplete();
        }
    }

    private async Task FlushAsync(List<Pending> batch, CancellationToken cancellationToken)
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

        var incoming = batch.ConvertAll(p => p.Incoming);
        try
        {
            // The write itself is never cancelled halfway; only the waits between attempts are.
            await _writeRetry.ExecuteAsync(
                async _ => await writer.WriteAsync(incoming, invalid, CancellationToken.None).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogLeftUnacknowledged(logger, batch.Count);
            return;
        }

        _committed.Writer.TryWrite([.. batch.Select(p => p.Message)]);
    }

    private async Task AcknowledgeAsync(IMqttConnection client)
    {
        await foreach (var messages in _committed.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            foreach (var message in messages)
            {
                await client.AcknowledgeAsync(message, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Invalid device message rejected: {Detail}")]
    private static partial void LogInvalid(ILogger logger, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing device messages failed (attempt {Attempt}); retrying in {Delay:0.##} s")]
    private static partial void LogWriteFailed(ILogger logger, int attempt, double delay, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopping with {Count} device messages not stored; they stay unacknowledged in the broker and come again at the next start")]
    private static partial void LogLeftUnacknowledged(ILogger logger, int count);

    /// <summary>
    /// Enrolled device ids. An id not known yet is looked up in the database at once (a device that enrolled a moment ago
    /// must not lose its first messages, among them its one online status per connection); an id the database does not
    /// know either is not asked about again for 2 s.
    /// </summary>
    private sealed class KnownDevices(Database database, TimeProvider time)
    {
        private static readonly TimeSpan NegativeFor = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan ReloadEvery = TimeSpan.FromMinutes(1);
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _unknown = new(StringComparer.Ordinal);
        private readonly SemaphoreSlim _reload = new(1, 1);
        private System.Collections.Concurrent.ConcurrentDictionary<string, byte> _ids = new(StringComparer.Ordinal);
        private long _loadedAt = long.MinValue / 2;

        public async ValueTask<bool> ContainsAsync(string id)
        {
            // The whole list now and then, so deleted devices drop out of it.
            if (time.GetElapsedTime(Interlocked.Read(ref _loadedAt)) >= ReloadEvery && await _reload.WaitAsync(0).ConfigureAwait(false))
            {
                try
                {
                    await using var all = await database.OpenAsync().ConfigureAwait(false);
                    var ids = await all.QueryAsync("SELECT id FROM devices", r => new KeyValuePair<string, byte>(r.GetString(0), 0)).ConfigureAwait(false);
                    Volatile.Write(ref _ids, new System.Collections.Concurrent.ConcurrentDictionary<string, byte>(ids, StringComparer.Ordinal));
                    Interlocked.Exchange(ref _loadedAt, time.GetTimestamp());
                }
                finally
                {
                    _reload.Release();
                }
            }

            if (Volatile.Read(ref _ids).ContainsKey(id))
            {
                return true;
            }

            if (_unknown.TryGetValue(id, out var at) && time.GetElapsedTime(at) < NegativeFor)
            {
                return false;
            }

            await using var connection = await database.OpenAsync().ConfigureAwait(false);
            if (await connection.ScalarAsync("SELECT 1 FROM devices WHERE id = @id", ("@id", id)).ConfigureAwait(false) is not null)
            {
                Volatile.Read(ref _ids).TryAdd(id, 0);
                _unknown.TryRemove(id, out _);
                return true;
            }

            if (_unknown.Count > 10_000)
            {
                _unknown.Clear(); // bounded: ids come from authenticated topics, but a deleted fleet could still be large
            }

            _unknown[id] = time.GetTimestamp();
            return false;
        }
    }
}
