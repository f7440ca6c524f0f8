using System.Globalization;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Ota;

/// <summary>Publishes the <c>update.*</c> events of one assignment (durable, through the outbox) with the fields every one carries.</summary>
internal sealed class OtaEvents(DeviceReporter reporter)
{
    public void Publish(string type, string level, DesiredMessage desired, string message, IReadOnlyDictionary<string, string>? extra = null)
    {
        var data = new Dictionary<string, string>
        {
            ["desiredId"] = desired.EffectiveId,
            ["model"] = desired.Model,
            ["version"] = desired.Version,
            ["mode"] = desired.Mode,
        };
        if (desired.RolloutId is { } rollout)
        {
            data["rolloutId"] = rollout;
        }

        if (extra is not null)
        {
            foreach (var (key, value) in extra)
            {
                data[key] = value;
            }
        }

        reporter.Event(type, level, message, data);
    }

    /// <summary>An event about a desired message that could not even be read (no id, no model).</summary>
    public void InvalidDesired(string reason) =>
        reporter.Event(UpdateEvents.Rejected, "error", $"the desired message is not valid: {reason}; the device keeps its model",
            new Dictionary<string, string> { ["reason"] = RejectReasons.Download, ["detail"] = "invalid desired message" });

    public static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
