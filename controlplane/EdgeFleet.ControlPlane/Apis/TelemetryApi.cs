using System.Globalization;
using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Telemetry;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// Telemetry, drift and event queries: per device or per model version, over a time range (default: the last hour),
/// raw or as 1-minute rollups; pages are cursor-based (<c>after</c>). The SQL is <see cref="TelemetryStore"/>'s.
/// </summary>
public static class TelemetryApi
{
    public static RouteGroupBuilder MapTelemetryApi(this RouteGroupBuilder api)
    {
        api.MapGet("/telemetry", QueryTelemetryAsync).WithTags("Telemetry")
            .WithDescription("?device=ID or ?model=NAME[&version=V]; from, to (RFC 3339); resolution=raw|1m; limit; after (cursor)");
        api.MapGet("/devices/{id}/telemetry", (string id, DateTimeOffset? from, DateTimeOffset? to, string? resolution, int? limit, string? after, TelemetryStore store, TimeProvider time) =>
            QueryTelemetryAsync(id, null, null, from, to, resolution, limit, after, store, time)).WithTags("Telemetry");
        api.MapGet("/drift", QueryDriftAsync).WithTags("Drift");
        api.MapGet("/devices/{id}/drift", (string id, DateTimeOffset? from, DateTimeOffset? to, string? severity, int? limit, string? after, TelemetryStore store, TimeProvider time) =>
            QueryDriftAsync(id, null, null, from, to, severity, limit, after, store, time)).WithTags("Drift");
        api.MapGet("/events", QueryEventsAsync).WithTags("Events")
            .WithDescription("?device=ID; type=T[,T…] (each matches itself and its sub-types; 'update.' ending in a dot is a prefix); from, to; order=asc|desc; limit; after");
        api.MapGet("/devices/{id}/events", (string id, DateTimeOffset? from, DateTimeOffset? to, string? type, int? limit, string? after, string? order, TelemetryStore store,
            TimeProvider time) => QueryEventsAsync(id, from, to, type, limit, after, order, store, time)).WithTags("Events")
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
    private static TelemetryStore.Cursor Cursor(string? after)
    {
        if (after is null)
        {
            return TelemetryStore.Cursor.Start;
        }

        var parts = after.Split(':');
        return parts.Length == 3 && long.TryParse(parts[0], CultureInfo.InvariantCulture, out var ts) && DeviceRegistry.IsValidDeviceId(parts[1])
            && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var seq)
            ? new TelemetryStore.Cursor(ts, parts[1], seq)
            : throw ApiProblem.Invalid("after", "is not a cursor returned by a previous page");
    }

    private static async Task<IResult> QueryTelemetryAsync(string? device, string? model, string? version, DateTimeOffset? from, DateTimeOffset? to,
        string? resolution, int? limit, string? after, TelemetryStore store, TimeProvider time)
    {
        CheckDevice(device);
        CheckModel(model, version);
        var (start, end) = Range(from, to, time);
        var max = AdminApi.Limit(limit);
        var cursor = Cursor(after);
        var filter = new TelemetryStore.Filter(start, end, device, model, version);
        List<(string Cursor, TelemetryPoint Point)> rows;
        if (resolution is null or "raw")
        {
            rows = await store.RawAsync(filter, cursor, max + 1);
        }
        else if (resolution == "1m")
        {
            rows = await store.RollupAsync(filter, cursor, max + 1);
        }
        else
        {
            throw ApiProblem.Invalid("resolution", "must be raw or 1m");
        }

        return TypedResults.Ok(new Page<TelemetryPoint> { Items = rows.Take(max).Select(r => r.Point).ToList(), Next = rows.Count > max ? rows[max - 1].Cursor : null });
    }

    private static async Task<IResult> QueryDriftAsync(string? device, string? model, string? version, DateTimeOffset? from, DateTimeOffset? to, string? severity,
        int? limit, string? after, TelemetryStore store, TimeProvider time)
    {
        CheckDevice(device);
        CheckModel(model, version);
        if (severity is not (null or "none" or "warn" or "alert"))
        {
            throw ApiProblem.Invalid("severity", "must be none, warn or alert");
        }

        var (start, end) = Range(from, to, time);
        var max = AdminApi.Limit(limit);
        var rows = await store.DriftAsync(new TelemetryStore.Filter(start, end, device, model, version), severity, Cursor(after), max + 1);
        return TypedResults.Ok(new Page<DriftReportInfo> { Items = rows.Take(max).Select(r => r.Item2).ToList(), Next = rows.Count > max ? rows[max - 1].Item1 : null });
    }

    /// <summary>
    /// <c>type</c>: one or more types, comma-separated; each matches itself and its sub-types (<c>update</c> matches
    /// <c>update.committed</c>), and one ending in '.' is a prefix (<c>update.</c>: every update event).
    /// <c>order=desc</c> pages from the newest.
    /// </summary>
    private static async Task<IResult> QueryEventsAsync(string? device, DateTimeOffset? from, DateTimeOffset? to, string? type, int? limit, string? after,
        string? order, TelemetryStore store, TimeProvider time)
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
        var cursor = after is null ? (TelemetryStore.Cursor?)null : Cursor(after);
        var rows = await store.EventsAsync(new TelemetryStore.Filter(start, end, device), types, descending, cursor, max + 1);
        return TypedResults.Ok(new Page<EventInfo> { Items = rows.Take(max).Select(r => r.Item2).ToList(), Next = rows.Count > max ? rows[max - 1].Item1 : null });
    }
}
