using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Commands;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Onnx;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Agent.Tests;

/// <summary>The whole path — real ffmpeg, real ONNX Runtime, generated models — and model loading.</summary>
[Trait("Category", "Integration")]
public sealed class PipelineTests
{
    private static readonly SessionSettings Cpu = new() { IntraOpThreads = 1 };

    private static OnnxRuntime Runtime => OnnxRuntime.Load();

    private sealed class CollectingSink : IResultSink
    {
        public List<long> Sequences { get; } = [];

        public int NonFinite { get; private set; }

        public int Detections { get; private set; }

        public void OnResult(InferenceResult result, LoadedModel model)
        {
            Sequences.Add(result.FrameSequence);
            NonFinite += result.NonFinite ? 1 : 0;
            Detections += result.DetectionCount;
            if (model.Manifest.Task == ModelTask.Classification)
            {
                Assert.Equal(model.Manifest.Decoding.TopK, result.TopCount);
                Assert.True(result.TopScores[0] >= result.TopScores[^1]);
            }
        }
    }

    [Theory]
    [InlineData(ModelTask.Classification)]
    [InlineData(ModelTask.Detection)]
    public void Pipeline_FewHundredFrames_CountersAreConsistent(ModelTask task)
    {
        var options = task == ModelTask.Classification ? TestModels.SmallClassifier : TestModels.SmallDetector;
        using var model = LoadedModel.Load(Runtime, TestModels.Get(options), Cpu);
        var source = SourceUri.Parse("testsrc://320x240@30?realtime=false");
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: false);
        var metrics = new PipelineMetrics(256);
        var sink = new CollectingSink();
        var pipeline = new InferencePipeline(slot, model, metrics, [sink], NullLogger.Instance);
        using var frameSource = new FrameSource(source,
            CaptureCommand.Create(source, model.InputWidth, model.InputHeight, model.Manifest.Input.Resize, "ffmpeg", "gst-launch-1.0"),
            slot, new FrameSourceSettings(), NullLogger.Instance);
        frameSource.Start();

        var inferred = pipeline.Run(CancellationToken.None, 300);

        Assert.Equal(300, inferred);
        Assert.Equal(300, metrics.FramesInferred);
        Assert.Equal(300, sink.Sequences.Count);
        Assert.Equal(sink.Sequences.Order(), sink.Sequences); // in order, none twice
        Assert.Equal(sink.Sequences.Count, sink.Sequences.Distinct().Count());
        Assert.Equal(0, metrics.Errors);
        Assert.Equal(0, slot.Dropped);
        Assert.Equal(0, sink.NonFinite);
        Assert.True(frameSource.FramesCaptured >= 300 && frameSource.FramesCaptured <= 302); // at most the frames in hand-over
        var snapshot = metrics.Snapshot(frameSource.FramesCaptured, slot.Dropped, frameSource.Restarts, frameSource.Stalls);
        Assert.Equal(256, snapshot.Stages[Stage.Inference].Count);
        Assert.True(snapshot.Stages[Stage.EndToEnd].P50 >= snapshot.Stages[Stage.Inference].P50);
        Assert.True(snapshot.Fps > 0);
    }

    [Fact]
    public void Pipeline_RealtimeSourceFasterThanInference_DropsAreCountedNotLost()
    {
        using var model = LoadedModel.Load(Runtime, TestModels.Get(TestModels.SmallClassifier with { Depth = 30, InputSize = 96 }), Cpu);
        var source = SourceUri.Parse("testsrc://160x120@500");
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: true);
        var metrics = new PipelineMetrics();
        var pipeline = new InferencePipeline(slot, model, metrics, [], NullLogger.Instance);
        var frameSource = new FrameSource(source,
            CaptureCommand.Create(source, model.InputWidth, model.InputHeight, ResizeMode.Stretch, "ffmpeg", "gst-launch-1.0"),
            slot, new FrameSourceSettings(), NullLogger.Instance);
        frameSource.Start();
        pipeline.Run(CancellationToken.None, 100);
#pragma warning disable IDISP016 // the counters stay readable after Dispose
        frameSource.Dispose(); // stops capture, so the counts below are final
        var captured = frameSource.FramesCaptured;
