using System.Globalization;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Telemetry;

/// <summary>
/// Reads of what devices report (telemetry, its 1-minute rollups, drift reports, events) and their retention.
/// Pages are keyed "ts:device:seq" so that the order is stable when timestamps tie. The write path is
/// <c>Ingestion.IngestWriter</c>'s; the rollout gates' aggregates are <c>Rollouts.GateTelemetry</c>'s.
/// </summary>
public sealed class TelemetryStore(Database database)
{
    /// <summary>Where a page starts: after this row (<see cref="Start"/>: from the first).</summary>
    public readonly record struct Cursor(long Ts, string Device, long Seq)
    {
        public static Cursor Start => new(long.MinValue, "", long.MinValue);
    }

    /// <summary>What the queries filter on: a time range in Unix milliseconds [From, To) and, optionally, a device or a model version.</summary>
    public readonly record struct Filter(long From, long To, string? Device, string? Model = null, string? Version = null);

    /// <summary>A page's rows (at most <c>limit</c> + 1, so the caller sees whether another page follows), each with its cursor.</summary>
    public async Task<List<(string Cursor, TelemetryPoint Point)>> RawAsync(Filter filter, Cursor after, int limit)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("""
            SELECT device_id, seq, ts, model, model_version, fps, p50, p95, p99, inferred, dropped, errors, cpu, mem, temp, confidence FROM telemetry
            WHERE ts >= @from AND ts < @to AND (CAST(@device AS TEXT) IS NULL OR device_id = @device) AND (CAST(@model AS TEXT) IS NULL OR model = @model)
              AND (CAST(@version AS TEXT) IS NULL OR model_version = @version)
              AND (ts > @cts OR (ts = @cts AND (device_id > @cdev OR (device_id = @cdev AND seq > @cseq))))
            ORDER BY ts, device_id, seq LIMIT @limit
            """,
            r => (string.Create(CultureInfo.InvariantCulture, $"{r.Long(2)}:{r.GetString(0)}:{r.Long(1)}"), new TelemetryPoint
            {
                DeviceId = r.GetString(0), Ts = r.Time(2), Model = r.NullableString(3), ModelVersion = r.NullableString(4), Fps = r.NullableDouble(5),
                LatencyP50Ms = r.NullableDouble(6), LatencyP95Ms = r.NullableDouble(7), LatencyP99Ms = r.NullableDouble(8), FramesInferred = r.NullableLong(9),
                FramesDropped = r.NullableLong(10), Errors = r.NullableLong(11), CpuPercent = r.NullableDouble(12), MemUsedBytes = r.NullableLong(13),
                TemperatureC = r.NullableDouble(14), MeanConfidence = r.NullableDouble(15),
            }),
            ("@from", filter.From), ("@to", filter.To), ("@device", filter.Device), ("@model", filter.Model), ("@version", filter.Version), ("@cts", after.Ts),
            ("@cdev", after.Device), ("@cseq", after.Seq), ("@limit", limit)).ConfigureAwait(false);
    }

    /// <summary>1-minute rollups, averaged back to points; the range starts at the minute <see cref="Filter.From"/> falls in.</summary>
    public async Task<List<(string Cursor, TelemetryPoint Point)>> RollupAsync(Filter filter, Cursor after, int limit)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("""
            SELECT device_id, minute, model, model_version, samples, fps_sum, p50_sum, p95_max, p99_max, inferred, dropped, errors, cpu_sum, mem_max, temp_max,
                   confidence_sum, confidence_n FROM telemetry_1m
            WHERE minute >= @from AND minute < @to AND (CAST(@device AS TEXT) IS NULL OR device_id = @device) AND (CAST(@model AS TEXT) IS NULL OR model = @model)
              AND (CAST(@version AS TEXT) IS NULL OR model_version = @version)
              AND (minute > @cts OR (minute = @cts AND device_id > @cdev))
            ORDER BY minute, device_id LIMIT @limit
            """,
            r =>
            {
                var n = Math.Max(1, r.Long(4));
                return (string.Create(CultureInfo.InvariantCulture, $"{r.Long(1)}:{r.GetString(0)}:0"), new TelemetryPoint
                {
                    DeviceId = r.GetString(0), Ts = r.Time(1), Model = r.NullableString(2), ModelVersion = r.NullableString(3), Samples = (int)n,
                    Fps = r.NullableDouble(5) / n, LatencyP50Ms = r.NullableDouble(6) / n, LatencyP95Ms = r.NullableDouble(7), LatencyP99Ms = r.NullableDouble(8),
                    FramesInferred = r.NullableLong(9), FramesDropped = r.NullableLong(10), Errors = r.NullableLong(11), CpuPercent = r.NullableDouble(12) / n,
                    MemUsedBytes = r.NullableLong(13), TemperatureC = r.NullableDouble(14),
                    MeanConfidence = r.Long(16) > 0 ? r.NullableDouble(15) / r.Long(16) : null,
                });
            },
            ("@from", filter.From / 60_000 * 60_000), ("@to", filter.To), ("@device", filter.Device), ("@model", filter.Model), ("@version", filter.Version),
            ("@cts", after.Ts), ("@cdev", after.Device), ("@limit", limit)).ConfigureAwait(false);
    }

    public async Task<List<(string Cursor, DriftReportInfo Report)>> DriftAsync(Filter filter, string? severity, Cursor after, int limit)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("""
            SELECT device_id, seq, ts, model, model_version, severity, window_frames, report FROM drift_reports
            WHERE ts >= @from AND ts < @to AND (CAST(@device AS TEXT) IS NULL OR device_id = @device) AND (CAST(@model AS TEXT) IS NULL OR model = @model)
              AND (CAST(@version AS TEXT) IS NULL OR model_version = @version) AND (CAST(@severity AS TEXT) IS NULL OR severity = @severity)
              AND (ts > @cts OR (ts = @cts AND (device_id > @cdev OR (device_id = @cdev AND seq > @cseq))))
            ORDER BY ts, device_id, seq LIMIT @limit
            """,
            r => (string.Create(CultureInfo.InvariantCulture, $"{r.Long(2)}:{r.GetString(0)}:{r.Long(1)}"), new DriftReportInfo
            {
                DeviceId = r.GetString(0), Seq = r.Long(1), Ts = r.Time(2), Model = r.NullableString(3), ModelVersion = r.NullableString(4), Severity = r.GetString(5),
                WindowFrames = r.NullableLong(6) ?? 0, Report = JsonDocument.Parse(r.GetString(7)).RootElement.Clone(),
            }),
            ("@from", filter.From), ("@to", filter.To), ("@device", filter.Device), ("@model", filter.Model), ("@version", filter.Version), ("@severity", severity),
            ("@cts", after.Ts), ("@cdev", after.Device), ("@cseq", after.Seq), ("@limit", limit)).ConfigureAwait(false);
    }

    /// <summary>
    /// Events of <paramref name="types"/>: each matches itself and its sub-types (<c>update</c> matches
    /// <c>update.committed</c>), and one ending in '.' is a prefix. <paramref name="after"/> null: from the first
    /// (or, <paramref name="descending"/>, the newest).
    /// </summary>
    public async Task<List<(string Cursor, EventInfo Event)>> EventsAsync(Filter filter, IReadOnlyList<string> types, bool descending, Cursor? after, int limit)
    {
        ArgumentNullException.ThrowIfNull(types);
        var parameters = new List<(string, object?)> { ("@from", filter.From), ("@to", filter.To), ("@device", filter.Device), ("@limit", limit) };
        var typeFilter = "";
        if (types.Count > 0)
        {
            var clauses = new List<string>();
            for (var i = 0; i < types.Count; i++)
            {
                var t = types[i];
                var like = Like(t.EndsWith('.') ? t : t + ".");
                parameters.Add(($"@p{i}", like + "%"));
                if (t.EndsWith('.'))
                {
                    clauses.Add($"type LIKE @p{i} ESCAPE '\\'");
                }
                else
                {
                    parameters.Add(($"@t{i}", t));
                    clauses.Add($"type = @t{i} OR type LIKE @p{i} ESCAPE '\\'");
                }
            }

            typeFilter = $" AND ({string.Join(" OR ", clauses)})";
        }

        var cursorFilter = "";
        if (after is { } c)
        {
            var op = descending ? "<" : ">";
            cursorFilter = $" AND (ts {op} @cts OR (ts = @cts AND (device_id {op} @cdev OR (device_id = @cdev AND seq {op} @cseq))))";
            parameters.AddRange([("@cts", c.Ts), ("@cdev", c.Device), ("@cseq", c.Seq)]);
        }

        var direction = descending ? "DESC" : "ASC";
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync($"""
            SELECT device_id, seq, ts, type, level, message, data FROM events
            WHERE ts >= @from AND ts < @to AND (CAST(@device AS TEXT) IS NULL OR device_id = @device){typeFilter}{cursorFilter}
            ORDER BY ts {direction}, device_id {direction}, seq {direction} LIMIT @limit
            """,
            r => (string.Create(CultureInfo.InvariantCulture, $"{r.Long(2)}:{r.GetString(0)}:{r.Long(1)}"), new EventInfo
            {
                DeviceId = r.GetString(0), Seq = r.Long(1), Ts = r.Time(2), Type = r.GetString(3), Level = r.NullableString(4), Message = r.NullableString(5),
                Data = r.NullableString(6) is { } json ? JsonSerializer.Deserialize(json, Ingestion.DictionaryContext.Default.IReadOnlyDictionaryStringString) : null,
            }),
            [.. parameters]).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes raw telemetry, drift reports and events before <paramref name="rawBefore"/> and rollups before
    /// <paramref name="rollupBefore"/> (Unix milliseconds), device by device so that a large backlog never holds a
    /// long write lock on SQLite; returns the rows deleted.
    /// </summary>
    public async Task<long> PruneAsync(long rawBefore, long rollupBefore, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var devices = await connection.QueryAsync("SELECT DISTINCT device_id FROM telemetry_1m", r => r.GetString(0)).ConfigureAwait(false);
        long deleted = 0;
        foreach (var device in devices)
        {
            cancellationToken.ThrowIfCancellationRequested();
            deleted += await connection.ExecuteAsync("DELETE FROM telemetry WHERE device_id = @d AND ts < @t", ("@d", device), ("@t", rawBefore)).ConfigureAwait(false);
            deleted += await connection.ExecuteAsync("DELETE FROM telemetry_1m WHERE device_id = @d AND minute < @t", ("@d", device), ("@t", rollupBefore)).ConfigureAwait(false);
        }

        deleted += await connection.ExecuteAsync("DELETE FROM drift_reports WHERE ts < @t", ("@t", rawBefore)).ConfigureAwait(false);
        deleted += await connection.ExecuteAsync("DELETE FROM events WHERE ts < @t", ("@t", rawBefore)).ConfigureAwait(false);
        return deleted;
    }

    /// <summary>A LIKE pattern matching <paramref name="text"/> literally (with <c>ESCAPE '\'</c>): '_' is common in event types.</summary>
    private static string Like(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}
