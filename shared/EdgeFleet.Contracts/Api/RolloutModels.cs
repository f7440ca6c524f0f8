using System.Text.Json;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Contracts.Api;

/// <summary>
/// <c>POST /api/v1/rollouts</c>: roll a model version out to the devices a selector picks, stage by stage. Every field
/// but model and version has a default; durations are seconds.
/// </summary>
public sealed record RolloutRequest
{
    /// <summary>Model name.</summary>
    public string? Model { get; init; }

    /// <summary>Version to roll out.</summary>
    public string? Version { get; init; }

    /// <summary>Device selector: tags (<c>key</c> or <c>key=value</c>, all must match; <c>group=NAME</c> is a tag too). Empty: every device.</summary>
    public IReadOnlyList<string>? Selector { get; init; }

    /// <summary>Explicit device ids (added to, or instead of, the selector's).</summary>
    public IReadOnlyList<string>? Devices { get; init; }

    /// <summary>Stages in order; default 1 %, 10 %, 50 %, 100 %.</summary>
    public IReadOnlyList<RolloutStageRequest>? Stages { get; init; }

    /// <summary>Quality gates: latency, errors, nan, confidence, drift, shadow. Default all but shadow (shadow is added when a shadow stage runs). The delivery gate always runs.</summary>
    public IReadOnlyList<string>? Gates { get; init; }

    /// <summary>Gates judged and shown but never acted on.</summary>
    public IReadOnlyList<string>? DryRunGates { get; init; }

    /// <summary>What a failing gate does: <c>pause</c> (default) or <c>rollback</c>.</summary>
    public string? OnFailure { get; init; }

    /// <summary>Seconds a notified device has to report <c>update.committed</c> before it counts as timed out (default 1800).</summary>
    public double? DeadlineSeconds { get; init; }

    /// <summary>Devices notified per minute (default 1000).</summary>
    public double? RatePerMinute { get; init; }

    /// <summary>Multiply the rate by this factor each time <see cref="RateGrowthEvery"/> more devices succeeded (default 1: constant).</summary>
    public double? RateGrowthFactor { get; init; }

    /// <summary>Succeeded devices per rate increase.</summary>
    public int? RateGrowthEvery { get; init; }

    /// <summary>Seconds of a shadow stage before the first live stage: the first stage's devices run the version beside their model and report agreement.</summary>
    public double? ShadowSeconds { get; init; }

    /// <summary>Ask for approval before every stage after the first.</summary>
    public bool ApproveEach { get; init; }

    /// <summary>Take devices that are in another active rollout out of it instead of refusing (409).</summary>
    public bool Supersede { get; init; }

    /// <summary>Promote the version to <c>production</c> when the rollout succeeds.</summary>
    public bool Promote { get; init; }

    /// <summary>Delivery gate: the largest failure share among devices that finished (default 0.1).</summary>
    public double? MaxFailureShare { get; init; }

    /// <summary>Delivery gate: devices that must have finished before the failure share is judged (default 3, at most the stage size).</summary>
    public int? MinFinished { get; init; }

    /// <summary>Quality gates: one-sided false-alarm rate over the whole bake time (default 0.05).</summary>
    public double? Alpha { get; init; }

    /// <summary>Quality gates: updated devices needed for a verdict (default 5); fewer is inconclusive.</summary>
    public int? MinGateDevices { get; init; }

    /// <summary>Tolerated worsening per gate before it fails (e.g. latency 0.1 = 10 % slower, errors 0.01 = one more error in a hundred frames).</summary>
    public IReadOnlyDictionary<string, double>? Margins { get; init; }

    /// <summary>Tag key whose values are hardware strata of the quality gates (default <c>hw</c>).</summary>
    public string? StratifyBy { get; init; }

    /// <summary>Probation settings sent to the devices with the version.</summary>
    public ProbationOverrides? Probation { get; init; }

    /// <summary>Why (stored in the audit log).</summary>
    public string? Reason { get; init; }
}

/// <summary>One stage: a percentage of the selected devices or a count (cumulative), and how long to watch it.</summary>
public sealed record RolloutStageRequest
{
    /// <summary>Cumulative share of the selected devices, 0–100.</summary>
    public double? Percent { get; init; }

