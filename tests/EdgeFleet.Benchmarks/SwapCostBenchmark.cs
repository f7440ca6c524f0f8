using System.Diagnostics;
using System.Globalization;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

// Models move into the host and back out of swaps; the last two are disposed by the host and at the end.
#pragma warning disable IDISP001

namespace EdgeFleet.Benchmarks;

/// <summary>
/// What a model swap to another input size costs, both ways the agent can do it:
/// a new capture process at the new size started beside the old one (what a swap does on test patterns and network
/// streams), or the old capture kept and our own resize stage fitting its frames (files, camera devices). Measured in
/// the same run on the same models: swap latency, the longest gap between two results around a swap (what the
/// pipeline's output feels), the new capture's start-up (wall time and ffmpeg CPU to its first frame), and the resize
/// stage's cost per frame next to the model's own inference time.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- swapcost [--swaps 20] [--frames 2000]</c>
/// </summary>
internal static class SwapCostBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var swaps = BenchmarkArgs.Positive(args, "--swaps", 20);
        var frames = BenchmarkArgs.Positive(args, "--frames", 2000);
        using var dir = new TempDirectory();
        var small = TestModels.Get(TestModels.SmallClassifier with { Name = "small" });
        var wide = TestModels.Get(TestModels.SmallClassifier with { Name = "wide", InputSize = 128, InputHeight = 96, Seed = 3 });
        var builder = new PipelineBuilder(new SourceOptions(), new InferenceOptions { Providers = ["cpu"], IntraOpThreads = 1 }, dir.Path,
            NullLoggerFactory.Instance);
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"swap cost: {swaps} swaps 64x64 centre-crop <-> 128x96 centre-crop classifiers, testsrc 320x240, 1 ORT thread"));

        // 1. A second capture process: start to first frame, and stop, in isolation.
        var source = SourceUri.Parse("testsrc://320x240@30?realtime=false");
        var starts = new List<double>();
        var startCpu = new List<double>();
        var stops = new List<double>();
        for (var i = 0; i < swaps; i++)
        {
            var capture = builder.CreateCapture(source, new CaptureGeometry(128, 96, ResizeMode.CenterCrop));
            var sw = Stopwatch.StartNew();
            capture.Start();
            await capture.FirstFrame;
            starts.Add(sw.Elapsed.TotalMilliseconds);
            if (capture.ProcessId is { } pid && ProcessCpu.Read(pid) is { } cpu)
            {
                startCpu.Add(cpu.TotalMilliseconds);
            }

            sw.Restart();
            capture.Dispose();
            stops.Add(sw.Elapsed.TotalMilliseconds);
        }

        Console.WriteLine(string.Create(c, $"new capture  start→first frame p50 {P(starts, 0.5):0.0} ms p95 {P(starts, 0.95):0.0} ms; ffmpeg CPU to first frame p50 {P(startCpu, 0.5):0} ms (10 ms ticks); stop p50 {P(stops, 0.5):0.0} ms"));

        // 2. The resize stage alone, per frame, next to inference of the model it feeds.
        var resizer = new FrameResizer();
        var from = new byte[64 * 64 * 3];
        var to = new byte[128 * 96 * 3];
        new Random(1).NextBytes(from);
        foreach (var (sw, sh, dw, dh, mode, label) in new[]
                 {
                     (64, 64, 128, 96, ResizeMode.CenterCrop, "64x64 → 128x96 crop"),
                     (128, 96, 64, 64, ResizeMode.CenterCrop, "128x96 → 64x64 crop"),
                     (320, 240, 224, 224, ResizeMode.Letterbox, "320x240 → 224x224 letterbox"),
                 })
        {
            var src = new byte[sw * sh * 3];
            var dst = new byte[dw * dh * 3];
            new Random(2).NextBytes(src);
            resizer.Resize(src, sw, sh, dst, dw, dh, mode);
            var t = Stopwatch.StartNew();
            for (var i = 0; i < frames; i++)
            {
                resizer.Resize(src, sw, sh, dst, dw, dh, mode);
            }

            Console.WriteLine(string.Create(c, $"resize stage {label}: {t.Elapsed.TotalMicroseconds / frames:0.0} µs/frame"));
        }

        // 3. In the running pipeline: both ways, the same models.
        foreach (var uri in new[] { "testsrc://320x240@30?realtime=false", $"file://{MakeClip(dir)}?realtime=false&loop=true" })
        {
            var a = builder.LoadModel(small, selfTest: true);
            var b = builder.LoadModel(wide, selfTest: true);
            var sink = new GapSink();
            using var host = builder.Build(SourceUri.Parse(uri), builder.Activate(a), new PipelineMetrics(), [sink]);
            host.StartCapture();
            using var cts = new CancellationTokenSource();
            var run = Task.Factory.StartNew(() => host.Pipeline.Run(cts.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var latencies = new List<double>();
            var gaps = new List<double>();
            var changes = new HashSet<CaptureChange>();
            ActiveModel? other = null;
            for (var i = 0; i < swaps; i++)
            {
                await sink.WaitFor(50);
                sink.Mark();
                var sw = Stopwatch.StartNew();
                var previous = other is null ? await host.SwapAsync(b, CancellationToken.None) : await host.SwapBackAsync(other, CancellationToken.None);
                latencies.Add(sw.Elapsed.TotalMilliseconds);
                changes.Add(host.LastCaptureChange);
                other = previous;
                await sink.WaitFor(50);
                gaps.Add(sink.MaxGapSinceMark());
            }

            var steady = sink.MedianGap();
            var inference = host.Active.Stats.Snapshot().SinceActivation.LatencyP50Ms;
            var resized = host.Active.ResizedFrames + (other?.ResizedFrames ?? 0);
            await cts.CancelAsync();
            await run;
            host.StopCapture();
            other?.Dispose();
            Console.WriteLine(string.Create(c,
                $"{string.Join("/", changes),-22} swap p50 {P(latencies, 0.5):0.0} ms p95 {P(latencies, 0.95):0.0} ms; longest gap between results around a swap p50 {P(gaps, 0.5):0.0} ms p95 {P(gaps, 0.95):0.0} ms (steady gap p50 {steady:0.00} ms); inference p50 {inference:0.00} ms; frames resized {resized}"));
        }

        return 0;
    }

    private static double P(List<double> values, double q)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return PipelineMetrics.Rank(sorted, q);
    }

    private static string MakeClip(TempDirectory dir)
    {
        var path = dir.File("clip.mkv");
        using var ffmpeg = Process.Start(new ProcessStartInfo("ffmpeg")
        {
            ArgumentList = { "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "300", "-c:v", "ffv1", path },
        })!;
        ffmpeg.WaitForExit();
        return path;
    }

    private sealed class GapSink : IResultSink
    {
        private readonly Lock _lock = new();
        private readonly List<long> _times = [];
        private int _mark;
        private (int Count, TaskCompletionSource Done)? _waiter;

        public void OnResult(InferenceResult result, LoadedModel model)
        {
            lock (_lock)
            {
                _times.Add(Stopwatch.GetTimestamp());
                if (_waiter is { } w && _times.Count >= w.Count)
                {
                    _waiter = null;
                    w.Done.TrySetResult();
                }
            }
        }

        public void Mark()
        {
            lock (_lock)
            {
                _mark = _times.Count;
            }
        }

        public Task WaitFor(int more)
        {
            lock (_lock)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiter = (_times.Count + more, done);
                return done.Task;
            }
        }

        public double MaxGapSinceMark()
        {
            lock (_lock)
            {
                var max = 0.0;
                for (var i = Math.Max(1, _mark); i < _times.Count; i++)
                {
                    max = Math.Max(max, Stopwatch.GetElapsedTime(_times[i - 1], _times[i]).TotalMilliseconds);
                }

                return max;
            }
        }

        public double MedianGap()
        {
            lock (_lock)
            {
                var gaps = new List<double>();
                for (var i = 1; i < _times.Count; i++)
                {
                    gaps.Add(Stopwatch.GetElapsedTime(_times[i - 1], _times[i]).TotalMilliseconds);
                }

                return P(gaps, 0.5);
            }
        }
    }
}
