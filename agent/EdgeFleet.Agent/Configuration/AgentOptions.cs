using System.ComponentModel.DataAnnotations;

namespace EdgeFleet.Agent.Configuration;

/// <summary>
/// The agent's configuration, bound from the <c>Agent</c> section (JSON file + <c>EDGEFLEET_</c> environment
/// variables). Every key is documented in agent/README.md and validated at start by <see cref="AgentOptionsValidator"/>.
/// </summary>
public sealed class AgentOptions
{
    public const string SectionName = "Agent";

    /// <summary>Device identity; from enrolment when absent, else the host name.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9-]{0,62}$", ErrorMessage = "must be 1–63 of a-z, 0-9 and '-', starting with a letter or digit")]
    public string? DeviceId { get; set; }

    /// <summary>Where the agent keeps its state (identity, outbox, models).</summary>
    [Required(ErrorMessage = "is required")]
    public string StateDirectory { get; set; } = "/var/lib/edgefleet";

    public SourceOptions Source { get; set; } = new();

    public ModelOptions Model { get; set; } = new();

    public InferenceOptions Inference { get; set; } = new();

    public PipelineOptions Pipeline { get; set; } = new();

    public MqttOptions Mqtt { get; set; } = new();

    public TelemetryOptions Telemetry { get; set; } = new();

    public DriftOptions Drift { get; set; } = new();

    public EdgeFleet.Agent.Ota.OtaOptions Ota { get; set; } = new();

    public EdgeFleet.Agent.LocalApi.LocalApiOptions LocalApi { get; set; } = new();

    public EdgeFleet.Agent.LocalApi.MetricsOptions Metrics { get; set; } = new();

    public EdgeFleet.Agent.Gpio.GpioOptions Gpio { get; set; } = new();
}

public sealed class MqttOptions
{
    /// <summary>Broker host; null or empty: the agent runs without MQTT (results and drift stay local).</summary>
    public string? Host { get; set; }

    [Range(1, 65535, ErrorMessage = "must be between {1} and {2}")]
    public int Port { get; set; } = 1883;

    /// <summary>Client id on the broker; default: the device id.</summary>
    public string? ClientId { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }

