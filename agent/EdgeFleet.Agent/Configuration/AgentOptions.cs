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
}

public sealed class SourceOptions
{
    /// <summary>testsrc://WxH@FPS, file:///path, v4l2:///dev/videoN, rtsp://…, gst://PIPELINE.</summary>
    [Required(ErrorMessage = "is required (for example testsrc://640x480@30 or v4l2:///dev/video0)")]
    public string Uri { get; set; } = "";

    /// <summary>A source that delivers no frame for this long is restarted (counted as a stall).</summary>
    [Range(1, 3600, ErrorMessage = "must be between {1} and {2} seconds")]
    public double StallTimeoutSeconds { get; set; } = 10;

    /// <summary>First delay before restarting a failed source; doubles on each failure in a row.</summary>
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
    /// <summary>libonnxruntime.so.1 to load; null: EDGEFLEET_ORT_LIB, then the bootstrap's copy, then system paths.</summary>
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
