using System.Diagnostics;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// ONNX Runtime's Linux builds record Microsoft telemetry in <c>$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime/</c>
/// and try to upload it unless <c>ORT_DISABLE_TELEMETRY=1</c> is in the process environment when the library loads
/// (checked by hand: the same 1.30.0 library loaded by a bare program under a fresh HOME creates <c>onnxruntime.db</c> and
/// <c>deviceid</c> there). The agent must turn it off itself: these run the real binary with a fresh HOME and an
/// environment that does not set the variable, through loading, inference, a failing load and the service.
/// </summary>
[Trait("Category", "Integration")]
public sealed class NoPhoneHomeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public void Bench_FreshHomeWithoutTheVariable_LeavesNoTelemetry()
    {
        using var home = new TempDirectory("edgefleet-home");

        var (code, stdout, stderr) = Run(home.Path, "bench", "--model", TestModels.Get(TestModels.SmallClassifier),
            "--source", "testsrc://160x120@30", "--frames", "40", "--warmup", "5", "--rounds", "2", "--json");

        Assert.True(code == 0, stderr);
        Assert.Contains("\"selfTest\":\"passed\"", stdout, StringComparison.Ordinal);
        AssertNoTelemetry(home.Path);
    }

    [Fact]
    public void Bench_ModelOrtCannotLoad_FailsAndLeavesNoTelemetry()
    {
        using var home = new TempDirectory("edgefleet-home");
        using var dir = new TempDirectory();
        var model = CorruptModelWithMatchingManifest(dir);

        var (code, _, stderr) = Run(home.Path, "bench", "--model", model, "--source", "testsrc://64x64@30", "--frames", "10", "--json");

        Assert.Equal(1, code);
        Assert.Contains("cannot be used: ONNX Runtime CreateSession", stderr, StringComparison.Ordinal);
        AssertNoTelemetry(home.Path);
    }

    [Fact]
    public async Task Run_FreshHomeWithoutTheVariable_LeavesNoTelemetry()
    {
        using var home = new TempDirectory("edgefleet-home");
        using var state = new TempDirectory();
        var config = state.File("agent.json");
        File.WriteAllText(config, $$"""
            { "Agent": {
                "DeviceId": "privacy-01",
                "StateDirectory": "{{state.Path}}",
                "Source": { "Uri": "testsrc://160x120@30" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallDetector)}}" },
                "Inference": { "IntraOpThreads": 1 },
                "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 0.2 }
            } }
            """);
        using var agent = Start(home.Path, "run", "--config", config);

        var sw = Stopwatch.StartNew();
        while (!agent.Stdout.Contains("fps", StringComparison.Ordinal) || !agent.Stdout.Contains("inferred", StringComparison.Ordinal))
        {
            Assert.False(agent.HasExited, $"the agent exited ({(agent.HasExited ? agent.ExitCode : 0)}): {agent.Stderr}");
            Assert.True(sw.Elapsed < Timeout, $"no results within {Timeout}: {agent.Stderr}");
            await Task.Delay(50);
        }

        agent.Signal(15);
        Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(30)), "the agent did not stop on SIGTERM");
        Assert.Equal(0, agent.ExitCode);
        AssertNoTelemetry(home.Path);
    }

    private static void AssertNoTelemetry(string home)
    {
        var microsoft = Path.Combine(home, ".cache", "Microsoft");
        Assert.False(Directory.Exists(microsoft),
            $"{microsoft} exists: {string.Join(", ", Directory.Exists(microsoft) ? Directory.EnumerateFileSystemEntries(microsoft, "*", SearchOption.AllDirectories) : [])}");
    }

    private static string CorruptModelWithMatchingManifest(TempDirectory dir)
    {
        var source = TestModels.Get(TestModels.SmallClassifier);
        var model = dir.File("corrupt.onnx");
        var bytes = File.ReadAllBytes(source);
        File.WriteAllBytes(model, bytes[..(bytes.Length / 2)]);
        var (sha256, size) = ManifestFile.HashFile(model);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(source));
        ManifestFile.Save(manifest with { Artifact = manifest.Artifact with { File = "corrupt.onnx", Sha256 = sha256, Size = size } },
            ManifestFile.PathFor(model));
        return model;
    }

    private static (int Code, string Stdout, string Stderr) Run(string home, params string[] args)
    {
        using var agent = Start(home, args);
        if (!agent.WaitForExit(Timeout))
        {
            throw new TimeoutException($"edgefleet-agent {string.Join(' ', args)} did not exit within {Timeout}: {agent.Stderr}");
        }

        return (agent.ExitCode, agent.Stdout, agent.Stderr);
    }

    /// <summary>The agent with HOME replaced and neither ORT_DISABLE_TELEMETRY nor XDG_CACHE_HOME in its environment.</summary>
    private static AgentProcess Start(string home, params string[] args) =>
        AgentProcess.Start(new Dictionary<string, string> { ["HOME"] = home }, ["ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME"], args);
}
