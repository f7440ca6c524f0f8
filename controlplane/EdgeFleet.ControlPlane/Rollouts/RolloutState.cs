using EdgeFleet.Contracts.Api;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>A rollout's own row, as the engine works on it.</summary>
public sealed class RolloutRecord
{
    public required string Id { get; init; }

    public required RolloutPlan Plan { get; init; }

    public required string State { get; set; }

    public string? Reason { get; set; }

    public int Stage { get; set; }

    public bool PausedByGate { get; set; }

    public long RowVersion { get; init; }

    public required string CreatedBy { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }
}

/// <summary>Stage states.</summary>
public static class StageStates
{
    public const string Pending = "pending";
    public const string AwaitingApproval = "awaiting_approval";
    public const string Notifying = "notifying";
    public const string Baking = "baking";
    public const string Passed = "passed";
    public const string Skipped = "skipped";

    /// <summary>Its gates failed and the rollout rolls back (the later stages are skipped).</summary>
    public const string Failed = "failed";
}

/// <summary>A stage's row.</summary>
public sealed class StageRecord
{
    public int Index { get; init; }

    public required string State { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? BakeStartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    /// <summary>Quality-gate looks taken since the bake (re)started.</summary>
    public int Looks { get; set; }

    public string? ApprovedBy { get; set; }

    /// <summary>Alpha spent so far per quality gate (the alpha-spending state; reset when an operator resumes a stage).</summary>
    public Dictionary<string, double> Alpha { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The delivery gate's last outcome in this stage (its verdict is stored when it changes).</summary>
    public string? Delivery { get; set; }

    public bool Dirty { get; set; }
}

/// <summary>One device of a rollout.</summary>
public sealed class DeviceRecord
{
    public required string DeviceId { get; init; }

    public required string OrderKey { get; init; }

    public int Stage { get; init; }

    public required string State { get; set; }

    public string? DesiredId { get; set; }

    /// <summary>The published desired payload (null for a cleared one).</summary>
    public string? Desired { get; set; }

    public string? PreviousModel { get; set; }

    public string? PreviousVersion { get; set; }

    public string? Stratum { get; init; }

    public DateTimeOffset? NotifiedAt { get; set; }

    public DateTimeOffset? DeadlineAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    public string? Reason { get; set; }

    /// <summary>What the device reports running now (from its status; not stored with the rollout).</summary>
    public string? CurrentModel { get; init; }

    public string? CurrentVersion { get; init; }

    public bool Dirty { get; set; }

    public bool IsTerminal => State is RolloutDeviceStates.Succeeded or RolloutDeviceStates.Failed or RolloutDeviceStates.TimedOut or RolloutDeviceStates.Skipped
        or RolloutDeviceStates.Reverted;

    public void Set(string state, DateTimeOffset now, string? reason = null)
    {
        State = state;
        Reason = reason;
        if (IsTerminal)
        {
            FinishedAt = now;
        }

        Dirty = true;
    }
}


/// <summary>A device's newest OTA event about the desired message the rollout sent it.</summary>
public sealed record OtaObservation(string DeviceId, string DesiredId, string State, string? Reason, double? Agreement);

/// <summary>A device's telemetry aggregated over a window (the unit of the quality gates).</summary>
public sealed record DeviceAggregate(double? P95, long Errors, long Inferred, long NonFinite, double? Confidence, long DriftReports, long DriftBad, long Points,
    double? Agreement = null);

/// <summary>Per-device aggregates for a stage look: before the stage started, and since then on the new / on another version.</summary>
public sealed record GateWindows(
    IReadOnlyDictionary<string, DeviceAggregate> Before,
    IReadOnlyDictionary<string, DeviceAggregate> AfterNew,
    IReadOnlyDictionary<string, DeviceAggregate> AfterOld);

/// <summary>A verdict to store.</summary>
public sealed record VerdictRecord(int Stage, string Gate, int Look, DateTimeOffset At, string Outcome, bool DryRun, double? AlphaSpent, string Summary, string? EvidenceJson);

/// <summary>Everything the engine knows about one rollout at one moment.</summary>
public sealed class RolloutSnapshot
{
    public required RolloutRecord Rollout { get; init; }

    public required List<StageRecord> Stages { get; init; }

    /// <summary>In rollout order.</summary>
    public required List<DeviceRecord> Devices { get; init; }

    public List<VerdictRecord> NewVerdicts { get; } = [];

    public StageRecord CurrentStage => Stages[Rollout.Stage];

    public StagePlan CurrentPlan => Rollout.Plan.Stages[Rollout.Stage];

    /// <summary>The devices a stage updates (a shadow stage: the first live stage's).</summary>
    public IEnumerable<DeviceRecord> DevicesOf(int stage) =>
        Devices.Where(d => d.Stage == (Rollout.Plan.Stages[stage].Kind == StagePlan.Shadow ? stage + 1 : stage));
}
