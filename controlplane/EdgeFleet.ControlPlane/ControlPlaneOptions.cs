using System.ComponentModel.DataAnnotations;

namespace EdgeFleet.ControlPlane;

/// <summary>Settings under <c>ControlPlane:</c>; the command-line switches map onto them (see Program.cs).</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>Artifacts, keys, the SQLite file and the embedded broker's files (<c>--data</c>).</summary>
    [Required(ErrorMessage = "is required: pass --data DIR")]
    public string DataDirectory { get; set; } = "";

    /// <summary>Empty: SQLite in the data directory; else a .db path or a PostgreSQL connection string (<c>--db</c>).</summary>
    public string? Database { get; set; }

    /// <summary><c>embedded</c> (default), <c>mqtt://host:port</c> / <c>mqtts://host:port</c> of an existing broker, or <c>none</c> (<c>--mqtt</c>).</summary>
    public string Mqtt { get; set; } = "embedded";

    /// <summary>Port of the embedded broker (<c>--mqtt-port</c>).</summary>
    [Range(0, 65535, ErrorMessage = "must be between {1} and {2}")]
    public int MqttPort { get; set; } = 1883;

    /// <summary>Address the embedded broker listens on.</summary>
    public string MqttBind { get; set; } = "0.0.0.0";

    /// <summary>
    /// Base URL devices use to reach this control plane over HTTP (e.g. <c>https://fleet.example.com</c>), put in front of the
    /// manifest, signature and artifact URLs of assignments; default: the base URL of the request that made the assignment.
    /// </summary>
    [Url(ErrorMessage = "must be an absolute http(s) URL")]
    public string? PublicUrl { get; set; }

    /// <summary>Host name devices use to reach the broker (sent at enrollment); default: the host of the enrollment request.</summary>
    public string? MqttPublicHost { get; set; }

    /// <summary>Port devices use to reach the broker; default: the broker's port.</summary>
    public int? MqttPublicPort { get; set; }

    /// <summary>Credentials of the control plane on an external broker.</summary>
    public string? MqttUsername { get; set; }

    public string? MqttPassword { get; set; }

    /// <summary>CA certificate for an mqtts:// broker.</summary>
    public string? MqttCaFile { get; set; }

    /// <summary>Largest model upload, bytes.</summary>
    [Range(1024, long.MaxValue, ErrorMessage = "must be at least {1} bytes")]
    public long MaxUploadBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Raw telemetry, drift reports and events older than this are deleted; 1-minute rollups stay.</summary>
    [Range(0.01, 3650, ErrorMessage = "must be between {1} and {2} days")]
    public double RawRetentionDays { get; set; } = 7;

    /// <summary>1-minute rollups older than this are deleted.</summary>
    [Range(0.01, 36500, ErrorMessage = "must be between {1} and {2} days")]
    public double RollupRetentionDays { get; set; } = 400;

    /// <summary>Ingestion writes a batch when it has this many messages …</summary>
    [Range(1, 100_000, ErrorMessage = "must be between {1} and {2}")]
    public int IngestBatchSize { get; set; } = 2000;

    /// <summary>How often the rollout engine looks at every active rollout when nothing wakes it earlier (OTA events and operator actions do).</summary>
    [Range(20, 60_000, ErrorMessage = "must be between {1} and {2} ms")]
    public int RolloutTickMilliseconds { get; set; } = 1000;

    /// <summary>… or when the oldest message in it has waited this long.</summary>
    [Range(1, 60_000, ErrorMessage = "must be between {1} and {2} ms")]
    public int IngestBatchMilliseconds { get; set; } = 100;

    /// <summary>Shared-subscription group of the replicas.</summary>
    public string ShareGroup { get; set; } = "cp";

    /// <summary>
    /// MQTT client id of ingestion: stable, because its persistent session (the messages the broker holds for it while
    /// the control plane is away) belongs to it. One per control plane; replicas each need their own.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9_-]{1,64}$", ErrorMessage = "must be 1–64 of A-Z, a-z, 0-9, '_' and '-'")]
    public string IngestClientId { get; set; } = "edgefleet-cp-ingest";

    /// <summary>How long the broker keeps ingestion's session (and queues for it) while the control plane is away.</summary>
    [Range(60, 4_294_967_295, ErrorMessage = "must be between {1} and {2} seconds")]
    public double IngestSessionExpirySeconds { get; set; } = 86_400;

    /// <summary>
    /// The receive maximum ingestion announces: messages the broker may send before they are acknowledged. Messages are
    /// acknowledged only once their batch is committed, so it must exceed a batch (IngestBatchSize) or the broker stalls.
    /// </summary>
    [Range(1, 65535, ErrorMessage = "must be between {1} and {2}")]
    public int IngestReceiveMaximum { get; set; } = 10_000;

    public bool UsesEmbeddedBroker => string.Equals(Mqtt, "embedded", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>--mqtt none</c>: registry and API only, no broker and no ingestion.</summary>
    public bool MqttDisabled => string.Equals(Mqtt, "none", StringComparison.OrdinalIgnoreCase);
}
