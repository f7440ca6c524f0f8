using System.Text.Json;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// Which ONNX Runtime the agent binary loads, and what it says when it cannot: a process can load only one ONNX
/// Runtime and the managed package's library resolver is set once, so each case is its own agent process.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OnnxRuntimeStartupTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private static string PackagedLibrary =>
        Path.Combine(AppContext.BaseDirectory, "runtimes", System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? "linux-arm64" : "linux-x64", "native", "libonnxruntime.so");

    private static string[] Bench(params string[] extra) =>
        ["bench", "--model", TestModels.Get(TestModels.SmallClassifier), "--source", "testsrc://64x64@30", "--frames", "20", "--warmup", "2",
            "--rounds", "2", "--json", .. extra];

    [Fact]
    public void Bench_OrtLibOlderThanThePackage_SaysWhichIsOlderAndHowToFix()
    {
        using var dir = new TempDirectory();
        var fake = FakeOnnxRuntime.Build(dir.Path, "1.16.3");

        var (code, stdout, stderr) = AgentProcess.Run(Timeout, null, Bench("--ort-lib", fake));

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains($"error: ONNX Runtime 1.16.3 at {fake} is older than 1.30.0 that this agent needs. Fix: install ONNX Runtime ≥ 1.30.0",
            stderr, StringComparison.Ordinal);
        Assert.Contains("point EDGEFLEET_ORT_LIB / Agent:Inference:OrtLibraryPath at a newer build", stderr, StringComparison.Ordinal);
        Assert.Contains("use an agent built against an older Microsoft.ML.OnnxRuntime package", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal); // a message, not a stack trace
    }

    [Fact]
    public void Run_OrtLibraryPathOlderThanThePackage_ExitsWithTheVersions()
    {
        using var dir = new TempDirectory();
        var fake = FakeOnnxRuntime.Build(dir.Path, "1.16.3");
        var config = dir.File("agent.json");
        File.WriteAllText(config, $$"""
            { "Agent": {
                "DeviceId": "old-ort-01",
                "StateDirectory": "{{dir.Path}}",
                "Source": { "Uri": "testsrc://64x64@30" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
                "Inference": { "OrtLibraryPath": "{{fake}}" }
            } }
            """);

        var (code, _, stderr) = AgentProcess.Run(Timeout, null, "run", "--config", config);

        Assert.Equal(1, code);
        Assert.Contains($"error: ONNX Runtime 1.16.3 at {fake} is older than 1.30.0 that this agent needs", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_EnvironmentNamesAMissingLibrary_NamesThePathAndTheFix()
    {
        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_ORT_LIB"] = "/nonexistent/libonnxruntime.so.1" }, Bench());

        Assert.Equal(1, code);
        Assert.Contains("error: ONNX Runtime native library not found at /nonexistent/libonnxruntime.so.1 (set by EDGEFLEET_ORT_LIB). Fix: ",
            stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_EnvironmentNamesALibraryThatIsNotOnnxRuntime_SaysSo()
    {
        var zlib = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? "/usr/lib/aarch64-linux-gnu/libz.so.1"
            : "/usr/lib/x86_64-linux-gnu/libz.so.1";

        var (code, _, stderr) = AgentProcess.Run(Timeout, new Dictionary<string, string> { ["EDGEFLEET_ORT_LIB"] = zlib }, Bench());

        Assert.Equal(1, code);
        Assert.Contains($"error: {zlib} (set by EDGEFLEET_ORT_LIB) is not ONNX Runtime: it has no OrtGetApiBase export. Fix: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_PackagedLibrary_ReportsVersionLibraryAndCpuProvider()
    {
        var (code, stdout, stderr) = AgentProcess.Run(Timeout, null, Bench("--providers", "tensorrt,cuda,cpu"));

        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal("1.30.0", root.GetProperty("ortVersion").GetString());
        Assert.Equal(PackagedLibrary, root.GetProperty("ortLibrary").GetString());
        Assert.Equal("CPU", root.GetProperty("provider").GetString());
        var notes = root.GetProperty("providerNotes").EnumerateArray().Select(n => n.GetString()!).ToList();
        Assert.Equal(2, notes.Count);
        Assert.StartsWith("TensorRT not in this ONNX Runtime build", notes[0], StringComparison.Ordinal);
        Assert.StartsWith("Cuda not in this ONNX Runtime build", notes[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_OrtLibFromTheEnvironment_IsTheOnlyOnnxRuntimeInTheProcess()
    {
        // As on a Jetson, where EDGEFLEET_ORT_LIB names JetPack's library: that file, and not the packaged one, is mapped.
        using var dir = new TempDirectory();
        var copy = dir.File("libonnxruntime.so.1.30.0");
        File.Copy(PackagedLibrary, copy);
        File.Copy(Path.Combine(Path.GetDirectoryName(PackagedLibrary)!, "libonnxruntime_providers_shared.so"), dir.File("libonnxruntime_providers_shared.so"));
        var config = dir.File("agent.json");
        File.WriteAllText(config, $$"""
            { "Agent": {
                "DeviceId": "jetson-like-01",
                "StateDirectory": "{{dir.Path}}",
                "Source": { "Uri": "testsrc://64x64@30" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
                "Inference": { "IntraOpThreads": 1 },
                "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 0.2 }
            } }
            """);
        using var agent = AgentProcess.Start(new Dictionary<string, string> { ["EDGEFLEET_ORT_LIB"] = copy }, "run", "--config", config);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!agent.Stdout.Contains("class-", StringComparison.Ordinal))
        {
            Assert.False(agent.HasExited, $"the agent exited: {agent.Stderr}");
            Assert.True(sw.Elapsed < Timeout, $"no results within {Timeout}: {agent.Stderr}");
            await Task.Delay(50);
        }

        var mapped = File.ReadLines($"/proc/{agent.Id}/maps")
            .Select(l => l.IndexOf('/', StringComparison.Ordinal) is var i and >= 0 ? l[i..] : "")
            .Where(p => Path.GetFileName(p).StartsWith("libonnxruntime.so", StringComparison.Ordinal))
            .Distinct()
            .ToList();
        Assert.Equal([copy], mapped);
        Assert.Contains($"loaded from {copy}", agent.Stdout + agent.Stderr, StringComparison.Ordinal);
    }
}
