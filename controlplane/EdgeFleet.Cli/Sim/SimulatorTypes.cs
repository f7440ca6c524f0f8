using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Cli.Sim;

/// <summary>Where a simulated device's newest update stands: the type of its newest <c>update.*</c> / <c>shadow.*</c> event.</summary>
public enum SimOtaState
{
    /// <summary>No assignment handled in this run.</summary>
    None,
    Received,
    Downloading,
    Verified,

    /// <summary>The new version serves, on probation.</summary>
    Activated,
    Committed,
    Rejected,
    RolledBack,

    /// <summary>A shadow candidate runs beside the live model (<c>shadow.report</c>).</summary>
    Shadow,
}

/// <summary>One simulated device at one moment.</summary>
public sealed record SimulatedDeviceSnapshot
{
    public required string Id { get; init; }

    public bool Connected { get; init; }

    /// <summary>One of the <c>--offline</c> devices: enrolled, never connects.</summary>
    public bool NeverConnects { get; init; }

    /// <summary>Went offline for the rest of the run (a version with behaviour <c>offline</c>).</summary>
    public bool Gone { get; init; }

    /// <summary>The model that serves frames now.</summary>
    public required ModelRef Running { get; init; }

    public SimOtaState Ota { get; init; }

    /// <summary>Model and version the newest update event is about.</summary>
    public string? OtaModel { get; init; }

    public string? OtaVersion { get; init; }

    /// <summary>Reason (rejected) or criterion (rolled back) of the newest update event.</summary>
    public string? OtaReason { get; init; }

    /// <summary>The assignment id the newest update event is about.</summary>
    public string? OtaDesiredId { get; init; }

    /// <summary>Newest sequence number used.</summary>
    public long Seq { get; init; }

    /// <summary>Durable messages the broker acknowledged in this run.</summary>
    public long Delivered { get; init; }

    /// <summary>Durable messages waiting for a connection.</summary>
    public int Pending { get; init; }

    /// <summary>Successful MQTT connections in this run (reconnects included).</summary>
    public long Connects { get; init; }

    /// <summary>Malformed or foreign messages received (a malformed desired is answered with <c>update.rejected</c>).</summary>
    public long RejectedMessages { get; init; }

    /// <summary>Artifact requests that resumed with a Range header.</summary>
    public int RangeRequests { get; init; }

    /// <summary>Times the device dropped its connection mid-download on purpose (flaky).</summary>
    public int Cuts { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];
}

/// <summary>What a run did (<c>edgefleet sim --json</c> prints it).</summary>
public sealed record SimulatorSummary
{
    public int Devices { get; init; }

    /// <summary>Enrolled in this run.</summary>
    public int Enrolled { get; init; }

    /// <summary>Taken from the state file.</summary>
    public int Reused { get; init; }

    /// <summary>Enrolled but kept offline (<c>--offline</c>).</summary>
    public int NeverConnect { get; init; }

    public int Connected { get; init; }

    /// <summary>Went offline for good on an <c>offline</c> version.</summary>
    public int Gone { get; init; }

    public double? EnrollSeconds { get; init; }

    public double? EnrollsPerSecond { get; init; }

    /// <summary>From the first connection attempt until every device that should be online was (first time).</summary>
    public double? ConnectSeconds { get; init; }

    public double? ConnectsPerSecond { get; init; }

    public long Connects { get; init; }

    public long ConnectionLosses { get; init; }

    public long Telemetry { get; init; }

    public long DriftReports { get; init; }

    public long Events { get; init; }

    public long StatusMessages { get; init; }

    /// <summary>Publishes that failed (connection lost or not connected); durable ones are sent again.</summary>
    public long PublishFailures { get; init; }

    /// <summary>Publishes the broker refused (PUBACK ≥ 0x80).</summary>
    public long Refused { get; init; }

    /// <summary>Durable messages dropped from a full outbox.</summary>
    public long Evicted { get; init; }

    /// <summary>Devices per current update state (lowercase state names).</summary>
    public IReadOnlyDictionary<string, int> Ota { get; init; } = new Dictionary<string, int>();

    /// <summary>Per version: devices per current update state.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> OtaByVersion { get; init; } = new Dictionary<string, IReadOnlyDictionary<string, int>>();

    /// <summary>Devices per model version they run now.</summary>
    public IReadOnlyDictionary<string, int> Running { get; init; } = new Dictionary<string, int>();

    public long Downloads { get; init; }

    public long DownloadedBytes { get; init; }

    public long RangeRequests { get; init; }

    public long DownloadRetries { get; init; }

    public long RejectedMessages { get; init; }

    public double UptimeSeconds { get; init; }

    /// <summary>How long the clean stop took (offline statuses, disconnects); null while running.</summary>
    public double? StopSeconds { get; init; }

    public double CpuSeconds { get; init; }

    public long WorkingSetBytes { get; init; }

    public long PeakWorkingSetBytes { get; init; }

    public long ManagedHeapBytes { get; init; }

    public int Threads { get; init; }

    /// <summary>The most scheduler items (telemetry, drift) that were due in one tick.</summary>
    public int LargestSchedulerBatch { get; init; }
}
