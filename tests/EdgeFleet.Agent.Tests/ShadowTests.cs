using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

// A model handed to a host (as its first ActiveModel) is disposed by the host.
#pragma warning disable IDISP001

namespace EdgeFleet.Agent.Tests;

/// <summary>Shadow mode with real models on real ffmpeg frames.</summary>
[Trait("Category", "Integration")]
public sealed class ShadowTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private sealed class LiveSink : IResultSink
    {
        private int _count;
        private int _foreign;

        public LoadedModel? Live { get; set; }

        public int Count => Volatile.Read(ref _count);

        /// <summary>Results from any model but the live one: the shadow's must never be published.</summary>
        public int Foreign => Volatile.Read(ref _foreign);

        public void OnResult(InferenceResult result, LoadedModel model)
        {
            Interlocked.Increment(ref _count);
            if (!ReferenceEquals(model, Live))
            {
                Interlocked.Increment(ref _foreign);
            }
        }
    }

    private static (ModelHost Host, LiveSink Sink) Start(TempDirectory dir, SampleModelOptions live, out PipelineBuilder builder)
    {
        builder = new PipelineBuilder(new SourceOptions(), new InferenceOptions { IntraOpThreads = 1, Providers = ["cpu"] }, dir.Path,
            NullLoggerFactory.Instance);
        var model = builder.LoadModel(TestModels.Get(live), selfTest: true);
        var sink = new LiveSink { Live = model };
        var host = builder.Build(SourceUri.Parse("testsrc://320x240@30?realtime=false"), builder.Activate(model), new PipelineMetrics(), [sink]);
        host.StartCapture();
        return (host, sink);
    }

    private static async Task<ShadowStats> UntilIdle(ModelHost host)
    {
        // Every sampled frame is either compared, skipped, NaN or failed once the shadow thread has caught up.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var s = host.ShadowSnapshot()!;
            var accounted = s.FramesCompared + s.FramesSkipped + s.Stats.SinceActivation.NonFinite + s.Stats.SinceActivation.Errors;
            if (accounted == s.FramesSampled)
            {
                return s;
            }

            Assert.True(clock.Elapsed < Patience, $"the shadow did not catch up: {s}");
            await Task.Delay(20);
        }
    }

    private static LoadedModel LoadCandidate(ModelHost host, SampleModelOptions options) =>
        LoadedModel.Load(host.Runtime, TestModels.Get(options), host.ShadowSessionSettings);

    [Fact]
    public async Task Shadow_SameClassifierAsLive_AgreesOnEveryFrameAndPublishesNothing()
    {
        using var dir = new TempDirectory();
        var (host, sink) = Start(dir, TestModels.SmallClassifier, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallClassifier);
            host.StartShadow(candidate, new ShadowOptions { SampleShare = 0.5 });

            Assert.Equal(200, host.Pipeline.Run(CancellationToken.None, 200));
            var running = await UntilIdle(host);
            var stats = host.StopShadow();

            Assert.Equal(running.FramesCompared, stats.FramesCompared);
            Assert.Equal(100, stats.FramesSampled);
            Assert.True(stats.FramesCompared > 0);
            Assert.Equal(1.0, stats.Top1Agreement);
            Assert.Null(stats.F1);
            Assert.Equal(0, stats.NonFiniteShare);
            Assert.True(stats.LatencyP95Ms >= stats.LatencyP50Ms && stats.LatencyP50Ms > 0);
            Assert.InRange(stats.MeanConfidence!.Value, 0.1, 1);
            Assert.Equal(0, stats.FramesResized);
            Assert.Equal(200, sink.Count);
            Assert.Equal(0, sink.Foreign);
            Assert.Null(host.ShadowSnapshot());
            Assert.Null(candidate.RunSelfTest()); // stopped: the caller has its model back
        }
    }

    [Fact]
    public async Task Shadow_SameDetectorAsLive_MatchesEveryBox()
    {
        using var dir = new TempDirectory();
        var (host, _) = Start(dir, TestModels.SmallDetector, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallDetector);
            host.StartShadow(candidate, new ShadowOptions { SampleShare = 1 });

            host.Pipeline.Run(CancellationToken.None, 150);
            await UntilIdle(host);
            var stats = host.StopShadow();

            Assert.True(stats.FramesCompared > 0);
            Assert.True(stats.TruePositives > 0, "the sample detector finds a few boxes a frame");
            Assert.Equal(0, stats.FalsePositives);
            Assert.Equal(0, stats.FalseNegatives);
            Assert.Equal(1.0, stats.Precision);
            Assert.Equal(1.0, stats.Recall);
            Assert.Equal(1.0, stats.F1);
            Assert.Null(stats.Top1Agreement);
        }
    }

    [Fact]
    public async Task Shadow_CandidateOfAnotherSize_IsFedByTheResizeStage()
    {
        using var dir = new TempDirectory();
        var (host, sink) = Start(dir, TestModels.SmallClassifier, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallClassifier with { InputSize = 128, InputHeight = 96 });
            host.StartShadow(candidate, new ShadowOptions { SampleShare = 0.5 });

            host.Pipeline.Run(CancellationToken.None, 100);
            await UntilIdle(host);
            var stats = host.StopShadow();

            Assert.True(stats.FramesCompared > 0);
            Assert.Equal(stats.FramesCompared, stats.FramesResized);
            Assert.InRange(stats.Top1Agreement!.Value, 0, 1);
            Assert.Equal(100, sink.Count);
        }
    }

    [Fact]
    public async Task Shadow_SlowCandidate_SkipsSamplesItCannotTakeAndTheLiveModelGoesOn()
    {
        using var dir = new TempDirectory();
        var (host, sink) = Start(dir, TestModels.SmallClassifier, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallClassifier with { Fault = SampleFault.Slow, Depth = 6 });
            host.StartShadow(candidate, new ShadowOptions { SampleShare = 1 });

            Assert.Equal(300, host.Pipeline.Run(CancellationToken.None, 300));
            var stats = await UntilIdle(host);
            host.StopShadow();

            Assert.Equal(300, sink.Count);
            Assert.Equal(300, stats.FramesSampled);
            Assert.True(stats.FramesSkipped > 0, $"a candidate ten times slower must skip frames: {stats}");
            Assert.Equal(stats.FramesSampled, stats.FramesCompared + stats.FramesSkipped);
        }
    }

    [Fact]
    public async Task Shadow_NanCandidate_ReportsItsNanShareAndComparesNothing()
    {
        using var dir = new TempDirectory();
        var (host, _) = Start(dir, TestModels.SmallClassifier, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallClassifier with { Fault = SampleFault.Nan });
            host.StartShadow(candidate, new ShadowOptions { SampleShare = 1 });

            host.Pipeline.Run(CancellationToken.None, 50);
            await UntilIdle(host);
            var stats = host.StopShadow();

            Assert.True(stats.Stats.SinceActivation.Frames > 0);
            Assert.Equal(1.0, stats.NonFiniteShare);
            Assert.Equal(0, stats.FramesCompared);
            Assert.Null(stats.Top1Agreement);
        }
    }

    [Fact]
    public async Task Shadow_WhileRunning_CandidateCannotBeSwappedInOrStartedTwice()
    {
        using var dir = new TempDirectory();
        var (host, _) = Start(dir, TestModels.SmallClassifier, out _);
        using (host)
        {
            using var candidate = LoadCandidate(host, TestModels.SmallClassifier);
            host.StartShadow(candidate, new ShadowOptions());

            await Assert.ThrowsAsync<InvalidOperationException>(() => host.SwapAsync(candidate, CancellationToken.None));
            Assert.Throws<InvalidOperationException>(() => host.StartShadow(candidate, new ShadowOptions()));
            Assert.Throws<InvalidOperationException>(() => host.StartShadow(host.Active.Model, new ShadowOptions()));

            host.StopShadow();
            Assert.Throws<InvalidOperationException>(() => host.StopShadow());
        }
    }
}

[Trait("Category", "Unit")]
public sealed class ResizeMappingTests
{
    [Fact]
    public void Mapping_Letterbox_MapsThePictureCornersToTheSourceCorners()
    {
        var map = FrameResizer.Mapping(160, 120, 64, 64, ResizeMode.Letterbox);

        Assert.Equal(0, 0 / map.ScaleX + map.OffsetX, 6);
        Assert.Equal(0, 8 / map.ScaleY + map.OffsetY, 6);
        Assert.Equal(160, 64 / map.ScaleX + map.OffsetX, 6);
        Assert.Equal(120, 56 / map.ScaleY + map.OffsetY, 6);
    }

    [Fact]
    public void Mapping_CenterCrop_MapsTheOriginToTheCropStart()
    {
        var map = FrameResizer.Mapping(160, 120, 64, 64, ResizeMode.CenterCrop);

        Assert.Equal(20, 0 / map.ScaleX + map.OffsetX, 6);
        Assert.Equal(0, 0 / map.ScaleY + map.OffsetY, 6);
        Assert.Equal(140, 64 / map.ScaleX + map.OffsetX, 6);
    }
}
