using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Drift;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Commands;

public sealed record BenchOptions
{
    public required string ModelPath { get; init; }

    public required string SourceUri { get; init; }

    public int Frames { get; init; } = 500;

    public int Warmup { get; init; } = 50;

    /// <summary>Intra-op threads; null: <c>Agent:Inference:IntraOpThreads</c> of the configuration (0: one per CPU).</summary>
    public int? Threads { get; init; }

    public bool Json { get; init; }

    /// <summary>Run the drift monitor in the pipeline, as the agent does.</summary>
    public bool Drift { get; init; } = true;

    /// <summary>Pipeline and bare-ORT runs alternate this many times.</summary>
    public int Rounds { get; init; } = 20;

    /// <summary>The agent's configuration file: its <c>Agent:Source</c> and <c>Agent:Inference</c> keys apply unless overridden here.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>libonnxruntime.so to load instead of the packaged one (null: the configuration's, else EDGEFLEET_ORT_LIB).</summary>
    public string? OrtLibraryPath { get; init; }

    /// <summary>Execution providers in order of preference (tensorrt, cuda, cpu); null: the configuration's with --config, else cpu.</summary>
    public IReadOnlyList<string>? Providers { get; init; }

    /// <summary>Null: <c>Agent:Source:FfmpegPath</c> of the configuration (default ffmpeg).</summary>
    public string? FfmpegPath { get; init; }

    /// <summary>Null: <c>Agent:Source:GstLaunchPath</c> of the configuration (default gst-launch-1.0).</summary>
    public string? GstLaunchPath { get; init; }

    /// <summary>The builder for these options: the configuration with the command line's values on top.</summary>
    internal PipelineBuilder CreateBuilder(ILoggerFactory loggerFactory)
    {
        var agent = AgentConfigurationFile.Load(ConfigPath);
        agent.Source.FfmpegPath = FfmpegPath ?? agent.Source.FfmpegPath;
        agent.Source.GstLaunchPath = GstLaunchPath ?? agent.Source.GstLaunchPath;
        agent.Source.StallTimeoutSeconds = Math.Max(30, agent.Source.StallTimeoutSeconds);
        agent.Inference.OrtLibraryPath = OrtLibraryPath ?? agent.Inference.OrtLibraryPath;
        agent.Inference.IntraOpThreads = Threads ?? agent.Inference.IntraOpThreads;
        if (Providers is not null)
        {
            agent.Inference.Providers = [.. Providers];
        }
        else if (ConfigPath is null)
        {
            agent.Inference.Providers = ["cpu"];
        }

        return new PipelineBuilder(agent.Source, agent.Inference, Path.Combine(Path.GetTempPath(), "edgefleet-bench"), loggerFactory);
    }
}

/// <summary>
/// <c>edgefleet-agent bench</c>: the full pipeline (real capture process, preprocessing, ONNX Runtime,
/// decoding) on N frames read as fast as the source produces them, then the same session on the same input in a
/// bare Run loop N times. The ratio of the two rates is what the pipeline costs on top of inference.
/// </summary>
public static class BenchCommand
{
    public static async Task<int> ExecuteAsync(BenchOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (options.Frames < 1 || options.Warmup < 0 || options.Threads < 0)
        {
            await error.WriteLineAsync("error: --frames must be ≥ 1, --warmup and --threads ≥ 0").ConfigureAwait(false);
            return 2;
        }

        if (options.Providers?.FirstOrDefault(p => !AgentOptionsValidator.KnownProviders.Contains(p.ToLowerInvariant())) is { } unknown)
        {
            await error.WriteLineAsync($"error: --providers: '{unknown}' is not a provider; use {string.Join(", ", AgentOptionsValidator.KnownProviders)}")
                .ConfigureAwait(false);
            return 2;
        }

        if (!Capture.SourceUri.TryParse(options.SourceUri, out var source, out var uriError))
        {
            await error.WriteLineAsync($"error: --source {uriError}").ConfigureAwait(false);
            return 2;
        }

        // No real-time pacing: files and test patterns are read as fast as they are produced (and inference consumes).
        if (source.Kind is SourceKind.TestPattern or SourceKind.File)
        {
            source = source with { Realtime = false, Loop = true };
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Warning));
        try
        {
            var result = await Task.Factory.StartNew(() => Measure(options, source, loggerFactory, cancellationToken),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            if (options.Json)
            {
                await output.WriteLineAsync(result.ToJson()).ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(result.ToText()).ConfigureAwait(false);
            }

            return 0;
        }
        catch (Exception ex) when (ex is ModelLoadException or OnnxRuntimeNotFoundException or OnnxRuntimeException or BenchException
            or FileNotFoundException or InvalidDataException)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
    }

