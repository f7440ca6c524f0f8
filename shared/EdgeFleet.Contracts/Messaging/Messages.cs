using System.Text.Json.Serialization;

namespace EdgeFleet.Contracts.Messaging;

/// <summary>Schema identifiers of every message; the part after '/' is the major version.</summary>
public static class Schemas
{
    /// <summary>Retained device status.</summary>
    public const string Status = "ef.status/1";

    /// <summary>Periodic telemetry.</summary>
    public const string Telemetry = "ef.telemetry/1";

    /// <summary>Drift report of one window.</summary>
    public const string Drift = "ef.drift/1";

    /// <summary>Lifecycle event.</summary>
    public const string Event = "ef.event/1";

    /// <summary>Sampled inference result.</summary>
    public const string Result = "ef.result/1";

    /// <summary>Desired model assignment.</summary>
    public const string Desired = "ef.desired/1";

    /// <summary>One-shot command.</summary>
    public const string Command = "ef.cmd/1";

    /// <summary>Reference drift profile (a file, not a message).</summary>
    public const string DriftProfile = "ef.drift-profile/1";
}

/// <summary>A model name and version.</summary>
public sealed record ModelRef(string Name, string Version);

/// <summary>Percentiles of a latency in milliseconds.</summary>
public sealed record LatencyMs(double P50, double P95, double P99);

/// <summary>Fields every device → control plane message carries.</summary>
public interface IDeviceMessage
{
    /// <summary>Schema identifier.</summary>
    string Schema { get; }

    /// <summary>Sending device.</summary>
    string DeviceId { get; }

    /// <summary>When the device produced the message (UTC).</summary>
    DateTimeOffset Ts { get; }
}

/// <summary>Durable messages also carry the device's sequence number (one counter for telemetry, drift and events).</summary>
public interface IDurableMessage : IDeviceMessage
{
    /// <summary>Per-device sequence number; only grows, across restarts.</summary>
    long Seq { get; }
}

/// <summary><c>status</c> (retained). The Last Will publishes the same with <c>Online = false</c>.</summary>
public sealed record StatusMessage : IDeviceMessage
{
    /// <inheritdoc />
    public string Schema { get; set; } = Schemas.Status;

    /// <inheritdoc />
    public required string DeviceId { get; init; }

    /// <inheritdoc />
    public required DateTimeOffset Ts { get; init; }

    /// <summary>Whether the agent is connected.</summary>
    public required bool Online { get; init; }

    /// <summary>Agent build.</summary>
    public string? AgentVersion { get; init; }

    /// <summary>The model serving frames.</summary>
    public ModelRef? Model { get; init; }

    /// <summary>When the agent process started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>Frame source (password masked).</summary>
    public string? Source { get; init; }

    /// <summary>Active execution provider (CPU, CUDA, TensorRT).</summary>
    public string? Provider { get; init; }
}

/// <summary>Frame counters since the agent started.</summary>
public sealed record FrameCounters(long Captured, long Inferred, long Dropped);

/// <summary>Health of the frame source.</summary>
public sealed record SourceHealth(string State, long Restarts, long Stalls, string? LastError);

/// <summary>Host health, from procfs and sysfs.</summary>
public sealed record SystemHealth
{
    /// <summary>CPU use of the whole machine over the interval, 0–100 × cores normalised to 0–100.</summary>
    public double? CpuPercent { get; init; }

    /// <summary>CPU use of the agent process over the interval (100 = one core).</summary>
    public double? ProcessCpuPercent { get; init; }

    /// <summary>Memory in use (total − available).</summary>
    public long? MemUsedBytes { get; init; }

    /// <summary>Installed memory.</summary>
    public long? MemTotalBytes { get; init; }

    /// <summary>Resident memory of the agent.</summary>
    public long? RssBytes { get; init; }

    /// <summary>The agent's managed heap after the last garbage collection.</summary>
    public long? ManagedHeapBytes { get; init; }

