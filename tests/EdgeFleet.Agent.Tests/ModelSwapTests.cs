using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

// A model handed to a host (as its first ActiveModel) is disposed by the host, or by whoever a swap returns it to.
#pragma warning disable IDISP001

namespace EdgeFleet.Agent.Tests;

/// <summary>Model swaps in a running pipeline: real ffmpeg captures, real ONNX Runtime, generated models.</summary>
[Trait("Category", "Integration")]
public sealed class ModelSwapTests
{
    /// <summary>64×64 centre-crop classifier.</summary>
    private static readonly SampleModelOptions Small = TestModels.SmallClassifier with { Name = "swap-small" };

    /// <summary>128×96 (W×H) classifier, fed letterboxed (its manifest is rewritten).</summary>
    private static readonly SampleModelOptions Wide = TestModels.SmallClassifier with { Name = "swap-wide", InputSize = 128, InputHeight = 96, Seed = 21 };

    /// <summary>64×64 letterbox detector: the small classifier's size with another resize mode.</summary>
    private static readonly SampleModelOptions Detector = TestModels.SmallDetector with { Name = "swap-detector" };

    private static PipelineBuilder Builder(TempDirectory dir) =>
        new(new SourceOptions(), new InferenceOptions { IntraOpThreads = 1, Providers = ["cpu"] }, dir.Path, NullLoggerFactory.Instance);

