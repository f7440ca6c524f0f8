using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.Onnx.Tests;

[Trait("Category", "Integration")]
public sealed class OnnxSessionTests
{
    private static OnnxRuntime Runtime => OnnxRuntime.Load();

    [Fact]
    public void Load_PackagedLibrary_ReportsItsVersionFileAndCpuProvider()
    {
        Assert.True(OrtLibrary.TryParseVersion(Runtime.Version, out var version), Runtime.Version);
        Assert.True(version >= OnnxRuntime.RequiredVersion, $"{version} < {OnnxRuntime.RequiredVersion}");
        Assert.Contains("CPUExecutionProvider", Runtime.AvailableProviders);
        Assert.True(File.Exists(Runtime.LibraryPath), Runtime.LibraryPath);
        Assert.StartsWith("libonnxruntime.so", Path.GetFileName(Runtime.LibraryPath), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Always_TurnsTelemetryOffInTheNativeEnvironment()
    {
        _ = Runtime;

        Assert.Equal("1", OrtTelemetry.NativeValue());
        Assert.Equal("1", Environment.GetEnvironmentVariable("ORT_DISABLE_TELEMETRY"));
    }

    [Fact]
    public void Load_MissingLibrary_NamesThePathAndTheFix()
    {
        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => OnnxRuntime.Load("/nonexistent/libonnxruntime.so.1"));
        Assert.Contains("/nonexistent/libonnxruntime.so.1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Fix:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("EDGEFLEET_ORT_LIB", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_AnotherLibraryAfterTheFirst_IsRefused()
    {
        _ = Runtime;
        using var dir = new TempDirectory();
        var other = dir.File("libonnxruntime.so.1");
        File.Copy(Runtime.LibraryPath, other);

        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => OnnxRuntime.Load(other));
        Assert.Contains("already loaded", ex.Message, StringComparison.Ordinal);
        Assert.Same(Runtime, OnnxRuntime.Load(Runtime.LibraryPath));
    }

    [Fact]
    public void CreateSession_MissingFile_ThrowsFileNotFoundWithPath()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => Runtime.CreateSession("/nonexistent/model.onnx"));
        Assert.Contains("/nonexistent/model.onnx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateSession_CorruptBytes_ThrowsWithOrtMessage()
    {
        var garbage = "this is not an onnx model, just some text that protobuf cannot parse\u0001\u0002"u8.ToArray();
        var ex = Assert.Throws<OnnxRuntimeException>(() => Runtime.CreateSession(garbage, name: "garbage.onnx"));
        Assert.Contains("garbage.onnx", ex.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(ex.OrtMessage));
        Assert.NotEqual(OrtErrorCode.Ok, ex.ErrorCode);
    }

    [Fact]
    public void CreateSession_TruncatedModelFile_ThrowsWithOrtMessage()
    {
        using var dir = new TempDirectory();
        var bytes = File.ReadAllBytes(TestModels.Get(TestModels.SmallClassifier));
        var path = dir.File("truncated.onnx");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var ex = Assert.Throws<OnnxRuntimeException>(() => Runtime.CreateSession(path));
        Assert.Contains("truncated.onnx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateSession_EmptyBytes_Throws()
    {
        Assert.Throws<OnnxRuntimeException>(() => Runtime.CreateSession(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void Metadata_SampleClassifier_ReportsNamesTypesAndShapes()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier));

        var input = Assert.Single(session.Inputs);
        Assert.Equal("input", input.Name);
        Assert.Equal(TensorElementType.Float, input.ElementType);
        Assert.Equal([1L, 3, 64, 64], input.Shape);
        var output = Assert.Single(session.Outputs);
        Assert.Equal("probabilities", output.Name);
        Assert.Equal([1L, 10], output.Shape);
        Assert.Equal(ExecutionProvider.Cpu, session.ActiveProvider);
    }

    [Fact]
    public void Metadata_DynamicBatch_ReportsSymbolicDimension()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier with { DynamicBatch = true }));

        Assert.Equal(-1, session.Inputs[0].Shape[0]);
        Assert.Equal("batch", session.Inputs[0].SymbolicDimensions[0]);
        Assert.True(session.Outputs[0].IsDynamic);
    }

    [Fact]
    public void Run_Classifier_ProbabilitiesSumToOneAndMatchTheSelfTest()
    {
        var path = TestModels.Get(TestModels.SmallClassifier);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        using var session = Runtime.CreateSession(path);
        using var runner = session.CreateRunner();

        ScalarPreprocess(manifest, runner.Input<float>(0));
        runner.Run();

        var probabilities = runner.Output<float>(0);
        Assert.Equal(10, probabilities.Length);
        Assert.Equal(1.0, probabilities.ToArray().Sum(p => (double)p), 5);
        AssertMatchesSelfTest(manifest, probabilities);
    }

    [Fact]
    public void Run_Detector_MatchesTheSelfTest()
    {
        var path = TestModels.Get(TestModels.SmallDetector);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        using var session = Runtime.CreateSession(path);
        using var runner = session.CreateRunner();

        ScalarPreprocess(manifest, runner.Input<float>(0));
        runner.Run();

        Assert.Equal([1L, 64, 8], runner.OutputShape(0).ToArray());
        AssertMatchesSelfTest(manifest, runner.Output<float>(0));
    }

    [Fact]
    public void Run_DynamicBatchOutput_IsAllocatedByOrtAndReadBack()
    {
        var path = TestModels.Get(TestModels.SmallDetector with { DynamicBatch = true });
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        using var session = Runtime.CreateSession(path);
        using var runner = session.CreateRunner();

        for (var i = 0; i < 3; i++) // the previous run's output must be released and replaced each time
        {
            ScalarPreprocess(manifest, runner.Input<float>(0));
            runner.Run();
            Assert.Equal([1L, 64, 8], runner.OutputShape(0).ToArray());
            AssertMatchesSelfTest(manifest, runner.Output<float>(0));
        }
    }

    [Fact]
    public void CreateRunner_InputShapeTheModelRejects_ThrowsNamingBothShapes()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier));

        var ex = Assert.Throws<OnnxRuntimeException>(() =>
            session.CreateRunner(new Dictionary<string, long[]> { ["input"] = [1, 3, 80, 80] }));
        Assert.Contains("[1,3,64,64]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[1,3,80,80]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateRunner_BadShapeFaultModelWithItsManifestShape_Throws()
    {
        var path = TestModels.Get(TestModels.SmallClassifier with { Fault = SampleFault.BadShape });
        using var session = Runtime.CreateSession(path);

        Assert.Equal([1L, 3, 80, 80], session.Inputs[0].Shape);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        Assert.Equal([1L, 3, 64, 64], manifest.Input.Shape);
        Assert.Throws<OnnxRuntimeException>(() =>
            session.CreateRunner(new Dictionary<string, long[]> { ["input"] = manifest.Input.Shape.ToArray() }));
    }

    [Fact]
    public void Input_WrongElementType_Throws()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier));
        using var runner = session.CreateRunner();

        Assert.Throws<InvalidOperationException>(() => runner.Input<byte>(0));
    }

    [Fact]
    public void Run_NanFaultModel_ProducesNaN()
    {
        var path = TestModels.Get(TestModels.SmallClassifier with { Fault = SampleFault.Nan });
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        using var session = Runtime.CreateSession(path);
        using var runner = session.CreateRunner();

        ScalarPreprocess(manifest, runner.Input<float>(0));
        runner.Run();

        Assert.All(runner.Output<float>(0).ToArray(), v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public async Task Run_ConcurrentRunnersOnOneSession_AllMatchTheSelfTest()
    {
        var path = TestModels.Get(TestModels.SmallClassifier);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        using var session = Runtime.CreateSession(path, new SessionSettings { IntraOpThreads = 1 });

        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            using var runner = session.CreateRunner();
            for (var i = 0; i < 50; i++)
            {
                ScalarPreprocess(manifest, runner.Input<float>(0));
                runner.Run();
                AssertMatchesSelfTest(manifest, runner.Output<float>(0));
            }
        }));
        await Task.WhenAll(workers);
    }

    [Fact]
    public void Run_SessionDisposedBeforeRun_ThrowsObjectDisposed()
    {
        var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier));
        using var runner = session.CreateRunner();
        session.Dispose();

        Assert.Throws<ObjectDisposedException>(runner.Run);
    }

    [Fact]
    public void CreateSession_PreferGpuProvidersOnCpuOnlyBuild_FallsBackToCpuAndSaysWhy()
    {
        var settings = new SessionSettings { Providers = [ExecutionProvider.TensorRT, ExecutionProvider.Cuda, ExecutionProvider.Cpu] };
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier), settings);

        Assert.Equal(["CPUExecutionProvider"], Runtime.AvailableProviders);
        Assert.Equal(ExecutionProvider.Cpu, session.ActiveProvider);
        Assert.Equal(2, session.ProviderNotes.Count);
        Assert.StartsWith("TensorRT not in this ONNX Runtime build (CPUExecutionProvider)", session.ProviderNotes[0], StringComparison.Ordinal);
        Assert.StartsWith("Cuda not in this ONNX Runtime build (CPUExecutionProvider)", session.ProviderNotes[1], StringComparison.Ordinal);
    }

    [Fact]
    public void CreateSession_GpuProvidersListedButUnusable_FallsBackToCpuWithOrtsReason()
    {
        // What a GPU build does on a machine without CUDA: the providers are listed, enabling them fails in ORT.
        var settings = new SessionSettings { Providers = [ExecutionProvider.TensorRT, ExecutionProvider.Cuda, ExecutionProvider.Cpu] };
        string[] listed = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"];
        var path = TestModels.Get(TestModels.SmallClassifier);
        using var session = Runtime.CreateSession(path, settings, listed);
        using var runner = session.CreateRunner();

        Assert.Equal(ExecutionProvider.Cpu, session.ActiveProvider);
        Assert.Equal(2, session.ProviderNotes.Count);
        Assert.StartsWith("TensorRT could not be enabled, falling back: ", session.ProviderNotes[0], StringComparison.Ordinal);
        Assert.StartsWith("Cuda could not be enabled, falling back: ", session.ProviderNotes[1], StringComparison.Ordinal);
        Assert.All(session.ProviderNotes, n => Assert.True(n.Length > "Cuda could not be enabled, falling back: ".Length + 5, n));
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        ScalarPreprocess(manifest, runner.Input<float>(0));
        runner.Run();
        AssertMatchesSelfTest(manifest, runner.Output<float>(0));
    }

    [Fact]
    public void CreateSession_CpuOnly_LeavesNoProviderNotes()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallClassifier), new SessionSettings { Providers = [ExecutionProvider.Cpu] });

        Assert.Equal(ExecutionProvider.Cpu, session.ActiveProvider);
        Assert.Empty(session.ProviderNotes);
    }

    [Fact]
    public async Task Run_SessionDisposedWhileARunnerRuns_RunsFinishThenThrowObjectDisposed()
    {
        var path = TestModels.Get(TestModels.SmallClassifier);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        var session = Runtime.CreateSession(path, new SessionSettings { IntraOpThreads = 1 });
        using var runner = session.CreateRunner();
        ScalarPreprocess(manifest, runner.Input<float>(0));
        using var running = new SemaphoreSlim(0);

        var worker = Task.Run(() =>
        {
            var runs = 0;
            while (true)
            {
                try
                {
                    runner.Run();
                }
                catch (ObjectDisposedException)
                {
                    return runs;
                }

                AssertMatchesSelfTest(manifest, runner.Output<float>(0)); // a run that finished used a live native session
                if (++runs == 3)
                {
                    running.Release();
                }
            }
        });
        await running.WaitAsync();
#pragma warning disable IDISP016 // using it after Dispose is the point
        session.Dispose();

        Assert.True(await worker >= 3);
        Assert.Throws<ObjectDisposedException>(runner.Run);
        Assert.Throws<ObjectDisposedException>(() => session.CreateRunner());
#pragma warning restore IDISP016
    }

    [Fact]
    public void Output_DynamicOutputBeforeTheFirstRun_IsEmpty()
    {
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallDetector with { DynamicBatch = true }));
        using var runner = session.CreateRunner();

        Assert.True(runner.Output<float>(0).IsEmpty);
        Assert.Equal(0, runner.OutputShape(0).Length);
    }

    [Fact]
    public void Run_SteadyState_AllocatesNothingOnTheManagedHeap()
    {
        // What the pipeline does per frame: write the input, run, read the output and its shape.
        using var session = Runtime.CreateSession(TestModels.Get(TestModels.SmallDetector));
        using var runner = session.CreateRunner();
        runner.Run();
        runner.Run();
        var sum = 0.0;

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 200; i++)
        {
            runner.Input<float>(0)[i] = i / 200f;
            runner.Run();
            sum += runner.Output<float>(0)[0] + runner.OutputShape(0)[1];
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(double.IsFinite(sum));
    }

    /// <summary>The manifest's preprocessing, written out pixel by pixel.</summary>
    internal static void ScalarPreprocess(ModelManifest manifest, Span<float> tensor)
    {
        int w = manifest.Input.Width, h = manifest.Input.Height;
        var rgb = SelfTestImage.Create(manifest.SelfTest!.Seed, w, h);
        for (var c = 0; c < 3; c++)
        {
            for (var p = 0; p < w * h; p++)
            {
                tensor[c * w * h + p] = (rgb[p * 3 + c] * manifest.Input.Scale - manifest.Input.Mean[c]) / manifest.Input.Std[c];
            }
        }
    }

    internal static void AssertMatchesSelfTest(ModelManifest manifest, ReadOnlySpan<float> actual)
    {
        var expected = manifest.SelfTest!.Expected[0];
        Assert.Equal(expected.Count, actual.Length);
        foreach (var (index, value) in expected.Values)
        {
            var tolerance = manifest.SelfTest.Tolerance * Math.Max(1, Math.Abs(value));
            Assert.True(Math.Abs(actual[(int)index] - value) <= tolerance,
                $"element {index}: expected {value}, got {actual[(int)index]} (tolerance {tolerance})");
        }
    }
}
