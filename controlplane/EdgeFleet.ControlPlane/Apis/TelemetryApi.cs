using System.Globalization;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// Telemetry, drift and event queries: per device or per model version, over a time range (default: the last hour),
/// raw or as 1-minute rollups; pages are cursor-based (<c>after</c>).
/// </summary>
public static class TelemetryApi
{
    public static RouteGroupBuilder MapTelemetryApi(this RouteGroupBuilder api)
    {
        api.MapGet("/telemetry", QueryTelemetryAsync).WithTags("Telemetry")
            .WithDescription("?device=ID or ?model=NAME[&version=V]; from, to (RFC 3339); resolution=raw|1m; limit; after (cursor)");
        api.MapGet("/devices/{id}/telemetry", (string id, DateTimeOffset? from, DateTimeOffset? to, string? resolution, int? limit, string? after, Database db, TimeProvider time) =>
            QueryTelemetryAsync(id, null, null, from, to, resolution, limit, after, db, time)).WithTags("Telemetry");
        api.MapGet("/drift", QueryDriftAsync).WithTags("Drift");
        api.MapGet("/devices/{id}/drift", (string id, DateTimeOffset? from, DateTimeOffset? to, string? severity, int? limit, string? after, Database db, TimeProvider time) =>
            QueryDriftAsync(id, null, null, from, to, severity, limit, after, db, time)).WithTags("Drift");
        api.MapGet("/events", QueryEventsAsync).WithTags("Events")
            .WithDescription("?device=ID; type=T[,T…] (each matches itself and its sub-types; 'update.' ending in a dot is a prefix); from, to; order=asc|desc; limit; after");
        api.MapGet("/devices/{id}/events", (string id, DateTimeOffset? from, DateTimeOffset? to, string? type, int? limit, string? after, string? order, Database db,
            TimeProvider time) => QueryEventsAsync(id, from, to, type, limit, after, order, db, time)).WithTags("Events")
            .WithDescription("type=T[,T…] (each matches itself and its sub-types; 'update.' ending in a dot is a prefix); from, to; order=asc|desc; limit; after");
        return api;
    }

    private static (long From, long To) Range(DateTimeOffset? from, DateTimeOffset? to, TimeProvider time)
    {
        var end = to ?? time.GetUtcNow();
        var start = from ?? (end - DateTimeOffset.MinValue < TimeSpan.FromHours(1) ? DateTimeOffset.MinValue : end.AddHours(-1));
        return start > end
            ? throw ApiProblem.Invalid("from", $"must not be after 'to' ({start:O} > {end:O}{(to is null ? ", now" : "")})")
            : (start.ToUnixTimeMilliseconds(), end.ToUnixTimeMilliseconds());
    }

    private static void CheckDevice(string? device)
    {
        if (device is not null && !DeviceRegistry.IsValidDeviceId(device))
        {
            throw ApiProblem.Invalid("device", $"'{Input.Quote(device)}' is not a valid device id (1–63 of a-z 0-9 -, starting with a letter or digit)");
        }
    }

    private static void CheckModel(string? model, string? version)
    {
        if (model is not null)
        {
            ModelRegistry.ValidateName(model, "model");
        }

        if (version is not null)
        {
            ModelRegistry.ValidateVersion(version, "version");
        }
    }