#pragma warning restore IDISP016

        Assert.True(slot.Dropped > 0, "a 500 fps source must outrun this model");
        // Every captured frame was either inferred, dropped, or is the one left in the slot / being read.
        var unaccounted = captured - metrics.FramesInferred - slot.Dropped;
        Assert.InRange(unaccounted, 0, 2);
    }

    [Fact]
    public void Pipeline_NanModel_CountsNonFiniteOutputs()
    {
        using var model = LoadedModel.Load(Runtime, TestModels.Get(TestModels.SmallClassifier with { Fault = SampleFault.Nan }), Cpu);
        var source = SourceUri.Parse("testsrc://64x64@30?realtime=false");
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: false);
        var metrics = new PipelineMetrics();
        var sink = new CollectingSink();
        using var frameSource = new FrameSource(source,
            CaptureCommand.Create(source, model.InputWidth, model.InputHeight, ResizeMode.Stretch, "ffmpeg", "gst-launch-1.0"),
            slot, new FrameSourceSettings(), NullLogger.Instance);
        frameSource.Start();

        new InferencePipeline(slot, model, metrics, [sink], NullLogger.Instance).Run(CancellationToken.None, 20);

        Assert.Equal(20, metrics.NonFiniteOutputs);
        Assert.Equal(20, sink.NonFinite);
    }

    [Theory]
    [InlineData(ModelTask.Classification)]
    [InlineData(ModelTask.Detection)]
    public void SelfTest_HealthySample_Passes(ModelTask task)
    {
        var options = task == ModelTask.Classification ? TestModels.SmallClassifier : TestModels.SmallDetector;
        using var model = LoadedModel.Load(Runtime, TestModels.Get(options), Cpu);

        Assert.Null(model.RunSelfTest());
    }

    [Fact]
    public void SelfTest_NanModel_FailsWithTheValue()
    {
        using var model = LoadedModel.Load(Runtime, TestModels.Get(TestModels.SmallDetector with { Fault = SampleFault.Nan }), Cpu);

        Assert.Contains("NaN", model.RunSelfTest(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BadShapeModel_NamesBothShapes()
    {
        var ex = Assert.Throws<ModelLoadException>(() =>
            LoadedModel.Load(Runtime, TestModels.Get(TestModels.SmallClassifier with { Fault = SampleFault.BadShape }), Cpu));

        Assert.Contains("[1,3,80,80]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[1,3,64,64]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ModelChangedAfterItsManifest_IsRefused()
    {
        using var dir = new TempDirectory();
        var path = CopyModel(dir, TestModels.SmallClassifier);
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<ModelLoadException>(() => LoadedModel.Load(Runtime, path, Cpu));
        Assert.Contains("does not match its manifest", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CorruptModelWithMatchingManifest_CarriesOrtsMessage()
    {
        using var dir = new TempDirectory();
        var path = CopyModel(dir, TestModels.SmallClassifier);
        File.WriteAllBytes(path, "definitely not protobuf"u8.ToArray());
        var manifestPath = ManifestFile.PathFor(path);
        var manifest = ManifestFile.Load(manifestPath);
        var (sha, size) = ManifestFile.HashFile(path);
        ManifestFile.Save(manifest with { Artifact = manifest.Artifact with { Sha256 = sha, Size = size } }, manifestPath);

        var ex = Assert.Throws<ModelLoadException>(() => LoadedModel.Load(Runtime, path, Cpu));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.IsType<OnnxRuntimeException>(ex.InnerException);
    }

    [Fact]
    public void Load_MissingManifest_SaysWhichFile()
    {
        using var dir = new TempDirectory();
        var path = CopyModel(dir, TestModels.SmallClassifier);
        File.Delete(ManifestFile.PathFor(path));

        var ex = Assert.Throws<ModelLoadException>(() => LoadedModel.Load(Runtime, path, Cpu));
        Assert.Contains("model.manifest.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingModel_SaysHowToFix()
    {
        var ex = Assert.Throws<ModelLoadException>(() => LoadedModel.Load(Runtime, "/nonexistent/m.onnx", Cpu));
        Assert.Contains("Agent:Model:Path", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_SmallModel_PrintsOneJsonObjectWithEveryField()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await BenchCommand.ExecuteAsync(new BenchOptions
        {
            ModelPath = TestModels.Get(TestModels.SmallClassifier),
            SourceUri = "testsrc://160x120@30",
            Frames = 40,
            Warmup = 5,
            Threads = 1,
            Rounds = 2,
            Json = true,
        }, output, error, CancellationToken.None);

        Assert.True(code == 0, error.ToString());
        using var json = System.Text.Json.JsonDocument.Parse(output.ToString());
        var root = json.RootElement;
        Assert.Equal("CPU", root.GetProperty("provider").GetString());
        Assert.Equal(40, root.GetProperty("frames").GetInt32());
        Assert.True(root.GetProperty("pipeline").GetProperty("fps").GetDouble() > 0);
        foreach (var stage in new[] { "preprocess", "inference", "postprocess" })
        {
            Assert.True(root.GetProperty("pipeline").GetProperty("stagesMs").GetProperty(stage).GetProperty("p50").GetDouble() >= 0);
        }

        Assert.True(root.GetProperty("ortOnly").GetProperty("latencyMs").GetProperty("p99").GetDouble() > 0);
        var ratio = root.GetProperty("pipelineToOrtRatio").GetDouble();
        // Both are printed rounded, so compare with a tolerance, not by rounding both to 2 places (0.03495 vs 0.035 once).
        Assert.Equal(root.GetProperty("pipeline").GetProperty("fps").GetDouble() / root.GetProperty("ortOnly").GetProperty("fps").GetDouble(), ratio, 0.002);
        Assert.Equal(0, root.GetProperty("framesDropped").GetInt64());
        Assert.True(root.TryGetProperty("allocatedBytesPerFrame", out _));
        Assert.Equal("passed", root.GetProperty("selfTest").GetString());
    }

    [Fact]
    public async Task Bench_BadSource_ExitsWithTheReason()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await BenchCommand.ExecuteAsync(new BenchOptions
        {
            ModelPath = TestModels.Get(TestModels.SmallClassifier),
            SourceUri = "webcam://0",
        }, output, error, CancellationToken.None);

        Assert.Equal(2, code);
        Assert.Contains("webcam", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }

    [Fact]
    public async Task Bench_ConfigFile_UsesItsFfmpegPath()
    {
        using var dir = new TempDirectory();
        var marker = dir.File("ffmpeg-was-used");
        var wrapper = dir.File("my-ffmpeg");
        File.WriteAllText(wrapper, $"#!/bin/sh\necho yes > '{marker}'\nexec ffmpeg \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var config = dir.File("agent.json");
        File.WriteAllText(config, $$"""{ "Agent": { "Source": { "FfmpegPath": "{{wrapper}}" }, "Inference": { "Providers": ["cpu"], "IntraOpThreads": 1 } } }""");
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await BenchCommand.ExecuteAsync(new BenchOptions
        {
            ModelPath = TestModels.Get(TestModels.SmallClassifier),
            SourceUri = "testsrc://160x120@30",
            ConfigPath = config,
            Frames = 20,
            Warmup = 2,
            Rounds = 2,
            Json = true,
        }, output, error, CancellationToken.None);

        Assert.True(code == 0, error.ToString());
        Assert.True(File.Exists(marker), "bench did not run the configured Agent:Source:FfmpegPath");
        using var json = System.Text.Json.JsonDocument.Parse(output.ToString());
        Assert.Equal(1, json.RootElement.GetProperty("threads").GetInt32());
    }

    [Fact]
    public async Task Profile_ConfiguredFfmpegMissing_CommandLineOverrideWins()
    {
        using var dir = new TempDirectory();
        var config = dir.File("agent.json");
        File.WriteAllText(config, """{ "Agent": { "Source": { "FfmpegPath": "/nonexistent/ffmpeg" } } }""");
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await ProfileCommand.ExecuteAsync(new ProfileOptions
        {
            ModelPath = TestModels.Get(TestModels.SmallClassifier),
            SourceUri = "testsrc://160x120@30",
            ConfigPath = config,
            FfmpegPath = "ffmpeg",
            Frames = 20,
            OutPath = dir.File("profile.json"),
        }, output, error, CancellationToken.None);

        Assert.True(code == 0, error.ToString());
        Assert.True(File.Exists(dir.File("profile.json")));
    }

    private static string CopyModel(TempDirectory dir, SampleModelOptions options)
    {
        var source = TestModels.Get(options);
        var path = dir.File("model.onnx");
        File.Copy(source, path);
        File.Copy(ManifestFile.PathFor(source), ManifestFile.PathFor(path));
        return path;
    }
}
