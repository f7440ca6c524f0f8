using System.Text.Json.Serialization;

namespace EdgeFleet.Contracts.Api;

// The REST API's request and response bodies (JSON, camelCase, under /api/v1), shared by the control plane and the
// edgefleet CLI. Times are RFC 3339 UTC. Errors are application/problem+json (RFC 9457) with an "errors" map of
// field → messages for validation failures.

/// <summary>Roles of API tokens, from least to most privileged.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ApiRole>))]
public enum ApiRole
{
    /// <summary>Reads everything.</summary>
    Viewer,

    /// <summary>Also pushes and promotes models, tags devices, creates enrollment tokens.</summary>
    Operator,

    /// <summary>Also manages API tokens and revokes devices.</summary>
    Admin,
}

/// <summary>Registry stages of a model version.</summary>
public static class Stages
{
    /// <summary>Just pushed.</summary>
    public const string None = "none";

    /// <summary>Being validated.</summary>
    public const string Staging = "staging";

    /// <summary>Serving; one version per model at a time.</summary>
    public const string Production = "production";

    /// <summary>Retired.</summary>
    public const string Archived = "archived";

    /// <summary>Every stage.</summary>
    public static IReadOnlyList<string> All { get; } = [None, Staging, Production, Archived];
}

/// <summary>A model and a summary of its versions (<c>GET /api/v1/models</c>, <c>GET /api/v1/models/{name}</c>).</summary>
public sealed record ModelSummary
{
    /// <summary>Model name: <c>[a-z0-9][a-z0-9._-]{0,63}</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Task of the newest version.</summary>
    public string? Task { get; init; }

    /// <summary>Description of the newest version.</summary>
    public string? Description { get; init; }

    /// <summary>Number of versions.</summary>
    public int VersionCount { get; init; }

    /// <summary>Newest version by semver precedence.</summary>
    public string? LatestVersion { get; init; }

    /// <summary>The version in production, if any.</summary>
    public string? ProductionVersion { get; init; }

    /// <summary>Versions in staging.</summary>
    public IReadOnlyList<string> StagingVersions { get; set; } = [];

    /// <summary>When the first version was pushed.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the last version was pushed or a stage changed.</summary>
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Versions, newest first (only in <c>GET /api/v1/models/{name}</c>).</summary>
    public IReadOnlyList<ModelVersionInfo>? Versions { get; init; }
}

/// <summary>One version of a model (<c>GET /api/v1/models/{name}/versions/{version}</c>).</summary>
public sealed record ModelVersionInfo
{
    /// <summary>Model name.</summary>
    public required string Name { get; init; }

    /// <summary>Semantic version.</summary>
    public required string Version { get; init; }

    /// <summary>Current stage, see <see cref="Stages"/>.</summary>
    public required string Stage { get; init; }

    /// <summary><c>classification</c> or <c>detection</c>.</summary>
    public required string Task { get; init; }

    /// <summary>From the manifest.</summary>
    public string? Description { get; init; }

    /// <summary>SHA-256 of the ONNX file, lowercase hex.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Size of the ONNX file in bytes.</summary>
    public long Size { get; init; }

    /// <summary>Who pushed it (token name).</summary>
    public string? CreatedBy { get; init; }

    /// <summary>When it was pushed.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Whether a reference drift profile is attached.</summary>
    public bool HasDriftProfile { get; init; }

    /// <summary>Training metadata.</summary>
    public ModelVersionMetadata Metadata { get; set; } = new();

    /// <summary>Download path of the ONNX file (relative to the server).</summary>
    public string? ArtifactUrl { get; init; }

    /// <summary>Download path of the manifest: the exact bytes the registry signed.</summary>
    public string? ManifestUrl { get; init; }

    /// <summary>Download path of the detached ES256 signature (DER) of the manifest.</summary>
    public string? SignatureUrl { get; init; }
}

/// <summary>Training metadata of a version; set at push time or with <c>PATCH …/versions/{version}</c>.</summary>
public sealed record ModelVersionMetadata
{
    /// <summary>Evaluation metrics, e.g. <c>{"top1": 0.91}</c>.</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }

    /// <summary>Training parameters.</summary>
    public IReadOnlyDictionary<string, string>? Parameters { get; init; }

    /// <summary>Dataset version the model was trained on.</summary>
    public string? DatasetVersion { get; init; }

    /// <summary>Link to the training run (an http(s) URL).</summary>
    public string? TrainingRun { get; init; }

    /// <summary>The version this one was derived from.</summary>
    public string? ParentVersion { get; init; }
}

/// <summary>Body of <c>POST /api/v1/models/{name}/versions/{version}/stage</c>.</summary>
public sealed record StageChangeRequest
{
    /// <summary>Target stage, see <see cref="Stages"/>.</summary>
    public required string Stage { get; init; }

