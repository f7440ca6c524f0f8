using System.Diagnostics;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>How a shadow candidate runs beside the live model.</summary>
public sealed record ShadowOptions
{
    /// <summary>Share of the live frames offered to the candidate (0–1], spread evenly.</summary>
    public double SampleShare { get; init; } = 0.25;

    /// <summary>Minimum IoU for a candidate box to match a live box of the same class.</summary>
    public double MatchIou { get; init; } = 0.5;

    /// <summary>Frames in the candidate's recent window (its <see cref="ModelStats"/>).</summary>
    public int Window { get; init; } = 1024;

    /// <summary>Niceness (0–19) of the shadow thread: the live model keeps priority on a busy CPU.</summary>
    public int Niceness { get; init; } = 10;
}

/// <summary>
/// What a shadow run found, compared with the live model on the same frames. Classification (both models):
/// top-1 agreement. Detection (both): greedy matching of the candidate's boxes to the live boxes of the same class at
/// IoU ≥ <see cref="ShadowOptions.MatchIou"/>, best score first, in the frame's coordinates; the live boxes count as the
/// truth for precision, recall and F1. Null where the tasks differ or nothing was compared.
/// </summary>
public sealed record ShadowStats
{
    public required ModelRef Candidate { get; init; }

    public required DateTimeOffset Since { get; init; }

    /// <summary>Frames chosen for the candidate (by <see cref="ShadowOptions.SampleShare"/>).</summary>
    public required long FramesSampled { get; init; }

    /// <summary>Sampled frames not run because the candidate was still busy (or a newer sample replaced them).</summary>
    public required long FramesSkipped { get; init; }

    /// <summary>Frames both models produced a result for, the base of the agreement figures.</summary>
    public required long FramesCompared { get; init; }

    /// <summary>Frames the candidate's resize stage fitted (its input differs from what the capture delivers).</summary>
    public long FramesResized { get; init; }

    /// <summary>Classification: share of compared frames with the same top-1 class.</summary>
    public double? Top1Agreement { get; init; }

    public long TruePositives { get; init; }

    public long FalsePositives { get; init; }

    public long FalseNegatives { get; init; }

    public double? Precision { get; init; }

    public double? Recall { get; init; }

    public double? F1 { get; init; }

    /// <summary>The candidate's own figures since the shadow started: latency p50/p95, NaN share, confidence, errors.</summary>
    public required ModelStatsSnapshot Stats { get; init; }

    public double LatencyP50Ms => Stats.SinceActivation.LatencyP50Ms;

    public double LatencyP95Ms => Stats.SinceActivation.LatencyP95Ms;

    public double NonFiniteShare => Stats.SinceActivation.NonFiniteShare;

    public double? MeanConfidence => Stats.SinceActivation.MeanConfidence;
}

/// <summary>
/// Runs a candidate model beside the live one on its own low-priority thread. The inference thread copies a sampled
/// frame and, once decoded, the live result into a free sample (<see cref="TryCapture"/>, <see cref="Offer"/>) and
/// hands it to a drop-old slot of one: the live path never waits, and a sample that finds no free buffer or is
/// replaced before the candidate took it is counted as skipped. The candidate's results are never published.
/// Its frames go through the candidate's own resize stage when its input differs from the capture.
/// </summary>
public sealed partial class ShadowRunner : IDisposable
{
#pragma warning disable IDISP002 // wraps the caller's candidate, which the caller disposes after StopShadow
    private readonly ActiveModel _candidate;
#pragma warning restore IDISP002
    private readonly ShadowOptions _options;
    private readonly ILogger _logger;
    private readonly object _lock = new(); // Monitor.Wait/Pulse
    private readonly Stack<ShadowSample> _free = new();
    private readonly Thread _thread;
    private readonly DateTimeOffset _since;
    private readonly int[] _matchedLive;
    private readonly int[] _order;
    private readonly Detection[] _candidateBoxes;
    private readonly Comparison<int> _byScore;
    private ShadowSample? _slot;
    private bool _stopping;
    private double _sampleCredit;
    private long _sampled;
    private long _skipped;
    private long _compared;
    private long _agreements;
    private long _classificationFrames;
    private long _tp;
    private long _fp;
    private long _fn;
    private long _detectionFrames;

