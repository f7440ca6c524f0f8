using System.Collections.Concurrent;
using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

/// <summary>Frame sources against the real ffmpeg (and gst-launch-1.0), started per test and stopped after.</summary>
[Trait("Category", "Integration")]
public sealed class FrameSourceTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static (FrameSource Source, LatestFrameSlot Slot) Start(string uri, int width = 64, int height = 48,
        FrameSourceSettings? settings = null, ResizeMode resize = ResizeMode.Stretch, bool? realtime = null)
    {
        var parsed = SourceUri.Parse(uri);
        var slot = new LatestFrameSlot(new FramePool(width, height), dropOld: realtime ?? parsed.Realtime);
        var command = CaptureCommand.Create(parsed, width, height, resize, "ffmpeg", "gst-launch-1.0");
        var source = new FrameSource(parsed, command, slot, settings ?? new FrameSourceSettings(), NullLogger.Instance);
        source.Start();
        return (source, slot);
    }

    private static Frame Take(LatestFrameSlot slot)
    {
        Assert.True(slot.TryTake(Patience, CancellationToken.None, out var frame), "no frame arrived");
        return frame!;
    }

    private static void Return(LatestFrameSlot slot, Frame frame)
    {
        slot.Pool.Return(frame);
        slot.NotifyConsumed();
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < Patience, $"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public void TestPattern_DeliversFramesOfTheModelSizeWithContent()
    {
        var (source, slot) = Start("testsrc://320x240@30?realtime=false", 64, 48);
        using (source)
        {
            long previous = 0;
            for (var i = 0; i < 20; i++)
            {
                var frame = Take(slot);
                Assert.Equal(64 * 48 * 3, frame.Data.Length);
                Assert.True(frame.Sequence > previous);
                Assert.True(frame.Data.Distinct().Count() > 10, "the frame looks empty");
                previous = frame.Sequence;
                Return(slot, frame);
            }

            Assert.Equal(SourceState.Running, source.State);
            Assert.True(source.FramesCaptured >= 20);
            Assert.Equal(0, slot.Dropped);
        }
    }

    [Fact]
    public async Task CaptureProcessKilled_IsRestartedAndFramesContinue()
    {
        var settings = new FrameSourceSettings { RestartDelay = TimeSpan.FromMilliseconds(100) };
        var (source, slot) = Start("testsrc://64x48@30", settings: settings);
        var events = new ConcurrentQueue<CaptureEvent>();
        source.Events += events.Enqueue;
        using (source)
        {
            Return(slot, Take(slot));
            var firstPid = source.ProcessId;
            Assert.NotNull(firstPid);

            Process.GetProcessById(firstPid.Value).Kill();

            await Until(() => source.Restarts >= 1, "the source restarted");
            await Until(() => source.ProcessId is { } pid && pid != firstPid, "a new capture process runs");
            var before = source.FramesCaptured;
            var frame = Take(slot);
            Return(slot, frame);
            await Until(() => source.FramesCaptured > before, "frames flow again");
            Assert.Contains(events, e => e.Type == "camera.failed");
            Assert.False(ProcessExists(firstPid.Value));
        }
    }

    [Fact]
    public async Task SourceThatStopsDelivering_IsKilledAsStalledAndRestarted()
    {
        // One frame every 20 s, stall timeout 0.5 s: every run delivers its first frame, then stalls.
        var settings = new FrameSourceSettings { StallTimeout = TimeSpan.FromMilliseconds(500), RestartDelay = TimeSpan.FromMilliseconds(100) };
        var (source, slot) = Start("testsrc://64x48@0.05?frames=1", settings: settings);
        var events = new ConcurrentQueue<CaptureEvent>();
        source.Events += events.Enqueue;
        using (source)
        {
            await Until(() => source.Stalls >= 2, "two stalls were detected");
            Assert.True(source.Restarts >= 2);
            Assert.Contains(events, e => e.Type == "camera.stalled" && e.Message.Contains("stall", StringComparison.Ordinal));
            GC.KeepAlive(slot);
        }
    }

    [Fact]
    public async Task UnreachableCamera_KeepsRetryingWithTheReason()
    {
        var settings = new FrameSourceSettings { RestartDelay = TimeSpan.FromMilliseconds(50), MaxRestartDelay = TimeSpan.FromMilliseconds(200) };
        var (source, slot) = Start("v4l2:///dev/video-edgefleet-missing", settings: settings);
        using (source)
        {
            await Until(() => source.Restarts >= 3, "three failed attempts");
            Assert.Equal(0, source.FramesCaptured);
            await Until(() => source.LastError is not null, "an error is reported");
            Assert.Contains("/dev/video-edgefleet-missing", source.LastError, StringComparison.Ordinal);
            Assert.False(slot.TryTake(TimeSpan.FromMilliseconds(50), CancellationToken.None, out _));
        }
    }

    [Fact]
    public async Task RtspCameraNotAnswering_KeepsRetryingWithTheReason()
    {
        var settings = new FrameSourceSettings { RestartDelay = TimeSpan.FromMilliseconds(50), MaxRestartDelay = TimeSpan.FromMilliseconds(200) };
        var port = FreePort.Next(); // nothing listens there
        var (source, _) = Start($"rtsp://viewer:secret@127.0.0.1:{port}/live", settings: settings);
        using (source)
        {
            await Until(() => source.Restarts >= 2 && source.LastError is not null, "two failed attempts with a reason");
            Assert.Contains("refused", source.LastError, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("secret", source.LastError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task FileWithoutLoop_EndsAfterItsFrames()
    {
        using var dir = new TempDirectory();
        var video = MakeVideo(dir, frames: 12);
        var (source, slot) = Start($"file://{video}?realtime=false");
        var events = new ConcurrentQueue<CaptureEvent>();
        source.Events += events.Enqueue;
        using (source)
        {
            var frames = 0;
            while (slot.TryTake(Patience, CancellationToken.None, out var frame))
            {
                frames++;
                Return(slot, frame!);
            }

            Assert.Equal(12, frames);
            await Until(() => source.State == SourceState.Ended, "the source ended");
            Assert.Equal(0, source.Restarts);
            Assert.Contains(events, e => e.Type == "camera.ended");
        }
    }

    [Fact]
    public void FileWithLoop_KeepsDelivering()
    {
        using var dir = new TempDirectory();
        var video = MakeVideo(dir, frames: 5);
        var (source, slot) = Start($"file://{video}?realtime=false&loop=true");
        using (source)
        {
            for (var i = 0; i < 15; i++)
            {
                Return(slot, Take(slot));
            }

            Assert.Equal(0, source.Restarts);
        }
    }

    [Fact]
    public void GStreamerPipeline_DeliversFrames()
    {
        var (source, slot) = Start("gst://videotestsrc num-buffers=1000 ! video/x-raw,width=320,height=240", 64, 48,
            resize: ResizeMode.Letterbox, realtime: false);
        using (source)
        {
            var frame = Take(slot);
            Assert.True(frame.Data.Distinct().Count() > 3);
            Return(slot, frame);
        }
    }

    [Fact]
    public async Task Dispose_KillsTheCaptureProcess()
    {
        var (source, slot) = Start("testsrc://64x48@30");
        Return(slot, Take(slot));
        var pid = source.ProcessId!.Value;

        source.Dispose();

        await Until(() => !ProcessExists(pid), "the capture process is gone");

        // A frame handed over just before Dispose may still be waiting (the slot keeps the newest frame); after it
        // the slot is completed and nothing else arrives.
        if (slot.TryTake(TimeSpan.Zero, CancellationToken.None, out var last))
        {
            Return(slot, last!);
        }

        Assert.True(slot.IsCompleted);
        Assert.False(slot.TryTake(TimeSpan.FromMilliseconds(200), CancellationToken.None, out _));
    }

    [Fact]
    public void RealtimeSource_ConsumerTooSlow_DropsAndCountsFrames()
    {
        var (source, slot) = Start("testsrc://64x48@200", realtime: true);
        using (source)
        {
            for (var i = 0; i < 5; i++)
            {
                var frame = Take(slot);
                Thread.Sleep(50); // ~10 frames arrive meanwhile; only the newest is kept
                Return(slot, frame);
            }

            Assert.True(slot.Dropped > 0);
            Assert.True(source.FramesCaptured >= slot.Dropped + 5);
        }
    }

    [Fact]
    public async Task FailingProcess_RestartsOnTheInjectedClockWithThePolicysDelays_AndAHealthyRunResetsThem()
    {
        // Delays of minutes to an hour: the restarts below can only happen because the fake clock moves.
        var settings = new FrameSourceSettings { RestartDelay = TimeSpan.FromMinutes(10), MaxRestartDelay = TimeSpan.FromHours(1) };
        static double Jitter() => 0.5;
        var expected = await CaptureRestartPolicyTests.DelaysAsync(settings, Jitter, failures: 3);
        using var dir = new TempDirectory();
        var healthy = dir.File("healthy");
        // Exits with 3 at once; once the file exists, a run delivers one 64×48 frame first.
        var command = new CaptureCommand("/bin/sh", ["-c", "if [ -e \"$0\" ]; then head -c 9216 /dev/zero; fi; exit 3", healthy]);
        var slot = new LatestFrameSlot(new FramePool(64, 48), dropOld: true);
        var time = new FakeTimeProvider();
        var events = new ConcurrentQueue<CaptureEvent>();
        using var source = new FrameSource(SourceUri.Parse("testsrc://64x48@30"), command, slot, settings, NullLogger.Instance, time, Jitter);
        source.Events += events.Enqueue;
        source.Start();

        List<TimeSpan?> Failures() => events.Where(e => e.Type == "camera.failed").Select(e => e.RestartIn).ToList();
        async Task AdvanceUntilFailures(int count)
        {
            var deadline = Stopwatch.StartNew();
            while (Failures().Count < count)
            {
                Assert.True(deadline.Elapsed < Patience, $"timed out waiting for failure {count}");
                // Steps well below the shortest delay (9 min here): a delay the capture thread registers right after
                // the check above cannot fire in the same step, so exactly one restart happens per failure awaited.
                time.Advance(TimeSpan.FromMinutes(1));
                await Task.Delay(5);
            }
        }

        await Until(() => Failures().Count >= 1, "the first failure");
        await AdvanceUntilFailures(3);
        Assert.Equal(expected.Take(3).Cast<TimeSpan?>(), Failures());
        Assert.Equal(3, source.Restarts);

        File.WriteAllText(healthy, "");
        await AdvanceUntilFailures(4);

        Assert.Contains(events, e => e.Type == "camera.started");
        Assert.Equal(expected[0], Failures()[3]); // a run that delivered frames ends the outage: first delay again
        Assert.Contains("exited with code 3 after 1 frames", source.LastError, StringComparison.Ordinal);
        Assert.Equal(SourceState.Backoff, source.State);
    }

    internal static string MakeVideo(TempDirectory dir, int frames)
    {
        var path = dir.File("clip.mkv");
        var psi = new ProcessStartInfo("ffmpeg")
        {
            RedirectStandardError = true,
            ArgumentList =
            {
                "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                "-frames:v", frames.ToString(System.Globalization.CultureInfo.InvariantCulture), "-c:v", "ffv1", path,
            },
        };
        using var ffmpeg = Process.Start(psi)!;
        var error = ffmpeg.StandardError.ReadToEnd();
        ffmpeg.WaitForExit();
        Assert.True(ffmpeg.ExitCode == 0, error);
        return path;
    }

    private static bool ProcessExists(int pid) => Directory.Exists($"/proc/{pid}") &&
        !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
}

/// <summary>The capture restart policy on its own: Polly's delays with a seeded jitter on a fake clock, no sleeping.</summary>
[Trait("Category", "Unit")]
public sealed class CaptureRestartPolicyTests
{
    private static readonly FrameSourceSettings Settings = new() { RestartDelay = TimeSpan.FromSeconds(1), MaxRestartDelay = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// The delays the policy chooses for one outage: the run that ended, then <paramref name="failures"/> − 1 restarts
    /// that fail at once, then one that delivers frames and ends the outage.
    /// </summary>
    internal static async Task<List<TimeSpan>> DelaysAsync(FrameSourceSettings settings, Func<double> jitter, int failures)
    {
        var time = new FakeTimeProvider();
        var delays = new List<TimeSpan>();
        var pipeline = CaptureRestartPolicy.Create(settings, args =>
        {
            lock (delays)
            {
                delays.Add(args.RetryDelay);
            }

            return ValueTask.CompletedTask;
        }, time, jitter);
        var attempts = 0;
        var outage = pipeline.ExecuteAsync(_ => ValueTask.FromResult(++attempts <= failures
            ? new CaptureRun(CaptureRunEnd.Failed, attempts == 1 ? 100 : 0, Failure: "exited")
            : new CaptureRun(CaptureRunEnd.Failed, 5, Failure: "exited after frames"))).AsTask();
        while (!outage.IsCompleted)
        {
            time.Advance(settings.MaxRestartDelay); // fires the pending delay, whatever it is
            await Task.Yield();
        }

        var last = await outage;
        Assert.Equal(5, last.Frames);
        lock (delays)
        {
            return [.. delays];
        }
    }

    [Fact]
    public async Task Create_SameSeed_SameDelays()
    {
        var a = await DelaysAsync(Settings, new Random(7).NextDouble, 10);
        var b = await DelaysAsync(Settings, new Random(7).NextDouble, 10);

        Assert.Equal(10, a.Count);
        Assert.Equal(a, b);
    }

    [Fact]
    public async Task Create_ManyDevicesFailingTogether_DelaysAreJitteredGrowAndAreCapped()
    {
        const int devices = 200;
        const int failures = 12;
        var runs = new List<List<TimeSpan>>();
        for (var seed = 0; seed < devices; seed++)
        {
            runs.Add(await DelaysAsync(Settings, new Random(seed).NextDouble, failures));
        }

        Assert.All(runs, r => Assert.Equal(failures, r.Count));
        Assert.All(runs.SelectMany(r => r), d => Assert.InRange(d, TimeSpan.Zero, Settings.MaxRestartDelay));

        // Jitter: devices that failed at the same instant restart at different instants, first restart included.
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var restartAt = runs.Select(r => r.Take(attempt + 1).Aggregate(TimeSpan.Zero, (sum, d) => sum + d)).ToList();
            Assert.True(restartAt.Distinct().Count() > devices * 9 / 10, $"restart {attempt + 1} is not spread");
            Assert.True(restartAt.Max() - restartAt.Min() > Settings.RestartDelay, $"restart {attempt + 1} spreads over less than the first delay");
        }

        // Backoff: the median delay about doubles with each failure in a row, up to the cap.
        var medians = Enumerable.Range(0, failures).Select(i => runs.Select(r => r[i]).Order().ElementAt(devices / 2)).ToList();
        Assert.InRange(medians[0], Settings.RestartDelay * 0.5, Settings.RestartDelay * 1.5);
        Assert.True(medians[3] > medians[0] * 4, $"median delays {string.Join(", ", medians)} do not grow");
        Assert.Equal(Settings.MaxRestartDelay, medians[^1]);
    }

    [Fact]
    public async Task Create_RestartThatDeliveredFrames_EndsTheOutage()
    {
        var time = new FakeTimeProvider();
        var retries = 0;
        var pipeline = CaptureRestartPolicy.Create(Settings, _ =>
        {
            Interlocked.Increment(ref retries);
            return ValueTask.CompletedTask;
        }, time, () => 0.5);
        var runs = new Queue<CaptureRun>([
            new CaptureRun(CaptureRunEnd.Failed, 1000), // the run that ended (it had delivered frames): reported, then a restart
            new CaptureRun(CaptureRunEnd.Failed, 0),
            new CaptureRun(CaptureRunEnd.Failed, 3),     // healthy for a while, then failed: a new outage, at the first delay
            new CaptureRun(CaptureRunEnd.Failed, 0),
        ]);

        var outage = pipeline.ExecuteAsync(_ => ValueTask.FromResult(runs.Dequeue())).AsTask();
        while (!outage.IsCompleted)
        {
            time.Advance(Settings.MaxRestartDelay);
            await Task.Yield();
        }

        Assert.Equal(3, (await outage).Frames);
        Assert.Equal(2, retries);
        Assert.Single(runs);
    }

    [Theory]
    [InlineData(CaptureRunEnd.Stopped)]
    [InlineData(CaptureRunEnd.Ended)]
    public async Task Create_StoppedOrEndedRun_IsNotRestarted(CaptureRunEnd end)
    {
        var retries = 0;
        var pipeline = CaptureRestartPolicy.Create(Settings, _ =>
        {
            retries++;
            return ValueTask.CompletedTask;
        }, new FakeTimeProvider());

        var run = await pipeline.ExecuteAsync(_ => ValueTask.FromResult(new CaptureRun(end, 0)));

        Assert.Equal(end, run.End);
        Assert.Equal(0, retries);
    }
}