    private static BenchResult Measure(BenchOptions options, SourceUri source, ILoggerFactory loggerFactory, CancellationToken ct)
    {
        var builder = options.CreateBuilder(loggerFactory);
        var runtime = builder.Runtime;
        var settings = builder.SessionSettings;
#pragma warning disable IDISP001 // the host below owns it and disposes it
        var model = builder.LoadModel(options.ModelPath, selfTest: false);
#pragma warning restore IDISP001
        var selfTest = model.RunSelfTest();
        var metrics = new PipelineMetrics(Math.Max(16, options.Frames));
        DriftObserver? drift = null;
        if (options.Drift)
        {
            // The agent's default drift settings; windows are evaluated off the inference thread, as in the service.
            drift = new DriftObserver(model.Manifest, new DriftMonitorOptions(), null, TimeProvider.System, _ => { },
                loggerFactory.CreateLogger<DriftObserver>());
        }

        using var host = builder.Build(source, builder.Activate(model, drift), metrics, []);
        var pipeline = host.Pipeline;
        var slot = pipeline.Slot;
        var runner = model.Runner;
        var ortLatencies = new double[options.Frames];
        var rounds = Math.Clamp(options.Rounds, 1, Math.Max(1, options.Frames / 10)); // at least 10 frames a round
        long pipelineTicks = 0, ortTicks = 0, allocated = 0, dropped = 0;
        var agentCpu = TimeSpan.Zero;
        TimeSpan? captureCpu = TimeSpan.Zero;
        var frameSource = host.Source;
        host.StartCapture();
        {
            var warm = pipeline.Run(ct, options.Warmup);
            if (warm < options.Warmup)
            {
                throw new BenchException($"the source delivered only {warm} frames: {frameSource.LastError ?? "it ended"}");
            }

            for (var i = 0; i < options.Warmup; i++)
            {
                runner.Run();
            }

            metrics.ResetWindow();
            drift?.ResetCost();
            var errorsBefore = metrics.Errors;

            // Pipeline and bare ORT alternate in rounds, so a change in the machine's load (these machines are shared)
            // hits both sides alike instead of skewing the ratio.
            var done = 0;
            for (var round = 0; round < rounds; round++)
            {
                var n = options.Frames * (round + 1) / rounds - done;
                if (round > 0)
                {
                    // Frames read before the bare-ORT phase are stale; their age is not pipeline latency.
                    pipeline.Discard(2, ct);
                }

                var capturePid = frameSource.ProcessId;
                var captureBefore = capturePid is { } p0 ? ProcessCpu.Read(p0) : null;
                var agentBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var droppedBefore = slot.Dropped;
                var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
                var start = Stopwatch.GetTimestamp();
                var inferred = pipeline.Run(ct, n);
                pipelineTicks += Stopwatch.GetTimestamp() - start;
                allocated += GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
                agentCpu += Process.GetCurrentProcess().TotalProcessorTime - agentBefore;
                captureCpu = capturePid is { } p1 && frameSource.ProcessId == p1 && ProcessCpu.Read(p1) is { } after
                             && captureBefore is { } before && captureCpu is { } sum
                    ? sum + (after - before)
                    : null;
                dropped += slot.Dropped - droppedBefore;
                ct.ThrowIfCancellationRequested();
                if (inferred < n)
                {
                    throw new BenchException($"only {done + inferred} of {options.Frames} frames were inferred: {frameSource.LastError ?? "the source ended"}");
                }

                // Bare ONNX Runtime: the same runner and the input of the last frame, nothing else.
                var ortStart = Stopwatch.GetTimestamp();
                for (var i = done; i < done + n; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    var t0 = Stopwatch.GetTimestamp();
                    runner.Run();
                    ortLatencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }

                ortTicks += Stopwatch.GetTimestamp() - ortStart;
                done += n;
            }

            if (metrics.Errors > errorsBefore)
            {
                throw new BenchException($"{metrics.Errors - errorsBefore} frames failed during the run (see the log)");
            }
        }

        host.StopCapture();

        var snapshot = metrics.Snapshot(0, dropped, 0, 0);
        var pipelineSeconds = pipelineTicks / (double)Stopwatch.Frequency;
        var ortSeconds = ortTicks / (double)Stopwatch.Frequency;
        Array.Sort(ortLatencies);
        return new BenchResult
        {
            Model = $"{model.Manifest.Name}@{model.Manifest.Version}",
            Provider = model.Session.ActiveProvider == ExecutionProvider.Cpu ? "CPU" : model.Session.ActiveProvider.ToString(),
            OrtVersion = runtime.Version,
            OrtLibrary = runtime.LibraryPath,
            ProviderNotes = model.Session.ProviderNotes,
            Frames = options.Frames,
            Rounds = rounds,
            Threads = settings.ResolvedIntraOpThreads,
            ThreadsRequested = settings.IntraOpThreads,
            Source = source.Display,
            SelfTest = selfTest ?? "passed",
            PipelineFps = options.Frames / pipelineSeconds,
            Pipeline = snapshot,
            OrtFps = options.Frames / ortSeconds,
            OrtLatency = new Percentiles(PipelineMetrics.Rank(ortLatencies, 0.5), PipelineMetrics.Rank(ortLatencies, 0.95),
                PipelineMetrics.Rank(ortLatencies, 0.99), ortLatencies.Average(), ortLatencies.Length),
            FramesDropped = dropped,
            AllocatedBytesPerFrame = allocated / (double)options.Frames,
            AgentCpuMsPerFrame = agentCpu.TotalMilliseconds / options.Frames,
            CaptureCpuMsPerFrame = captureCpu?.TotalMilliseconds / options.Frames,
            DriftUsPerFrame = drift?.MicrosecondsPerFrame,
            DriftMsPerWindow = drift?.MillisecondsPerWindow,
        };
    }
}

