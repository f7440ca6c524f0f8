using EdgeFleet.Agent.Configuration;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class AgentOptionsValidatorTests
{
    private static AgentOptions Valid() => new()
    {
        DeviceId = "cam-01",
        StateDirectory = "/tmp",
        Source = new SourceOptions { Uri = "testsrc://64x64@30" },
        Model = new ModelOptions { Path = typeof(AgentOptionsValidatorTests).Assembly.Location },
    };

    [Fact]
    public void Validate_ValidOptions_Succeeds()
    {
        var result = new AgentOptionsValidator().Validate(null, Valid());

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Validate_EveryBadValue_IsReportedWithItsFullKey()
    {
        var options = Valid();
        options.DeviceId = "Cam_01";
        options.Source.Uri = "camera://1";
        options.Source.StallTimeoutSeconds = 0;
        options.Inference.IntraOpThreads = 999;
        options.Inference.Providers = ["cpu", "tpu"];
        options.Inference.GraphOptimization = "max";
        options.Model.Path = "/nonexistent/model.onnx";
        options.Pipeline.MetricsWindow = 1;

        var failures = new AgentOptionsValidator().Validate(null, options).Failures!.ToList();

        Assert.Contains(failures, f => f.StartsWith("Agent:DeviceId:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Source:Uri:", StringComparison.Ordinal) && f.Contains("camera", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Source:StallTimeoutSeconds:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f == "Agent:Inference:IntraOpThreads: must be between 0 and 256 (got 999)");
        Assert.Contains(failures, f => f.StartsWith("Agent:Inference:Providers:1: 'tpu'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Inference:GraphOptimization:", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Model:Path: /nonexistent/model.onnx does not exist", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Agent:Pipeline:MetricsWindow:", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_MissingFfmpeg_NamesThePackage()
    {
        var options = Valid();
        options.Source.FfmpegPath = "/nonexistent/ffmpeg";

        var failures = new AgentOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith("Agent:Source:FfmpegPath:", StringComparison.Ordinal) && f.Contains("ffmpeg", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_MissingVideoFile_IsReported()
    {
        var options = Valid();
        options.Source.Uri = "file:///nonexistent/video.mp4";

        var failures = new AgentOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains("Agent:Source:Uri: video file /nonexistent/video.mp4 does not exist", failures);
    }
}