    /// <summary>Cumulative number of devices (instead of a percentage).</summary>
    public int? Count { get; init; }

    /// <summary>At least this many devices by the end of the stage (default 5, at most the fleet).</summary>
    public int? MinDevices { get; init; }

    /// <summary>Seconds the quality gates watch the stage after its devices finished updating (default 600).</summary>
    public double? BakeSeconds { get; init; }

    /// <summary>Wait for an operator's approval before this stage starts.</summary>
    public bool? Approval { get; init; }
}

/// <summary><c>POST /api/v1/rollouts/{id}/{action}</c>.</summary>
public sealed record RolloutActionRequest
{
    /// <summary>Why (stored in the audit log).</summary>
    public string? Reason { get; init; }
}

/// <summary>Rollout states.</summary>
public static class RolloutStates
{
    /// <summary>Notifying and watching stages.</summary>
    public const string Running = "running";
    /// <summary>Waiting for an operator to approve the next stage.</summary>
    public const string AwaitingApproval = "awaiting_approval";
    /// <summary>Stopped by an operator or by a failing or inconclusive gate.</summary>
    public const string Paused = "paused";
    /// <summary>Sending updated devices their previous version.</summary>
    public const string RollingBack = "rolling_back";
    /// <summary>Every stage passed.</summary>
    public const string Succeeded = "succeeded";
    /// <summary>Stopped for good by a failure.</summary>
    public const string Failed = "failed";
    /// <summary>Stopped by an operator; devices left as they are.</summary>
    public const string Aborted = "aborted";
    /// <summary>Every updated device runs its previous version again.</summary>
    public const string RolledBack = "rolled_back";

    /// <summary>States a rollout can still leave.</summary>
    public static bool IsActive(string state) => state is Running or AwaitingApproval or Paused or RollingBack;
}

/// <summary>Per-device states within a rollout.</summary>
public static class RolloutDeviceStates
{
    /// <summary>Not notified yet (a control device while it stays on its version).</summary>
    public const string Pending = "pending";

    /// <summary>Its desired message is published; nothing heard yet.</summary>
    public const string Notified = "notified";
    /// <summary>Downloading or verifying.</summary>
    public const string Downloading = "downloading";

    /// <summary>Runs the version, on probation.</summary>
    public const string Activated = "activated";

    /// <summary>Reported <c>update.committed</c>: probation passed.</summary>
    public const string Succeeded = "succeeded";

    /// <summary>Reported <c>update.rejected</c> or <c>update.rolled_back</c>.</summary>
    public const string Failed = "failed";

    /// <summary>Did not finish before its deadline (offline, for instance); neither success nor failure.</summary>
    public const string TimedOut = "timed_out";

    /// <summary>Never notified: the rollout was aborted or rolled back first, or another rollout superseded it.</summary>
    public const string Skipped = "skipped";

    /// <summary>Sent its previous version back.</summary>
    public const string Reverting = "reverting";

    /// <summary>Runs its previous version again.</summary>
    public const string Reverted = "reverted";

    /// <summary>Runs the candidate beside its model in a shadow stage (its live model is unchanged).</summary>
    public const string Shadow = "shadow";

    /// <summary>All.</summary>
    public static readonly IReadOnlyList<string> All = [Pending, Shadow, Notified, Downloading, Activated, Succeeded, Failed, TimedOut, Skipped, Reverting, Reverted];

    /// <summary>Notified and not finished.</summary>
    public static bool InFlight(string state) => state is Notified or Downloading or Activated;
}

/// <summary>A rollout as the API shows it.</summary>
public sealed record RolloutInfo
{
    /// <summary>Rollout id.</summary>
    public required string Id { get; init; }

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>Model version.</summary>
    public required string Version { get; init; }

    /// <summary>Current state.</summary>
    public required string State { get; init; }

    /// <summary>Why it is paused, failed, rolled back or aborted.</summary>
    public string? Reason { get; init; }

    /// <summary>Index of the current stage (0 is the shadow stage when there is one).</summary>
    public int Stage { get; init; }

    /// <summary>Stages in order.</summary>
    public required IReadOnlyList<RolloutStageInfo> Stages { get; init; }

    /// <summary>Devices per state over the whole rollout.</summary>
    public IReadOnlyDictionary<string, int> Counts { get; set; } = new Dictionary<string, int>();

