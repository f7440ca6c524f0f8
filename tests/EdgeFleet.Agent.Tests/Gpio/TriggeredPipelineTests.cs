using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Gpio;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Onnx;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests.Gpio;

/// <summary>The real inference loop (ONNX Runtime, a generated model) gated by a trigger on a fake chip's line.</summary>
[Trait("Category", "Integration")]
public sealed class TriggeredPipelineTests
{
    private const int Line = 4;

    private sealed class Sequences : IResultSink
    {
        public List<long> Inferred { get; } = [];

        public void OnResult(InferenceResult result, LoadedModel model) => Inferred.Add(result.FrameSequence);
    }

    [Fact]
    public async Task Run_RisingEdges_InfersTheFirstFrameAfterEachAndSkipsTheRest()
    {
        using var model = LoadedModel.Load(OnnxRuntime.Load(), TestModels.Get(TestModels.SmallClassifier), new SessionSettings { IntraOpThreads = 1 });
        var time = new FakeTimeProvider();
        using var driver = new FakeGpioDriver();
        using var chip = new GpioChip(driver, "/dev/gpiochip0");
        var trigger = new CaptureTrigger(TimeSpan.FromMilliseconds(50), time);
        chip.WatchEdges(Line, TriggerEdge.Rising, LineBias.None, trigger.OnEdge, "Agent:Gpio:Trigger:Line");
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: false); // every frame reaches the loop
        var metrics = new PipelineMetrics();
        var sink = new Sequences();
        var pipeline = new InferencePipeline(slot, model, metrics, [sink], NullLogger.Instance) { Gate = trigger };
        long sequence = 0;
        void Capture(int frames)
        {
            for (var i = 0; i < frames; i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(33));
                var frame = slot.Pool.Rent();
                frame.Sequence = ++sequence;
                frame.CapturedAt = time.GetTimestamp();
                Assert.True(slot.Publish(frame, CancellationToken.None));
            }
        }

        // The camera: 3 frames, a press (rising edge, a bounce, release), 3 frames, a press, 2 frames.
        var camera = Task.Run(() =>
        {
            Capture(3);
            driver.Drive(Line, high: true);
            time.Advance(TimeSpan.FromMilliseconds(2));
            driver.Drive(Line, high: false);
            driver.Drive(Line, high: true); // bounce: within the debounce time
            Capture(3);
            driver.Drive(Line, high: false);
            time.Advance(TimeSpan.FromMilliseconds(100));
            driver.Drive(Line, high: true);
            Capture(2);
            slot.Complete();
        });

        var inferred = pipeline.Run(CancellationToken.None);
        await camera;

        Assert.Equal(2, inferred);
        Assert.Equal(new long[] { 4, 7 }, sink.Inferred);
        Assert.Equal(2, metrics.FramesInferred);
        Assert.Equal(6, metrics.FramesSkipped);
        Assert.Equal(0, slot.Dropped);
        Assert.Equal(6, metrics.Snapshot(8, slot.Dropped, 0, 0).FramesSkipped);
        Assert.Equal(2, trigger.Edges);
        Assert.Equal(1, trigger.Debounced);
    }

    [Fact]
    public async Task Run_NoGate_InfersEveryFrameAndSkipsNone()
    {
        using var model = LoadedModel.Load(OnnxRuntime.Load(), TestModels.Get(TestModels.SmallClassifier), new SessionSettings { IntraOpThreads = 1 });
        var slot = new LatestFrameSlot(new FramePool(model.InputWidth, model.InputHeight), dropOld: false);
        var metrics = new PipelineMetrics();
        var pipeline = new InferencePipeline(slot, model, metrics, [], NullLogger.Instance);
        var camera = Task.Run(() =>
        {
            for (var i = 1; i <= 5; i++)
            {
                var frame = slot.Pool.Rent();
                frame.Sequence = i;
                Assert.True(slot.Publish(frame, CancellationToken.None));
            }

            slot.Complete();
        });

        Assert.Equal(5, pipeline.Run(CancellationToken.None));
        await camera;
        Assert.Equal(0, metrics.FramesSkipped);
    }
}