    /// <summary>Why (kept in the audit log and the stage history).</summary>
    public string? Reason { get; init; }
}

/// <summary>One stage transition (<c>GET /api/v1/models/{name}/history</c>).</summary>
public sealed record StageHistoryEntry
{
    /// <summary>Version that moved.</summary>
    public required string Version { get; init; }

    /// <summary>Stage before; empty for the entry that records the push itself.</summary>
    public required string From { get; init; }

    /// <summary>Stage after.</summary>
    public required string To { get; init; }

    /// <summary>Who (token name).</summary>
    public string? By { get; init; }

    /// <summary>When.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>Why.</summary>
    public string? Reason { get; init; }
}

/// <summary>A device (<c>GET /api/v1/devices</c>, <c>GET /api/v1/devices/{id}</c>).</summary>
public sealed record DeviceInfo
{
    /// <summary>Device id: <c>[a-z0-9][a-z0-9-]{0,62}</c>.</summary>
    public required string Id { get; init; }

    /// <summary>Tags (<c>key</c> or <c>key=value</c>).</summary>
    public IReadOnlyList<string> Tags { get; set; } = [];

    /// <summary>From the retained status.</summary>
    public bool Online { get; init; }

    /// <summary>Revoked devices cannot connect.</summary>
    public bool Revoked { get; init; }

    /// <summary>Last message of any kind.</summary>
    public DateTimeOffset? LastSeen { get; init; }

    /// <summary>When the device enrolled.</summary>
    public DateTimeOffset EnrolledAt { get; init; }

    /// <summary>Agent version from its status.</summary>
    public string? AgentVersion { get; init; }

    /// <summary>Model the device reports running.</summary>
    public ModelRefInfo? Model { get; init; }

    /// <summary>Health from the newest telemetry.</summary>
    public DeviceHealth? Health { get; init; }

    /// <summary>Telemetry, drift and event messages received (after de-duplication).</summary>
    public long MessagesReceived { get; init; }

    /// <summary>Messages known lost (gaps in <c>seq</c> that never filled).</summary>
    public long MessagesLost { get; init; }

    /// <summary>Messages that failed validation.</summary>
    public long MessagesInvalid { get; init; }

    /// <summary>Where the device's model update stands, from its newest <c>update.*</c> / <c>shadow.*</c> event.</summary>
    public DeviceOtaState? Ota { get; init; }

    /// <summary>The model the control plane currently wants on this device (its retained <c>desired</c>).</summary>
    public DeviceDesiredInfo? Desired { get; init; }
}

/// <summary>A device's OTA state, from its newest update event.</summary>
public sealed record DeviceOtaState
{
    /// <summary>The event type without <c>update.</c>: received, downloading, verified, rejected, activated, committed, rolled_back; or <c>shadow.report</c>.</summary>
    public required string State { get; init; }

    /// <summary>Model the event is about (its <c>data.model</c>).</summary>
    public string? Model { get; init; }

    /// <summary>Version the event is about (its <c>data.version</c>).</summary>
    public string? Version { get; init; }

    /// <summary><c>live</c> or <c>shadow</c> (its <c>data.mode</c>; <c>shadow</c> for <c>shadow.*</c> events).</summary>
    public string? Mode { get; init; }

    /// <summary><c>data.reason</c> (rejections) or <c>data.criterion</c> (rollbacks).</summary>
    public string? Reason { get; init; }

    /// <summary>The event's timestamp.</summary>
    public DateTimeOffset At { get; init; }
}

/// <summary>The current direct assignment of a device.</summary>
public sealed record DeviceDesiredInfo
{
    /// <summary>The assignment id (a device retries a version when the id changes).</summary>
    public string? Id { get; init; }

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>Model version.</summary>
    public required string Version { get; init; }

    /// <summary><c>live</c> or <c>shadow</c>.</summary>
    public required string Mode { get; init; }

    /// <summary>When it was issued.</summary>
    public DateTimeOffset IssuedAt { get; init; }

    /// <summary>Who issued it.</summary>
    public string? IssuedBy { get; init; }
}

/// <summary>Body of <c>POST /api/v1/devices/{id}/assignment</c>: the model version one device should run.</summary>
public sealed record AssignmentRequest
{
    /// <summary>Model name (a registered model).</summary>
    public string? Model { get; init; }

    /// <summary>Its version.</summary>
    public string? Version { get; init; }

    /// <summary><c>live</c> (default) or <c>shadow</c>.</summary>
    public string? Mode { get; init; }

    /// <summary>Probation settings for this assignment; absent fields keep the device's configuration.</summary>
    public Messaging.ProbationOverrides? Probation { get; init; }
}

/// <summary>A model name and version.</summary>
public sealed record ModelRefInfo(string Name, string Version);

