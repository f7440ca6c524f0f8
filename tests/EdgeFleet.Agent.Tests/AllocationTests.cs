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
public sealed class AllocationTests
{
    [Fact]
    public void Pipeline_SteadyState_AllocatesUnderOneKilobytePerFrame()
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

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var frames = pipeline.Run(CancellationToken.None, 500);
        var perFrame = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)frames;

        Assert.Equal(500, frames);
        Assert.True(perFrame <= 1024, $"{perFrame:0.0} bytes allocated per frame");
    }
}
