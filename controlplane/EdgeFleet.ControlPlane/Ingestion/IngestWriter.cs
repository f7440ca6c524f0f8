using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>A validated device message on its way to the database.</summary>
public sealed record Incoming(string Kind, string DeviceId, long Seq, DateTimeOffset Ts, object Message, string Json, DateTimeOffset ArrivedAt);

/// <summary>
/// Writes batches of device messages in one transaction each. Rows are de-duplicated by the primary key
/// <c>(device_id, seq)</c> (<c>ON CONFLICT DO NOTHING … RETURNING</c> says which rows were new), so a message
/// delivered twice — by a replay after a lost PUBACK, or to two replicas — is stored and counted once. Per device
/// the first and highest <c>seq</c> and the number of distinct messages are kept, so gaps (lost messages) are
/// <c>max − first + 1 − received</c>, correct however the messages were spread over replicas.
/// </summary>
public sealed class IngestWriter(Database database, IngestMetrics metrics, TimeProvider time)
{
    private const int RowsPerStatement = 400;

    public async Task WriteAsync(IReadOnlyList<Incoming> batch, IReadOnlyDictionary<string, long> invalidByDevice, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(invalidByDevice);
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        var inserted = new List<Incoming>(batch.Count);
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Telemetry).ToList(),
            "telemetry(device_id, seq, ts, model, model_version, fps, p50, p95, p99, inferred, dropped, errors, cpu, mem, temp)", 15, TelemetryValues).ConfigureAwait(false));
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Drift).ToList(),
            "drift_reports(device_id, seq, ts, model, model_version, severity, window_frames, report)", 8, DriftValues).ConfigureAwait(false));
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Events).ToList(),
            "events(device_id, seq, ts, type, level, message, data)", 7, EventValues).ConfigureAwait(false));

        await RollUpAsync(connection, tx, inserted.Where(i => i.Kind == Topics.Telemetry)).ConfigureAwait(false);
        await UpdateDevicesAsync(connection, tx, batch, inserted).ConfigureAwait(false);
        foreach (var status in batch.Where(i => i.Kind == Topics.Status))
        {
            await ApplyStatusAsync(connection, tx, status).ConfigureAwait(false);
        }

        foreach (var (device, count) in invalidByDevice)
        {
            await connection.ExecuteAsync(tx, "UPDATE devices SET invalid = invalid + @n WHERE id = @id", ("@n", count), ("@id", device)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);

        var now = time.GetUtcNow();
        foreach (var group in inserted.GroupBy(i => i.Kind, StringComparer.Ordinal))
        {
            metrics.OnIngested(group.Key, group.Count());
        }

        metrics.OnIngested(Topics.Status, batch.Count(i => i.Kind == Topics.Status));
        metrics.OnDuplicates(batch.Count(i => i.Kind != Topics.Status) - inserted.Count);
        foreach (var i in inserted)
        {
            metrics.OnLag(now - i.Ts);
        }

        metrics.OnBatch();
    }

    private static async Task<List<Incoming>> InsertAsync(DbConnection connection, DbTransaction tx, List<Incoming> items, string table, int columns,
        Func<Incoming, object?[]> values)
    {
        var inserted = new List<Incoming>(items.Count);
        for (var start = 0; start < items.Count; start += RowsPerStatement)
        {
            var chunk = items.GetRange(start, Math.Min(RowsPerStatement, items.Count - start));
            using var command = connection.CreateCommand();
            command.Transaction = tx;
            var sql = new StringBuilder("INSERT INTO ").Append(table).Append(" VALUES ");
            for (var r = 0; r < chunk.Count; r++)
            {
                sql.Append(r == 0 ? "(" : ",(");
                var row = values(chunk[r]);
                for (var c = 0; c < columns; c++)
                {
                    var name = string.Create(CultureInfo.InvariantCulture, $"@p{r}_{c}");
                    sql.Append(c == 0 ? "" : ",").Append(name);
                    var p = command.CreateParameter();
                    p.ParameterName = name;
                    p.Value = row[c] ?? DBNull.Value;
                    command.Parameters.Add(p);
                }

                sql.Append(')');
            }

            sql.Append(" ON CONFLICT(device_id, seq) DO NOTHING RETURNING device_id, seq");
            command.CommandText = sql.ToString();
            var fresh = new HashSet<(string, long)>();
            using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
            {
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    fresh.Add((reader.GetString(0), reader.Long(1)));
                }
            }

            // A batch may hold the same (device, seq) twice: only its first copy counts as inserted.
            foreach (var item in chunk)
            {
                if (fresh.Remove((item.DeviceId, item.Seq)))
                {
                    inserted.Add(item);
                }
            }
        }

        return inserted;
    }

    private static object?[] TelemetryValues(Incoming i)
    {
        var t = (TelemetryMessage)i.Message;
        return
        [
            i.DeviceId, i.Seq, i.Ts.ToUnixTimeMilliseconds(), t.Model?.Name, t.Model?.Version, Finite(t.Fps), Finite(t.LatencyMs.P50), Finite(t.LatencyMs.P95),
            Finite(t.LatencyMs.P99), t.Frames.Inferred, t.Frames.Dropped, t.Errors, Finite(t.System?.CpuPercent), t.System?.MemUsedBytes, Finite(t.System?.TemperatureC),
        ];
    }

    private static object?[] DriftValues(Incoming i)
    {
        var d = (DriftMessage)i.Message;
        return [i.DeviceId, i.Seq, i.Ts.ToUnixTimeMilliseconds(), d.Model?.Name, d.Model?.Version, Severity(d.Severity), d.Window.Frames, i.Json];
    }

    private static object?[] EventValues(Incoming i)
    {
        var e = (EventMessage)i.Message;
        var data = e.Data is null ? null : JsonSerializer.Serialize(e.Data, DictionaryContext.Default.IReadOnlyDictionaryStringString);
        return [i.DeviceId, i.Seq, i.Ts.ToUnixTimeMilliseconds(), e.Type, e.Level, e.Message, data];
    }

    /// <summary>Adds the new telemetry rows into their device's 1-minute rollups (sums and maxima, so merging is exact).</summary>
    private static async Task RollUpAsync(DbConnection connection, DbTransaction tx, IEnumerable<Incoming> telemetry)
    {
        var groups = telemetry.GroupBy(i => (i.DeviceId, Minute: i.Ts.ToUnixTimeMilliseconds() / 60_000 * 60_000));
        foreach (var g in groups)
        {
            var rows = g.Select(i => (TelemetryMessage)i.Message).ToList();
            var last = rows[^1];
            await connection.ExecuteAsync(tx, """
                INSERT INTO telemetry_1m(device_id, minute, model, model_version, samples, fps_sum, p50_sum, p95_max, p99_max, inferred, dropped, errors, cpu_sum, mem_max, temp_max)
                VALUES (@d, @m, @model, @version, @n, @fps, @p50, @p95, @p99, @inf, @drop, @err, @cpu, @mem, @temp)
                ON CONFLICT(device_id, minute) DO UPDATE SET
                  model = excluded.model, model_version = excluded.model_version,
                  samples = telemetry_1m.samples + excluded.samples,
                  fps_sum = telemetry_1m.fps_sum + excluded.fps_sum,
                  p50_sum = telemetry_1m.p50_sum + excluded.p50_sum,
                  p95_max = CASE WHEN excluded.p95_max > telemetry_1m.p95_max THEN excluded.p95_max ELSE telemetry_1m.p95_max END,
                  p99_max = CASE WHEN excluded.p99_max > telemetry_1m.p99_max THEN excluded.p99_max ELSE telemetry_1m.p99_max END,
                  inferred = telemetry_1m.inferred + excluded.inferred,
                  dropped = telemetry_1m.dropped + excluded.dropped,
                  errors = telemetry_1m.errors + excluded.errors,
                  cpu_sum = COALESCE(telemetry_1m.cpu_sum, 0) + COALESCE(excluded.cpu_sum, 0),
                  mem_max = CASE WHEN telemetry_1m.mem_max IS NULL OR excluded.mem_max > telemetry_1m.mem_max THEN excluded.mem_max ELSE telemetry_1m.mem_max END,
                  temp_max = CASE WHEN telemetry_1m.temp_max IS NULL OR excluded.temp_max > telemetry_1m.temp_max THEN excluded.temp_max ELSE telemetry_1m.temp_max END
                """,
                ("@d", g.Key.DeviceId), ("@m", g.Key.Minute), ("@model", last.Model?.Name), ("@version", last.Model?.Version), ("@n", rows.Count),
                ("@fps", rows.Sum(r => Finite(r.Fps) ?? 0)), ("@p50", rows.Sum(r => Finite(r.LatencyMs.P50) ?? 0)),
                ("@p95", rows.Max(r => Finite(r.LatencyMs.P95) ?? 0)), ("@p99", rows.Max(r => Finite(r.LatencyMs.P99) ?? 0)),
                ("@inf", rows.Sum(r => r.Frames.Inferred)), ("@drop", rows.Sum(r => r.Frames.Dropped)), ("@err", rows.Sum(r => r.Errors)),
                ("@cpu", rows.Any(r => r.System?.CpuPercent is not null) ? rows.Sum(r => Finite(r.System?.CpuPercent) ?? 0) : null),
                ("@mem", rows.Max(r => r.System?.MemUsedBytes)), ("@temp", rows.Max(r => Finite(r.System?.TemperatureC)))).ConfigureAwait(false);
        }
    }

    private async Task UpdateDevicesAsync(DbConnection connection, DbTransaction tx, IReadOnlyList<Incoming> batch, List<Incoming> inserted)
    {
        var fresh = inserted.ToLookup(i => i.DeviceId, StringComparer.Ordinal);
        foreach (var device in batch.Where(i => i.Kind != Topics.Status).GroupBy(i => i.DeviceId, StringComparer.Ordinal))
        {
            var mine = fresh[device.Key].ToList();
            var newestTelemetry = mine.Where(i => i.Kind == Topics.Telemetry).MaxBy(i => i.Seq);
            var newestDrift = mine.Where(i => i.Kind == Topics.Drift).MaxBy(i => i.Seq);
            var health = newestTelemetry is null ? null : JsonSerializer.Serialize(Health(newestTelemetry), ApiJsonContext.Default.DeviceHealth);
            await connection.ExecuteAsync(tx, """
                UPDATE devices SET
                  received = received + @n,
                  first_seq = CASE WHEN @min IS NULL THEN first_seq WHEN first_seq IS NULL OR @min < first_seq THEN @min ELSE first_seq END,
                  max_seq = CASE WHEN @max IS NOT NULL AND @max > max_seq THEN @max ELSE max_seq END,
                  last_seen = CASE WHEN last_seen IS NULL OR @seen > last_seen THEN @seen ELSE last_seen END,
                  health = CASE WHEN @health IS NOT NULL AND (health_at IS NULL OR @healthAt >= health_at) THEN @health ELSE health END,
                  health_at = CASE WHEN @health IS NOT NULL AND (health_at IS NULL OR @healthAt >= health_at) THEN @healthAt ELSE health_at END,
                  drift_severity = COALESCE(@severity, drift_severity)
                WHERE id = @id
                """,
                ("@n", mine.Count), ("@min", mine.Count == 0 ? null : mine.Min(i => i.Seq)), ("@max", mine.Count == 0 ? null : mine.Max(i => i.Seq)),
                ("@seen", device.Max(i => i.ArrivedAt).ToUnixTimeMilliseconds()), ("@health", health), ("@healthAt", newestTelemetry?.Ts.ToUnixTimeMilliseconds()),
                ("@severity", newestDrift is null ? null : Severity(((DriftMessage)newestDrift.Message).Severity)), ("@id", device.Key)).ConfigureAwait(false);
        }
    }

    /// <summary>The retained status is the truth about online/offline; an older one (replayed late) never overrides a newer one.</summary>
    private static Task ApplyStatusAsync(DbConnection connection, DbTransaction tx, Incoming i)
    {
        var s = (StatusMessage)i.Message;
        return connection.ExecuteAsync(tx, """
            UPDATE devices SET online = @online, agent_version = COALESCE(@agent, agent_version),
              model_name = CASE WHEN @online = 1 THEN @model ELSE model_name END,
              model_version = CASE WHEN @online = 1 THEN @version ELSE model_version END,
              started_at = COALESCE(@started, started_at), status_at = @ts,
              last_seen = CASE WHEN last_seen IS NULL OR @seen > last_seen THEN @seen ELSE last_seen END
            WHERE id = @id AND revoked = 0 AND (status_at IS NULL OR status_at <= @ts)
            """,
            ("@online", s.Online ? 1 : 0), ("@agent", s.AgentVersion), ("@model", s.Model?.Name), ("@version", s.Model?.Version),
            ("@started", s.StartedAt?.ToUnixTimeMilliseconds()), ("@ts", s.Ts.ToUnixTimeMilliseconds()), ("@seen", i.ArrivedAt.ToUnixTimeMilliseconds()), ("@id", i.DeviceId));
    }

    private static DeviceHealth Health(Incoming i)
    {
        var t = (TelemetryMessage)i.Message;
        return new DeviceHealth
        {
            At = t.Ts,
            Fps = Finite(t.Fps),
            LatencyP95Ms = Finite(t.LatencyMs.P95),
            Errors = t.Errors,
            CpuPercent = Finite(t.System?.CpuPercent),
            MemUsedBytes = t.System?.MemUsedBytes,
            TemperatureC = Finite(t.System?.TemperatureC),
        };
    }

    internal static string Severity(DriftSeverity severity) => severity.ToString().ToLowerInvariant();

    private static double? Finite(double? v) => v is { } d && double.IsFinite(d) ? d : null;
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
internal sealed partial class DictionaryContext : System.Text.Json.Serialization.JsonSerializerContext;