    /// <summary>Garbage collections since the agent started (all generations).</summary>
    public long? GcCount { get; init; }

    /// <summary>Hottest thermal zone.</summary>
    public double? TemperatureC { get; init; }

    /// <summary>GPU load (Jetson), 0–100.</summary>
    public double? GpuPercent { get; init; }
}

/// <summary>
/// State of the durable outbox: messages waiting, their bytes, messages evicted because the outbox was full or too
/// old, and messages lost before reaching it (its disk failed, or the agent produced faster than it could write).
/// </summary>
public sealed record OutboxHealth(long Pending, long PendingBytes, long Evicted, long Lost);

/// <summary><c>telemetry</c>, every interval.</summary>
public sealed record TelemetryMessage : IDurableMessage
{
    /// <inheritdoc />
    public string Schema { get; set; } = Schemas.Telemetry;

    /// <inheritdoc />
    public required string DeviceId { get; init; }

    /// <inheritdoc />
    public required DateTimeOffset Ts { get; init; }

    /// <inheritdoc />
    public long Seq { get; init; }

    /// <summary>Seconds between telemetry messages.</summary>
    public double IntervalSeconds { get; init; }

    /// <summary>The model serving frames.</summary>
    public ModelRef? Model { get; init; }

    /// <summary>Inferred frames per second.</summary>
    public double Fps { get; init; }

    /// <summary>End-to-end latency (capture → result).</summary>
    public required LatencyMs LatencyMs { get; init; }

    /// <summary>Per-stage latencies: captureWait, preprocess, inference, postprocess.</summary>
    public IReadOnlyDictionary<string, LatencyMs> StagesMs { get; set; } = new Dictionary<string, LatencyMs>();

    /// <summary>Frame counters.</summary>
    public required FrameCounters Frames { get; init; }

    /// <summary>Frames that failed, since the agent started.</summary>
    public long Errors { get; init; }

    /// <summary>Frames whose outputs held NaN or infinity, since the agent started.</summary>
    public long NonFinite { get; init; }

    /// <summary>Mean top-1 confidence (classification) or mean box confidence (detection) over the interval; null when no frame was inferred.</summary>
    public double? Confidence { get; init; }

    /// <summary>Frame source health.</summary>
    public SourceHealth? Source { get; init; }

    /// <summary>Host health.</summary>
    public SystemHealth? System { get; init; }

    /// <summary>Outbox state.</summary>
    public OutboxHealth? Outbox { get; init; }

    /// <summary>Messages received on <c>desired</c> / <c>cmd</c> that were malformed or not allowed, since start.</summary>
    public long RejectedMessages { get; init; }

    /// <summary>Mean drift work per frame on the inference thread, in microseconds.</summary>
    public double? DriftUsPerFrame { get; init; }
}

/// <summary>Drift severity.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DriftSeverity>))]
public enum DriftSeverity
{
    /// <summary>No meaningful change.</summary>
    [JsonStringEnumMemberName("none")] None,

    /// <summary>A moderate change (PSI ≥ warn threshold).</summary>
    [JsonStringEnumMemberName("warn")] Warn,

    /// <summary>A large change (PSI ≥ alert threshold).</summary>
    [JsonStringEnumMemberName("alert")] Alert,
}

/// <summary>Sample sizes of a comparison.</summary>
public sealed record SampleSizes(long Baseline, long Current);

/// <summary>A test statistic and its p-value.</summary>
public sealed record TestResult(double Statistic, double PValue);

/// <summary>Drift of one feature between a baseline and the current data.</summary>
public sealed record FeatureDrift
{
    /// <summary>Feature name.</summary>
    public required string Name { get; init; }

    /// <summary><c>numeric</c> or <c>categorical</c>.</summary>
    public string Kind { get; set; } = "numeric";

    /// <summary>Sample sizes.</summary>
    public required SampleSizes N { get; init; }

