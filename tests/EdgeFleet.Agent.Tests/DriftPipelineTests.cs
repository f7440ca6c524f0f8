using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Commands;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Drift;
using EdgeFleet.Onnx;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Agent.Tests;

/// <summary>Drift on real frames from ffmpeg's test pattern: a profile, then the same scene and a brightened one.</summary>
[Trait("Category", "Integration")]
public sealed class DriftPipelineTests
{
    private const int Window = 240;

    private static async Task<DriftProfile> ProfileAsync(TempDirectory dir, string model)
    {
        var path = dir.File("profile.json");
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await ProfileCommand.ExecuteAsync(new ProfileOptions
        {
            ModelPath = model,
            SourceUri = "testsrc://320x240@30?frames=60",
            Frames = Window,
            OutPath = path,
        }, output, error, CancellationToken.None);
        Assert.True(code == 0, error.ToString());
        return DriftProfiles.Load(path);
    }

    private static DriftReport Watch(string model, string uri, DriftProfile reference)
    {
        using var loaded = LoadedModel.Load(OnnxRuntime.Load(), model, new SessionSettings { IntraOpThreads = 1 });
        var source = SourceUri.Parse(uri) with { Realtime = false };
        var slot = new LatestFrameSlot(new FramePool(loaded.InputWidth, loaded.InputHeight), dropOld: false);
        var reports = new List<DriftReport>();
        using var done = new ManualResetEventSlim();
        var observer = new DriftObserver(loaded.Manifest, new DriftMonitorOptions { WindowFrames = Window }, reference, TimeProvider.System,
            r =>
            {
                lock (reports)
                {
                    reports.Add(r);
                }

                done.Set();
            }, NullLogger.Instance);
        using (var frames = new FrameSource(source,
                   CaptureCommand.Create(source, loaded.InputWidth, loaded.InputHeight, loaded.Manifest.Input.Resize, "ffmpeg", "gst-launch-1.0"),
                   slot, new FrameSourceSettings(), NullLogger.Instance))
        {
            frames.Start();
            new InferencePipeline(slot, loaded, new PipelineMetrics(), [observer], NullLogger.Instance, [observer]).Run(CancellationToken.None, Window);
        }

        Assert.True(done.Wait(TimeSpan.FromSeconds(30)), "no drift report");
        return reports.Single();
    }

    [Fact]
    public async Task Profile_RealFrames_HasEveryFeatureOfTheModelsTask()
    {
        using var dir = new TempDirectory();
        var model = TestModels.Get(TestModels.SmallClassifier);

        var profile = await ProfileAsync(dir, model);

        Assert.Equal("sample-classifier", profile.Model!.Name);
        Assert.Equal(FrameFeatures.Names.Concat(["top1_confidence", "entropy", "top1_class"]), profile.Features.Select(f => f.Name));
        var luma = profile.Features.Single(f => f.Name == "luma_mean");
        Assert.Equal(Window, luma.Count);
        Assert.InRange(luma.Mean, 20, 235);
        Assert.Equal(luma.Edges.Count + 1, luma.Proportions.Count);
        Assert.True(luma.EffectiveCount < Window, "consecutive frames are correlated");
    }

    [Fact]
    public async Task SameScene_IsNotFlagged_BrightenedScene_IsAnAlertOnLuma()
    {
        using var dir = new TempDirectory();
        var model = TestModels.Get(TestModels.SmallClassifier);
        var profile = await ProfileAsync(dir, model);

        var same = Watch(model, "testsrc://320x240@30?frames=60", profile);
        var bright = Watch(model, "testsrc://320x240@30?frames=60&filter=eq=brightness=0.35", profile);

        Assert.Equal(DriftSeverity.None, same.Severity);
        Assert.All(same.Features, f => Assert.Equal(DriftSeverity.None, f.Severity));
        Assert.Equal(profile.Id, same.ReferenceId);

        var luma = bright.Features.Single(f => f.Name == "luma_mean");
        Assert.Equal(DriftSeverity.Alert, luma.Severity);
        Assert.True(luma.Ks!.Statistic > 0.9);
        Assert.True(luma.WassersteinNormed > 1);
        Assert.Equal(DriftSeverity.Alert, bright.Severity);
    }
}
