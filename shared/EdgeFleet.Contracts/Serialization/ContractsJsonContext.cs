using System.Text.Json.Serialization;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Contracts.Serialization;

// Optional contract properties with a default are `{ get; set; } = default`, not `init`: the source generator builds
// init-only properties through an object initializer that assigns every one of them, so a field the JSON leaves out
// would get null/0 instead of its initializer (dotnet/runtime#84484). The tests parse minimal documents to hold this.

/// <summary>Source-generated JSON metadata for files: camelCase, indented, no nulls written.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(ModelManifest))]
[JsonSerializable(typeof(DriftProfile))]
public sealed partial class ContractsJsonContext : JsonSerializerContext;

/// <summary>
/// Source-generated JSON metadata for wire messages: camelCase, compact, no nulls written. Non-finite numbers
/// (a NaN p-value when a test cannot run) are written as the strings "NaN"/"Infinity" rather than failing.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(StatusMessage))]
[JsonSerializable(typeof(TelemetryMessage))]
[JsonSerializable(typeof(DriftMessage))]
[JsonSerializable(typeof(EventMessage))]
[JsonSerializable(typeof(ResultMessage))]
[JsonSerializable(typeof(DesiredMessage))]
[JsonSerializable(typeof(CommandMessage))]
[JsonSerializable(typeof(FeatureDrift))]
public sealed partial class WireJsonContext : JsonSerializerContext;

/// <summary>Source-generated JSON metadata for the REST API: camelCase, compact, no nulls written.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(ModelSummary))]
[JsonSerializable(typeof(IReadOnlyList<ModelSummary>))]
[JsonSerializable(typeof(ModelVersionInfo))]
[JsonSerializable(typeof(IReadOnlyList<ModelVersionInfo>))]
[JsonSerializable(typeof(ModelVersionMetadata))]
[JsonSerializable(typeof(StageChangeRequest))]
[JsonSerializable(typeof(IReadOnlyList<StageHistoryEntry>))]
[JsonSerializable(typeof(DeviceInfo))]
[JsonSerializable(typeof(IReadOnlyList<DeviceInfo>))]
[JsonSerializable(typeof(TagChangeRequest))]
[JsonSerializable(typeof(DeviceHealth))]
[JsonSerializable(typeof(EnrollmentTokenRequest))]
[JsonSerializable(typeof(EnrollmentTokenInfo))]
[JsonSerializable(typeof(IReadOnlyList<EnrollmentTokenInfo>))]
[JsonSerializable(typeof(EnrollRequest))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(ApiTokenRequest))]
[JsonSerializable(typeof(ApiTokenInfo))]
[JsonSerializable(typeof(IReadOnlyList<ApiTokenInfo>))]
[JsonSerializable(typeof(Page<TelemetryPoint>))]
[JsonSerializable(typeof(Page<DriftReportInfo>))]
[JsonSerializable(typeof(Page<EventInfo>))]
[JsonSerializable(typeof(Page<AuditEntry>))]
[JsonSerializable(typeof(ModelManifest))]
[JsonSerializable(typeof(DriftProfile))]
[JsonSerializable(typeof(AssignmentRequest))]
[JsonSerializable(typeof(RolloutRequest))]
[JsonSerializable(typeof(RolloutActionRequest))]
[JsonSerializable(typeof(RolloutInfo))]
[JsonSerializable(typeof(IReadOnlyList<RolloutInfo>))]
[JsonSerializable(typeof(IReadOnlyList<DeploymentInfo>))]
[JsonSerializable(typeof(DesiredMessage))]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(SessionInfo))]
[JsonSerializable(typeof(LiveChangeInfo))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