    /// <summary>Effective size of the current sample, corrected for correlation between consecutive frames.</summary>
    public double? NEffective { get; init; }

    /// <summary>Population stability index.</summary>
    public double Psi { get; init; }

    /// <summary>Kolmogorov–Smirnov test (numeric features).</summary>
    public TestResult? Ks { get; init; }

    /// <summary>Jensen–Shannon distance.</summary>
    public double JsDistance { get; init; }

    /// <summary>Wasserstein-1 distance (numeric).</summary>
    public double? Wasserstein { get; init; }

    /// <summary>Wasserstein-1 divided by the baseline's standard deviation (numeric).</summary>
    public double? WassersteinNormed { get; init; }

    /// <summary>Chi-square test of homogeneity (categorical features).</summary>
    public TestResult? Chi2 { get; init; }

    /// <summary>The feature's p-value after the Benjamini–Hochberg correction across features.</summary>
    public double? PValueAdjusted { get; init; }

    /// <summary>Severity.</summary>
    public DriftSeverity Severity { get; init; }
}

/// <summary>The frames a drift report covers.</summary>
public sealed record DriftWindow(long Frames, DateTimeOffset Start, DateTimeOffset End);

/// <summary><c>drift</c>, one per window.</summary>
public sealed record DriftMessage : IDurableMessage
{
    /// <inheritdoc />
    public string Schema { get; set; } = Schemas.Drift;

    /// <inheritdoc />
    public required string DeviceId { get; init; }

    /// <inheritdoc />
    public required DateTimeOffset Ts { get; init; }

    /// <inheritdoc />
    public long Seq { get; init; }

    /// <summary>The model whose inputs and outputs were watched.</summary>
    public ModelRef? Model { get; init; }

    /// <summary>Identifies the reference profile (or the baseline window) compared against.</summary>
    public required string ReferenceId { get; init; }

    /// <summary>The window.</summary>
    public required DriftWindow Window { get; init; }

    /// <summary>Per-feature results.</summary>
    public required IReadOnlyList<FeatureDrift> Features { get; init; }

    /// <summary>Highest feature severity.</summary>
    public DriftSeverity Severity { get; init; }
}

/// <summary><c>events</c>: lifecycle (<c>update.*</c>, <c>camera.*</c>, <c>model.*</c>, <c>drift.*</c>, errors).</summary>
public sealed record EventMessage : IDurableMessage
{
    /// <inheritdoc />
    public string Schema { get; set; } = Schemas.Event;

    /// <inheritdoc />
    public required string DeviceId { get; init; }

    /// <inheritdoc />
    public required DateTimeOffset Ts { get; init; }

    /// <inheritdoc />
    public long Seq { get; init; }

    /// <summary>Event type, e.g. <c>camera.failed</c>.</summary>
    public required string Type { get; init; }

    /// <summary><c>info</c>, <c>warning</c> or <c>error</c>.</summary>
    public string Level { get; set; } = "info";

    /// <summary>Human-readable reason.</summary>
    public string? Message { get; init; }

    /// <summary>Extra fields.</summary>
    public IReadOnlyDictionary<string, string>? Data { get; init; }
}

/// <summary>A class and its score.</summary>
public sealed record ClassScore(int Id, string? Label, float Score);

/// <summary>A detected box in model-input pixels.</summary>
public sealed record BoxResult(int ClassId, string? Label, float Score, float X1, float Y1, float X2, float Y2);

/// <summary><c>results</c>: a sampled inference result (QoS 0, opt-in).</summary>
public sealed record ResultMessage : IDeviceMessage
{
    /// <inheritdoc />
    public string Schema { get; set; } = Schemas.Result;

    /// <inheritdoc />
    public required string DeviceId { get; init; }

    /// <inheritdoc />
    public required DateTimeOffset Ts { get; init; }

    /// <summary>Frame number.</summary>
    public long Frame { get; init; }

    /// <summary>Model.</summary>
    public ModelRef? Model { get; init; }

