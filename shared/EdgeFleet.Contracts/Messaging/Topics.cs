using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace EdgeFleet.Contracts.Messaging;

/// <summary>The MQTT topic scheme (DESIGN.md §4): <c>ef/v1/{deviceId}/{kind}</c>.</summary>
public static partial class Topics
{
    /// <summary>Topic root shared by every device.</summary>
    public const string Root = "ef/v1";

    /// <summary>Retained online/offline state (device → control plane).</summary>
    public const string Status = "status";

    /// <summary>Periodic metrics (device → control plane, durable).</summary>
    public const string Telemetry = "telemetry";

    /// <summary>One drift report per window (device → control plane, durable).</summary>
    public const string Drift = "drift";

    /// <summary>Lifecycle events (device → control plane, durable).</summary>
    public const string Events = "events";

    /// <summary>Sampled inference results (device → control plane, opt-in, QoS 0).</summary>
    public const string Results = "results";

    /// <summary>Retained desired model assignment (control plane → device).</summary>
    public const string Desired = "desired";

    /// <summary>One-shot commands (control plane → device).</summary>
    public const string Command = "cmd";

    /// <summary>The topic of <paramref name="kind"/> for <paramref name="deviceId"/>.</summary>
    public static string For(string deviceId, string kind) => $"{Root}/{deviceId}/{kind}";

    /// <summary>Shared subscription for control-plane replicas: <c>$share/{group}/ef/v1/+/{kind}</c>.</summary>
    public static string Shared(string group, string kind) => $"$share/{group}/{Root}/+/{kind}";

    /// <summary>Splits <c>ef/v1/{deviceId}/{kind}</c>; false for anything else.</summary>
    public static bool TryParse(string topic, [NotNullWhen(true)] out string? deviceId, [NotNullWhen(true)] out string? kind)
    {
        deviceId = null;
        kind = null;
        var m = TopicRegex().Match(topic ?? "");
        if (!m.Success)
        {
            return false;
        }

        deviceId = m.Groups[1].Value;
        kind = m.Groups[2].Value;
        return true;
    }

    /// <summary>Device ids: <c>[a-z0-9][a-z0-9-]{0,62}</c>.</summary>
    public static bool IsValidDeviceId([NotNullWhen(true)] string? id) => id is not null && DeviceIdRegex().IsMatch(id);

    [GeneratedRegex("^ef/v1/([a-z0-9][a-z0-9-]{0,62})/([a-z]+)$")]
    private static partial Regex TopicRegex();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex DeviceIdRegex();
}