public sealed class BenchException : Exception
{
    public BenchException(string message)
        : base(message)
    {
    }

    public BenchException()
    {
    }

    public BenchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

public sealed record BenchResult
{
    public required string Model { get; init; }

    public required string Provider { get; init; }

    public required string OrtVersion { get; init; }

    public required string OrtLibrary { get; init; }

    public required IReadOnlyList<string> ProviderNotes { get; init; }

    public required int Frames { get; init; }

    /// <summary>Intra-op threads the session got.</summary>
    public required int Threads { get; init; }

    /// <summary>What --threads asked for (0: one per CPU).</summary>
    public required int ThreadsRequested { get; init; }

    public required int Rounds { get; init; }

    public required string Source { get; init; }

    public required string SelfTest { get; init; }

    public required double PipelineFps { get; init; }

    public required MetricsSnapshot Pipeline { get; init; }

    public required double OrtFps { get; init; }

    public required Percentiles OrtLatency { get; init; }

    public required long FramesDropped { get; init; }

    public required double AllocatedBytesPerFrame { get; init; }

    /// <summary>CPU time of the agent process (all threads, ORT's included) per frame in the pipeline run.</summary>
    public required double AgentCpuMsPerFrame { get; init; }

    /// <summary>CPU time of the capture process per frame; null if it restarted during the run.</summary>
    public required double? CaptureCpuMsPerFrame { get; init; }

    /// <summary>Drift features and window updates on the inference thread, per frame; null with --no-drift.</summary>
    public required double? DriftUsPerFrame { get; init; }

    /// <summary>Statistics of one closed drift window (computed off the inference thread).</summary>
    public required double? DriftMsPerWindow { get; init; }

    public double PipelineToOrtRatio => PipelineFps / OrtFps;

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("model", Model);
            w.WriteString("provider", Provider);
            w.WriteString("ortVersion", OrtVersion);
            w.WriteString("ortLibrary", OrtLibrary);
            w.WriteStartArray("providerNotes");
            foreach (var note in ProviderNotes)
            {
                w.WriteStringValue(note);
            }