    /// <summary>Top classes (classification).</summary>
    public IReadOnlyList<ClassScore>? Classes { get; init; }

    /// <summary>Boxes (detection).</summary>
    public IReadOnlyList<BoxResult>? Boxes { get; init; }
}

/// <summary>
/// <c>desired</c> (retained, QoS 1): the model the control plane wants this device to run (DESIGN.md §6). The manifest at
/// <see cref="ManifestUrl"/> is the authority: the agent verifies <see cref="Signature"/> over its exact bytes with the
/// registry key pinned at enrollment, then checks that the manifest's artifact sha256 and size equal the ones here.
/// An empty retained payload clears the assignment (the device keeps what it runs).
/// </summary>
public sealed record DesiredMessage
{
    /// <summary>Schema identifier.</summary>
    public string Schema { get; set; } = Schemas.Desired;

    /// <summary>
    /// Identifies this assignment; a new id for the same model version asks the device to try it again (after a
    /// rollback, for example). Default: model@version.
    /// </summary>
    public string? Id { get; init; }

    /// <summary>The rollout that assigned it; null for a direct assignment.</summary>
    public string? RolloutId { get; init; }

    /// <summary>When the control plane issued it; a device ignores an assignment older than the one it is working on.</summary>
    public DateTimeOffset? IssuedAt { get; init; }

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>Model version.</summary>
    public required string Version { get; init; }

    /// <summary><c>live</c> (default: replace the running model) or <c>shadow</c> (run beside it, report agreement only).</summary>
    public string Mode { get; set; } = DesiredModes.Live;

    /// <summary>Where to download the ONNX file.</summary>
    public required string ArtifactUrl { get; init; }

    /// <summary>Expected SHA-256 (hex).</summary>
    public required string Sha256 { get; init; }

    /// <summary>Expected size in bytes.</summary>
    public required long Size { get; init; }

    /// <summary>Where to download the manifest (the exact bytes that were signed).</summary>
    public required string ManifestUrl { get; init; }

    /// <summary>Base64 of the registry's detached ES256 signature (DER) over the manifest bytes.</summary>
    public string? Signature { get; init; }

    /// <summary>Where the same signature is served as a file (<c>.sig</c>, DER), for operators.</summary>
    public string? SignatureUrl { get; init; }

    /// <summary>Id of the signing key (see <c>ManifestSigning.KeyId</c>).</summary>
    public string? KeyId { get; init; }

    /// <summary>Probation settings for this assignment; null fields keep the device's configuration.</summary>
    public ProbationOverrides? Probation { get; init; }

    /// <summary>The id used when <see cref="Id"/> is absent.</summary>
    [JsonIgnore]
    public string EffectiveId => string.IsNullOrEmpty(Id) ? $"{Model}@{Version}" : Id;
}

/// <summary>Values of <see cref="DesiredMessage.Mode"/>.</summary>
public static class DesiredModes
{
    /// <summary>Replace the running model (with probation and automatic rollback).</summary>
    public const string Live = "live";

    /// <summary>Run beside the live model on spare frames; never publish its results.</summary>
    public const string Shadow = "shadow";
}

/// <summary>Per-assignment probation settings (DESIGN.md §6); each null field keeps the device's configured value.</summary>
public sealed record ProbationOverrides
{
    /// <summary>Frames the new model must infer before it can be committed.</summary>
    public long? Frames { get; init; }

    /// <summary>Seconds the probation lasts at least.</summary>
    public double? Seconds { get; init; }

    /// <summary>Largest share of frames that may fail (0..1).</summary>
    public double? MaxErrorShare { get; init; }

    /// <summary>Largest share of frames with a NaN or infinite output (0..1).</summary>
    public double? MaxNonFiniteShare { get; init; }

    /// <summary>Largest p95 inference latency of the new model over the previous one's.</summary>
    public double? MaxLatencyRatio { get; init; }

