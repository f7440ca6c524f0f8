using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeFleet.Agent.Enrollment;

/// <summary>
/// What enrollment gave this device: its id, its broker login and the registry's public key. Kept in
/// <c>StateDirectory/identity.json</c> with mode 0600 (it holds the broker password), written atomically.
/// </summary>
public sealed record DeviceIdentity
{
    public const string FileName = "identity.json";

    public required string DeviceId { get; init; }

    public required string Server { get; init; }

    public required string MqttHost { get; init; }

    public int MqttPort { get; init; }

    public bool MqttTls { get; init; }

    public required string MqttUsername { get; init; }

    public required string MqttPassword { get; init; }

    /// <summary>PEM of the key that signs model manifests; the agent refuses models it did not sign.</summary>
    public required string RegistryPublicKey { get; init; }

    /// <summary>Bearer token for downloading models from <see cref="Server"/> (it may read nothing else); null for identities from before it existed.</summary>
    public string? HttpToken { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public DateTimeOffset EnrolledAt { get; init; }

    public static string PathIn(string stateDirectory) => Path.Combine(stateDirectory, FileName);

    /// <summary>The identity in <paramref name="stateDirectory"/>, or null if the device has not enrolled.</summary>
    /// <exception cref="InvalidDataException">The file exists but cannot be used.</exception>
    public static DeviceIdentity? Load(string stateDirectory)
    {
        var path = PathIn(stateDirectory);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), IdentityJsonContext.Default.DeviceIdentity)
                ?? throw new InvalidDataException($"{path} is empty; enroll again (edgefleet-agent enroll)");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path} is not a valid device identity ({ex.Message}); enroll again (edgefleet-agent enroll)", ex);
        }
    }

    public void Save(string stateDirectory) =>
        Ota.DurableFile.Replace(PathIn(stateDirectory), JsonSerializer.SerializeToUtf8Bytes(this, IdentityJsonContext.Default.DeviceIdentity),
            UnixFileMode.UserRead | UnixFileMode.UserWrite);

    /// <summary>The configuration it supplies (lowest priority: the configuration file and environment still win).</summary>
    public IEnumerable<KeyValuePair<string, string?>> AsConfiguration() =>
    [
        new("Agent:DeviceId", DeviceId),
        new("Agent:Mqtt:Host", MqttHost),
        new("Agent:Mqtt:Port", MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("Agent:Mqtt:Username", MqttUsername),
        new("Agent:Mqtt:Password", MqttPassword),
    ];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(DeviceIdentity))]
internal sealed partial class IdentityJsonContext : JsonSerializerContext;