    [Range(5, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public int KeepAliveSeconds { get; set; } = 30;

    [Range(1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double MaxReconnectDelaySeconds { get; set; } = 30;

    public MqttTlsOptions Tls { get; set; } = new();
}

public sealed class MqttTlsOptions
{
    /// <summary>CA certificate (PEM); setting it turns TLS on.</summary>
    public string? CaFile { get; set; }

    /// <summary>Client certificate (PEM), for brokers that require one.</summary>
    public string? CertFile { get; set; }

    public string? KeyFile { get; set; }

    /// <summary>Do not check the broker's host name (testing only).</summary>
    public bool Insecure { get; set; }
}

public sealed class TelemetryOptions
{
    [Range(0.2, 86400, ErrorMessage = "must be between {1} and {2} seconds")]
    public double IntervalSeconds { get; set; } = 10;

    public OutboxOptions Outbox { get; set; } = new();

    public ResultsOptions Results { get; set; } = new();
}

public sealed class OutboxOptions
{
    [Range(1024L, 1L << 40, ErrorMessage = "must be between {1} and {2} bytes")]
    public long MaxBytes { get; set; } = 104857600;

    [Range(0.01, 24 * 365, ErrorMessage = "must be between {1} and {2} hours")]
    public double MaxAgeHours { get; set; } = 168;

    /// <summary>fsync each commit (survives power loss); false: only crash-safe, faster.</summary>
    public bool SynchronousFull { get; set; } = true;
}

public sealed class ResultsOptions
{
    /// <summary>Publish sampled results on <c>results</c> (QoS 0).</summary>
    public bool Enabled { get; set; }

    /// <summary>At most one result per this many seconds.</summary>
    [Range(0.05, 86400, ErrorMessage = "must be between {1} and {2} seconds")]
    public double IntervalSeconds { get; set; } = 5;
}

public sealed class DriftOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Frames per drift window (one report each).</summary>
    [Range(20, 10_000_000, ErrorMessage = "must be between {1} and {2}")]
    public int WindowFrames { get; set; } = 1000;

    /// <summary>A window also closes after this many seconds (0: by frames only).</summary>
    [Range(0, 86400, ErrorMessage = "must be between {1} and {2} seconds")]
    public double WindowSeconds { get; set; }

    /// <summary>Reference profile JSON; null: NAME.profile.json beside the model if it exists, else the first window.</summary>
    public string? ReferenceProfile { get; set; }

    [Range(2, 100, ErrorMessage = "must be between {1} and {2}")]
    public int Bins { get; set; } = 10;

    [Range(0.0001, 10, ErrorMessage = "must be between {1} and {2}")]
    public double PsiWarn { get; set; } = 0.1;

    [Range(0.0001, 10, ErrorMessage = "must be between {1} and {2}")]
    public double PsiAlert { get; set; } = 0.25;

    /// <summary>Significance level after the Benjamini–Hochberg correction.</summary>
    [Range(1e-9, 0.5, ErrorMessage = "must be between {1} and {2}")]
    public double Alpha { get; set; } = 0.05;

    /// <summary>Values kept per feature per window for KS and Wasserstein.</summary>
    [Range(16, 100_000, ErrorMessage = "must be between {1} and {2}")]
    public int ReservoirSize { get; set; } = 256;
}

public sealed class SourceOptions
{
    /// <summary>testsrc://WxH@FPS, file:///path, v4l2:///dev/videoN, rtsp://…, gst://PIPELINE.</summary>
    [Required(ErrorMessage = "is required (for example testsrc://640x480@30 or v4l2:///dev/video0)")]
    public string Uri { get; set; } = "";

    /// <summary>A source that delivers no frame for this long is restarted (counted as a stall).</summary>
    [Range(1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double StallTimeoutSeconds { get; set; } = 10;

    /// <summary>Median first delay before restarting a failed source; about doubles with each failure in a row (jittered).</summary>
    [Range(0.05, 60, ErrorMessage = "must be between {1} and {2} seconds")]
    public double RestartDelaySeconds { get; set; } = 0.5;

    /// <summary>Cap of the restart delay.</summary>
    [Range(0.1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double MaxRestartDelaySeconds { get; set; } = 30;

    /// <summary>Niceness (0–19) of the capture process, so decoding yields the CPU to inference when both want it.</summary>
    [Range(0, 19, ErrorMessage = "must be between {1} and {2}")]
    public int Niceness { get; set; }

    /// <summary>ffmpeg executable.</summary>
    [Required(ErrorMessage = "is required")]
    public string FfmpegPath { get; set; } = "ffmpeg";

    /// <summary>gst-launch-1.0 executable, for gst:// sources.</summary>
    [Required(ErrorMessage = "is required")]
    public string GstLaunchPath { get; set; } = "gst-launch-1.0";
}

public sealed class ModelOptions
{
    /// <summary>The ONNX model to run when the control plane has assigned none; its manifest sits beside it.</summary>
    [Required(ErrorMessage = "is required (path of an .onnx file with NAME.manifest.json beside it)")]
    public string Path { get; set; } = "";

    /// <summary>Run the manifest's self-test before the model serves frames.</summary>
    public bool SelfTest { get; set; } = true;
}

public sealed class InferenceOptions
{
    /// <summary>libonnxruntime.so to load (JetPack's on a Jetson); null: EDGEFLEET_ORT_LIB, else the one from the NuGet package.</summary>
    public string? OrtLibraryPath { get; set; }

    /// <summary>Execution providers in order of preference: tensorrt, cuda, cpu.</summary>
    public List<string> Providers { get; set; } = [];

    /// <summary>Threads inside one operator; 0 lets ONNX Runtime choose.</summary>
    [Range(0, 256, ErrorMessage = "must be between {1} and {2}")]
    public int IntraOpThreads { get; set; }

    /// <summary>Threads across operators; 0 lets ONNX Runtime choose.</summary>
    [Range(0, 256, ErrorMessage = "must be between {1} and {2}")]
    public int InterOpThreads { get; set; }

    /// <summary>Let idle ONNX Runtime threads spin (lower latency, more CPU).</summary>
    public bool AllowSpinning { get; set; } = true;

    /// <summary>disabled, basic, extended or all.</summary>
    [RegularExpression("^(?i)(disabled|basic|extended|all)$", ErrorMessage = "must be disabled, basic, extended or all")]
    public string GraphOptimization { get; set; } = "all";

    /// <summary>GPU for CUDA/TensorRT.</summary>
    [Range(0, 64, ErrorMessage = "must be between {1} and {2}")]
    public int DeviceId { get; set; }

    /// <summary>Allow TensorRT FP16 kernels.</summary>
    public bool TensorRtFp16 { get; set; }

    /// <summary>Directory for TensorRT's engine cache; null: StateDirectory/trt-cache.</summary>
    public string? TensorRtEngineCachePath { get; set; }
}

public sealed class PipelineOptions
{
    /// <summary>How many recent frames the latency percentiles cover.</summary>
    [Range(16, 1_000_000, ErrorMessage = "must be between {1} and {2}")]
    public int MetricsWindow { get; set; } = 1024;

    /// <summary>Print results and metrics to the console.</summary>
    public bool ConsoleOutput { get; set; }

    /// <summary>How often the console line is printed.</summary>
    [Range(0.1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double ConsoleIntervalSeconds { get; set; } = 1;
}
