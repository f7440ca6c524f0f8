using System.Data.Common;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>
/// The one place that writes <c>device_assignments</c> (one current row per device: the desired message exactly as
/// published, who issued it and when). Direct assignments, rollouts and production reconciliation all go through it.
/// One writer prepares its statement once and is reused for many devices in one transaction.
/// </summary>
internal sealed class AssignmentRows : IDisposable
{
    private const string UpsertSql = """
        INSERT INTO device_assignments(device_id, assignment_id, desired, model, version, mode, issued_at, issued_by)
        VALUES (@d, @id, @json, @m, @v, @mode, @at, @by)
        ON CONFLICT(device_id) DO UPDATE SET assignment_id = excluded.assignment_id, desired = excluded.desired, model = excluded.model,
          version = excluded.version, mode = excluded.mode, issued_at = excluded.issued_at, issued_by = excluded.issued_by
        """;

    private readonly DbCommand _upsert;

    /// <param name="connection">An open connection.</param>
    /// <param name="transaction">The transaction the rows belong to, if any.</param>
    /// <param name="issuedBy">Who issues them (an actor, <c>rollout ID</c>, <c>production</c>).</param>
    /// <param name="issuedAt">When.</param>
    /// <param name="onlyOverOwn">Replace a device's row only when the same issuer wrote it (a device assigned by
    /// someone else keeps that assignment).</param>
    public AssignmentRows(DbConnection connection, DbTransaction? transaction, string issuedBy, DateTimeOffset issuedAt, bool onlyOverOwn = false)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _upsert = connection.Command(onlyOverOwn ? UpsertSql + "\nWHERE device_assignments.issued_by = @by" : UpsertSql,
            ("@d", ""), ("@id", ""), ("@json", ""), ("@m", ""), ("@v", ""), ("@mode", ""), ("@at", issuedAt.ToUnixTimeMilliseconds()), ("@by", issuedBy));
        _upsert.Transaction = transaction;
    }

    /// <summary>Stores <paramref name="desiredJson"/> as the device's current assignment; 0 when <c>onlyOverOwn</c> kept another issuer's row.</summary>
    public async Task<int> UpsertAsync(string deviceId, string? assignmentId, string desiredJson, string model, string version, string mode)
    {
        _upsert.Parameters["@d"].Value = deviceId;
        _upsert.Parameters["@id"].Value = (object?)assignmentId ?? DBNull.Value;
        _upsert.Parameters["@json"].Value = desiredJson;
        _upsert.Parameters["@m"].Value = model;
        _upsert.Parameters["@v"].Value = version;
        _upsert.Parameters["@mode"].Value = mode;
        return await _upsert.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Removes the device's assignment; with <paramref name="issuedBy"/> (and <paramref name="assignmentId"/>) only when
    /// that issuer (that assignment) is the current one. Returns how many rows went (0 or 1).
    /// </summary>
    public static Task<int> DeleteAsync(DbConnection connection, DbTransaction? transaction, string deviceId, string? issuedBy = null, string? assignmentId = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var sql = "DELETE FROM device_assignments WHERE device_id = @d"
            + (issuedBy is null ? "" : " AND issued_by = @by")
            + (assignmentId is null ? "" : " AND assignment_id = @id");
        return connection.ExecuteAsync(transaction, sql, ("@d", deviceId), ("@by", issuedBy), ("@id", assignmentId));
    }

    public void Dispose() => _upsert.Dispose();
}
