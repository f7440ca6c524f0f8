using System.Diagnostics;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>The agent binary as an operator runs it: configuration errors, bad inputs, signals, child processes.</summary>
[Trait("Category", "Integration")]
public sealed class AgentCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string Config(TempDirectory dir, string agentJson)
    {
        var path = dir.File("agent.json");
        File.WriteAllText(path, $$"""{ "Agent": {{agentJson}} }""");
        return path;
    }

    private static string ValidAgent(TempDirectory dir, string source = "testsrc://160x120@30", string extra = "") => $$"""
        {
          "DeviceId": "it-01",
          "StateDirectory": "{{dir.Path}}",
          "Source": { "Uri": "{{source}}", "RestartDelaySeconds": 0.1, "MaxRestartDelaySeconds": 0.5 },
          "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
          "Inference": { "IntraOpThreads": 1 },
          "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 0.2 }{{extra}}
        }
        """;

    private static async Task Until(Func<bool> condition, string what, AgentProcess agent)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Timeout, $"timed out waiting until {what}; stderr: {agent.Stderr}");
            if (agent.HasExited)
            {
                Assert.Fail($"the agent exited ({agent.ExitCode}) before {what}: {agent.Stderr}");
            }

            await Task.Delay(50);
        }
    }

    [Fact]
    public void Run_BadConfigValues_ExitsWithEveryKeyNamed()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, """
            {
              "DeviceId": "Bad_Id",
              "Source": { "Uri": "webcam://0" },
              "Model": { "Path": "/nonexistent/model.onnx" },
              "Inference": { "IntraOpThreads": 1000, "Providers": [ "npu" ] }
            }
            """);

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.Equal(2, code);
        Assert.Contains("Agent:DeviceId:", stderr, StringComparison.Ordinal);
        Assert.Contains("Agent:Source:Uri: scheme 'webcam'", stderr, StringComparison.Ordinal);
        Assert.Contains("Agent:Model:Path: /nonexistent/model.onnx does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains("Agent:Inference:IntraOpThreads: must be between 0 and 256 (got 1000)", stderr, StringComparison.Ordinal);
        Assert.Contains("Agent:Inference:Providers:0: 'npu'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ValueOfTheWrongType_NamesTheKey()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, ValidAgent(dir).Replace("\"IntraOpThreads\": 1", "\"IntraOpThreads\": \"many\"", StringComparison.Ordinal));

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.Equal(2, code);
        Assert.Contains("Agent:Inference:IntraOpThreads", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MisspelledKey_IsRejected()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, ValidAgent(dir).Replace("\"IntraOpThreads\"", "\"IntraOpThread\"", StringComparison.Ordinal));

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.Equal(2, code);
        Assert.Contains("IntraOpThread", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_EnvironmentOverride_IsValidatedToo()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, ValidAgent(dir));

        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_Agent__Source__StallTimeoutSeconds"] = "0" },
            "run", "--config", config);

        Assert.Equal(2, code);
        Assert.Contains("Agent:Source:StallTimeoutSeconds", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ConfigNotJson_SaysSo()
    {
        using var dir = new TempDirectory();
        var path = dir.File("agent.json");
        File.WriteAllText(path, "{ \"Agent\": { ");

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", path);

        Assert.Equal(2, code);
        Assert.Contains("not valid JSON", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MissingConfigFile_SaysWhich()
    {
        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", "/nonexistent/agent.json");

        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/agent.json not found", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_CorruptModel_ExitsWithTheReason()
    {
        using var dir = new TempDirectory();
        var model = dir.File("broken.onnx");
        File.WriteAllText(model, "garbage");
        File.Copy(EdgeFleet.Contracts.Models.ManifestFile.PathFor(TestModels.Get(TestModels.SmallClassifier)), dir.File("broken.manifest.json"));
        var config = Config(dir, ValidAgent(dir).Replace(TestModels.Get(TestModels.SmallClassifier), model, StringComparison.Ordinal));

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.Equal(1, code);
        Assert.Contains("does not match its manifest", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_MissingOnnxRuntime_SaysHowToInstallIt()
    {
        using var dir = new TempDirectory();
        var config = Config(dir, ValidAgent(dir));

        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_ORT_LIB"] = "/nonexistent/libonnxruntime.so.1" },
            "run", "--config", config);

        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/libonnxruntime.so.1", stderr, StringComparison.Ordinal);
        Assert.Contains("Fix: rebuild or re-publish the agent", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_LibraryThatIsNotOnnxRuntime_SaysItCannotLoad()
    {
        using var dir = new TempDirectory();
        var fake = dir.File("libonnxruntime.so.1");
        File.WriteAllText(fake, "not an ELF file");
        var config = Config(dir, ValidAgent(dir));

        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_ORT_LIB"] = fake }, "run", "--config", config);

        Assert.Equal(1, code);
        Assert.Contains($"Cannot load ONNX Runtime from {fake}", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_TestCamera_PrintsResultsAndStopsCleanlyOnSigterm()
    {
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, ValidAgent(dir)));

        await Until(() => agent.Stdout.Contains("class-", StringComparison.Ordinal) && agent.Stdout.Contains("fps", StringComparison.Ordinal),
            "results are printed", agent);
        var ffmpeg = Assert.Single(agent.Children());
        agent.Signal(15);

        Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(30)), "the agent did not stop on SIGTERM");
        Assert.True(agent.ExitCode == 0, $"exit code {agent.ExitCode} after SIGTERM; stderr: {agent.Stderr}");
        Assert.False(AgentProcess.IsAlive(ffmpeg), "ffmpeg outlived the agent");
    }

    [Fact]
    public async Task Run_AgentKilledWithSigkill_TakesItsCaptureProcessAlong()
    {
        using var dir = new TempDirectory();
        // A camera that delivers nothing for a long time: its ffmpeg would never hit a broken pipe by itself.
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, ValidAgent(dir, "testsrc://160x120@0.01?frames=1")));
        await Until(() => agent.Children().Count == 1, "ffmpeg runs", agent);
        var ffmpeg = agent.Children()[0];

        agent.Signal(9);
        Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(10)));

        var sw = Stopwatch.StartNew();
        while (AgentProcess.IsAlive(ffmpeg) && sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }

        Assert.False(AgentProcess.IsAlive(ffmpeg), "ffmpeg outlived a SIGKILLed agent");
    }

    [Fact]
    public async Task Run_UnreachableCamera_KeepsRunningAndReportsRestarts()
    {
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, ValidAgent(dir, "v4l2:///dev/video-missing")));

        await Until(() => agent.Stdout.Contains("restarts 3", StringComparison.Ordinal), "three restarts are reported", agent);
        Assert.Contains("/dev/video-missing", agent.Stderr, StringComparison.Ordinal);
        Assert.Contains("no result yet", agent.Stdout, StringComparison.Ordinal);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public void Bench_MissingModel_ExitsWithTheReason()
    {
        var (code, stdout, stderr) = AgentProcess.Run(Timeout, null, "bench", "--model", "/nonexistent/m.onnx", "--source", "testsrc://64x64@30", "--json");

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("/nonexistent/m.onnx", stderr, StringComparison.Ordinal);
    }
}
