using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>
/// The rollout aggregate in the database: the rollout row (with its plan as JSON and a row version for optimistic
/// concurrency), its stages, its devices and its gate verdicts. Every change of one rollout is one transaction.
/// </summary>
public sealed class RolloutStore(Database database, Live.LiveEvents? liveEvents = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>A device that may take part in a rollout: its id and hardware stratum.</summary>
    public sealed record Candidate(string DeviceId, string? Stratum);

    /// <summary>Devices the plan selects (tags all matching, plus explicit ids), not revoked; unknown explicit ids are named.</summary>
    public async Task<(List<Candidate> Devices, List<string> Unknown)> SelectAsync(RolloutPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var all = await connection.QueryAsync("SELECT id FROM devices WHERE revoked = 0", r => r.GetString(0)).ConfigureAwait(false);
        var tags = (await connection.QueryAsync("SELECT t.device_id, t.tag FROM device_tags t JOIN devices d ON d.id = t.device_id WHERE d.revoked = 0",
            r => (Device: r.GetString(0), Tag: r.GetString(1))).ConfigureAwait(false)).ToLookup(t => t.Device, t => t.Tag, StringComparer.Ordinal);
        var known = all.ToHashSet(StringComparer.Ordinal);
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        if (plan.Selector.Count > 0 || plan.Devices.Count == 0)
        {
            foreach (var id in all)
            {
                var mine = tags[id].ToHashSet(StringComparer.Ordinal);
                if (plan.Selector.All(mine.Contains))
                {
                    chosen.Add(id);
                }
            }
        }

        var unknown = plan.Devices.Where(d => !known.Contains(d)).ToList();
        chosen.UnionWith(plan.Devices.Where(known.Contains));
        var prefix = plan.StratifyBy + "=";
        return (chosen.Select(id => new Candidate(id, plan.StratifyBy.Length == 0 ? null
            : tags[id].FirstOrDefault(t => t.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..])).ToList(), unknown);
    }

    /// <summary>
    /// Stores a new rollout with its devices in rollout order and their stages. Devices in another active rollout make it
    /// a conflict, unless <paramref name="supersede"/> takes them out of that one.
    /// </summary>
    public async Task CreateAsync(string id, RolloutPlan plan, IReadOnlyList<Candidate> devices, bool supersede, string actor, string? reason, AuditLog audit,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(devices);
        ArgumentNullException.ThrowIfNull(audit);
        var ordered = devices.Select(d => (d.DeviceId, d.Stratum, Key: RolloutRules.OrderKey(id, d.DeviceId))).OrderBy(d => d.Key, StringComparer.Ordinal).ToList();
        var targets = RolloutRules.Targets(plan.Stages, ordered.Count);
        var live = Enumerable.Range(0, plan.Stages.Count).Where(i => plan.Stages[i].Kind == StagePlan.Live).ToList();

        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var busy = await connection.QueryAsync(tx, """
            SELECT rd.device_id, rd.rollout_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
            WHERE r.state IN ('running', 'awaiting_approval', 'paused', 'rolling_back') AND rd.state <> 'skipped'
            """, r => (Device: r.GetString(0), Rollout: r.GetString(1))).ConfigureAwait(false);
        var chosen = ordered.Select(d => d.DeviceId).ToHashSet(StringComparer.Ordinal);
        var conflicts = busy.Where(b => chosen.Contains(b.Device)).ToList();
        if (conflicts.Count > 0 && !supersede)
        {
            throw new ConflictException(
                $"{conflicts.Count} of the devices are in another active rollout ({string.Join(", ", conflicts.Take(5).Select(c => $"{c.Device} in {c.Rollout}"))}" +
                $"{(conflicts.Count > 5 ? ", …" : "")}); finish or abort that one first, or create this one with supersede");
        }

        foreach (var c in conflicts)
        {
            await connection.ExecuteAsync(tx, "UPDATE rollout_devices SET state = 'skipped', reason = @why, finished_at = @at WHERE rollout_id = @r AND device_id = @d",
                ("@why", $"superseded by rollout {id}"), ("@at", now.ToUnixTimeMilliseconds()), ("@r", c.Rollout), ("@d", c.Device)).ConfigureAwait(false);
        }

        foreach (var other in conflicts.Select(c => c.Rollout).Distinct(StringComparer.Ordinal))
        {
            // A step of the other rollout that loaded its devices before this transaction must not save over the
            // 'skipped' (or publish its desired messages): its optimistic row version check now fails, and it steps again.
            await connection.ExecuteAsync(tx, "UPDATE rollouts SET row_version = row_version + 1, updated_at = @at WHERE id = @r",
                ("@at", now.ToUnixTimeMilliseconds()), ("@r", other)).ConfigureAwait(false);
            await audit.WriteAsync(connection, tx, actor, "rollout.superseded", $"rollout/{other}",
                $"{conflicts.Count(c => c.Rollout == other)} devices taken over by rollout {id}").ConfigureAwait(false);
        }

        await connection.ExecuteAsync(tx, """
            INSERT INTO rollouts(id, model, version, state, stage, spec, created_by, created_at, updated_at)
            VALUES (@id, @m, @v, 'running', 0, @spec, @by, @at, @at)
            """, ("@id", id), ("@m", plan.Model), ("@v", plan.Version), ("@spec", JsonSerializer.Serialize(plan, Json)), ("@by", actor),
            ("@at", now.ToUnixTimeMilliseconds())).ConfigureAwait(false);
        for (var s = 0; s < plan.Stages.Count; s++)
        {
            await connection.ExecuteAsync(tx, "INSERT INTO rollout_stages(rollout_id, stage, state) VALUES (@r, @s, 'pending')", ("@r", id), ("@s", s)).ConfigureAwait(false);
        }

        using (var insert = connection.Command(
            "INSERT INTO rollout_devices(rollout_id, device_id, order_key, stage, state, stratum) VALUES (@r, @d, @k, @s, 'pending', @h)",
            ("@r", id), ("@d", ""), ("@k", ""), ("@s", 0), ("@h", null)))
        {
            insert.Transaction = tx;
            for (var i = 0; i < ordered.Count; i++)
            {
                // The first live stage whose cumulative target covers this position; past the last target: in no stage (a control only).
                var stage = live.FirstOrDefault(s => i < targets[s], plan.Stages.Count);
                insert.Parameters["@d"].Value = ordered[i].DeviceId;
                insert.Parameters["@k"].Value = ordered[i].Key;
                insert.Parameters["@s"].Value = stage;
                insert.Parameters["@h"].Value = (object?)ordered[i].Stratum ?? DBNull.Value;
                await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }

        await audit.WriteAsync(connection, tx, actor, "rollout.create", $"rollout/{id}",
            $"{plan.Model} {plan.Version} to {ordered.Count} devices in {plan.Stages.Count} stages, onFailure={plan.OnFailure}" + (reason is null ? "" : $": {reason}"))
            .ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        liveEvents?.Publish(Live.LiveEvents.Rollouts, [id]);
    }

    public async Task<IReadOnlyList<string>> ActiveIdsAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        return await connection.QueryAsync("SELECT id FROM rollouts WHERE state IN ('running', 'awaiting_approval', 'paused', 'rolling_back') ORDER BY created_at",
            r => r.GetString(0)).ConfigureAwait(false);
    }

    /// <summary>The whole rollout as the engine works on it; null when there is none with that id.</summary>
    public async Task<RolloutSnapshot?> LoadAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rollout = await connection.QuerySingleAsync("""
            SELECT id, spec, state, reason, stage, paused_by_gate, row_version, created_by, created_at, updated_at, finished_at FROM rollouts WHERE id = @id
            """, r => new RolloutRecord
        {
            Id = r.GetString(0),
            Plan = JsonSerializer.Deserialize<RolloutPlan>(r.GetString(1), Json)!,
            State = r.GetString(2),
            Reason = r.NullableString(3),
            Stage = (int)r.Long(4),
            PausedByGate = r.Bool(5),
            RowVersion = r.Long(6),
            CreatedBy = r.GetString(7),
            CreatedAt = r.Time(8),
            UpdatedAt = r.Time(9),
            FinishedAt = r.NullableTime(10),
        }, ("@id", id)).ConfigureAwait(false);
        if (rollout is null)
        {
            return null;
        }

        var stages = await connection.QueryAsync("""
            SELECT stage, state, started_at, bake_started_at, finished_at, looks, approved_by, alpha, delivery FROM rollout_stages WHERE rollout_id = @id ORDER BY stage
            """, r => new StageRecord
        {
            Index = (int)r.Long(0),
            State = r.GetString(1),
            StartedAt = r.NullableTime(2),
            BakeStartedAt = r.NullableTime(3),
            FinishedAt = r.NullableTime(4),
            Looks = (int)r.Long(5),
            ApprovedBy = r.NullableString(6),
            Alpha = r.NullableString(7) is { } a ? JsonSerializer.Deserialize<Dictionary<string, double>>(a, Json)! : new(StringComparer.Ordinal),
            Delivery = r.NullableString(8),
        }, ("@id", id)).ConfigureAwait(false);
        var devices = await connection.QueryAsync("""
            SELECT rd.device_id, rd.order_key, rd.stage, rd.state, rd.desired_id, rd.desired, rd.previous_model, rd.previous_version, rd.stratum,
              rd.notified_at, rd.deadline_at, rd.finished_at, rd.reason, d.model_name, d.model_version
            FROM rollout_devices rd LEFT JOIN devices d ON d.id = rd.device_id
            WHERE rd.rollout_id = @id ORDER BY rd.order_key
            """, r => new DeviceRecord
        {
            DeviceId = r.GetString(0),
            OrderKey = r.GetString(1),
            Stage = (int)r.Long(2),
            State = r.GetString(3),
            DesiredId = r.NullableString(4),
            Desired = r.NullableString(5),
            PreviousModel = r.NullableString(6),
            PreviousVersion = r.NullableString(7),
            Stratum = r.NullableString(8),
            NotifiedAt = r.NullableTime(9),
            DeadlineAt = r.NullableTime(10),
            FinishedAt = r.NullableTime(11),
            Reason = r.NullableString(12),
            CurrentModel = r.NullableString(13),
            CurrentVersion = r.NullableString(14),
        }, ("@id", id)).ConfigureAwait(false);
        return new RolloutSnapshot { Rollout = rollout, Stages = stages, Devices = devices };
    }

    /// <summary>
    /// Stores what changed in one transaction: the rollout row only if nobody changed it since it was loaded (false
    /// otherwise, and nothing is written), the changed stages and devices, new verdicts, an audit entry, and the
    /// devices' current desired messages.
    /// </summary>
    public async Task<bool> SaveAsync(RolloutSnapshot snapshot, DateTimeOffset now, (string Actor, string Action, string? Details)? auditEntry = null,
        AuditLog? audit = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var r = snapshot.Rollout;
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var updated = await connection.ExecuteAsync(tx, """
            UPDATE rollouts SET state = @state, reason = @reason, stage = @stage, paused_by_gate = @gate, updated_at = @at, finished_at = @finished,
              row_version = row_version + 1
            WHERE id = @id AND row_version = @rv
            """, ("@state", r.State), ("@reason", r.Reason), ("@stage", r.Stage), ("@gate", r.PausedByGate ? 1 : 0), ("@at", now.ToUnixTimeMilliseconds()),
            ("@finished", r.FinishedAt?.ToUnixTimeMilliseconds()), ("@id", r.Id), ("@rv", r.RowVersion)).ConfigureAwait(false);
        if (updated == 0)
        {
            return false;
        }

        foreach (var s in snapshot.Stages.Where(s => s.Dirty))
        {
            await connection.ExecuteAsync(tx, """
                UPDATE rollout_stages SET state = @state, started_at = @start, bake_started_at = @bake, finished_at = @end, looks = @looks,
                  approved_by = @by, alpha = @alpha, delivery = @delivery
                WHERE rollout_id = @r AND stage = @s
                """, ("@state", s.State), ("@start", s.StartedAt?.ToUnixTimeMilliseconds()), ("@bake", s.BakeStartedAt?.ToUnixTimeMilliseconds()),
                ("@end", s.FinishedAt?.ToUnixTimeMilliseconds()), ("@looks", s.Looks), ("@by", s.ApprovedBy), ("@alpha", JsonSerializer.Serialize(s.Alpha, Json)),
                ("@delivery", s.Delivery), ("@r", r.Id), ("@s", s.Index)).ConfigureAwait(false);
        }

        var dirty = snapshot.Devices.Where(d => d.Dirty).ToList();
        if (dirty.Count > 0)
        {
            using var device = connection.Command("""
                UPDATE rollout_devices SET state = @state, desired_id = @did, desired = @desired, previous_model = @pm, previous_version = @pv,
                  notified_at = @n, deadline_at = @dl, finished_at = @f, reason = @why
                WHERE rollout_id = @r AND device_id = @d
                """, ("@state", ""), ("@did", null), ("@desired", null), ("@pm", null), ("@pv", null), ("@n", null), ("@dl", null), ("@f", null), ("@why", null),
                ("@r", r.Id), ("@d", ""));
            device.Transaction = tx;
            using var assign = new AssignmentRows(connection, tx, $"rollout {r.Id}", now);
            foreach (var d in dirty)
            {
                Set(device, "@state", d.State);
                Set(device, "@did", d.DesiredId);
                Set(device, "@desired", d.Desired);
                Set(device, "@pm", d.PreviousModel);
                Set(device, "@pv", d.PreviousVersion);
                Set(device, "@n", d.NotifiedAt?.ToUnixTimeMilliseconds());
                Set(device, "@dl", d.DeadlineAt?.ToUnixTimeMilliseconds());
                Set(device, "@f", d.FinishedAt?.ToUnixTimeMilliseconds());
                Set(device, "@why", d.Reason);
                Set(device, "@d", d.DeviceId);
                await device.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            foreach (var d in dirty.Where(d => d.DesiredId is not null && d.Desired is not null && d.State is RolloutDeviceStates.Notified
                or RolloutDeviceStates.Reverting or RolloutDeviceStates.Shadow))
            {
                var message = JsonSerializer.Deserialize<JsonElement>(d.Desired!);
                await assign.UpsertAsync(d.DeviceId, d.DesiredId!, d.Desired!, message.GetProperty("model").GetString()!, message.GetProperty("version").GetString()!,
                    message.TryGetProperty("mode", out var mode) ? mode.GetString() ?? DesiredModes.Live : DesiredModes.Live).ConfigureAwait(false);
            }

            foreach (var d in dirty.Where(d => d.DesiredId is null && d.State is RolloutDeviceStates.Reverted or RolloutDeviceStates.Skipped && d.Desired is null))
            {
                await AssignmentRows.DeleteAsync(connection, tx, d.DeviceId, issuedBy: $"rollout {r.Id}").ConfigureAwait(false);
            }
        }

        foreach (var v in snapshot.NewVerdicts)
        {
            await connection.ExecuteAsync(tx, """
                INSERT INTO rollout_verdicts(rollout_id, stage, gate, look, at, outcome, dry_run, alpha_spent, summary, evidence)
                VALUES (@r, @s, @g, @l, @at, @o, @dry, @alpha, @sum, @ev)
                """, ("@r", r.Id), ("@s", v.Stage), ("@g", v.Gate), ("@l", v.Look), ("@at", v.At.ToUnixTimeMilliseconds()), ("@o", v.Outcome), ("@dry", v.DryRun ? 1 : 0),
                ("@alpha", v.AlphaSpent), ("@sum", v.Summary), ("@ev", v.EvidenceJson)).ConfigureAwait(false);
        }

        if (auditEntry is { } entry && audit is not null)
        {
            await audit.WriteAsync(connection, tx, entry.Actor, entry.Action, $"rollout/{r.Id}", entry.Details).ConfigureAwait(false);
        }

        await tx.CommitAsync().ConfigureAwait(false);
        foreach (var d in dirty)
        {
            d.Dirty = false;
        }

        foreach (var s in snapshot.Stages)
        {
            s.Dirty = false;
        }

        snapshot.NewVerdicts.Clear();
        liveEvents?.Publish(Live.LiveEvents.Rollouts, [r.Id]);
        return true;
    }

    /// <summary>Per device of the rollout, its newest OTA event, when it is about the desired message the rollout sent it.</summary>
    public async Task<Dictionary<string, OtaObservation>> ObservationsAsync(string rolloutId, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await connection.QueryAsync("""
            SELECT o.device_id, o.desired_id, o.state, o.reason, o.agreement FROM rollout_devices rd
            JOIN device_ota o ON o.device_id = rd.device_id AND o.desired_id = rd.desired_id
            WHERE rd.rollout_id = @r AND rd.state IN ('notified', 'downloading', 'activated', 'reverting', 'shadow')
            """, r => new OtaObservation(r.GetString(0), r.GetString(1), r.GetString(2), r.NullableString(3), r.NullableDouble(4)), ("@r", rolloutId))
            .ConfigureAwait(false);
        return rows.ToDictionary(o => o.DeviceId, StringComparer.Ordinal);
    }

    /// <summary>Verdicts of a rollout, oldest first.</summary>
    public async Task<List<GateVerdictInfo>> VerdictsAsync(DbConnection connection, string rolloutId, bool newestOnly)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var all = await connection.QueryAsync("""
            SELECT stage, gate, look, at, outcome, dry_run, summary, evidence FROM rollout_verdicts WHERE rollout_id = @r ORDER BY id
            """, r => new GateVerdictInfo
        {
            Stage = (int)r.Long(0),
            Gate = r.GetString(1),
            Look = (int)r.Long(2),
            At = r.Time(3),
            Outcome = r.GetString(4),
            DryRun = r.Bool(5),
            Summary = r.NullableString(6),
            Evidence = r.NullableString(7) is { } e ? JsonSerializer.Deserialize<JsonElement>(e) : null,
        }, ("@r", rolloutId)).ConfigureAwait(false);
        return newestOnly ? all.GroupBy(v => (v.Stage, v.Gate)).Select(g => g.Last()).OrderBy(v => v.Stage).ThenBy(v => v.At).ToList() : all;
    }

    /// <summary>Rollouts, newest first, optionally in one state.</summary>
    public async Task<IReadOnlyList<RolloutInfo>> ListAsync(string? state, int limit)
    {
        List<string> ids;
        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        {
            ids = await connection.QueryAsync("SELECT id FROM rollouts WHERE CAST(@s AS TEXT) IS NULL OR state = @s ORDER BY created_at DESC LIMIT @n",
                r => r.GetString(0), ("@s", state), ("@n", limit)).ConfigureAwait(false);
        }

        var list = new List<RolloutInfo>(ids.Count);
        foreach (var id in ids)
        {
            if (await GetAsync(id, includeDevices: false).ConfigureAwait(false) is { } info)
            {
                list.Add(info);
            }
        }

        return list;
    }

    /// <summary>A rollout as the API shows it; null when it does not exist.</summary>
    public async Task<RolloutInfo?> GetAsync(string id, bool includeDevices)
    {
        var snapshot = await LoadAsync(id).ConfigureAwait(false);
        if (snapshot is null)
        {
            return null;
        }

        List<GateVerdictInfo> verdicts;
        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        {
            verdicts = await VerdictsAsync(connection, id, newestOnly: true).ConfigureAwait(false);
        }

        return ToInfo(snapshot, verdicts, includeDevices);
    }

    internal static RolloutInfo ToInfo(RolloutSnapshot snapshot, IReadOnlyList<GateVerdictInfo> verdicts, bool includeDevices)
    {
        var r = snapshot.Rollout;
        var plan = r.Plan;
        var targets = RolloutRules.Targets(plan.Stages, snapshot.Devices.Count);
        static Dictionary<string, int> Count(IEnumerable<DeviceRecord> devices) =>
            devices.GroupBy(d => d.State, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        return new RolloutInfo
        {
            Id = r.Id,
            Model = plan.Model,
            Version = plan.Version,
            State = r.State,
            Reason = r.Reason,
            Stage = r.Stage,
            Stages = snapshot.Stages.Select(s =>
            {
                var p = plan.Stages[s.Index];
                var devices = snapshot.DevicesOf(s.Index).ToList();
                return new RolloutStageInfo
                {
                    Index = s.Index,
                    Kind = p.Kind,
                    Percent = p.Percent,
                    Count = p.Count,
                    Target = targets[s.Index],
                    Devices = devices.Count,
                    BakeSeconds = p.BakeSeconds,
                    Approval = p.Approval,
                    State = s.State,
                    StartedAt = s.StartedAt,
                    BakeStartedAt = s.BakeStartedAt,
                    FinishedAt = s.FinishedAt,
                    Counts = Count(devices),
                };
            }).ToList(),
            Counts = Count(snapshot.Devices),
            DeviceCount = snapshot.Devices.Count,
            Verdicts = verdicts.ToList(),
            Devices = includeDevices
                ? snapshot.Devices.Select(d => new RolloutDeviceInfo
                {
                    DeviceId = d.DeviceId,
                    Stage = d.Stage,
                    State = d.State,
                    PreviousVersion = d.PreviousVersion,
                    Reason = d.Reason,
                    NotifiedAt = d.NotifiedAt,
                    DeadlineAt = d.DeadlineAt,
                    FinishedAt = d.FinishedAt,
                }).ToList()
                : null,
            Spec = JsonSerializer.SerializeToElement(plan, Json),
            CreatedBy = r.CreatedBy,
            CreatedAt = r.CreatedAt,
            UpdatedAt = r.UpdatedAt,
            FinishedAt = r.FinishedAt,
        };
    }

    /// <summary>Which version ran on a device from when to when, newest first.</summary>
    public async Task<IReadOnlyList<DeploymentInfo>> HistoryAsync(string deviceId, int limit)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("""
            SELECT model, version, from_ts, to_ts, rollout_id FROM deployments WHERE device_id = @d ORDER BY from_ts DESC, id DESC LIMIT @n
            """, r => new DeploymentInfo { Model = r.GetString(0), Version = r.GetString(1), From = r.Time(2), To = r.NullableTime(3), RolloutId = r.NullableString(4) },
            ("@d", deviceId), ("@n", limit)).ConfigureAwait(false);
    }

    private static void Set(DbCommand command, string name, object? value) => command.Parameters[name].Value = value ?? DBNull.Value;
}

