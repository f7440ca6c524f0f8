using System.Data.Common;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.ControlPlane.Storage;

/// <summary>
/// One schema for both databases, applied as numbered migrations recorded in <c>schema_migrations</c>. A migration
/// is written once; <c>{id}</c> and <c>{real}</c> become each database's type names. On PostgreSQL an
/// advisory lock keeps replicas that start together from migrating twice. Times are Unix milliseconds (BIGINT).
/// </summary>
public static partial class Migrations
{
    private static readonly (int Version, string Name, string Sql)[] All =
    [
        (1, "initial", """
            CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);

            CREATE TABLE api_tokens(
              id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
              created_at BIGINT NOT NULL, last_used_at BIGINT, revoked INTEGER NOT NULL DEFAULT 0);

            CREATE TABLE models(name TEXT PRIMARY KEY, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);

            CREATE TABLE artifacts(sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, created_at BIGINT NOT NULL);

            CREATE TABLE model_versions(
              name TEXT NOT NULL REFERENCES models(name), version TEXT NOT NULL,
              major BIGINT NOT NULL, minor BIGINT NOT NULL, patch BIGINT NOT NULL, prerelease TEXT,
              stage TEXT NOT NULL, task TEXT NOT NULL, description TEXT,
              sha256 TEXT NOT NULL REFERENCES artifacts(sha256), size BIGINT NOT NULL,
              manifest TEXT NOT NULL, metadata TEXT, drift_profile TEXT,
              created_by TEXT, created_at BIGINT NOT NULL,
              PRIMARY KEY(name, version));

            CREATE TABLE stage_history(
              id {id}, name TEXT NOT NULL, version TEXT NOT NULL, from_stage TEXT NOT NULL, to_stage TEXT NOT NULL,
              actor TEXT, reason TEXT, at BIGINT NOT NULL);
            CREATE INDEX stage_history_model ON stage_history(name, at);

            CREATE TABLE enrollment_tokens(
              id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, tags TEXT NOT NULL, expires_at BIGINT NOT NULL,
              max_uses INTEGER, uses INTEGER NOT NULL DEFAULT 0, description TEXT, created_by TEXT,
              created_at BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);

            CREATE TABLE devices(
              id TEXT PRIMARY KEY, mqtt_password_hash TEXT NOT NULL, enrolled_at BIGINT NOT NULL,
              enrollment_token_id TEXT, revoked INTEGER NOT NULL DEFAULT 0, revoked_at BIGINT,
              online INTEGER NOT NULL DEFAULT 0, last_seen BIGINT, agent_version TEXT,
              model_name TEXT, model_version TEXT, started_at BIGINT,
              health TEXT, health_at BIGINT, drift_severity TEXT,
              first_seq BIGINT, max_seq BIGINT NOT NULL DEFAULT 0, received BIGINT NOT NULL DEFAULT 0,
              invalid BIGINT NOT NULL DEFAULT 0, status_at BIGINT);

            CREATE TABLE device_tags(
              device_id TEXT NOT NULL REFERENCES devices(id), tag TEXT NOT NULL, PRIMARY KEY(device_id, tag));
            CREATE INDEX device_tags_tag ON device_tags(tag);

            CREATE TABLE telemetry(
              device_id TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, model TEXT, model_version TEXT,
              fps {real}, p50 {real}, p95 {real}, p99 {real}, inferred BIGINT, dropped BIGINT, errors BIGINT,
              cpu {real}, mem BIGINT, temp {real}, confidence {real},
              PRIMARY KEY(device_id, seq)){without_rowid};
            CREATE INDEX telemetry_device_ts ON telemetry(device_id, ts);

            CREATE TABLE telemetry_1m(
              device_id TEXT NOT NULL, minute BIGINT NOT NULL, model TEXT, model_version TEXT,
              samples INTEGER NOT NULL, fps_sum {real}, p50_sum {real}, p95_max {real}, p99_max {real},
              inferred BIGINT, dropped BIGINT, errors BIGINT, cpu_sum {real}, mem_max BIGINT, temp_max {real},
              confidence_sum {real}, confidence_n INTEGER NOT NULL DEFAULT 0,
              PRIMARY KEY(device_id, minute)){without_rowid};
            CREATE INDEX telemetry_1m_model ON telemetry_1m(model, model_version, minute);

            CREATE TABLE drift_reports(
              device_id TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, model TEXT, model_version TEXT,
              severity TEXT NOT NULL, window_frames BIGINT, report TEXT NOT NULL,
              PRIMARY KEY(device_id, seq)){without_rowid};
            CREATE INDEX drift_reports_model ON drift_reports(model, model_version, ts);
            CREATE INDEX drift_reports_ts ON drift_reports(ts);

            CREATE TABLE events(
              device_id TEXT NOT NULL, seq BIGINT NOT NULL, ts BIGINT NOT NULL, type TEXT NOT NULL,
              level TEXT, message TEXT, data TEXT,
              PRIMARY KEY(device_id, seq)){without_rowid};
            CREATE INDEX events_ts ON events(ts);

            CREATE TABLE audit_log(
              id {id}, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
              details TEXT);
            CREATE INDEX audit_log_at ON audit_log(at);
            """),
        (2, "ota", """
            ALTER TABLE model_versions ADD COLUMN manifest_signature TEXT;
            ALTER TABLE model_versions ADD COLUMN manifest_key_id TEXT;

            ALTER TABLE devices ADD COLUMN http_token_hash TEXT;
            CREATE UNIQUE INDEX devices_http_token ON devices(http_token_hash);

            CREATE TABLE device_assignments(
              device_id TEXT PRIMARY KEY, assignment_id TEXT NOT NULL, desired TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
              mode TEXT NOT NULL, issued_at BIGINT NOT NULL, issued_by TEXT NOT NULL);

            CREATE TABLE device_ota(
              device_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, ts BIGINT NOT NULL, state TEXT NOT NULL,
              model TEXT, version TEXT, mode TEXT, reason TEXT);
            """),
        (3, "rollouts", """
            ALTER TABLE telemetry ADD COLUMN nonfinite BIGINT;
            ALTER TABLE device_ota ADD COLUMN desired_id TEXT;
            ALTER TABLE device_ota ADD COLUMN rollout_id TEXT;
            ALTER TABLE device_ota ADD COLUMN agreement {real};

            CREATE TABLE rollouts(
              id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
              stage INTEGER NOT NULL, spec TEXT NOT NULL, row_version BIGINT NOT NULL DEFAULT 0, paused_by_gate INTEGER NOT NULL DEFAULT 0,
              created_by TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, finished_at BIGINT);
            CREATE INDEX rollouts_state ON rollouts(state);

            CREATE TABLE rollout_stages(
              rollout_id TEXT NOT NULL REFERENCES rollouts(id), stage INTEGER NOT NULL, state TEXT NOT NULL,
              started_at BIGINT, bake_started_at BIGINT, finished_at BIGINT, looks INTEGER NOT NULL DEFAULT 0,
              approved_by TEXT, alpha TEXT, delivery TEXT,
              PRIMARY KEY(rollout_id, stage));

            CREATE TABLE rollout_devices(
              rollout_id TEXT NOT NULL REFERENCES rollouts(id), device_id TEXT NOT NULL, order_key TEXT NOT NULL,
              stage INTEGER NOT NULL, state TEXT NOT NULL, desired_id TEXT, desired TEXT,
              previous_model TEXT, previous_version TEXT, stratum TEXT,
              notified_at BIGINT, deadline_at BIGINT, finished_at BIGINT, reason TEXT,
              PRIMARY KEY(rollout_id, device_id));
            CREATE INDEX rollout_devices_order ON rollout_devices(rollout_id, stage, order_key);
            CREATE INDEX rollout_devices_device ON rollout_devices(device_id, state);

            CREATE TABLE rollout_verdicts(
              id {id}, rollout_id TEXT NOT NULL REFERENCES rollouts(id), stage INTEGER NOT NULL, gate TEXT NOT NULL,
              look INTEGER NOT NULL, at BIGINT NOT NULL, outcome TEXT NOT NULL, dry_run INTEGER NOT NULL,
              alpha_spent {real}, summary TEXT, evidence TEXT);
            CREATE INDEX rollout_verdicts_rollout ON rollout_verdicts(rollout_id, stage, gate, look);

            CREATE TABLE deployments(
              id {id}, device_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
              from_ts BIGINT NOT NULL, to_ts BIGINT, rollout_id TEXT);
            CREATE INDEX deployments_device ON deployments(device_id, from_ts);
            """),
    ];