    /// <summary>A copy of the model with another resize mode in its manifest (the ONNX file, and so its hash, stay).</summary>
    private static string WithResize(TempDirectory dir, SampleModelOptions options, ResizeMode resize)
    {
        var source = TestModels.Get(options);
        var path = dir.File($"{options.Name}-{resize}.onnx".ToLowerInvariant());
        File.Copy(source, path);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(source));
        ManifestFile.Save(manifest with { Input = manifest.Input with { Resize = resize } }, ManifestFile.PathFor(path));
        return path;
    }

    private sealed class RecordingSink : IResultSink
    {
        private readonly Lock _lock = new();
        private readonly List<(long Sequence, LoadedModel Model)> _results = [];
        private (int Count, TaskCompletionSource Done)? _waiter;
        private int _misattributed;
        private int _malformed;

        public Func<ActiveModel>? Active { get; set; }

        public Action<InferenceResult, LoadedModel>? OnEach { get; set; }

        public int Misattributed => Volatile.Read(ref _misattributed);

        public int Malformed => Volatile.Read(ref _malformed);

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _results.Count;
                }
            }
        }

        public List<(long Sequence, LoadedModel Model)> Results
        {
            get
            {
                lock (_lock)
                {
                    return [.. _results];
                }
            }
        }

        public void OnResult(InferenceResult result, LoadedModel model)
        {
            // Swaps happen between frames on this thread: the model handed over must be the one still active.
            if (Active is { } active && !ReferenceEquals(active().Model, model))
            {
                Interlocked.Increment(ref _misattributed);
            }

            var wellFormed = model.Manifest.Task == ModelTask.Classification
                ? result.TopCount == model.Manifest.Decoding.TopK && result.DetectionCount == 0
                : result.TopCount == 0;
            if (!wellFormed || result.NonFinite)
            {
                Interlocked.Increment(ref _malformed);
            }

            OnEach?.Invoke(result, model);
            lock (_lock)
            {
                _results.Add((result.FrameSequence, model));
                if (_waiter is { } w && _results.Count >= w.Count)
                {
                    _waiter = null;
                    w.Done.TrySetResult();
                }
            }
        }

        public Task WaitForCount(int count)
        {
            lock (_lock)
            {
                if (_results.Count >= count)
                {
                    return Task.CompletedTask;
                }

                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiter = (count, done);
                return done.Task.WaitAsync(TimeSpan.FromMinutes(3)); // a safety net so a broken capture fails instead of hanging
            }
        }
    }

    [Fact]
    public async Task SwapAsync_HundredSwapsAcrossSizesAndResizeModes_EveryCapturedFrameIsInferredByTheActiveModel()
    {
        using var dir = new TempDirectory();
        var builder = Builder(dir);
        var paths = new[] { TestModels.Get(Small), WithResize(dir, Wide, ResizeMode.Letterbox), TestModels.Get(Detector) };
        var loaded = paths.Select(p => builder.LoadModel(p, selfTest: true)).ToArray();
        var sink = new RecordingSink();
        var metrics = new PipelineMetrics();
        var kept = new List<ActiveModel>();
        var host = builder.Build(SourceUri.Parse("testsrc://320x240@30?realtime=false&frames=5"), builder.Activate(loaded[0]), metrics, [sink]);
        try
        {
            sink.Active = () => host.Active;
            var activations = new List<ActiveModel> { host.Active };
            host.StartCapture();
            var run = Task.Factory.StartNew(() => host.Pipeline.Run(CancellationToken.None), CancellationToken.None,
                TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var changes = new List<CaptureChange>();
            for (var swap = 1; swap <= 100; swap++)
            {
                await sink.WaitForCount(sink.Count + 2); // a few frames on each model
                var index = swap % 3;
                // The first round loads each model into a new ActiveModel, later ones re-activate the kept ones.
                var previous = kept.FirstOrDefault(k => ReferenceEquals(k.Model, loaded[index])) is { } keep
                    ? await host.SwapBackAsync(keep, CancellationToken.None)
                    : await host.SwapAsync(loaded[index], CancellationToken.None);
                kept.Remove(host.Active);
                kept.Add(previous);
                activations.Add(host.Active);
                changes.Add(host.LastCaptureChange);
            }

            await sink.WaitForCount(sink.Count + 2);
            host.StopCapture(); // the pipeline finishes what the capture handed over, then sees it ended
            var inferred = await run;

            Assert.Equal(0, sink.Misattributed);
            Assert.Equal(0, sink.Malformed);
            Assert.Equal(0, metrics.Errors);
            Assert.Equal(0, host.Pipeline.FramesDropped);
            Assert.Equal(host.Pipeline.FramesCaptured, inferred);
            Assert.Equal(inferred, metrics.FramesInferred);
            Assert.Equal(inferred, sink.Count);
            // Every size or resize change got a capture of its own, started before the old one stopped.
            Assert.All(changes, c => Assert.Equal(CaptureChange.NewCapture, c));
            Assert.All(activations, a => Assert.Equal(0, a.ResizedFrames));

            // The results, in order, fall into exactly one run per activation, each from the model activated.
            var runs = new List<(LoadedModel Model, int Frames)>();
            foreach (var (_, model) in sink.Results)
            {
                if (runs.Count > 0 && ReferenceEquals(runs[^1].Model, model))
                {
                    runs[^1] = (model, runs[^1].Frames + 1);
                }
                else
                {
                    runs.Add((model, 1));
                }
            }

            Assert.Equal(activations.Select(a => a.Model), runs.Select(r => r.Model));
            Assert.Equal(sink.Results.Count, sink.Results.Select(r => r.Sequence).Distinct().Count());
            var distinct = activations.Distinct().ToList();
            Assert.Equal(inferred, distinct.Sum(a => a.Stats.Snapshot().SinceActivation.Frames));
            foreach (var model in loaded)
            {
                Assert.Equal(sink.Results.Count(r => ReferenceEquals(r.Model, model)),
                    distinct.Where(a => ReferenceEquals(a.Model, model)).Sum(a => a.Stats.Snapshot().SinceActivation.Frames));
            }
        }
        finally
        {
            host.Dispose();
            foreach (var k in kept)
            {
                k.Dispose();
            }
        }
    }

    [Fact]
    public async Task SwapAsync_FrameInFlight_FinishesOnTheOldModelWhichStaysUsable()
    {
        using var dir = new TempDirectory();
        var builder = Builder(dir);
        var first = builder.LoadModel(TestModels.Get(Small), selfTest: true);
        using var second = builder.LoadModel(TestModels.Get(Small with { Name = "swap-small-2", Seed = 8 }), selfTest: true);
        using var inFlight = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var sink = new RecordingSink();
        var blocked = 0;
        sink.OnEach = (_, model) =>
        {
            // The first frame holds the inference thread inside its result delivery: it is in flight on the first model.
            if (Interlocked.Exchange(ref blocked, 1) == 0)
            {
                inFlight.Set();
                release.Wait();
            }
        };
        using var host = builder.Build(SourceUri.Parse("testsrc://160x120@30?realtime=false"), builder.Activate(first), new PipelineMetrics(), [sink]);
        var original = host.Active;
        host.StartCapture();
        var run = Task.Factory.StartNew(() => host.Pipeline.Run(CancellationToken.None, 20), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Task.Factory.StartNew(inFlight.Wait, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var swap = host.SwapAsync(second, CancellationToken.None);

        Assert.False(swap.IsCompleted, "the swap completed while a frame was still running on the old model");
        Assert.Same(original, host.Active);
        Assert.False(original.IsDisposed);
        release.Set();
        var previous = await swap;
        Assert.Same(original, previous);
        Assert.Same(second, host.Active.Model);
        await run;

        var results = sink.Results;
        Assert.Same(first, results[0].Model);
        Assert.All(results.Skip(1), r => Assert.Same(second, r.Model));
        Assert.False(previous.IsDisposed);
        Assert.False(previous.Model.Session.IsDisposed);
        Assert.Null(previous.Model.RunSelfTest()); // the caller owns it and can still use it (e.g. for a rollback)
        Assert.Equal(1, previous.Stats.Snapshot().SinceActivation.Frames);
        previous.Dispose();
        Assert.True(first.Session.IsDisposed);
    }

    [Fact]
    public async Task SwapAsync_PipelineNotRunning_AppliesAtOnce()
    {
        using var dir = new TempDirectory();
        var builder = Builder(dir);
        var first = builder.LoadModel(TestModels.Get(Small), selfTest: true);
        using var second = builder.LoadModel(TestModels.Get(Detector), selfTest: true);
        var events = new List<ActiveModel>();
        using var host = builder.Build(SourceUri.Parse("testsrc://160x120@30?realtime=false"), builder.Activate(first), new PipelineMetrics(), []);
        host.Activated += events.Add;
        host.StartCapture();

        using var previous = await host.SwapAsync(second, CancellationToken.None);

        Assert.Same(first, previous.Model);
        Assert.Same(second, host.Active.Model);
        Assert.Equal([host.Active], events);
        Assert.Equal(CaptureGeometry.Of(second.Manifest.Input), host.Geometry);
        Assert.Equal(1, host.Pipeline.Run(CancellationToken.None, 1));
    }

    [Fact]
    public async Task SwapAsync_FileSourceOfAnotherSize_ResizeStageServesEveryFrame()
    {
        using var dir = new TempDirectory();
        var clip = FrameSourceTests.MakeVideo(dir, 60);
        var builder = Builder(dir);
        var first = builder.LoadModel(TestModels.Get(Small), selfTest: true);
        using var second = builder.LoadModel(TestModels.Get(Wide), selfTest: true);
        var sink = new RecordingSink();
        var metrics = new PipelineMetrics();
        using var host = builder.Build(SourceUri.Parse($"file://{clip}?realtime=false"), builder.Activate(first), metrics, [sink]);
        sink.Active = () => host.Active;
        host.StartCapture();
        var run = Task.Factory.StartNew(() => host.Pipeline.Run(CancellationToken.None), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await sink.WaitForCount(10);

        using var previous = await host.SwapAsync(second, CancellationToken.None);
        var inferred = await run; // the file ends

        Assert.Equal(CaptureChange.ResizeStage, host.LastCaptureChange);
        Assert.Equal(60, host.Pipeline.FramesCaptured);
        Assert.Equal(60, inferred);
        Assert.Equal(0, host.Pipeline.FramesDropped);
        Assert.Equal(0, sink.Misattributed);
        Assert.Equal(0, sink.Malformed);
        Assert.Equal(host.Active.Stats.Snapshot().SinceActivation.Frames, host.Active.ResizedFrames);
        Assert.Equal(60, previous.Stats.Snapshot().SinceActivation.Frames + host.Active.Stats.Snapshot().SinceActivation.Frames);
    }

    [Fact]
    public async Task SwapAsync_CameraLikeSourceOfAnotherSize_BridgesWithTheResizeStageThenReopensAtTheNewSize()
    {
        // A gst:// pipeline stands for a camera device that one process at a time can open.
        using var dir = new TempDirectory();
        var builder = Builder(dir);
        // Debian's GStreamer has no aspectratiocrop (gst-plugins-bad) for centre-crop: stretch and letterbox here.
        var first = builder.LoadModel(WithResize(dir, Small, ResizeMode.Stretch), selfTest: true);
        using var second = builder.LoadModel(WithResize(dir, Wide, ResizeMode.Letterbox), selfTest: true);
        var sink = new RecordingSink();
        var metrics = new PipelineMetrics();
        using var host = builder.Build(SourceUri.Parse("gst://videotestsrc ! video/x-raw,width=320,height=240,framerate=60/1"),
            builder.Activate(first), metrics, [sink]);
        sink.Active = () => host.Active;
        host.StartCapture();
        using var cts = new CancellationTokenSource();
        var run = Task.Factory.StartNew(() => host.Pipeline.Run(cts.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await sink.WaitForCount(5);
        var firstCapture = host.Source;

        using var previous = await host.SwapAsync(second, CancellationToken.None);
        var atSwap = host.Active.Stats.Frames;
        await sink.WaitForCount(sink.Count + 20);
        await cts.CancelAsync();
        await run;

        Assert.Equal(CaptureChange.Reopened, host.LastCaptureChange);
        Assert.NotSame(firstCapture, host.Source);
        Assert.Equal(CaptureGeometry.Of(second.Manifest.Input), host.Geometry);
        Assert.True(host.Active.Stats.Frames - atSwap >= 20);
        Assert.True(host.Active.ResizedFrames <= atSwap + 1, "frames after the reopen arrive at the model's own size");
        Assert.Equal(0, sink.Misattributed);
        Assert.Equal(0, sink.Malformed);
        Assert.Equal(0, metrics.Errors);
    }

    [Fact]
    public void CheckCapturable_UnsupportedInputs_SayWhy()
    {
        using var dir = new TempDirectory();
        var builder = Builder(dir);
        var model = builder.LoadModel(TestModels.Get(Small), selfTest: false);
        using var host = builder.Build(SourceUri.Parse("testsrc://160x120@30"), builder.Activate(model), new PipelineMetrics(), []);
        var input = model.Manifest.Input;

        Assert.Null(host.CheckCapturable(input));
        Assert.Null(host.CheckCapturable(input with { Shape = [1, 3, 96, 128], Resize = ResizeMode.Letterbox, ColorOrder = "BGR" }));
        Assert.Contains("NHWC", host.CheckCapturable(input with { Layout = "NHWC" }), StringComparison.Ordinal);
        Assert.Contains("YUV", host.CheckCapturable(input with { ColorOrder = "YUV" }), StringComparison.Ordinal);
        Assert.Contains("batch", host.CheckCapturable(input with { Shape = [4, 3, 64, 64] }), StringComparison.Ordinal);
        Assert.Contains("[1,1,64,64]", host.CheckCapturable(input with { Shape = [1, 1, 64, 64] }), StringComparison.Ordinal);
    }
}
