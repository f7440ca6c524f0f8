using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>A desired message to publish once the step is stored (an empty payload clears the device's retained one).</summary>
public sealed record Publication(string DeviceId, string? DesiredId, byte[] Payload);

/// <summary>What a step asks the engine to do outside the database once it is stored.</summary>
public sealed class StepResult
{
    public List<Publication> Publications { get; } = [];

    /// <summary>Promote the version to production (the rollout succeeded and asked for it).</summary>
    public bool Promote { get; set; }

    public bool Changed { get; set; }

    /// <summary>Devices notified in this step (what the rate limit spends).</summary>
    public int Notified { get; set; }
}

/// <summary>
/// The rollout rules, applied to one rollout at one moment: device states from their OTA events, deadlines, the
/// stage machine (approval, notification at a rate, delivery gate, bake with repeated quality-gate looks), failure
/// policy and rollback. Pure: the engine loads the snapshot, calls <see cref="Step"/>, stores the changed rows in
/// one transaction and only then publishes, so a crash between the two only means publishing again (retained,
/// same message id: idempotent on the device).
/// </summary>
public static class RolloutStepper
{
    /// <summary>Quality-gate looks per bake (at 10 %, 20 %, … 100 % of the bake time).</summary>
    public const int LooksPerBake = 10;

    private static readonly JsonSerializerOptions EvidenceJson = new(JsonSerializerDefaults.Web);

    /// <summary>How far before a stage the baseline of each device reaches back, at least.</summary>
    public static readonly TimeSpan MinBaseline = TimeSpan.FromMinutes(5);

    /// <param name="snapshot">The rollout; its records are changed in place (and marked dirty).</param>
    /// <param name="now">The engine's clock.</param>
    /// <param name="observations">Per device, its newest OTA event, when it is about the desired message it was sent.</param>
    /// <param name="notifyBudget">Devices that may be notified now (the rate limit).</param>
    /// <param name="template">The desired message of a model version and mode (without id), or null when the registry has no such version.</param>
    /// <param name="windows">Telemetry for a quality-gate look; null when none is due (see <see cref="LookDue"/>).</param>
    public static StepResult Step(RolloutSnapshot snapshot, DateTimeOffset now, IReadOnlyDictionary<string, OtaObservation> observations, int notifyBudget,
        Func<string, string, string, DesiredMessage?> template, GateWindows? windows)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(template);
        var result = new StepResult();
        var r = snapshot.Rollout;
        if (!RolloutStates.IsActive(r.State))
        {
            return result;
        }

        Observe(snapshot, now, observations);
        TimeOut(snapshot, now);

        if (r.State == RolloutStates.RollingBack)
        {
            RollBack(snapshot, now, template, result);
        }
        else if (r.State == RolloutStates.Running)
        {
            Advance(snapshot, now, notifyBudget, template, windows, result);
            if (r.State == RolloutStates.RollingBack)
            {
                RollBack(snapshot, now, template, result);
            }
        }

        result.Changed |= snapshot.Devices.Any(d => d.Dirty) || snapshot.Stages.Any(s => s.Dirty) || snapshot.NewVerdicts.Count > 0;
        return result;
    }

    /// <summary>Whether the current stage is baking and its next quality-gate look is due.</summary>
    public static bool LookDue(RolloutSnapshot snapshot, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Rollout.State != RolloutStates.Running)
        {
            return false;
        }

        var stage = snapshot.CurrentStage;
        var plan = snapshot.CurrentPlan;
        return stage.State == StageStates.Baking && stage.BakeStartedAt is { } bake && plan.BakeSeconds > 0 && QualityGatesOf(snapshot).Count > 0
            && now >= bake + TimeSpan.FromSeconds(plan.BakeSeconds * (stage.Looks + 1) / LooksPerBake);
    }

    /// <summary>The window of a look: the baseline before the stage started, and the time since.</summary>
    public static (DateTimeOffset BaselineFrom, DateTimeOffset StageStart) LookWindow(RolloutSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var start = snapshot.CurrentStage.StartedAt ?? snapshot.Rollout.CreatedAt;
        var span = TimeSpan.FromSeconds(Math.Max(snapshot.CurrentPlan.BakeSeconds * 2, MinBaseline.TotalSeconds));
        return (start - span, start);
    }

    private static void Observe(RolloutSnapshot snapshot, DateTimeOffset now, IReadOnlyDictionary<string, OtaObservation> observations)
    {
        foreach (var d in snapshot.Devices)
        {
            if (d.DesiredId is null || !observations.TryGetValue(d.DeviceId, out var o) || o.DesiredId != d.DesiredId)
            {
                continue;
            }

            if (d.State == RolloutDeviceStates.Reverting)
            {
                switch (o.State)
                {
                    case "committed":
                        d.Set(RolloutDeviceStates.Reverted, now);
                        break;
                    case "rejected" or "rolled_back":
                        d.Set(RolloutDeviceStates.Failed, now, $"going back to {d.PreviousVersion} failed: {o.State} ({o.Reason ?? "no reason given"})");
                        break;
                }

                continue;
            }

            if (!RolloutDeviceStates.InFlight(d.State))
            {
                continue;
            }

            var state = o.State switch
            {
                "committed" => RolloutDeviceStates.Succeeded,
                "rejected" or "rolled_back" => RolloutDeviceStates.Failed,
                "activated" => RolloutDeviceStates.Activated,
                "received" or "downloading" or "verified" => RolloutDeviceStates.Downloading,
                _ => d.State,
            };
            if (state != d.State)
            {
                d.Set(state, now, state == RolloutDeviceStates.Failed ? $"{o.State}: {o.Reason ?? "no reason given"}" : null);
            }
        }
    }

    private static void TimeOut(RolloutSnapshot snapshot, DateTimeOffset now)
    {
        foreach (var d in snapshot.Devices)
        {
            if ((RolloutDeviceStates.InFlight(d.State) || d.State == RolloutDeviceStates.Reverting) && d.DeadlineAt is { } deadline && now >= deadline)
            {
                d.Set(RolloutDeviceStates.TimedOut, now,
                    $"no update.committed within {snapshot.Rollout.Plan.DeadlineSeconds.ToString("0", CultureInfo.InvariantCulture)} s (last state: {d.State})");
            }
        }
    }

    private static void Advance(RolloutSnapshot snapshot, DateTimeOffset now, int budget, Func<string, string, string, DesiredMessage?> template, GateWindows? windows,
        StepResult result)
    {
        var r = snapshot.Rollout;
        var plan = r.Plan;
        // A stage that passes at once (no devices, no bake) lets the next one start in the same step.
        for (var guard = 0; guard < plan.Stages.Count + 1 && r.State == RolloutStates.Running; guard++)
        {
            var stage = snapshot.CurrentStage;
            var stagePlan = snapshot.CurrentPlan;
            if (stage.State == StageStates.Pending)
            {
                if (stagePlan.Approval && stage.ApprovedBy is null)
                {
                    stage.State = StageStates.AwaitingApproval;
                    stage.Dirty = true;
                    r.State = RolloutStates.AwaitingApproval;
                    r.Reason = $"stage {r.Stage + 1} waits for approval";
                    return;
                }

                stage.State = StageStates.Notifying;
                stage.StartedAt = now;
                stage.Dirty = true;
            }

            if (stage.State == StageStates.AwaitingApproval)
            {
                if (stage.ApprovedBy is null)
                {
                    return;
                }

                stage.State = StageStates.Notifying;
                stage.StartedAt = now;
                stage.Dirty = true;
            }

            if (stage.State == StageStates.Notifying)
            {
                budget -= Notify(snapshot, now, budget, template, result);
                if (r.State != RolloutStates.Running)
                {
                    return;
                }

                if (stagePlan.Kind == StagePlan.Shadow)
                {
                    if (snapshot.DevicesOf(r.Stage).Any(d => d.State == RolloutDeviceStates.Pending))
                    {
                        return;
                    }

                    StartBake(stage, now);
                }
                else
                {
                    var delivery = JudgeDelivery(snapshot, now);
                    if (delivery == GateOutcome.Fail && !plan.IsDryRun(GateNames.Delivery))
                    {
                        Fail(snapshot, now, $"the delivery gate failed in stage {r.Stage + 1}: {snapshot.NewVerdicts.Last(v => v.Gate == GateNames.Delivery).Summary}");
                        return;
                    }

                    if (snapshot.DevicesOf(r.Stage).Any(d => !d.IsTerminal))
                    {
                        return;
                    }

                    if (delivery == GateOutcome.Inconclusive && !plan.IsDryRun(GateNames.Delivery))
                    {
                        Pause(snapshot, now, $"stage {r.Stage + 1} is inconclusive: {snapshot.NewVerdicts.Concat([]).LastOrDefault(v => v.Gate == GateNames.Delivery)?.Summary ?? "too few devices finished"}; approve to go on anyway, retry the devices, or roll back");
                        return;
                    }

                    StartBake(stage, now);
                }
            }

            if (stage.State == StageStates.Baking)
            {
                var gates = QualityGatesOf(snapshot);
                if (gates.Count > 0 && stagePlan.BakeSeconds > 0)
                {
                    if (windows is null || !LookDue(snapshot, now))
                    {
                        return;
                    }

                    if (!Look(snapshot, now, gates, windows))
                    {
                        return;
                    }

                    windows = null;
                }

                stage.State = StageStates.Passed;
                stage.FinishedAt = now;
                stage.Dirty = true;
                if (r.Stage + 1 >= plan.Stages.Count)
                {
                    foreach (var d in snapshot.Devices.Where(d => d.State is RolloutDeviceStates.Pending or RolloutDeviceStates.Shadow))
                    {
                        d.Set(RolloutDeviceStates.Skipped, now, "in no stage of the rollout");
                    }

                    Finish(r, now, RolloutStates.Succeeded, null);
                    result.Promote = plan.Promote;
                    return;
                }

                r.Stage++;
                r.Reason = null;
            }
            else
            {
                return;
            }
        }
    }

    private static void StartBake(StageRecord stage, DateTimeOffset now)
    {
        stage.State = StageStates.Baking;
        stage.BakeStartedAt = now;
        stage.Looks = 0;
        stage.Dirty = true;
    }

    /// <summary>Publishes the stage's desired message to as many of its waiting devices as the rate allows; returns how many.</summary>
    private static int Notify(RolloutSnapshot snapshot, DateTimeOffset now, int budget, Func<string, string, string, DesiredMessage?> template, StepResult result)
    {
        var r = snapshot.Rollout;
        var plan = r.Plan;
        var shadow = snapshot.CurrentPlan.Kind == StagePlan.Shadow;
        var mode = shadow ? DesiredModes.Shadow : DesiredModes.Live;
        var waiting = shadow
            ? snapshot.DevicesOf(r.Stage).Where(d => d.State == RolloutDeviceStates.Pending)
            : snapshot.Devices.Where(d => d.Stage <= r.Stage && d.State is RolloutDeviceStates.Pending or RolloutDeviceStates.Shadow);
        var sent = 0;
        foreach (var d in waiting)
        {
            if (sent >= budget)
            {
                break;
            }

            var desired = template(plan.Model, plan.Version, mode);
            if (desired is null)
            {
                Pause(snapshot, now, $"model {plan.Model} version {plan.Version} is no longer in the registry");
                return sent;
            }

            var id = $"{r.Id}-{d.DeviceId}-{now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}";
            var message = desired with { Id = id, RolloutId = r.Id, IssuedAt = now, Probation = plan.Probation };
            var payload = MessageParser.Serialize(message);
            if (!shadow)
            {
                d.PreviousModel = d.CurrentModel;
                d.PreviousVersion = d.CurrentVersion;
            }

            d.DesiredId = id;
            d.Desired = Encoding.UTF8.GetString(payload);
            d.NotifiedAt = now;
            d.DeadlineAt = shadow ? null : now + TimeSpan.FromSeconds(plan.DeadlineSeconds);
            d.FinishedAt = null;
            d.Set(shadow ? RolloutDeviceStates.Shadow : RolloutDeviceStates.Notified, now);
            result.Publications.Add(new Publication(d.DeviceId, id, payload));
            result.Notified++;
            sent++;
        }

        return sent;
    }

    /// <summary>The delivery gate over the current stage's devices (AWS semantics: failure share after a minimum finished); stores a verdict when its outcome changes.</summary>
    private static GateOutcome JudgeDelivery(RolloutSnapshot snapshot, DateTimeOffset now)
    {
        var r = snapshot.Rollout;
        var plan = r.Plan;
        var devices = snapshot.DevicesOf(r.Stage).ToList();
        var succeeded = devices.Count(d => d.State == RolloutDeviceStates.Succeeded);
        var failed = devices.Count(d => d.State == RolloutDeviceStates.Failed);
        var timedOut = devices.Count(d => d.State == RolloutDeviceStates.TimedOut);
        var finished = succeeded + failed;
        var minFinished = Math.Max(1, Math.Min(plan.MinFinished, devices.Count));
        var allDone = devices.All(d => d.IsTerminal);
        var judged = DeliveryGate.Judge(succeeded, failed, timedOut, minFinished, plan.MaxFailureShare);
        GateOutcome outcome;
        string summary;
        if (judged.Outcome == GateOutcome.Fail)
        {
            outcome = GateOutcome.Fail;
            summary = judged.Evidence.Explanation;
        }
        else if (!allDone)
        {
            outcome = GateOutcome.Pending;
            summary = $"{succeeded} succeeded, {failed} failed, {timedOut} timed out of {devices.Count}";
        }
        else if (finished < minFinished || (devices.Count > 0 && succeeded == 0))
        {
            outcome = GateOutcome.Inconclusive;
            summary = $"only {finished} of {devices.Count} devices finished ({timedOut} timed out); {minFinished} needed";
        }
        else
        {
            outcome = GateOutcome.Pass;
            summary = $"{failed} of {finished} finished devices failed ({(finished == 0 ? 0 : (double)failed / finished):P0} ≤ {plan.MaxFailureShare:P0}); {timedOut} timed out";
        }

        var stage = snapshot.CurrentStage;
        var name = outcome.ToString().ToLowerInvariant();
        if (stage.Delivery != name || outcome is GateOutcome.Fail)
        {
            if (stage.Delivery != name)
            {
                var evidence = JsonSerializer.Serialize(judged.Evidence with { Explanation = summary }, EvidenceJson);
                snapshot.NewVerdicts.Add(new VerdictRecord(r.Stage, GateNames.Delivery, 0, now, name, plan.IsDryRun(GateNames.Delivery), null, summary, evidence));
                stage.Delivery = name;
                stage.Dirty = true;
            }
        }

        return outcome;
    }

    internal static IReadOnlyList<string> QualityGatesOf(RolloutSnapshot snapshot)
    {
        var shadow = snapshot.CurrentPlan.Kind == StagePlan.Shadow;
        return snapshot.Rollout.Plan.Gates.Where(g => shadow ? g == GateNames.ShadowAgreement : g != GateNames.ShadowAgreement).ToList();
    }

    /// <summary>One look of every quality gate; true when the stage has passed (the last look, every gate acted on passed).</summary>
    private static bool Look(RolloutSnapshot snapshot, DateTimeOffset now, IReadOnlyList<string> gates, GateWindows windows)
    {
        var r = snapshot.Rollout;
        var plan = r.Plan;
        var stage = snapshot.CurrentStage;
        var stagePlan = snapshot.CurrentPlan;
        stage.Looks++;
        stage.Dirty = true;
        var t = Math.Min(1.0, (double)stage.Looks / LooksPerBake);
        var treatedDevices = snapshot.DevicesOf(r.Stage)
            .Where(d => stagePlan.Kind == StagePlan.Shadow ? d.State == RolloutDeviceStates.Shadow : d.State is RolloutDeviceStates.Succeeded or RolloutDeviceStates.Activated)
            .ToList();
        var controlDevices = stagePlan.Kind == StagePlan.Shadow
            ? []
            : snapshot.Devices.Where(d => d.Stage > r.Stage && d.State is RolloutDeviceStates.Pending or RolloutDeviceStates.Shadow).ToList();

        var failures = new List<string>();
        var unresolved = new List<string>();
        foreach (var gate in gates)
        {
            var spec = Spec(gate, plan);
            var treated = Samples(gate, treatedDevices, windows.Before, windows.AfterNew, windows);
            var control = Samples(gate, controlDevices, windows.Before, windows.AfterOld, windows);
            stage.Alpha.TryGetValue(gate, out var spent);
            var verdict = QualityGate.Judge(spec, treated, control, t, spent);
            stage.Alpha[gate] = verdict.AlphaSpent;
            var dry = plan.IsDryRun(gate);
            var outcome = verdict.Outcome.ToString().ToLowerInvariant();
            snapshot.NewVerdicts.Add(new VerdictRecord(r.Stage, gate, stage.Looks, now, outcome, dry, verdict.AlphaSpent, verdict.Evidence.Explanation,
                JsonSerializer.Serialize(verdict.Evidence, EvidenceJson)));
            if (dry)
            {
                continue;
            }

            if (verdict.Outcome == GateOutcome.Fail)
            {
                failures.Add($"{gate}: {verdict.Evidence.Explanation}");
            }
            else if (verdict.Outcome != GateOutcome.Pass)
            {
                unresolved.Add($"{gate} {outcome}");
            }
        }

        if (failures.Count > 0)
        {
            Fail(snapshot, now, $"stage {r.Stage + 1} failed its quality gates: {string.Join("; ", failures)}");
            return false;
        }

        if (stage.Looks < LooksPerBake)
        {
            return false;
        }

        if (unresolved.Count > 0)
        {
            Pause(snapshot, now, $"stage {r.Stage + 1} is inconclusive after its bake time ({string.Join(", ", unresolved)}): no data is never a pass; approve to go on anyway, resume to judge again, or roll back");
            return false;
        }

        return true;
    }

    internal static GateSpec Spec(string gate, RolloutPlan plan) => gate switch
    {
        GateNames.Latency => new GateSpec("p95 latency", MetricKind.Ratio, true, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        GateNames.Errors => new GateSpec("error share", MetricKind.Share, true, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        GateNames.NonFinite => new GateSpec("NaN/Inf share", MetricKind.Share, true, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        GateNames.Confidence => new GateSpec("mean confidence", MetricKind.Ratio, false, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        GateNames.Drift => new GateSpec("drift windows at warn or worse", MetricKind.Share, true, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        GateNames.ShadowAgreement => new GateSpec("shadow top-1 agreement", MetricKind.Share, false, plan.Margin(gate), plan.Alpha, plan.MinGateDevices),
        _ => throw new ArgumentOutOfRangeException(nameof(gate), gate, "unknown gate"),
    };

    private static List<DeviceSample> Samples(string gate, List<DeviceRecord> devices, IReadOnlyDictionary<string, DeviceAggregate> before,
        IReadOnlyDictionary<string, DeviceAggregate> after, GateWindows windows)
    {
        var list = new List<DeviceSample>(devices.Count);
        foreach (var d in devices)
        {
            if (gate == GateNames.ShadowAgreement)
            {
                // Agreement of the candidate with the live model on the same frames: 1 is perfect, judged against that.
                var a = windows.AfterNew.TryGetValue(d.DeviceId, out var shadow) && shadow.Agreement is { } agreement ? agreement : double.NaN;
                list.Add(new DeviceSample(d.DeviceId, d.Stratum ?? "", 1.0, a));
                continue;
            }

            before.TryGetValue(d.DeviceId, out var b);
            after.TryGetValue(d.DeviceId, out var x);
            list.Add(new DeviceSample(d.DeviceId, d.Stratum ?? "", Value(gate, b), Value(gate, x)));
        }

        return list;
    }

    /// <summary>A device's value of a gate's metric over a window; NaN when the window holds nothing to judge.</summary>
    internal static double Value(string gate, DeviceAggregate? a)
    {
        if (a is null || a.Points == 0 && a.DriftReports == 0)
        {
            return double.NaN;
        }

        return gate switch
        {
            GateNames.Latency => a.P95 ?? double.NaN,
            GateNames.Errors => a.Inferred + a.Errors > 0 ? (double)a.Errors / (a.Inferred + a.Errors) : double.NaN,
            GateNames.NonFinite => a.Inferred > 0 ? (double)a.NonFinite / a.Inferred : double.NaN,
            GateNames.Confidence => a.Confidence ?? double.NaN,
            GateNames.Drift => a.DriftReports > 0 ? (double)a.DriftBad / a.DriftReports : double.NaN,
            _ => double.NaN,
        };
    }

    private static void Fail(RolloutSnapshot snapshot, DateTimeOffset now, string reason)
    {
        var r = snapshot.Rollout;
        if (r.Plan.OnFailure == FailurePolicies.Rollback)
        {
            r.State = RolloutStates.RollingBack;
            r.Reason = reason + "; rolling back (policy rollback)";
            var stage = snapshot.CurrentStage;
            stage.State = StageStates.Failed;
            stage.FinishedAt = now;
            stage.Dirty = true;
            foreach (var later in snapshot.Stages.Where(s => s.Index > stage.Index && s.State == StageStates.Pending))
            {
                later.State = StageStates.Skipped;
                later.Dirty = true;
            }
        }
        else
        {
            Pause(snapshot, now, reason + "; paused (policy pause)");
        }
    }

    private static void Pause(RolloutSnapshot snapshot, DateTimeOffset now, string reason)
    {
        var r = snapshot.Rollout;
        r.State = RolloutStates.Paused;
        r.PausedByGate = true;
        r.Reason = reason;
        r.UpdatedAt = now;
    }

    private static void Finish(RolloutRecord r, DateTimeOffset now, string state, string? reason)
    {
        r.State = state;
        r.Reason = reason ?? r.Reason;
        r.FinishedAt = now;
        r.UpdatedAt = now;
    }

    /// <summary>Sends every device the rollout touched its previous version; finishes when none is still on its way back.</summary>
    private static void RollBack(RolloutSnapshot snapshot, DateTimeOffset now, Func<string, string, string, DesiredMessage?> template, StepResult result)
    {
        var r = snapshot.Rollout;
        foreach (var d in snapshot.Devices)
        {
            switch (d.State)
            {
                case RolloutDeviceStates.Pending:
                    d.Set(RolloutDeviceStates.Skipped, now, "not notified before the rollback");
                    continue;
                case RolloutDeviceStates.Shadow:
                    // It only ran the candidate beside its model: clearing the shadow desired is all it takes.
                    d.DesiredId = null;
                    d.Desired = null;
                    d.Set(RolloutDeviceStates.Skipped, now, "shadow cleared by the rollback");
                    result.Publications.Add(new Publication(d.DeviceId, null, []));
                    continue;
                case RolloutDeviceStates.Notified or RolloutDeviceStates.Downloading or RolloutDeviceStates.Activated or RolloutDeviceStates.Succeeded
                    or RolloutDeviceStates.Failed or RolloutDeviceStates.TimedOut:
                    if (d.NotifiedAt is null || d.Reason?.StartsWith("going back", StringComparison.Ordinal) == true)
                    {
                        continue;
                    }

                    break;
                default:
                    continue;
            }

            var previous = d.PreviousModel is not null && d.PreviousVersion is not null ? template(d.PreviousModel, d.PreviousVersion, DesiredModes.Live) : null;
            if (previous is null)
            {
                d.DesiredId = null;
                d.Desired = null;
                d.NotifiedAt = null;
                d.Set(RolloutDeviceStates.Reverted, now, d.PreviousVersion is null
                    ? "it ran no registered version before; its desired message is cleared and it keeps what it runs"
                    : $"its previous version {d.PreviousModel} {d.PreviousVersion} is not in the registry; its desired message is cleared and it keeps what it runs");
                result.Publications.Add(new Publication(d.DeviceId, null, []));
                continue;
            }

            var id = $"{r.Id}-{d.DeviceId}-back-{now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}";
            var payload = MessageParser.Serialize(previous with { Id = id, RolloutId = r.Id, IssuedAt = now });
            d.DesiredId = id;
            d.Desired = Encoding.UTF8.GetString(payload);
            d.NotifiedAt = null; // marks "sent back": a revert is not undone twice
            d.DeadlineAt = now + TimeSpan.FromSeconds(r.Plan.DeadlineSeconds);
            d.FinishedAt = null;
            d.Set(RolloutDeviceStates.Reverting, now);
            result.Publications.Add(new Publication(d.DeviceId, id, payload));
        }

        if (snapshot.Devices.All(d => d.State != RolloutDeviceStates.Reverting))
        {
            // Sent back (NotifiedAt cleared) and then refused it or never answered before the deadline.
            var stuck = snapshot.Devices.Count(d => d.NotifiedAt is null
                && (d.State == RolloutDeviceStates.TimedOut || (d.State == RolloutDeviceStates.Failed && d.Reason?.StartsWith("going back", StringComparison.Ordinal) == true)));
            if (stuck > 0)
            {
                Finish(r, now, RolloutStates.Failed, $"{r.Reason}; {stuck} devices could not be sent back to their previous version (see their reasons)");
            }
            else
            {
                Finish(r, now, RolloutStates.RolledBack, null);
            }
        }
    }
}
