using System.ComponentModel.DataAnnotations;
using System.Net;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// The embedded MQTT broker, bound from <c>ControlPlane:Broker</c> and validated at start. <see cref="DataDirectory"/>,
/// <see cref="Port"/> and <see cref="BindAddress"/> default to <c>ControlPlane:DataDirectory</c> (<c>--data</c>),
/// <c>ControlPlane:MqttPort</c> (<c>--mqtt-port</c>) and <c>ControlPlane:MqttBind</c>; set here, they win.
/// Error messages name the full key (<c>{0}</c> is the property).
/// </summary>
public sealed class BrokerOptions : IValidatableObject
{
    public const string SectionName = "ControlPlane:Broker";

    private const string Key = SectionName + ":{0} ";

    /// <summary>The control plane's data directory; the broker's files go to its <c>mqtt/</c> subdirectory.</summary>
    [Required(ErrorMessage = Key + "is required")]
    public string DataDirectory { get; set; } = "/var/lib/edgefleet-controlplane";

    [Range(1, 65535, ErrorMessage = Key + "must be between {1} and {2}")]
    public int Port { get; set; } = 1883;

    /// <summary>An IP address of this machine; devices connect over the network, hence all IPv4 interfaces by default.</summary>
    [Required(ErrorMessage = Key + "is required")]
    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>The control plane's own login, allowed everything under <c>ef/v1/</c>; no device may take this id.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9-]{0,62}$", ErrorMessage = Key + "must be 1–63 of a-z, 0-9 and '-', starting with a letter or digit")]
    public string ServiceUsername { get; set; } = "edgefleet-cp";

    /// <summary>The mosquitto 2.0 executable: a path, or a name looked up in PATH, /usr/sbin and /usr/local/sbin.</summary>
    [Required(ErrorMessage = Key + "is required")]
    public string MosquittoPath { get; set; } = "mosquitto";

    /// <summary>
    /// QoS 1 messages queued per offline or slow client. mosquitto's default (1000) silently drops the rest, which
    /// would lose commands to a device that is offline for a while.
    /// </summary>
    [Range(1000, int.MaxValue, ErrorMessage = Key + "must be at least {1}")]
    public int MaxQueuedMessages { get; set; } = 100_000;

    /// <summary>
    /// QoS 1 messages in flight per client: to MQTT 3 clients, and (measured with 2.0.11) the receive maximum mosquitto
    /// announces to MQTT 5 clients, i.e. how many a device may have unacknowledged towards the broker. Messages to an
    /// MQTT 5 client are capped by the receive maximum that client announces instead (ingestion announces its own).
    /// </summary>
    [Range(1, 65534, ErrorMessage = Key + "must be between {1} and {2}")]
    public int MaxInflightMessages { get; set; } = 1000;

    /// <summary>
    /// How often the broker saves queued and retained messages. It also saves them when it stops, including when the
    /// control plane dies (it gets SIGTERM then); only a kill of mosquitto itself or a power loss loses up to this much.
    /// </summary>
    [Range(1, 86400, ErrorMessage = Key + "must be between {1} and {2} seconds")]
    public int AutosaveIntervalSeconds { get; set; } = 60;

    [Range(1, 600, ErrorMessage = Key + "must be between {1} and {2} seconds")]
    public double StartTimeoutSeconds { get; set; } = 10;

    /// <summary>How long a SIGTERM may take (the broker saves its messages) before it is killed.</summary>
    [Range(1, 600, ErrorMessage = Key + "must be between {1} and {2} seconds")]
    public double StopTimeoutSeconds { get; set; } = 10;

    /// <summary>First wait before restarting a broker that exited; doubles up to <see cref="MaxRestartDelaySeconds"/>.</summary>
    [Range(0.01, 3600, ErrorMessage = Key + "must be between {1} and {2} seconds")]
    public double RestartDelaySeconds { get; set; } = 1;

    [Range(0.01, 3600, ErrorMessage = Key + "must be between {1} and {2} seconds")]
    public double MaxRestartDelaySeconds { get; set; } = 30;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!IPAddress.TryParse(BindAddress, out _))
        {
            yield return new ValidationResult($"{SectionName}:{nameof(BindAddress)} must be an IP address (e.g. 0.0.0.0 or 127.0.0.1), not '{BindAddress}'", [nameof(BindAddress)]);
        }

        if (MaxRestartDelaySeconds < RestartDelaySeconds)
        {
            yield return new ValidationResult($"{SectionName}:{nameof(MaxRestartDelaySeconds)} must not be below RestartDelaySeconds", [nameof(MaxRestartDelaySeconds)]);
        }
    }
}
