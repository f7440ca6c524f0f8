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
/// <param name="Retained">Delivered from the broker's retained store (on subscribing) rather than as it was published.</param>
public sealed record Incoming(string Kind, string DeviceId, long Seq, DateTimeOffset Ts, object Message, byte[] Payload, DateTimeOffset ArrivedAt,
    bool Retained = false)
{
    /// <summary>The payload as text (only drift reports are stored as received).</summary>
    public string Json => Encoding.UTF8.GetString(Payload);
}

/// <summary>
/// Writes batches of device messages in one transaction each. Rows are de-duplicated by the primary key
/// <c>(device_id, seq)</c> (<c>ON CONFLICT DO NOTHING … RETURNING</c> says which rows were new), so a message
/// delivered twice — by a replay after a lost PUBACK, or to two replicas — is stored and counted once. Per device
/// the first and highest <c>seq</c> and the number of distinct messages are kept, so gaps (lost messages) are
/// <c>max − first + 1 − received</c>, correct however the messages were spread over replicas.
/// </summary>
public sealed class IngestWriter(Database database, IngestMetrics metrics, TimeProvider time, EdgeFleet.ControlPlane.Rollouts.RolloutSignal? rollouts = null,
    Live.LiveEvents? live = null)
{

    public async Task WriteAsync(IReadOnlyList<Incoming> batch, IReadOnlyDictionary<string, long> invalidByDevice, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(invalidByDevice);
        var started = time.GetTimestamp();
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        var inserted = new List<Incoming>(batch.Count);
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Telemetry).ToList(),
            "telemetry(device_id, seq, ts, model, model_version, fps, p50, p95, p99, inferred, dropped, errors, cpu, mem, temp, confidence, nonfinite)",
            ["text", "bigint", "bigint", "text", "text", "float8", "float8", "float8", "float8", "bigint", "bigint", "bigint", "float8", "bigint", "float8", "float8", "bigint"],
            TelemetryValues).ConfigureAwait(false));
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Drift).ToList(),
            "drift_reports(device_id, seq, ts, model, model_version, severity, window_frames, report)",
            ["text", "bigint", "bigint", "text", "text", "text", "bigint", "text"], DriftValues).ConfigureAwait(false));
        inserted.AddRange(await InsertAsync(connection, tx, batch.Where(i => i.Kind == Topics.Events).ToList(),
            "events(device_id, seq, ts, type, level, message, data)", ["text", "bigint", "bigint", "text", "text", "text", "text"], EventValues).ConfigureAwait(false));

        await RollUpAsync(connection, tx, inserted.Where(i => i.Kind == Topics.Telemetry)).ConfigureAwait(false);
        await UpdateOtaAsync(connection, tx, inserted.Where(i => i.Kind == Topics.Events)).ConfigureAwait(false);
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

        metrics.OnBatch(time.GetElapsedTime(started));
        if (live is { Subscribers: > 0 })
        {
            live.Publish(Live.LiveEvents.Devices, batch.Select(i => i.DeviceId).Distinct(StringComparer.Ordinal).ToList());
        }

        if (inserted.Any(i => i.Kind == Topics.Events && IsOtaEvent(((EventMessage)i.Message).Type)))
        {
            rollouts?.Notify(); // the rollout engine counts devices now rather than at its next tick
        }
    }

    private static async Task<List<Incoming>> InsertAsync(DbConnection connection, DbTransaction tx, List<Incoming> items, string table, string[] types,
        Func<Incoming, object?[]> values)
    {
        if (items.Count == 0)
        {
            return [];
        }

        if (connection is not Npgsql.NpgsqlConnection)
        {
            return await InsertRowByRowAsync(connection, tx, items, table, types.Length, values).ConfigureAwait(false);
        }

        // PostgreSQL: the whole batch as one array per column, unnested server-side: one statement, one round trip,
        // a handful of parameters however many rows.
        var rows = items.Select(values).ToList();
        var columns = types.Select((t, c) => Column(rows, c, t)).ToArray();

        using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"INSERT INTO {table} SELECT * FROM unnest({string.Join(", ", types.Select((t, c) => $"@c{c}::{t}[]"))}) " +
            "ON CONFLICT(device_id, seq) DO NOTHING RETURNING device_id, seq";
        for (var c = 0; c < types.Length; c++)
        {
            var p = command.CreateParameter();
            p.ParameterName = string.Create(CultureInfo.InvariantCulture, $"@c{c}");
            p.Value = columns[c];
            command.Parameters.Add(p);
        }

        var fresh = new HashSet<(string, long)>();
        using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                fresh.Add((reader.GetString(0), reader.Long(1)));
            }
        }

        // A batch may hold the same (device, seq) twice: only its first copy counts as inserted.
        var inserted = new List<Incoming>(items.Count);
        foreach (var item in items)
        {
            if (fresh.Remove((item.DeviceId, item.Seq)))
            {
                inserted.Add(item);
            }
        }

        return inserted;
    }

    /// <summary>
    /// SQLite: one prepared single-row statement reused for every row (SQLite runs in-process, so there is no round
    /// trip to save, and Microsoft.Data.Sqlite binds thousands of parameters of a multi-row statement slowly).
    /// </summary>
    private static async Task<List<Incoming>> InsertRowByRowAsync(DbConnection connection, DbTransaction tx, List<Incoming> items, string table, int columns,
        Func<Incoming, object?[]> values)
    {
        var inserted = new List<Incoming>(items.Count);
        if (items.Count == 0)
        {
            return inserted;
        }

        using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"INSERT INTO {table} VALUES ({string.Join(',', Enumerable.Range(0, columns).Select(c => $"@p{c}"))}) ON CONFLICT(device_id, seq) DO NOTHING";
        var parameters = new DbParameter[columns];
        for (var c = 0; c < columns; c++)
        {
            parameters[c] = command.CreateParameter();
            parameters[c].ParameterName = string.Create(CultureInfo.InvariantCulture, $"@p{c}");
            command.Parameters.Add(parameters[c]);
        }

        await command.PrepareAsync().ConfigureAwait(false);
        foreach (var item in items)
        {
            var row = values(item);
            for (var c = 0; c < columns; c++)
            {
                parameters[c].Value = row[c] ?? DBNull.Value;
            }

            if (await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1)
            {
                inserted.Add(item);
            }
        }

        return inserted;
    }

    /// <summary>
    /// Runs one statement for many parameter rows: on PostgreSQL as one statement over column arrays (unnested
    /// server-side), on SQLite as one prepared statement re-executed (no round trips to save in-process).
    /// </summary>
    private static async Task RunManyAsync(DbConnection connection, DbTransaction tx, string sql, string[] names, IReadOnlyList<object?[]> rows,
        string unnestSql, string[] types)
    {
        if (rows.Count == 0)
        {
            return;
        }

        if (connection is Npgsql.NpgsqlConnection)
        {
            // One statement for all rows: the parameters are columns (arrays), unnested server-side.
            using var single = connection.CreateCommand();
            single.Transaction = tx;
            single.CommandText = unnestSql;
            for (var c = 0; c < types.Length; c++)
            {
                var p = single.CreateParameter();
                p.ParameterName = names[c];
                p.Value = Column(rows, c, types[c]);
                single.Parameters.Add(p);
            }

            await single.ExecuteNonQueryAsync().ConfigureAwait(false);
            return;
        }

        using var prepared = connection.CreateCommand();
        prepared.Transaction = tx;
        prepared.CommandText = sql;
        var parameters = names.Select(n =>
        {
            var p = prepared.CreateParameter();
            p.ParameterName = n;
            prepared.Parameters.Add(p);
            return p;
        }).ToArray();
        await prepared.PrepareAsync().ConfigureAwait(false);
        foreach (var row in rows)
        {
            for (var c = 0; c < names.Length; c++)
            {
                parameters[c].Value = row[c] ?? DBNull.Value;
            }

            await prepared.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
    }

    private static object Column(IReadOnlyList<object?[]> rows, int c, string type) => type switch
    {
        "bigint" => rows.Select(r => r[c] is null ? (long?)null : Convert.ToInt64(r[c], CultureInfo.InvariantCulture)).ToArray(),
        "float8" => rows.Select(r => r[c] is null ? (double?)null : Convert.ToDouble(r[c], CultureInfo.InvariantCulture)).ToArray(),
        _ => rows.Select(r => (string?)r[c]).ToArray(),
    };

    private static object?[] TelemetryValues(Incoming i)
    {
        var t = (TelemetryMessage)i.Message;
        return
        [
            i.DeviceId, i.Seq, i.Ts.ToUnixTimeMilliseconds(), t.Model?.Name, t.Model?.Version, Finite(t.Fps), Finite(t.LatencyMs.P50), Finite(t.LatencyMs.P95),
            Finite(t.LatencyMs.P99), t.Frames.Inferred, t.Frames.Dropped, t.Errors, Finite(t.System?.CpuPercent), t.System?.MemUsedBytes, Finite(t.System?.TemperatureC),
            Finite(t.Confidence), t.NonFinite,
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

    private const string RollupSql = """
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
        """;

    private static readonly string RollupUnnestSql = RollupSql.Replace(
        "VALUES (@d, @m, @model, @version, @n, @fps, @p50, @p95, @p99, @inf, @drop, @err, @cpu, @mem, @temp)",
        "SELECT * FROM unnest(@d::text[], @m::bigint[], @model::text[], @version::text[], @n::bigint[], @fps::float8[], @p50::float8[], @p95::float8[], " +
        "@p99::float8[], @inf::bigint[], @drop::bigint[], @err::bigint[], @cpu::float8[], @mem::bigint[], @temp::float8[])", StringComparison.Ordinal);

    private static readonly string[] RollupTypes =
        ["text", "bigint", "text", "text", "bigint", "float8", "float8", "float8", "float8", "bigint", "bigint", "bigint", "float8", "bigint", "float8"];

    private static readonly string[] RollupParameters =
        ["@d", "@m", "@model", "@version", "@n", "@fps", "@p50", "@p95", "@p99", "@inf", "@drop", "@err", "@cpu", "@mem", "@temp"];

    /// <summary>Adds the new telemetry rows into their device's 1-minute rollups (sums and maxima, so merging is exact).</summary>
    private static Task RollUpAsync(DbConnection connection, DbTransaction tx, IEnumerable<Incoming> telemetry)
    {
        var rows = new List<object?[]>();
        foreach (var g in telemetry.GroupBy(i => (i.DeviceId, Minute: i.Ts.ToUnixTimeMilliseconds() / 60_000 * 60_000)))
        {
            var m = g.Select(i => (TelemetryMessage)i.Message).ToList();
            var last = m[^1];
            rows.Add(
            [
                g.Key.DeviceId, g.Key.Minute, last.Model?.Name, last.Model?.Version, m.Count,
                m.Sum(r => Finite(r.Fps) ?? 0), m.Sum(r => Finite(r.LatencyMs.P50) ?? 0), m.Max(r => Finite(r.LatencyMs.P95) ?? 0), m.Max(r => Finite(r.LatencyMs.P99) ?? 0),
                m.Sum(r => r.Frames.Inferred), m.Sum(r => r.Frames.Dropped), m.Sum(r => r.Errors),
                m.Any(r => r.System?.CpuPercent is not null) ? m.Sum(r => Finite(r.System?.CpuPercent) ?? 0) : null,
                m.Max(r => r.System?.MemUsedBytes), m.Max(r => Finite(r.System?.TemperatureC)),
            ]);
        }

        return RunManyAsync(connection, tx, RollupSql, RollupParameters, rows, RollupUnnestSql, RollupTypes);
    }

    private const string DeviceSql = """
        UPDATE devices SET
          received = received + @n,
          first_seq = CASE WHEN @min IS NULL THEN first_seq WHEN first_seq IS NULL OR @min < first_seq THEN @min ELSE first_seq END,
          max_seq = CASE WHEN @max IS NOT NULL AND @max > max_seq THEN @max ELSE max_seq END,
          last_seen = CASE WHEN last_seen IS NULL OR @seen > last_seen THEN @seen ELSE last_seen END,
          health = CASE WHEN @health IS NOT NULL AND (health_at IS NULL OR @healthAt >= health_at) THEN @health ELSE health END,
          health_at = CASE WHEN @health IS NOT NULL AND (health_at IS NULL OR @healthAt >= health_at) THEN @healthAt ELSE health_at END,
          drift_severity = COALESCE(@severity, drift_severity)
        WHERE id = @id
        """;

    private static readonly string[] DeviceParameters = ["@n", "@min", "@max", "@seen", "@health", "@healthAt", "@severity", "@id"];

    private static readonly string[] DeviceTypes = ["bigint", "bigint", "bigint", "bigint", "text", "bigint", "text", "text"];

    private const string DeviceUnnestSql = """
        UPDATE devices d SET
          received = d.received + u.n,
          first_seq = CASE WHEN u.min IS NULL THEN d.first_seq WHEN d.first_seq IS NULL OR u.min < d.first_seq THEN u.min ELSE d.first_seq END,
          max_seq = CASE WHEN u.max IS NOT NULL AND u.max > d.max_seq THEN u.max ELSE d.max_seq END,
          last_seen = CASE WHEN d.last_seen IS NULL OR u.seen > d.last_seen THEN u.seen ELSE d.last_seen END,
          health = CASE WHEN u.health IS NOT NULL AND (d.health_at IS NULL OR u.health_at >= d.health_at) THEN u.health ELSE d.health END,
          health_at = CASE WHEN u.health IS NOT NULL AND (d.health_at IS NULL OR u.health_at >= d.health_at) THEN u.health_at ELSE d.health_at END,
          drift_severity = COALESCE(u.severity, d.drift_severity)
        FROM unnest(@n::bigint[], @min::bigint[], @max::bigint[], @seen::bigint[], @health::text[], @healthAt::bigint[], @severity::text[], @id::text[])
          AS u(n, min, max, seen, health, health_at, severity, id)
        WHERE d.id = u.id
        """;

    private static Task UpdateDevicesAsync(DbConnection connection, DbTransaction tx, IReadOnlyList<Incoming> batch, List<Incoming> inserted)
    {
        var fresh = inserted.ToLookup(i => i.DeviceId, StringComparer.Ordinal);
        var rows = new List<object?[]>();
        foreach (var device in batch.Where(i => i.Kind != Topics.Status).GroupBy(i => i.DeviceId, StringComparer.Ordinal))
        {
            var mine = fresh[device.Key].ToList();
            var newestTelemetry = mine.Where(i => i.Kind == Topics.Telemetry).MaxBy(i => i.Seq);
            var newestDrift = mine.Where(i => i.Kind == Topics.Drift).MaxBy(i => i.Seq);
            rows.Add(
            [
                (long)mine.Count, mine.Count == 0 ? null : mine.Min(i => i.Seq), mine.Count == 0 ? null : mine.Max(i => i.Seq),
                device.Max(i => i.ArrivedAt).ToUnixTimeMilliseconds(),
                newestTelemetry is null ? null : JsonSerializer.Serialize(Health(newestTelemetry), ApiJsonContext.Default.DeviceHealth),
                newestTelemetry?.Ts.ToUnixTimeMilliseconds(),
                newestDrift is null ? null : Severity(((DriftMessage)newestDrift.Message).Severity), device.Key,
            ]);
        }

        return RunManyAsync(connection, tx, DeviceSql, DeviceParameters, rows, DeviceUnnestSql, DeviceTypes);
    }

    /// <summary>
    /// A device's OTA state is its newest <c>update.*</c> / <c>shadow.*</c> event: per device the one with the highest seq in
    /// the batch, stored unless a newer one (higher seq, which only grows on a device) is there already.
    /// </summary>
    private static async Task UpdateOtaAsync(DbConnection connection, DbTransaction tx, IEnumerable<Incoming> events)
    {
        var newest = events.Where(i => IsOtaEvent(((EventMessage)i.Message).Type)).GroupBy(i => i.DeviceId, StringComparer.Ordinal).Select(g => g.MaxBy(i => i.Seq)!);
        foreach (var i in newest)
        {
            var e = (EventMessage)i.Message;
            string? Data(string key) => e.Data is { } d && d.TryGetValue(key, out var v) ? v : null;
            var state = e.Type.StartsWith("update.", StringComparison.Ordinal) ? e.Type["update.".Length..] : e.Type;
            var mode = Data("mode") ?? (e.Type.StartsWith("shadow.", StringComparison.Ordinal) ? DesiredModes.Shadow : null);
            await connection.ExecuteAsync(tx, """
                INSERT INTO device_ota(device_id, seq, ts, state, model, version, mode, reason, desired_id, rollout_id, agreement)
                VALUES (@d, @seq, @ts, @state, @m, @v, @mode, @reason, @desired, @rollout, @agreement)
                ON CONFLICT(device_id) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, state = excluded.state, model = excluded.model,
                  version = excluded.version, mode = excluded.mode, reason = excluded.reason, desired_id = excluded.desired_id,
                  rollout_id = excluded.rollout_id, agreement = excluded.agreement
                WHERE device_ota.seq < excluded.seq
                """, ("@d", i.DeviceId), ("@seq", i.Seq), ("@ts", i.Ts.ToUnixTimeMilliseconds()), ("@state", Clip(state)), ("@m", Clip(Data("model"))),
                ("@v", Clip(Data("version"))), ("@mode", Clip(mode)), ("@reason", Clip(Data("reason") ?? Data("criterion"))), ("@desired", Clip(Data("desiredId"))),
                ("@rollout", Clip(Data("rolloutId"))), ("@agreement", Agreement(Data("top1Agreement")))).ConfigureAwait(false);
        }
    }

    private static double? Agreement(string? value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var a) && a is >= 0 and <= 1 ? a : null;

    internal static bool IsOtaEvent(string type) => type.StartsWith("update.", StringComparison.Ordinal) || type.StartsWith("shadow.", StringComparison.Ordinal);

    // Device-supplied text: bounded, and without NUL (PostgreSQL refuses it in text).
    private static string? Clip(string? value) => value is null ? null : (value.Length > 200 ? value[..200] : value).Replace("\0", "", StringComparison.Ordinal);

    /// <summary>
    /// The status is the truth about online/offline. One delivered as it was published is the newest there is (the broker
    /// delivers a topic's messages in order) and applies whatever its timestamp: a Last Will carries the time its
    /// connection was made, older than the online status sent right after, and must still mark the device offline. One
    /// replayed from the retained store never overrides a newer stored one.
    /// </summary>
    private static async Task ApplyStatusAsync(DbConnection connection, DbTransaction tx, Incoming i)
    {
        var s = (StatusMessage)i.Message;
        var applied = await connection.ExecuteAsync(tx, """
            UPDATE devices SET online = @online, agent_version = COALESCE(@agent, agent_version),
              model_name = CASE WHEN @online = 1 THEN @model ELSE model_name END,
              model_version = CASE WHEN @online = 1 THEN @version ELSE model_version END,
              started_at = COALESCE(@started, started_at), status_at = @ts,
              last_seen = CASE WHEN last_seen IS NULL OR @seen > last_seen THEN @seen ELSE last_seen END
            WHERE id = @id AND revoked = 0 AND (@live = 1 OR status_at IS NULL OR status_at <= @ts)
            """,
            ("@live", i.Retained ? 0 : 1), ("@online", s.Online ? 1 : 0), ("@agent", s.AgentVersion), ("@model", s.Model?.Name), ("@version", s.Model?.Version),
            ("@started", s.StartedAt?.ToUnixTimeMilliseconds()), ("@ts", s.Ts.ToUnixTimeMilliseconds()), ("@seen", i.ArrivedAt.ToUnixTimeMilliseconds()), ("@id", i.DeviceId)).ConfigureAwait(false);
        if (applied == 1 && s.Online && s.Model is { } model)
        {
            await RecordDeploymentAsync(connection, tx, i.DeviceId, model, s.Ts).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Deployment history: a status naming another model version than the device's open deployment closes that one and
    /// opens a new one (with the rollout that sent it, when the device's newest OTA event names one for that version).
    /// </summary>
    private static async Task RecordDeploymentAsync(DbConnection connection, DbTransaction tx, string deviceId, ModelRef model, DateTimeOffset ts)
    {
        var open = await connection.QueryAsync(tx, "SELECT id, model, version FROM deployments WHERE device_id = @d AND to_ts IS NULL ORDER BY from_ts DESC",
            r => (Id: r.Long(0), Model: r.GetString(1), Version: r.GetString(2)), ("@d", deviceId)).ConfigureAwait(false);
        if (open.Count > 0 && open[0].Model == model.Name && open[0].Version == model.Version)
        {
            return;
        }

        var at = ts.ToUnixTimeMilliseconds();
        await connection.ExecuteAsync(tx, "UPDATE deployments SET to_ts = @at WHERE device_id = @d AND to_ts IS NULL", ("@at", at), ("@d", deviceId)).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, """
            INSERT INTO deployments(device_id, model, version, from_ts, rollout_id)
            VALUES (@d, @m, @v, @at, (SELECT rollout_id FROM device_ota WHERE device_id = @d AND model = @m AND version = @v))
            """, ("@d", deviceId), ("@m", Clip(model.Name)), ("@v", Clip(model.Version)), ("@at", at)).ConfigureAwait(false);
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
