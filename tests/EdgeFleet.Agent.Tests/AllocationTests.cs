using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Onnx;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Agent.Tests;

/// <summary>Process-wide allocation counters: these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(AllocationCollection), DisableParallelization = true)]
public sealed class AllocationCollection;

[Collection(nameof(AllocationCollection))]
[Trait("Category", "Integration")]
public sealed class AllocationTests : IDisposable
{
    [Fact]
    public void InferenceThreadWork_SteadyState_AllocatesNothing()
    {
        // Everything the inference thread does per frame, through the IoBinding runner: preprocess into the bound input,
        // run, decode the bound output.
        using var model = LoadedModel.Load(OnnxRuntime.Load(), TestModels.Get(TestModels.SmallDetector), new SessionSettings { IntraOpThreads = 1 });
        var frame = new byte[model.InputWidth * model.InputHeight * 3];
        new Random(5).NextBytes(frame);
        var result = model.Decoder.CreateResult();
        for (var i = 0; i < 20; i++)
        {
            OneFrame(model, frame, result);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 200; i++)
        {
            frame[i] ^= 0x55;
            OneFrame(model, frame, result);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void OneFrame(LoadedModel model, byte[] frame, InferenceResult result)
    {
        model.Preprocessor.Run(frame, model.Runner.Input<float>(0));
        model.Runner.Run();
        model.Decoder.Decode(model.Runner.Output<float>(model.OutputIndex), model.Runner.OutputShape(model.OutputIndex), result);
    }

    [Fact]
    public void Pipeline_SteadyState_AllocatesAtMost64BytesPerFrame()
    {
        using var model = LoadedModel.Load(OnnxRuntime.Load(), TestModels.Get(TestModels.SmallDetector), new SessionSettings { IntraOpThreads = 1 });
        var source = SourceUri.Parse("testsrc://320x240@30?realtime=false");
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: false);
        var pipeline = new InferencePipeline(slot, model, new PipelineMetrics(), [], NullLogger.Instance);
        using var frameSource = new FrameSource(source,
            CaptureCommand.Create(source, model.InputWidth, model.InputHeight, model.Manifest.Input.Resize, "ffmpeg", "gst-launch-1.0"),
            slot, new FrameSourceSettings(), NullLogger.Instance);
        frameSource.Start();
        pipeline.Run(CancellationToken.None, 100); // warm-up: JIT tiers, pools, decoder buffers

        // All threads (capture included): the counter also sees whatever else the process does meanwhile (a timer, the
        // exit of an earlier test's child process), in bursts. The pipeline's own cost is the same in every window, so
        // the quietest of five windows measures it; an allocation per frame would show in all of them.
        var windows = new List<double>();
        for (var w = 0; w < 5; w++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var frames = pipeline.Run(CancellationToken.None, 200);
            windows.Add((GC.GetTotalAllocatedBytes(precise: true) - before) / (double)frames);
            Assert.Equal(200, frames);
        }

        // The issue's bound for the whole pipeline is 64 bytes per frame.
        Assert.True(windows.Min() <= 64, $"bytes allocated per frame in five windows of 200 frames: {string.Join(", ", windows.Select(b => b.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))}");
    }

    [Fact]
    public async Task Pipeline_SteadyStateWithAShadowAndAResizedModel_InferenceThreadAllocatesNothing()
    {
        // The live model gets frames through the resize stage (capture at 64×64, model 96×96), and a shadow candidate
        // runs beside it: the inference thread still allocates nothing per frame in steady state.
        var builder = new PipelineBuilder(new EdgeFleet.Agent.Configuration.SourceOptions(),
            new EdgeFleet.Agent.Configuration.InferenceOptions { IntraOpThreads = 1, Providers = ["cpu"] }, Path.GetTempPath(), NullLoggerFactory.Instance);
#pragma warning disable IDISP001 // the host owns it
        var first = builder.LoadModel(TestModels.Get(TestModels.SmallDetector), selfTest: false);
#pragma warning restore IDISP001
        using var resized = builder.LoadModel(TestModels.Get(TestModels.SmallDetector with { InputSize = 96 }), selfTest: false);
        using var host = builder.Build(SourceUri.Parse("file://" + FrameSourceTests.MakeVideo(_dir, 900) + "?realtime=false"),
            builder.Activate(first), new PipelineMetrics(), []);
        host.StartCapture();
        using var shadow = LoadedModel.Load(host.Runtime, TestModels.Get(TestModels.SmallDetector), host.ShadowSessionSettings);
        host.StartShadow(shadow, new ShadowOptions { SampleShare = 0.5, Niceness = 0 });
        using var previous = await host.SwapAsync(resized, CancellationToken.None);
        host.Pipeline.Run(CancellationToken.None, 100); // warm-up: JIT tiers, pools, decoder and resize buffers

        // The live path only (this thread runs the loop): the shadow thread's own work is not the live frame's cost.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var frames = host.Pipeline.Run(CancellationToken.None, 500);
        var perFrame = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)frames;
        var stats = host.StopShadow();

        Assert.Equal(500, frames);
        Assert.True(stats.FramesCompared > 0);
        Assert.True(host.Active.ResizedFrames >= 600);
        Assert.True(perFrame <= 1, $"{perFrame:0.0} bytes allocated per frame on the inference thread");
    }

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();
}