    /// <param name="frameWidth">Size of the frames the capture delivers now (the sample buffers are made for it).</param>
    public ShadowRunner(LoadedModel candidate, ShadowOptions options, TimeProvider time, ILogger logger, int frameWidth = 1, int frameHeight = 1)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.SampleShare);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.SampleShare, 1);
        _options = options;
        _logger = logger;
        _since = time.GetUtcNow();
        _candidate = new ActiveModel(candidate, null,
            new ModelStats(new ModelRef(candidate.Manifest.Name, candidate.Manifest.Version), _since, options.Window));
        var maxBoxes = Math.Max(1, candidate.Manifest.Decoding.MaxDetections);
        _candidateBoxes = new Detection[maxBoxes];
        _order = new int[maxBoxes];
        _matchedLive = new int[1024];
        _byScore = (a, b) => _candidateBoxes[b].Score.CompareTo(_candidateBoxes[a].Score); // once: no allocation per frame
        for (var i = 0; i < 3; i++)
        {
            _free.Push(new ShadowSample(frameWidth, frameHeight));
        }

        _thread = new Thread(Loop) { IsBackground = true, Name = "shadow", Priority = ThreadPriority.BelowNormal };
    }

    public LoadedModel Candidate => _candidate.Model;

    internal void Start() => _thread.Start();

    /// <summary>
    /// Inference thread, while the frame's pixels are still valid: if this frame is sampled and a buffer is free, copies
    /// the frame and returns the sample to complete with <see cref="Offer"/> (or give back with <see cref="Abandon"/>).
    /// </summary>
    internal ShadowSample? TryCapture(Frame frame)
    {
        _sampleCredit += _options.SampleShare;
        if (_sampleCredit < 1)
        {
            return null;
        }

        _sampleCredit -= 1;
        ShadowSample? sample;
        lock (_lock)
        {
            _sampled++;
            if (_stopping || !_free.TryPop(out sample))
            {
                _skipped++;
                return null;
            }
        }

        sample.Copy(frame);
        return sample;
    }

    /// <summary>Inference thread: adds the live result and hands the sample over, replacing (and skipping) an untaken one.</summary>
    internal void Offer(ShadowSample sample, InferenceResult live, ActiveModel liveModel)
    {
        sample.SetLive(live, liveModel);
        lock (_lock)
        {
            if (_stopping)
            {
                _free.Push(sample);
                return;
            }

            if (_slot is { } replaced)
            {
                _skipped++;
                _free.Push(replaced);
            }

            _slot = sample;
            Monitor.Pulse(_lock);
        }
    }

    internal void Abandon(ShadowSample sample)
    {
        lock (_lock)
        {
            _sampled--; // the live frame failed: nothing to compare against
            _free.Push(sample);
        }
    }

    public ShadowStats Snapshot()
    {
        lock (_lock)
        {
            double? precision = _tp + _fp == 0 ? null : _tp / (double)(_tp + _fp);
            double? recall = _tp + _fn == 0 ? null : _tp / (double)(_tp + _fn);
            return new ShadowStats
            {
                Candidate = _candidate.Ref,
                Since = _since,
                FramesSampled = _sampled,
                FramesSkipped = _skipped,
                FramesCompared = _compared,
                FramesResized = _candidate.ResizedFrames,
                Top1Agreement = _classificationFrames == 0 ? null : _agreements / (double)_classificationFrames,
                TruePositives = _tp,
                FalsePositives = _fp,
                FalseNegatives = _fn,
                Precision = _detectionFrames == 0 ? null : precision ?? 1,
                Recall = _detectionFrames == 0 ? null : recall ?? 1,
                F1 = _detectionFrames == 0 ? null : F1(precision ?? 1, recall ?? 1),
                Stats = _candidate.Stats.Snapshot(),
            };
        }
    }

    private static double F1(double p, double r) => p + r == 0 ? 0 : 2 * p * r / (p + r);

    public void Dispose() => Stop();

    /// <summary>Stops the thread after the frame it is on; the candidate is then free (its owner disposes it).</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }

        if (_thread.IsAlive && Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
    }

    private void Loop()
    {
        LowerPriority();
        while (true)
        {
            ShadowSample sample;
            lock (_lock)
            {
                while (_slot is null && !_stopping)
                {
                    Monitor.Wait(_lock);
                }

                if (_stopping)
                {
                    return;
                }

                sample = _slot!;
                _slot = null;
            }

            try
            {
                Run(sample);
            }
            catch (Exception ex) when (ex is OnnxRuntimeException or InvalidOperationException or ArgumentException)
            {
                _candidate.Stats.RecordError();
                LogFailed(_logger, ex);
            }
            finally
            {
                lock (_lock)
                {
                    _free.Push(sample);
                }
            }
        }
    }

    private void Run(ShadowSample sample)
    {
        var model = _candidate.Model;
        var result = _candidate.Result;
        var fitted = _candidate.Fit(sample.Frame);
        model.Preprocessor.Run(fitted.Data, model.Runner.Input<float>(0));
        var start = Stopwatch.GetTimestamp();
        model.Runner.Run();
        var ran = Stopwatch.GetTimestamp();
        model.Decoder.Decode(model.Runner.Output<float>(model.OutputIndex), model.Runner.OutputShape(model.OutputIndex), result);
        _candidate.Stats.RecordFrame(ran - start, result);
        if (result.NonFinite || sample.LiveNonFinite)
        {
            return;
        }

        var frame = sample.Frame;
        lock (_lock)
        {
            _compared++;
            if (result.TopCount > 0 && sample.LiveTop1 >= 0)
            {
                _classificationFrames++;
                if (result.TopClassIds[0] == sample.LiveTop1)
                {
                    _agreements++;
                }
            }
            else if (result.TopCount == 0 && sample.LiveIsDetection)
            {
                _detectionFrames++;
                Match(result, model.Manifest.Input, frame.Width, frame.Height, sample);
            }
        }
    }

    /// <summary>Greedy matching, best candidate score first, each live box used once, same class and IoU ≥ the threshold.</summary>
    private void Match(InferenceResult candidate, ManifestInput input, int frameWidth, int frameHeight, ShadowSample sample)
    {
        var n = Math.Min(candidate.DetectionCount, _candidateBoxes.Length);
        var map = FrameResizer.Mapping(frameWidth, frameHeight, input.Width, input.Height, input.Resize);
        for (var i = 0; i < n; i++)
        {
            _candidateBoxes[i] = ShadowSample.ToFrame(candidate.Detections[i], map);
            _order[i] = i;
        }

        _order.AsSpan(0, n).Sort(_byScore);
        var live = sample.LiveBoxes;
        var liveCount = Math.Min(sample.LiveBoxCount, _matchedLive.Length);
        Array.Clear(_matchedLive, 0, liveCount);
        long tp = 0;
        for (var k = 0; k < n; k++)
        {
            ref readonly var c = ref _candidateBoxes[_order[k]];
            var best = -1;
            var bestIou = _options.MatchIou;
            for (var j = 0; j < liveCount; j++)
            {
                if (_matchedLive[j] != 0 || live[j].ClassId != c.ClassId)
                {
                    continue;
                }

                var iou = YoloDecoder.IoU(c, live[j]);
                if (iou >= bestIou)
                {
                    bestIou = iou;
                    best = j;
                }
            }

            if (best >= 0)
            {
                _matchedLive[best] = 1;
                tp++;
            }
        }

        _tp += tp;
        _fp += n - tp;
        _fn += liveCount - tp;
    }

    private void LowerPriority()
    {
        // .NET thread priorities do nothing for normal threads on Linux; the niceness of this thread (a task of its own) does.
        if (_options.Niceness <= 0 || !File.Exists("/usr/bin/renice"))
        {
            return;
        }

        try
        {
            var tid = new FileInfo("/proc/thread-self").LinkTarget?.Split('/')[^1];
            if (tid is null)
            {
                return;
            }

            using var renice = Process.Start(new ProcessStartInfo("/usr/bin/renice")
            {
                ArgumentList = { "-n", _options.Niceness.ToString(System.Globalization.CultureInfo.InvariantCulture), "-p", tid },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            });
            renice?.WaitForExit();
        }
        catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            LogNoNice(_logger, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shadow model: a frame failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shadow thread keeps its priority: {Reason}")]
    private static partial void LogNoNice(ILogger logger, string reason);
}

/// <summary>A sampled frame and what the live model made of it.</summary>
internal sealed class ShadowSample(int width, int height)
{
    private Detection[] _liveBoxes = new Detection[128];

    public Frame Frame { get; private set; } = new(Math.Max(1, width), Math.Max(1, height));

    public int LiveTop1 { get; private set; } = -1;

    public bool LiveIsDetection { get; private set; }

    public bool LiveNonFinite { get; private set; }

    public int LiveBoxCount { get; private set; }

    public Detection[] LiveBoxes => _liveBoxes;

    public void Copy(Frame frame)
    {
        if (Frame.Width != frame.Width || Frame.Height != frame.Height)
        {
            Frame = new Frame(frame.Width, frame.Height); // after a change of capture only
        }

        frame.Data.CopyTo(Frame.Data, 0);
        Frame.Sequence = frame.Sequence;
        Frame.CapturedAt = frame.CapturedAt;
    }

    /// <summary>The live result, boxes in the frame's coordinates.</summary>
    public void SetLive(InferenceResult live, ActiveModel model)
    {
        LiveNonFinite = live.NonFinite;
        LiveTop1 = live.TopCount > 0 ? live.TopClassIds[0] : -1;
        LiveIsDetection = live.TopCount == 0;
        LiveBoxCount = live.DetectionCount;
        if (_liveBoxes.Length < LiveBoxCount)
        {
            _liveBoxes = new Detection[Math.Max(LiveBoxCount, model.Model.Manifest.Decoding.MaxDetections)];
        }

        var input = model.Model.Manifest.Input;
        var map = FrameResizer.Mapping(Frame.Width, Frame.Height, input.Width, input.Height, input.Resize);
        for (var i = 0; i < LiveBoxCount; i++)
        {
            _liveBoxes[i] = ToFrame(live.Detections[i], map);
        }
    }

    public static Detection ToFrame(in Detection d, (double ScaleX, double ScaleY, double OffsetX, double OffsetY) map) => new()
    {
        ClassId = d.ClassId,
        Score = d.Score,
        X1 = (float)(d.X1 / map.ScaleX + map.OffsetX),
        Y1 = (float)(d.Y1 / map.ScaleY + map.OffsetY),
        X2 = (float)(d.X2 / map.ScaleX + map.OffsetX),
        Y2 = (float)(d.Y2 / map.ScaleY + map.OffsetY),
    };
}
