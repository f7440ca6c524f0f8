namespace EdgeFleet.Onnx;

/// <summary>Execution providers this binding knows how to enable, in the order a Jetson prefers them.</summary>
public enum ExecutionProvider
{
    /// <summary>NVIDIA TensorRT (fastest on Jetson; builds an engine on first load, cached when a path is set).</summary>
    TensorRT,

    /// <summary>NVIDIA CUDA.</summary>
    Cuda,

    /// <summary>ONNX Runtime's CPU kernels (always available).</summary>
    Cpu,
}

/// <summary>ORT graph optimisation levels (<c>GraphOptimizationLevel</c>).</summary>
public enum GraphOptimization
{
    /// <summary>No graph rewriting.</summary>
    Disabled = 0,

    /// <summary>Semantics-preserving basic rewrites (constant folding, redundant node removal).</summary>
    Basic = 1,

    /// <summary>Basic plus node fusions.</summary>
    Extended = 2,

    /// <summary>Everything, including layout optimisations.</summary>
    All = 99,
}

/// <summary>ORT log severities.</summary>
public enum OrtLogSeverity
{
    /// <summary>Verbose.</summary>
    Verbose = 0,
    /// <summary>Info.</summary>
    Info = 1,
    /// <summary>Warning.</summary>
    Warning = 2,
    /// <summary>Error.</summary>
    Error = 3,
    /// <summary>Fatal.</summary>
    Fatal = 4,
}

/// <summary>How a session is created.</summary>
public sealed record SessionSettings
{
    /// <summary>Threads inside one operator; 0: one per CPU this process may use (see <see cref="ResolvedIntraOpThreads"/>).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// The intra-op thread count the session gets: <see cref="IntraOpThreads"/>, or for 0 the CPUs this process may use
    /// (<see cref="Environment.ProcessorCount"/>, which honours affinity and cgroup CPU quotas). Not ORT's own default:
    /// it counts physical cores from the CPU topology and chose a single thread on a 2-vCPU AMD EPYC VM here (12.3 ms
    /// per inference where 2 threads take 6.7 ms).
    /// </summary>
    public int ResolvedIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Math.Max(1, Environment.ProcessorCount);

    /// <summary>Threads across operators (only used in parallel execution mode); 0 lets ORT choose.</summary>
    public int InterOpThreads { get; init; }

    /// <summary>Whether idle intra-op threads spin before sleeping: faster back-to-back runs, more CPU used.</summary>
    public bool AllowSpinning { get; init; } = true;

    /// <summary>Graph optimisation level.</summary>
    public GraphOptimization OptimizationLevel { get; init; } = GraphOptimization.All;

    /// <summary>Providers in order of preference; those missing from the build are skipped, CPU is the fallback.</summary>
    public IReadOnlyList<ExecutionProvider> Providers { get; init; } = [ExecutionProvider.Cpu];

    /// <summary>GPU device for CUDA and TensorRT.</summary>
    public int DeviceId { get; init; }

    /// <summary>Let TensorRT use FP16 kernels.</summary>
    public bool TensorRtFp16 { get; init; }

    /// <summary>Where TensorRT caches built engines (null: no cache, engines rebuilt on every start).</summary>
    public string? TensorRtEngineCachePath { get; init; }

    /// <summary>ORT's own log level for this session.</summary>
    public OrtLogSeverity LogSeverity { get; init; } = OrtLogSeverity.Warning;

    /// <summary>Identifies this session in ORT's log lines.</summary>
    public string? LogId { get; init; }

    internal void Validate()
    {
        if (IntraOpThreads is < 0 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(IntraOpThreads), IntraOpThreads, "must be between 0 and 256");
        }

        if (InterOpThreads is < 0 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(InterOpThreads), InterOpThreads, "must be between 0 and 256");
        }

        if (Providers is null || Providers.Count == 0)
        {
            throw new ArgumentException("at least one execution provider is required (cpu is always available)", nameof(Providers));
        }
    }
}
