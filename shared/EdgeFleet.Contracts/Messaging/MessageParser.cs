using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Contracts.Messaging;

/// <summary>
/// Turns payloads into messages and back. Parsing never throws: a malformed, oversized or wrong-schema payload
/// gives false and a reason (for the counters and the log).
/// </summary>
public static class MessageParser
{
    /// <summary>Largest payload accepted (drift reports with many features are a few kilobytes).</summary>
    public const int MaxPayloadBytes = 256 * 1024;

    /// <summary>Serialises a wire message (compact UTF-8 JSON).</summary>
    public static byte[] Serialize<T>(T message)
        where T : class => JsonSerializer.SerializeToUtf8Bytes(message, Info<T>());

    /// <summary>Parses <paramref name="payload"/> as <typeparamref name="T"/> and checks its schema and required fields.</summary>
    public static bool TryParse<T>(ReadOnlySpan<byte> payload, [NotNullWhen(true)] out T? message, [NotNullWhen(false)] out string? reason)
        where T : class
    {
        message = null;
        if (payload.Length > MaxPayloadBytes)
        {
            reason = $"payload of {payload.Length} bytes exceeds the {MaxPayloadBytes} allowed";
            return false;
        }

        if (payload.IsEmpty)
        {
            reason = "empty payload";
            return false;
        }

        try
        {
            message = JsonSerializer.Deserialize(payload, Info<T>());
        }
        catch (JsonException ex)
        {
            reason = $"not valid JSON for {typeof(T).Name}: {ex.Message}";
            return false;
        }

        if (message is null)
        {
            reason = "payload is JSON null";
            return false;
        }

        reason = Check(message);
        if (reason is not null)
        {
            message = null;
            return false;
        }

        return true;
    }

    private static string? Check(object message) => message switch
    {
        IDeviceMessage d when !SameSchema(d.Schema, ExpectedSchema(message)) => SchemaError(d.Schema, ExpectedSchema(message)),
        IDeviceMessage d when !Topics.IsValidDeviceId(d.DeviceId) => $"deviceId '{d.DeviceId}' is not valid",
        IDeviceMessage d when d.Ts == default => "ts is missing",
        IDurableMessage d when d.Seq <= 0 => "seq must be positive",
        EventMessage e when string.IsNullOrWhiteSpace(e.Type) => "type is missing",
        DesiredMessage d when !SameSchema(d.Schema, Schemas.Desired) => SchemaError(d.Schema, Schemas.Desired),
        DesiredMessage d when !Models.ManifestFile.IsValidName(d.Model) => $"model '{d.Model}' is not a valid name",
        DesiredMessage d when !Models.SemVer.TryParse(d.Version, out _) => $"version '{d.Version}' is not a semantic version",
        DesiredMessage d when d.Size <= 0 => "size must be positive",
        DesiredMessage d when d.Sha256 is null || d.Sha256.Length != 64 || !d.Sha256.All(Uri.IsHexDigit) => "sha256 must be 64 hex characters",
        DesiredMessage d when !IsHttpUrl(d.ArtifactUrl) || !IsHttpUrl(d.ManifestUrl) => "artifactUrl and manifestUrl must be http(s) URLs",
        DesiredMessage d when d.SignatureUrl is not null && !IsHttpUrl(d.SignatureUrl) => "signatureUrl must be an http(s) URL",
        DesiredMessage d when d.Mode is not (DesiredModes.Live or DesiredModes.Shadow) => $"mode '{d.Mode}' is not {DesiredModes.Live} or {DesiredModes.Shadow}",
        DesiredMessage d when d.Id is { Length: > 128 } => "id is longer than 128 characters",
        DesiredMessage d when d.Probation is { } p && ProbationError(p) is { } error => error,
        CommandMessage c when !SameSchema(c.Schema, Schemas.Command) => SchemaError(c.Schema, Schemas.Command),
        CommandMessage c when string.IsNullOrWhiteSpace(c.Id) || c.Id.Length > 128 => "id is missing or longer than 128 characters",
        CommandMessage c when !Commands.All.Contains(c.Command) => $"unknown command '{c.Command}' (known: {string.Join(", ", Commands.All)})",
        _ => null,
    };

    private static string? ProbationError(ProbationOverrides p) => p switch
    {
        { Frames: < 0 } => "probation.frames must not be negative",
        { Seconds: { } s } when !(s >= 0) || s > 7 * 86400 => "probation.seconds must be between 0 and 604800",
        { MaxErrorShare: { } v } when !(v >= 0 && v <= 1) => "probation.maxErrorShare must be between 0 and 1",
        { MaxNonFiniteShare: { } v } when !(v >= 0 && v <= 1) => "probation.maxNonFiniteShare must be between 0 and 1",
        { MaxLatencyRatio: { } v } when !(v > 0) || double.IsInfinity(v) => "probation.maxLatencyRatio must be a positive number",
        { MaxConfidenceDrop: { } v } when !(v >= 0 && v <= 1) => "probation.maxConfidenceDrop must be between 0 and 1",
        { MaxDriftSeverity: { } v } when v is not ("none" or "warn" or "alert") => "probation.maxDriftSeverity must be none, warn or alert",
        _ => null,
    };

    private static string ExpectedSchema(object message) => message switch
    {
        StatusMessage => Schemas.Status,
        TelemetryMessage => Schemas.Telemetry,
        DriftMessage => Schemas.Drift,
        EventMessage => Schemas.Event,
        ResultMessage => Schemas.Result,
        _ => "",
    };

    /// <summary>Same schema name and major version.</summary>
    private static bool SameSchema(string? actual, string expected) => string.Equals(actual, expected, StringComparison.Ordinal);

    private static string SchemaError(string? actual, string expected) => $"schema '{actual}' is not '{expected}'";

    private static bool IsHttpUrl(string? url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps);

    private static JsonTypeInfo<T> Info<T>() =>
        (JsonTypeInfo<T>)(WireJsonContext.Default.GetTypeInfo(typeof(T))
            ?? throw new NotSupportedException($"{typeof(T).Name} is not a wire message"));
}