    /// <summary>Cursor "ts:device:seq" (raw) or "minute:device" (rollup): stable order even when timestamps tie.</summary>
    private static (long Ts, string Device, long Seq) Cursor(string? after)
    {
        if (after is null)
        {
            return (long.MinValue, "", long.MinValue);
        }

        var parts = after.Split(':');
        return parts.Length == 3 && long.TryParse(parts[0], CultureInfo.InvariantCulture, out var ts) && DeviceRegistry.IsValidDeviceId(parts[1])
            && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var seq)
            ? (ts, parts[1], seq)
            : throw ApiProblem.Invalid("after", "is not a cursor returned by a previous page");
    }

    private static async Task<IResult> QueryTelemetryAsync(string? device, string? model, string? version, DateTimeOffset? from, DateTimeOffset? to,
        string? resolution, int? limit, string? after, Database db, TimeProvider time)
    {
        CheckDevice(device);
        CheckModel(model, version);
        var (start, end) = Range(from, to, time);
        var max = AdminApi.Limit(limit);
        var (cts, cdev, cseq) = Cursor(after);
        await using var connection = await db.OpenAsync();
        List<(string Cursor, TelemetryPoint Point)> rows;
        if (resolution is null or "raw")
        {
            rows = await connection.QueryAsync("""
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
                ("@from", start), ("@to", end), ("@device", device), ("@model", model), ("@version", version), ("@cts", cts), ("@cdev", cdev), ("@cseq", cseq),
                ("@limit", max + 1));
        }
        else if (resolution == "1m")
        {
            rows = await connection.QueryAsync("""
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
                ("@from", start / 60_000 * 60_000), ("@to", end), ("@device", device), ("@model", model), ("@version", version), ("@cts", cts), ("@cdev", cdev),
                ("@limit", max + 1));
        }
        else
        {
            throw ApiProblem.Invalid("resolution", "must be raw or 1m");
        }

        return TypedResults.Ok(new Page<TelemetryPoint> { Items = rows.Take(max).Select(r => r.Point).ToList(), Next = rows.Count > max ? rows[max - 1].Cursor : null });
    }

    private static async Task<IResult> QueryDriftAsync(string? device, string? model, string? version, DateTimeOffset? from, DateTimeOffset? to, string? severity,
        int? limit, string? after, Database db, TimeProvider time)
    {
        CheckDevice(device);
        CheckModel(model, version);
        if (severity is not (null or "none" or "warn" or "alert"))
        {
            throw ApiProblem.Invalid("severity", "must be none, warn or alert");
        }

        var (start, end) = Range(from, to, time);
        var max = AdminApi.Limit(limit);
        var (cts, cdev, cseq) = Cursor(after);
        await using var connection = await db.OpenAsync();
        var rows = await connection.QueryAsync("""
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
            ("@from", start), ("@to", end), ("@device", device), ("@model", model), ("@version", version), ("@severity", severity), ("@cts", cts), ("@cdev", cdev),
            ("@cseq", cseq), ("@limit", max + 1));
        return TypedResults.Ok(new Page<DriftReportInfo> { Items = rows.Take(max).Select(r => r.Item2).ToList(), Next = rows.Count > max ? rows[max - 1].Item1 : null });
    }

    /// <summary>
    /// <c>type</c>: one or more types, comma-separated; each matches itself and its sub-types (<c>update</c> matches
    /// <c>update.committed</c>), and one ending in '.' is a prefix (<c>update.</c>: every update event).
    /// <c>order=desc</c> pages from the newest.
    /// </summary>
    private static async Task<IResult> QueryEventsAsync(string? device, DateTimeOffset? from, DateTimeOffset? to, string? type, int? limit, string? after,
        string? order, Database db, TimeProvider time)
    {
        CheckDevice(device);
        Input.Text(type, "type", 1000);
        var types = type?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (types.Length > 20)
        {
            throw ApiProblem.Invalid("type", $"at most 20 types (got {types.Length})");
        }

        if (types.FirstOrDefault(t => t.Length > 100) is { } longType)
        {
            throw ApiProblem.Invalid("type", $"'{Input.Quote(longType)}' is longer than 100 characters");
        }

        var descending = order switch
        {
            null or "asc" => false,
            "desc" => true,
            _ => throw ApiProblem.Invalid("order", $"'{Input.Quote(order)}' is not asc or desc"),
        };
        var (start, end) = Range(from, to, time);
        var max = AdminApi.Limit(limit);
        var (cts, cdev, cseq) = Cursor(after);
        var parameters = new List<(string, object?)> { ("@from", start), ("@to", end), ("@device", device), ("@limit", max + 1) };
        var typeFilter = "";
        if (types.Length > 0)
        {
            var clauses = new List<string>();
            for (var i = 0; i < types.Length; i++)
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
        if (after is not null)
        {
            var op = descending ? "<" : ">";
            cursorFilter = $" AND (ts {op} @cts OR (ts = @cts AND (device_id {op} @cdev OR (device_id = @cdev AND seq {op} @cseq))))";
            parameters.AddRange([("@cts", cts), ("@cdev", cdev), ("@cseq", cseq)]);
        }

        var direction = descending ? "DESC" : "ASC";
        await using var connection = await db.OpenAsync();
        var rows = await connection.QueryAsync($"""
            SELECT device_id, seq, ts, type, level, message, data FROM events
            WHERE ts >= @from AND ts < @to AND (CAST(@device AS TEXT) IS NULL OR device_id = @device){typeFilter}{cursorFilter}
            ORDER BY ts {direction}, device_id {direction}, seq {direction} LIMIT @limit
            """,
            r => (string.Create(CultureInfo.InvariantCulture, $"{r.Long(2)}:{r.GetString(0)}:{r.Long(1)}"), new EventInfo
            {
                DeviceId = r.GetString(0), Seq = r.Long(1), Ts = r.Time(2), Type = r.GetString(3), Level = r.NullableString(4), Message = r.NullableString(5),
                Data = r.NullableString(6) is { } json ? JsonSerializer.Deserialize(json, Ingestion.DictionaryContext.Default.IReadOnlyDictionaryStringString) : null,
            }),
            [.. parameters]);
        return TypedResults.Ok(new Page<EventInfo> { Items = rows.Take(max).Select(r => r.Item2).ToList(), Next = rows.Count > max ? rows[max - 1].Item1 : null });
    }

    /// <summary>A LIKE pattern matching <paramref name="text"/> literally (with <c>ESCAPE '\'</c>): '_' is common in event types.</summary>
    private static string Like(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}