/// <summary>Health of a device from its newest telemetry.</summary>
public sealed record DeviceHealth
{
    /// <summary>Time of that telemetry.</summary>
    public DateTimeOffset? At { get; init; }

    /// <summary>Frames per second inferred.</summary>
    public double? Fps { get; init; }

    /// <summary>End-to-end latency p95, ms.</summary>
    public double? LatencyP95Ms { get; init; }

    /// <summary>Errors in the interval.</summary>
    public long? Errors { get; init; }

    /// <summary>Machine CPU %.</summary>
    public double? CpuPercent { get; init; }

    /// <summary>Memory in use, bytes.</summary>
    public long? MemUsedBytes { get; init; }

    /// <summary>Hottest thermal zone, °C.</summary>
    public double? TemperatureC { get; init; }

    /// <summary>Newest drift severity.</summary>
    public string? DriftSeverity { get; init; }
}

// Request fields with a default use `set`, not `init`: source-generated System.Text.Json drops the initializer of
// an init-only property that the JSON leaves out (dotnet/runtime#84484), so an omitted list arrived as null.

/// <summary>Body of <c>PUT /api/v1/devices/{id}/tags</c>.</summary>
public sealed record TagChangeRequest
{
    /// <summary>Tags to add.</summary>
    public IReadOnlyList<string> Add { get; set; } = [];

    /// <summary>Tags to remove.</summary>
    public IReadOnlyList<string> Remove { get; set; } = [];
}

/// <summary>Body of <c>POST /api/v1/enrollment-tokens</c>.</summary>
public sealed record EnrollmentTokenRequest
{
    /// <summary>Tags given to every device that enrolls with it.</summary>
    public IReadOnlyList<string> Tags { get; set; } = [];

    /// <summary>Hours until it expires (default 24).</summary>
    public double? ExpiresInHours { get; init; }

    /// <summary>How many devices may use it (default: unlimited until it expires).</summary>
    public int? MaxUses { get; init; }

    /// <summary>A note for operators.</summary>
    public string? Description { get; init; }
}

/// <summary>An enrollment token; <see cref="Token"/> is only present in the response that created it.</summary>
public sealed record EnrollmentTokenInfo
{
    /// <summary>Id (not secret).</summary>
    public required string Id { get; init; }

    /// <summary>The secret, shown once.</summary>
    public string? Token { get; init; }

    /// <summary>Tags given to enrolling devices.</summary>
    public IReadOnlyList<string> Tags { get; set; } = [];

    /// <summary>Expiry.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>Use limit, if any.</summary>
    public int? MaxUses { get; init; }

    /// <summary>Devices enrolled with it so far.</summary>
    public int Uses { get; init; }

    /// <summary>Note.</summary>
    public string? Description { get; init; }

    /// <summary>Creator.</summary>
    public string? CreatedBy { get; init; }

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>Body of <c>POST /api/v1/enroll</c> (anonymous; the token is the credential).</summary>
public sealed record EnrollRequest
{
    /// <summary>The enrollment token.</summary>
    public required string Token { get; init; }

    /// <summary>Requested device id; default: generated.</summary>
    public string? DeviceId { get; init; }

    /// <summary>Agent version, for the registry.</summary>
    public string? AgentVersion { get; init; }
}

/// <summary>Response of <c>POST /api/v1/enroll</c>: everything the agent needs to connect.</summary>
public sealed record EnrollResponse
{
    /// <summary>Assigned device id.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Broker connection and this device's credentials.</summary>
    public required MqttCredentials Mqtt { get; init; }

    /// <summary>The registry's ECDSA P-256 public key (PEM, SubjectPublicKeyInfo) that signs model manifests.</summary>
    public required string RegistryPublicKey { get; init; }

    /// <summary>
    /// This device's HTTP bearer token (shown once, stored hashed): it may only download manifests, signatures and
    /// artifacts. Revoking the device revokes it.
    /// </summary>
    public string? HttpToken { get; init; }

    /// <summary>Tags the device got.</summary>
    public IReadOnlyList<string> Tags { get; set; } = [];
}

/// <summary>Broker address and a device's credentials.</summary>
public sealed record MqttCredentials
{
    /// <summary>Broker host as the device should reach it.</summary>
    public required string Host { get; init; }

    /// <summary>Broker port.</summary>
    public int Port { get; init; }

    /// <summary>Whether the broker requires TLS.</summary>
    public bool Tls { get; init; }

    /// <summary>User name (the device id).</summary>
    public required string Username { get; init; }

    /// <summary>Password; stored by the control plane only as a hash.</summary>
    public required string Password { get; init; }
}

/// <summary>Body of <c>POST /api/v1/tokens</c>.</summary>
public sealed record ApiTokenRequest
{
    /// <summary>A name for the token (shown in the audit log).</summary>
    public required string Name { get; init; }

