using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>Operator actions on rollouts.</summary>
public static class RolloutActions
{
    public const string Approve = "approve";
    public const string Pause = "pause";
    public const string Resume = "resume";
    public const string Abort = "abort";
    public const string Rollback = "rollback";
    public const string Retry = "retry";

    public static readonly IReadOnlyList<string> All = [Approve, Pause, Resume, Abort, Rollback, Retry];
}

/// <summary>Creating rollouts and the operators' actions on them; every change audited with who and why.</summary>
public sealed class RolloutService(RolloutStore store, ModelRegistry models, IDesiredPublisher publisher, AuditLog audit, RolloutSignal signal,
    IOptions<ControlPlaneOptions> options, TimeProvider time)
{
    public async Task<RolloutInfo> CreateAsync(RolloutRequest? request, string actor, string requestBaseUrl)
    {
        if (request is null)
        {
            throw new InvalidInputException("body", "is required: {\"model\": NAME, \"version\": VERSION, \"selector\": [TAG…], \"stages\": [{\"percent\": 1}, …]}");
        }

        var plan = RolloutRules.Resolve(request, options.Value.PublicUrl ?? requestBaseUrl);
        if (plan.Probation is { } probation)
        {
            Assignments.ValidateProbation(probation);
        }

        ModelRegistry.ValidateName(plan.Model, "model");
        ModelRegistry.ValidateVersion(plan.Version, "version");
        var reason = request.Reason is { Length: > 1000 } ? throw new InvalidInputException("reason", "must be at most 1000 characters") : request.Reason;
        if (await models.GetVersionAsync(plan.Model, plan.Version).ConfigureAwait(false) is null)
        {
            throw new NotFoundException($"model {plan.Model} version {plan.Version}");
        }

        var (devices, unknown) = await store.SelectAsync(plan).ConfigureAwait(false);
        if (unknown.Count > 0)
        {
            throw new InvalidInputException("devices", $"unknown or revoked devices: {string.Join(", ", unknown.Take(10))}{(unknown.Count > 10 ? ", …" : "")}");
        }

        if (devices.Count == 0)
        {
            throw new InvalidInputException("selector", $"selects no device ({(plan.Selector.Count == 0 ? "the fleet is empty" : "no enrolled, unrevoked device has the tags " + string.Join(", ", plan.Selector))})");
        }

        if (!publisher.Enabled)
        {
            throw new ConflictException("the control plane runs without MQTT (--mqtt none), so it cannot send devices a rollout; start it with --mqtt embedded or --mqtt mqtt://host:port");
        }

        var id = "ro-" + Secrets.NewId()[..12].ToLowerInvariant();
        await store.CreateAsync(id, plan, devices, request.Supersede, actor, reason, audit, time.GetUtcNow()).ConfigureAwait(false);
        signal.Notify();
        return await store.GetAsync(id, includeDevices: true).ConfigureAwait(false) ?? throw new NotFoundException($"rollout {id}");
    }

    public async Task<RolloutInfo> GetAsync(string id, bool includeDevices = true) =>
        await store.GetAsync(Id(id), includeDevices).ConfigureAwait(false) ?? throw new NotFoundException($"rollout {id}");

    public Task<IReadOnlyList<RolloutInfo>> ListAsync(string? state, int? limit)
    {
        if (state is not null && state is not (RolloutStates.Running or RolloutStates.AwaitingApproval or RolloutStates.Paused or RolloutStates.RollingBack
            or RolloutStates.Succeeded or RolloutStates.Failed or RolloutStates.Aborted or RolloutStates.RolledBack))
        {
            throw new InvalidInputException("state", $"'{(state.Length > 50 ? state[..50] : state)}' is not a rollout state (running, awaiting_approval, paused, rolling_back, succeeded, failed, aborted, rolled_back)");
        }

        if (limit is < 1 or > 1000)
        {
            throw new InvalidInputException("limit", "must be between 1 and 1000");
        }

        return store.ListAsync(state, limit ?? 100);
    }

    /// <summary>Applies an operator action; 409 when the rollout's state does not allow it.</summary>
    public async Task<RolloutInfo> ActAsync(string id, string action, string actor, string? reason)
    {
        if (!RolloutActions.All.Contains(action, StringComparer.Ordinal))
        {
            throw new InvalidInputException("action", $"'{(action.Length > 50 ? action[..50] : action)}' is not an action: {string.Join(", ", RolloutActions.All)}");
        }

        if (reason is { Length: > 1000 })
        {
            throw new InvalidInputException("reason", "must be at most 1000 characters");
        }

        id = Id(id);
        // Optimistic concurrency with the engine (and other operators): on a conflict, load again and re-apply.
        for (var attempt = 0; ; attempt++)
        {
            var snapshot = await store.LoadAsync(id).ConfigureAwait(false) ?? throw new NotFoundException($"rollout {id}");
            var now = time.GetUtcNow();
            var details = Apply(snapshot, action, actor, reason, now);
            snapshot.Rollout.UpdatedAt = now;
            if (await store.SaveAsync(snapshot, now, (actor, $"rollout.{action}", details), audit).ConfigureAwait(false))
            {
                signal.Notify();
                return await store.GetAsync(id, includeDevices: true).ConfigureAwait(false) ?? throw new NotFoundException($"rollout {id}");
            }

            if (attempt >= 5)
            {
                throw new ConflictException($"rollout {id} kept changing while the {action} was applied; send it again");
            }
        }
    }

    /// <summary>The rules of the actions (pure; changes the snapshot and returns what the audit log says).</summary>
    internal static string Apply(RolloutSnapshot snapshot, string action, string actor, string? reason, DateTimeOffset now)
    {
        var r = snapshot.Rollout;
        var stage = snapshot.CurrentStage;
        var why = reason is null ? "" : $": {reason}";
        string Refuse(string allowed) => throw new ConflictException($"rollout {r.Id} is {r.State}; {action} needs a rollout that is {allowed}");
        switch (action)
        {
            case RolloutActions.Approve:
                if (r.State == RolloutStates.AwaitingApproval)
                {
                    stage.ApprovedBy = actor;
                    stage.Dirty = true;
                    r.State = RolloutStates.Running;
                    r.Reason = null;
                    return $"stage {r.Stage + 1} approved{why}";
                }

                if (r.State == RolloutStates.Paused && r.PausedByGate)
                {
                    // The operator overrides a failing or inconclusive gate: the stage counts as passed.
                    stage.State = StageStates.Passed;
                    stage.FinishedAt = now;
                    stage.Dirty = true;
                    r.PausedByGate = false;
                    var overridden = r.Reason;
                    if (r.Stage + 1 >= r.Plan.Stages.Count)
                    {
                        foreach (var d in snapshot.Devices.Where(d => d.State is RolloutDeviceStates.Pending or RolloutDeviceStates.Shadow))
                        {
                            d.Set(RolloutDeviceStates.Skipped, now, "in no stage of the rollout");
                        }

                        r.State = RolloutStates.Succeeded;
                        r.FinishedAt = now;
                        r.Reason = $"last stage approved by {actor} over: {overridden}";
                    }
                    else
                    {
                        r.Stage++;
                        r.State = RolloutStates.Running;
                        r.Reason = null;
                    }

                    return $"stage {snapshot.Stages.IndexOf(stage) + 1} passed by approval over the gates ({overridden}){why}";
                }

                return Refuse("awaiting approval, or paused by a gate");

            case RolloutActions.Pause:
                if (r.State is not (RolloutStates.Running or RolloutStates.AwaitingApproval))
                {
                    return Refuse("running or awaiting approval");
                }

                r.State = RolloutStates.Paused;
                r.PausedByGate = false;
                r.Reason = $"paused by {actor}{why}";
                return $"paused at stage {r.Stage + 1}{why}";

            case RolloutActions.Resume:
                if (r.State != RolloutStates.Paused)
                {
                    return Refuse("paused");
                }

                ResumeStage(snapshot, now);
                return $"resumed at stage {r.Stage + 1}{why}";

            case RolloutActions.Abort:
                if (!RolloutStates.IsActive(r.State) || r.State == RolloutStates.RollingBack)
                {
                    return Refuse("running, awaiting approval or paused (a rollback in progress cannot be aborted)");
                }

                var skipped = 0;
                foreach (var d in snapshot.Devices.Where(d => d.State == RolloutDeviceStates.Pending))
                {
                    d.Set(RolloutDeviceStates.Skipped, now, $"rollout aborted by {actor}");
                    skipped++;
                }

                r.State = RolloutStates.Aborted;
                r.Reason = $"aborted by {actor}{why}";
                r.FinishedAt = now;
                return $"aborted at stage {r.Stage + 1}; {skipped} devices not notified, the others left as they are{why}";

            case RolloutActions.Rollback:
                if (r.State is not (RolloutStates.Running or RolloutStates.AwaitingApproval or RolloutStates.Paused or RolloutStates.Succeeded or RolloutStates.Failed))
                {
                    return Refuse("running, awaiting approval, paused, succeeded or failed");
                }

                r.State = RolloutStates.RollingBack;
                r.PausedByGate = false;
                r.FinishedAt = null;
                r.Reason = $"rolled back by {actor}{why}";
                return $"rollback of {snapshot.Devices.Count(d => d.NotifiedAt is not null)} notified devices{why}";

            case RolloutActions.Retry:
                if (!RolloutStates.IsActive(r.State) || r.State == RolloutStates.RollingBack)
                {
                    return Refuse("running, awaiting approval or paused");
                }

                var again = snapshot.Devices.Where(d => d.Stage <= r.Stage && d.NotifiedAt is not null
                    && d.State is RolloutDeviceStates.Failed or RolloutDeviceStates.TimedOut).ToList();
                if (again.Count == 0)
                {
                    throw new ConflictException($"rollout {r.Id} has no failed or timed-out device to retry");
                }

                foreach (var d in again)
                {
                    d.Set(RolloutDeviceStates.Pending, now, $"retry by {actor}");
                    d.FinishedAt = null;
                }

                if (r.State == RolloutStates.Paused && r.PausedByGate)
                {
                    ResumeStage(snapshot, now);
                }

                return $"retry of {again.Count} devices ({string.Join(", ", again.Take(10).Select(d => d.DeviceId))}{(again.Count > 10 ? ", …" : "")}){why}";

            default:
                throw new InvalidInputException("action", $"'{action}' is not an action");
        }
    }

    /// <summary>Continues a paused rollout; a stage a gate had stopped is judged afresh (new bake, alpha spending from zero).</summary>
    private static void ResumeStage(RolloutSnapshot snapshot, DateTimeOffset now)
    {
        var r = snapshot.Rollout;
        var stage = snapshot.CurrentStage;
        if (r.PausedByGate)
        {
            if (stage.State == StageStates.Baking)
            {
                stage.BakeStartedAt = now;
            }

            stage.Looks = 0;
            stage.Alpha.Clear();
            stage.Delivery = null;
            stage.Dirty = true;
        }

        r.PausedByGate = false;
        r.State = stage.State == StageStates.AwaitingApproval && stage.ApprovedBy is null ? RolloutStates.AwaitingApproval : RolloutStates.Running;
        r.Reason = null;
    }

    private static string Id(string id) =>
        id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
            ? id
            : throw new InvalidInputException("id", $"'{(id.Length > 64 ? id[..64] + "…" : id)}' is not a rollout id (ro-…)");
}
