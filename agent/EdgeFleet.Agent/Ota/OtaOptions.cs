using System.ComponentModel.DataAnnotations;

namespace EdgeFleet.Agent.Ota;

/// <summary><c>Agent:Ota</c>: over-the-air model updates (agent/README.md, "Over-the-air updates").</summary>
public sealed class OtaOptions
{
    /// <summary>Apply <c>desired</c> assignments from the control plane; false: report them as rejected.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Model versions kept on disk; older ones are deleted, never the running or the previous one.</summary>
    [Range(2, 100, ErrorMessage = "must be between {1} and {2}")]
    public int KeepVersions { get; set; } = 3;

    /// <summary>Free disk space that must remain after the download (bytes), besides the artifact itself.</summary>
    [Range(0L, 1L << 40, ErrorMessage = "must be between {1} and {2} bytes")]
    public long DiskHeadroomBytes { get; set; } = 64L << 20;

    /// <summary>Attempts per download before <c>update.rejected</c> with reason <c>download</c>.</summary>
    [Range(1, 100, ErrorMessage = "must be between {1} and {2}")]
    public int DownloadAttempts { get; set; } = 8;

    /// <summary>Median first delay between download attempts; about doubles per attempt, jittered.</summary>
    [Range(0.01, 600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double RetryDelaySeconds { get; set; } = 1;

    /// <summary>Cap of the delay between download attempts.</summary>
    [Range(0.01, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double MaxRetryDelaySeconds { get; set; } = 60;

    /// <summary>A response that delivers no byte for this long is cut and retried (resuming).</summary>
    [Range(1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double ReadTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest manifest accepted (bytes).</summary>
    [Range(1024, 64L << 20, ErrorMessage = "must be between {1} and {2} bytes")]
    public long MaxManifestBytes { get; set; } = 4L << 20;

    /// <summary>Largest artifact accepted (bytes).</summary>
    [Range(1024L, 1L << 40, ErrorMessage = "must be between {1} and {2} bytes")]
    public long MaxArtifactBytes { get; set; } = 4L << 30;

    /// <summary>Probation defaults; a desired message may override each.</summary>
    public ProbationOptions Probation { get; set; } = new();

    /// <summary>How shadow candidates run.</summary>
    public ShadowRunOptions Shadow { get; set; } = new();
}

/// <summary><c>Agent:Ota:Shadow</c>: a candidate run beside the live model (<c>"mode": "shadow"</c>).</summary>
public sealed class ShadowRunOptions
{
    /// <summary>Share of the live frames offered to the candidate, when it is free (the live path never waits).</summary>
    [Range(0.001, 1, ErrorMessage = "must be between {1} and {2}")]
    public double SampleShare { get; set; } = 0.25;

    /// <summary>One <c>shadow.report</c> event per this many seconds, and a final one when the shadow stops.</summary>
    [Range(1, 86400, ErrorMessage = "must be between {1} and {2} seconds")]
    public double ReportSeconds { get; set; } = 60;
}

/// <summary>
/// How a newly activated model is judged against the model it replaced, measured on the same device just before the
/// swap (agent/README.md explains the defaults).
/// </summary>
public sealed class ProbationOptions
{
    /// <summary>Frames the new model must infer before it can be committed.</summary>
    [Range(1, 100_000_000, ErrorMessage = "must be between {1} and {2}")]
    public long Frames { get; set; } = 300;

    /// <summary>Seconds the probation lasts at least.</summary>
    [Range(0, 7 * 86400, ErrorMessage = "must be between {1} and {2} seconds")]
    public double Seconds { get; set; } = 60;

    /// <summary>A probation that has not reached its frames after Seconds × this factor fails (criterion <c>frames</c>).</summary>
    [Range(1, 1000, ErrorMessage = "must be between {1} and {2}")]
    public double TimeoutFactor { get; set; } = 10;

    /// <summary>Frames before a share or ratio criterion can fail early.</summary>
    [Range(1, 1_000_000, ErrorMessage = "must be between {1} and {2}")]
    public long MinFramesToJudge { get; set; } = 30;

    /// <summary>Largest share of frames that may fail.</summary>
    [Range(0, 1, ErrorMessage = "must be between {1} and {2}")]
    public double MaxErrorShare { get; set; } = 0.01;

    /// <summary>Largest share of frames with a NaN or infinite output, above the previous model's share.</summary>
    [Range(0, 1, ErrorMessage = "must be between {1} and {2}")]
    public double MaxNonFiniteShare { get; set; } = 0.01;

    /// <summary>Largest p95 inference latency of the new model over the previous one's.</summary>
    [Range(1, 1000, ErrorMessage = "must be between {1} and {2}")]
    public double MaxLatencyRatio { get; set; } = 2;

    /// <summary>
    /// The p95 must also be this many milliseconds above the previous model's before latency fails: on a model that
    /// runs in a fraction of a millisecond, scheduling noise alone can double the p95 of a short probation.
    /// </summary>
    [Range(0, 60_000, ErrorMessage = "must be between {1} and {2} ms")]
    public double MinLatencyIncreaseMs { get; set; } = 1;

    /// <summary>Largest drop of the mean top-1 / box confidence (absolute).</summary>
    [Range(0, 1, ErrorMessage = "must be between {1} and {2}")]
    public double MaxConfidenceDrop { get; set; } = 0.25;

    /// <summary>Highest drift severity the new model may report during probation: none, warn or alert.</summary>
    [RegularExpression("^(none|warn|alert)$", ErrorMessage = "must be none, warn or alert")]
    public string MaxDriftSeverity { get; set; } = "warn";
}
