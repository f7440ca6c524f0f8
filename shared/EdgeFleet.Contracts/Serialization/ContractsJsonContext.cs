using System.Text.Json.Serialization;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Contracts.Serialization;

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