            w.WriteEndArray();
            w.WriteString("source", Source);
            w.WriteNumber("frames", Frames);
            w.WriteNumber("threads", Threads);
            w.WriteNumber("threadsRequested", ThreadsRequested);
            w.WriteNumber("rounds", Rounds);
            w.WriteString("selfTest", SelfTest);
            w.WriteStartObject("pipeline");
            w.WriteNumber("fps", Round(PipelineFps));
            WriteLatency(w, "latencyMs", Pipeline.Stages[Stage.EndToEnd]);
            w.WriteStartObject("stagesMs");
            WriteLatency(w, "captureWait", Pipeline.Stages[Stage.CaptureWait]);
            WriteLatency(w, "preprocess", Pipeline.Stages[Stage.Preprocess]);
            WriteLatency(w, "inference", Pipeline.Stages[Stage.Inference]);
            WriteLatency(w, "postprocess", Pipeline.Stages[Stage.Postprocess]);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("ortOnly");
            w.WriteNumber("fps", Round(OrtFps));
            WriteLatency(w, "latencyMs", OrtLatency);
            w.WriteEndObject();
            w.WriteNumber("pipelineToOrtRatio", Math.Round(PipelineToOrtRatio, 4));
            w.WriteNumber("framesDropped", FramesDropped);
            w.WriteNumber("allocatedBytesPerFrame", Round(AllocatedBytesPerFrame));
            if (DriftUsPerFrame is { } driftUs)
            {
                w.WriteNumber("driftUsPerFrame", Round(driftUs));
                w.WriteNumber("driftShareOfOrt", Math.Round(driftUs / 1000 / OrtLatency.Mean, 5));
            }
            else
            {
                w.WriteNull("driftUsPerFrame");
            }

            w.WriteStartObject("cpuMsPerFrame");
            w.WriteNumber("agent", Round(AgentCpuMsPerFrame));
            if (CaptureCpuMsPerFrame is { } capture)
            {
                w.WriteNumber("capture", Round(capture));
            }
            else
            {
                w.WriteNull("capture");
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public string ToText()
    {
        var e2e = Pipeline.Stages[Stage.EndToEnd];
        var c = CultureInfo.InvariantCulture;
        return string.Join(Environment.NewLine,
            string.Create(c, $"model      {Model} on {Provider} (ONNX Runtime {OrtVersion}, intra-op threads {Threads}{(ThreadsRequested == 0 ? " (auto)" : "")}), self-test {SelfTest}"),
            string.Create(c, $"runtime    {OrtLibrary}{(ProviderNotes.Count > 0 ? "; " + string.Join("; ", ProviderNotes) : "")}"),
            string.Create(c, $"source     {Source}, {Frames} frames in {Rounds} rounds alternating with bare ORT"),
            string.Create(c, $"pipeline   {PipelineFps,8:0.0} fps   end-to-end p50 {e2e.P50:0.00} p95 {e2e.P95:0.00} p99 {e2e.P99:0.00} ms"),
            string.Create(c, $"  stages   preprocess p50 {Pipeline.Stages[Stage.Preprocess].P50:0.000} ms, inference p50 {Pipeline.Stages[Stage.Inference].P50:0.00} ms, postprocess p50 {Pipeline.Stages[Stage.Postprocess].P50:0.000} ms, capture wait p50 {Pipeline.Stages[Stage.CaptureWait].P50:0.000} ms"),
            string.Create(c, $"ORT only   {OrtFps,8:0.0} fps   p50 {OrtLatency.P50:0.00} p95 {OrtLatency.P95:0.00} p99 {OrtLatency.P99:0.00} ms"),
            string.Create(c, $"ratio      {PipelineToOrtRatio:0.000} (pipeline fps / ORT-only fps)"),
            string.Create(c, $"dropped    {FramesDropped} frames; allocated {AllocatedBytesPerFrame:0.0} bytes per frame"),
            string.Create(c, $"CPU        agent {AgentCpuMsPerFrame:0.00} ms/frame, capture {(CaptureCpuMsPerFrame is { } cc ? cc.ToString("0.00", c) : "?")} ms/frame"),
            DriftUsPerFrame is { } d
                ? string.Create(c, $"drift      {d:0.0} µs/frame on the inference thread ({100 * d / 1000 / OrtLatency.Mean:0.00}% of bare inference)")
                : "drift      off");
    }

    private static void WriteLatency(Utf8JsonWriter w, string name, Percentiles p)
    {
        w.WriteStartObject(name);
        w.WriteNumber("p50", Round(p.P50));
        w.WriteNumber("p95", Round(p.P95));
        w.WriteNumber("p99", Round(p.P99));
        w.WriteNumber("mean", Round(p.Mean));
        w.WriteEndObject();
    }

    private static double Round(double v) => Math.Round(v, 4);
}
