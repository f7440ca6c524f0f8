using System.Text.Json.Serialization;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Contracts.Serialization;

/// <summary>Source-generated JSON metadata for every wire type: camelCase, no nulls written.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(ModelManifest))]
public sealed partial class ContractsJsonContext : JsonSerializerContext;