    /// <summary>The newest schema version this build knows.</summary>
    public static int Latest => All[^1].Version;

    public static async Task<int> ApplyAsync(Database database, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(time);
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (database.Dialect == SqlDialect.Postgres)
        {
            await connection.ExecuteAsync("SELECT pg_advisory_lock(727274)").ConfigureAwait(false);
        }

        try
        {
            await connection.ExecuteAsync(
                "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
                .ConfigureAwait(false);
            var current = Convert.ToInt32(await connection.ScalarAsync("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").ConfigureAwait(false),
                System.Globalization.CultureInfo.InvariantCulture);
            if (current > Latest)
            {
                throw new InvalidOperationException(
                    $"the database ({database.Display}) has schema version {current}, newer than this control plane knows ({Latest}): upgrade the control plane");
            }

            var applied = 0;
            foreach (var (version, name, sql) in All.Where(m => m.Version > current))
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                foreach (var statement in Translate(sql, database.Dialect).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    await connection.ExecuteAsync(tx, statement).ConfigureAwait(false);
                }

                await connection.ExecuteAsync(tx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES (@v, @n, @t)",
                    ("@v", version), ("@n", name), ("@t", time.GetUtcNow().ToUnixTimeMilliseconds())).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                LogApplied(logger, version, name, database.Display);
                applied++;
            }

            return applied;
        }
        finally
        {
            if (database.Dialect == SqlDialect.Postgres)
            {
                await connection.ExecuteAsync("SELECT pg_advisory_unlock(727274)").ConfigureAwait(false);
            }
        }
    }

    internal static string Translate(string sql, SqlDialect dialect) => dialect switch
    {
        SqlDialect.Postgres => sql.Replace("{id}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", StringComparison.Ordinal)
            .Replace("{real}", "DOUBLE PRECISION", StringComparison.Ordinal)
            .Replace("{without_rowid}", "", StringComparison.Ordinal),
        _ => sql.Replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT", StringComparison.Ordinal)
            .Replace("{real}", "REAL", StringComparison.Ordinal)
            .Replace("{without_rowid}", " WITHOUT ROWID", StringComparison.Ordinal),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Database migration {Version} ({Name}) applied to {Database}")]
    private static partial void LogApplied(ILogger logger, int version, string name, string database);
}