/// <summary>Telemetry of a rollout's devices, aggregated per device over a window: the input of the quality gates.</summary>
public sealed class GateTelemetry(Database database)
{
    /// <summary>
    /// Per device: the baseline (before the stage started, on any version but the new one), and since the stage started
    /// on the new version and on any other.
    /// </summary>
    public async Task<GateWindows> WindowsAsync(string rolloutId, string version, DateTimeOffset baselineFrom, DateTimeOffset stageStart, DateTimeOffset now,
        CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var before = await AggregateAsync(connection, rolloutId, version, newVersion: false, baselineFrom, stageStart).ConfigureAwait(false);
        var afterNew = await AggregateAsync(connection, rolloutId, version, newVersion: true, stageStart, now.AddMilliseconds(1)).ConfigureAwait(false);
        var afterOld = await AggregateAsync(connection, rolloutId, version, newVersion: false, stageStart, now.AddMilliseconds(1)).ConfigureAwait(false);
        return new GateWindows(before, afterNew, afterOld);
    }

    // Frame, error and NaN counters count since the agent started, so a window's share is the growth of the counters
    // over it (a restart inside the window makes it an overestimate of frames, never a false failure share of 1).
    private static async Task<Dictionary<string, DeviceAggregate>> AggregateAsync(DbConnection connection, string rolloutId, string version, bool newVersion,
        DateTimeOffset from, DateTimeOffset to)
    {
        var versionFilter = newVersion ? "t.model_version = @v" : "(t.model_version IS NULL OR t.model_version <> @v)";
        var telemetry = await connection.QueryAsync($"""
            SELECT t.device_id, AVG(t.p95), COALESCE(MAX(t.errors) - MIN(t.errors), 0), COALESCE(MAX(t.inferred) - MIN(t.inferred), 0),
              COALESCE(MAX(t.nonfinite) - MIN(t.nonfinite), 0), AVG(t.confidence), COUNT(*)
            FROM telemetry t JOIN rollout_devices rd ON rd.device_id = t.device_id AND rd.rollout_id = @r
            WHERE t.ts >= @from AND t.ts < @to AND {versionFilter}
            GROUP BY t.device_id
            """, r => (Device: r.GetString(0), P95: r.NullableDouble(1), Errors: r.Long(2), Inferred: r.Long(3), NonFinite: r.Long(4), Confidence: r.NullableDouble(5),
            Points: r.Long(6)),
            ("@r", rolloutId), ("@from", from.ToUnixTimeMilliseconds()), ("@to", to.ToUnixTimeMilliseconds()), ("@v", version)).ConfigureAwait(false);
        var drift = (await connection.QueryAsync($"""
            SELECT t.device_id, COUNT(*), SUM(CASE WHEN t.severity IN ('warn', 'alert') THEN 1 ELSE 0 END)
            FROM drift_reports t JOIN rollout_devices rd ON rd.device_id = t.device_id AND rd.rollout_id = @r
            WHERE t.ts >= @from AND t.ts < @to AND {versionFilter}
            GROUP BY t.device_id
            """, r => (Device: r.GetString(0), Reports: r.Long(1), Bad: r.Long(2)),
            ("@r", rolloutId), ("@from", from.ToUnixTimeMilliseconds()), ("@to", to.ToUnixTimeMilliseconds()), ("@v", version)).ConfigureAwait(false))
            .ToDictionary(d => d.Device, StringComparer.Ordinal);
        var result = new Dictionary<string, DeviceAggregate>(StringComparer.Ordinal);
        foreach (var t in telemetry)
        {
            drift.TryGetValue(t.Device, out var d);
            result[t.Device] = new DeviceAggregate(t.P95, t.Errors, t.Inferred, t.NonFinite, t.Confidence, d.Reports, d.Bad, t.Points);
        }

        foreach (var (device, d) in drift)
        {
            result.TryAdd(device, new DeviceAggregate(null, 0, 0, 0, null, d.Reports, d.Bad, 0));
        }

        return result;
    }
}
