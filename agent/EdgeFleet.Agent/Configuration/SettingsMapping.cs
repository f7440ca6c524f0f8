using EdgeFleet.Agent.Capture;
using EdgeFleet.Onnx;

namespace EdgeFleet.Agent.Configuration;

/// <summary>Turns validated options into the settings the components take.</summary>
public static class SettingsMapping
{
    public static SessionSettings ToSessionSettings(this InferenceOptions o, string stateDirectory)
    {
        ArgumentNullException.ThrowIfNull(o);
        var providers = o.Providers.Count == 0
            ? [ExecutionProvider.TensorRT, ExecutionProvider.Cuda, ExecutionProvider.Cpu]
            : o.Providers.Select(p => p.ToLowerInvariant() switch
            {
                "tensorrt" => ExecutionProvider.TensorRT,
                "cuda" => ExecutionProvider.Cuda,
                _ => ExecutionProvider.Cpu,
            }).Distinct().ToList();
        return new SessionSettings
        {
            IntraOpThreads = o.IntraOpThreads,
            InterOpThreads = o.InterOpThreads,
            AllowSpinning = o.AllowSpinning,
            OptimizationLevel = o.GraphOptimization.ToLowerInvariant() switch
            {
                "disabled" => GraphOptimization.Disabled,
                "basic" => GraphOptimization.Basic,
                "extended" => GraphOptimization.Extended,
                _ => GraphOptimization.All,
            },
            Providers = providers,
            DeviceId = o.DeviceId,
            TensorRtFp16 = o.TensorRtFp16,
            TensorRtEngineCachePath = o.TensorRtEngineCachePath ?? Path.Combine(stateDirectory, "trt-cache"),
            LogId = "edgefleet-agent",
        };
    }

    public static FrameSourceSettings ToSourceSettings(this SourceOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return new FrameSourceSettings
        {
            StallTimeout = TimeSpan.FromSeconds(o.StallTimeoutSeconds),
            RestartDelay = TimeSpan.FromSeconds(o.RestartDelaySeconds),
            MaxRestartDelay = TimeSpan.FromSeconds(o.MaxRestartDelaySeconds),
            Niceness = o.Niceness,
        };
    }
}