    /// <summary>Largest drop of the mean top-1 / box confidence, absolute (0..1).</summary>
    public double? MaxConfidenceDrop { get; init; }

    /// <summary>Highest drift severity tolerated: <c>none</c>, <c>warn</c> or <c>alert</c>.</summary>
    public string? MaxDriftSeverity { get; init; }
}

/// <summary>The <c>update.*</c> and <c>shadow.*</c> event types and the reasons they carry (DESIGN.md §6).</summary>
public static class UpdateEvents
{
    /// <summary>The device saw a new assignment.</summary>
    public const string Received = "update.received";
    /// <summary>Download progress (<c>bytes</c>, <c>total</c>), at most once a second.</summary>
    public const string Downloading = "update.downloading";
    /// <summary>Size, sha256 and signature checked.</summary>
    public const string Verified = "update.verified";
    /// <summary>Not applied; <c>reason</c> says why (see <see cref="RejectReasons"/>).</summary>
    public const string Rejected = "update.rejected";
    /// <summary>The new model serves frames, on probation.</summary>
    public const string Activated = "update.activated";
    /// <summary>Probation passed.</summary>
    public const string Committed = "update.committed";
    /// <summary>Probation failed; the previous model serves again (<c>criterion</c>, values, thresholds).</summary>
    public const string RolledBack = "update.rolled_back";
    /// <summary>Agreement of a shadow candidate with the live model.</summary>
    public const string ShadowReport = "shadow.report";

    /// <summary>Every update event type.</summary>
    public static readonly IReadOnlyList<string> All = [Received, Downloading, Verified, Rejected, Activated, Committed, RolledBack, ShadowReport];
}

/// <summary>Values of <c>data.reason</c> on <c>update.rejected</c>.</summary>
public static class RejectReasons
{
    /// <summary>The artifact has another size than the manifest says.</summary>
    public const string Size = "size";
    /// <summary>The artifact hash differs from the manifest.</summary>
    public const string Sha256 = "sha256";
    /// <summary>The manifest is unsigned, altered or signed by another key.</summary>
    public const string Signature = "signature";
    /// <summary>Not enough free disk for the artifact plus headroom.</summary>
    public const string Disk = "disk";
    /// <summary>Input or task the capture or pipeline cannot serve.</summary>
    public const string Incompatible = "incompatible";
    /// <summary>The runtime could not create a session.</summary>
    public const string Load = "load";
    /// <summary>The self-test outputs differ from the manifest.</summary>
    public const string SelfTest = "selftest";
    /// <summary>The download failed after its retries, or the assignment is invalid.</summary>
    public const string Download = "download";

    /// <summary>Every reason.</summary>
    public static readonly IReadOnlyList<string> All = [Size, Sha256, Signature, Disk, Incompatible, Load, SelfTest, Download];
}

/// <summary><c>cmd</c>: a one-shot command.</summary>
public sealed record CommandMessage
{
    /// <summary>Schema identifier.</summary>
    public string Schema { get; set; } = Schemas.Command;

    /// <summary>Identifies the command (echoed in the events it causes).</summary>
    public required string Id { get; init; }

    /// <summary><c>drift.rebaseline</c>, <c>pipeline.restart</c> or <c>snapshot</c>.</summary>
    public required string Command { get; init; }

    /// <summary>Arguments.</summary>
    public IReadOnlyDictionary<string, string>? Args { get; init; }
}

/// <summary>Known command names.</summary>
public static class Commands
{
    /// <summary>Make the current window the new drift baseline.</summary>
    public const string DriftRebaseline = "drift.rebaseline";

    /// <summary>Restart the capture and inference pipeline.</summary>
    public const string PipelineRestart = "pipeline.restart";

    /// <summary>Publish the next result on <c>results</c> whatever the sampling.</summary>
    public const string Snapshot = "snapshot";

    /// <summary>Every known command.</summary>
    public static readonly IReadOnlyList<string> All = [DriftRebaseline, PipelineRestart, Snapshot];
}
