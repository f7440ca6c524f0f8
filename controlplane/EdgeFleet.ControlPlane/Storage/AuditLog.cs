using System.Data.Common;
using EdgeFleet.Contracts.Api;

namespace EdgeFleet.ControlPlane.Storage;

/// <summary>Who did what to which object, when and why. Written in the same transaction as the change.</summary>
public sealed class AuditLog(Database database, TimeProvider time)
{
    public Task WriteAsync(DbConnection connection, DbTransaction? transaction, string actor, string action, string target, string? details = null) =>
        connection.ExecuteAsync(transaction,
            "INSERT INTO audit_log(at, actor, action, target, details) VALUES (@at, @actor, @action, @target, @details)",
            ("@at", time.GetUtcNow().ToUnixTimeMilliseconds()), ("@actor", actor), ("@action", action), ("@target", target), ("@details", details));

    public async Task WriteAsync(string actor, string action, string target, string? details = null)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await WriteAsync(connection, null, actor, action, target, details).ConfigureAwait(false);
    }

    public async Task<Page<AuditEntry>> QueryAsync(DateTimeOffset? from, DateTimeOffset? to, string? target, long? after, int limit)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var rows = await connection.QueryAsync("""
            SELECT id, at, actor, action, target, details FROM audit_log
            WHERE at >= @from AND at < @to AND (CAST(@target AS TEXT) IS NULL OR target = @target OR target LIKE @prefix) AND id > @after
            ORDER BY id LIMIT @limit
            """,
            r => (Id: r.Long(0), Entry: new AuditEntry { At = r.Time(1), Actor = r.GetString(2), Action = r.GetString(3), Target = r.GetString(4), Details = r.NullableString(5) }),
            ("@from", (from ?? DateTimeOffset.UnixEpoch).ToUnixTimeMilliseconds()), ("@to", (to ?? DateTimeOffset.MaxValue).ToUnixTimeMilliseconds()),
            ("@target", target), ("@prefix", target is null ? null : target + "/%"), ("@after", after ?? 0), ("@limit", limit + 1)).ConfigureAwait(false);
        return new Page<AuditEntry>
        {
            Items = rows.Take(limit).Select(r => r.Entry).ToList(),
            Next = rows.Count > limit ? rows[limit - 1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null,
        };
    }
}