    /// <summary>Devices in the rollout.</summary>
    public int DeviceCount { get; init; }

    /// <summary>The newest verdict of every gate of every stage judged so far.</summary>
    public IReadOnlyList<GateVerdictInfo> Verdicts { get; set; } = [];

    /// <summary>Per-device states (in rollout order); left out of lists.</summary>
    public IReadOnlyList<RolloutDeviceInfo>? Devices { get; init; }

    /// <summary>The rollout as it was created, with every default filled in.</summary>
    public JsonElement? Spec { get; init; }

    /// <summary>Who created it.</summary>
    public string? CreatedBy { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it last changed.</summary>
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? FinishedAt { get; init; }
}

/// <summary>A stage and where it is.</summary>
public sealed record RolloutStageInfo
{
    /// <summary>Position, from 0.</summary>
    public int Index { get; init; }

    /// <summary><c>shadow</c> or <c>live</c>.</summary>
    public string Kind { get; set; } = "live";

    /// <summary>Cumulative share of the selected devices, 0–100.</summary>
    public double? Percent { get; init; }

    /// <summary>Cumulative number of devices.</summary>
    public int? Count { get; init; }

    /// <summary>Devices in the rollout once this stage is done (cumulative).</summary>
    public int Target { get; init; }

    /// <summary>Devices this stage updates.</summary>
    public int Devices { get; init; }

    /// <summary>Seconds the quality gates watch the stage.</summary>
    public double BakeSeconds { get; init; }

    /// <summary>Waits for an operator before it starts.</summary>
    public bool Approval { get; init; }

    /// <summary>pending, awaiting_approval, notifying, baking, passed; failed (its gates failed, the rollout rolls back) and skipped (a later stage then).</summary>
    public required string State { get; init; }

    /// <summary>When it started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When its devices had all finished updating and the bake began.</summary>
    public DateTimeOffset? BakeStartedAt { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>Devices per state.</summary>
    public IReadOnlyDictionary<string, int> Counts { get; set; } = new Dictionary<string, int>();
}

/// <summary>One device of a rollout.</summary>
public sealed record RolloutDeviceInfo
{
    /// <summary>Device id.</summary>
    public required string DeviceId { get; init; }

    /// <summary>The stage that updates it; the number of stages when it is in none (a rollout whose last stage is below 100 %: a control only).</summary>
    public int Stage { get; init; }

    /// <summary>Current state.</summary>
    public required string State { get; init; }

    /// <summary>The version it ran when it was notified.</summary>
    public string? PreviousVersion { get; init; }

    /// <summary>Reason.</summary>
    public string? Reason { get; init; }

    /// <summary>When its desired message was published.</summary>
    public DateTimeOffset? NotifiedAt { get; init; }

    /// <summary>When it times out unless it finished.</summary>
    public DateTimeOffset? DeadlineAt { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? FinishedAt { get; init; }
}

/// <summary>A gate's verdict at one look, with its evidence.</summary>
public sealed record GateVerdictInfo
{
    /// <summary>Stage index.</summary>
    public int Stage { get; init; }

    /// <summary>delivery, latency, errors, nan, confidence, drift, shadow.</summary>
    public required string Gate { get; init; }

    /// <summary>pending, pass, fail, inconclusive.</summary>
    public required string Outcome { get; init; }

    /// <summary>Judged and shown, never acted on.</summary>
    public bool DryRun { get; init; }

    /// <summary>Look number within the stage (quality gates are judged repeatedly as the bake runs).</summary>
    public int Look { get; init; }

    /// <summary>When.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>One line for people.</summary>
    public string? Summary { get; init; }

    /// <summary>Metric, treated and control values, effect, p-value, n, threshold… (gate-specific).</summary>
    public JsonElement? Evidence { get; init; }
}

/// <summary>Which version ran on a device from when to when.</summary>
public sealed record DeploymentInfo
{
    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>Model version.</summary>
    public required string Version { get; init; }

    /// <summary>Since when.</summary>
    public DateTimeOffset From { get; init; }

    /// <summary>Null while it still runs.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>The rollout that sent it, if any.</summary>
    public string? RolloutId { get; init; }
}