    /// <summary>Role.</summary>
    public ApiRole Role { get; set; } = ApiRole.Viewer;
}

/// <summary>An API token; <see cref="Token"/> only in the response that created it.</summary>
public sealed record ApiTokenInfo
{
    /// <summary>Id.</summary>
    public required string Id { get; init; }

    /// <summary>Name.</summary>
    public required string Name { get; init; }

    /// <summary>Role.</summary>
    public ApiRole Role { get; init; }

    /// <summary>The secret, shown once.</summary>
    public string? Token { get; init; }

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Last use.</summary>
    public DateTimeOffset? LastUsedAt { get; init; }

    /// <summary>Revoked tokens are refused.</summary>
    public bool Revoked { get; init; }
}

/// <summary>One telemetry point (raw or a 1-minute rollup).</summary>
public sealed record TelemetryPoint
{
    /// <summary>Device.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Time (raw) or start of the minute (rollup).</summary>
    public DateTimeOffset Ts { get; init; }

    /// <summary>Messages in this point (1 for raw).</summary>
    public int Samples { get; set; } = 1;

    /// <summary>Model running.</summary>
    public string? Model { get; init; }

    /// <summary>Its version.</summary>
    public string? ModelVersion { get; init; }

    /// <summary>Frames per second (mean for rollups).</summary>
    public double? Fps { get; init; }

    /// <summary>End-to-end p50 latency, ms (mean for rollups).</summary>
    public double? LatencyP50Ms { get; init; }

    /// <summary>End-to-end p95 latency, ms (max for rollups).</summary>
    public double? LatencyP95Ms { get; init; }

    /// <summary>End-to-end p99 latency, ms (max for rollups).</summary>
    public double? LatencyP99Ms { get; init; }

    /// <summary>Frames inferred in the interval (sum for rollups).</summary>
    public long? FramesInferred { get; init; }

    /// <summary>Frames dropped (sum).</summary>
    public long? FramesDropped { get; init; }

    /// <summary>Errors (sum).</summary>
    public long? Errors { get; init; }

    /// <summary>Machine CPU % (mean).</summary>
    public double? CpuPercent { get; init; }

    /// <summary>Memory in use (max).</summary>
    public long? MemUsedBytes { get; init; }

    /// <summary>Temperature (max).</summary>
    public double? TemperatureC { get; init; }

    /// <summary>Mean top-1 / box confidence, when the agent reports it.</summary>
    public double? MeanConfidence { get; init; }
}

/// <summary>One drift report as stored.</summary>
public sealed record DriftReportInfo
{
    /// <summary>Device.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Report time.</summary>
    public DateTimeOffset Ts { get; init; }

    /// <summary>Sequence number.</summary>
    public long Seq { get; init; }

    /// <summary>Model.</summary>
    public string? Model { get; init; }

    /// <summary>Version.</summary>
    public string? ModelVersion { get; init; }

    /// <summary>Worst severity.</summary>
    public required string Severity { get; init; }

    /// <summary>Frames in the window.</summary>
    public long WindowFrames { get; init; }

    /// <summary>The agent's report (ef.drift/1) as received.</summary>
    public System.Text.Json.JsonElement? Report { get; init; }
}

/// <summary>One device event as stored.</summary>
public sealed record EventInfo
{
    /// <summary>Device.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Time.</summary>
    public DateTimeOffset Ts { get; init; }

    /// <summary>Sequence number.</summary>
    public long Seq { get; init; }

    /// <summary>Type, e.g. <c>model.loaded</c>.</summary>
    public required string Type { get; init; }

    /// <summary>info, warn or error.</summary>
    public string? Level { get; init; }

    /// <summary>Human message.</summary>
    public string? Message { get; init; }

    /// <summary>The event's data (for <c>update.*</c>: model, version, reason, criterion, …).</summary>
    public IReadOnlyDictionary<string, string>? Data { get; init; }
}

/// <summary>One audit log entry.</summary>
public sealed record AuditEntry
{
    /// <summary>Time.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>Who (token name, or <c>device:{id}</c>, or <c>system</c>).</summary>
    public required string Actor { get; init; }

    /// <summary>What, e.g. <c>model.push</c>, <c>model.stage</c>, <c>device.revoke</c>.</summary>
    public required string Action { get; init; }

    /// <summary>On what, e.g. <c>model/cls/1.2.0</c>.</summary>
    public required string Target { get; init; }

    /// <summary>Details (reason, old and new values).</summary>
    public string? Details { get; init; }
}

/// <summary>A page of results with the cursor of the next page.</summary>
/// <typeparam name="T">Item type.</typeparam>
public sealed record Page<T>
{
    /// <summary>Items.</summary>
    public required IReadOnlyList<T> Items { get; init; }

    /// <summary>Pass as <c>?after=</c> for the next page; null at the end.</summary>
    public string? Next { get; init; }
}
