using System.Security.Cryptography;
using System.Text;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Drift;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Commands;

public sealed record ProfileOptions
{
    public required string ModelPath { get; init; }

    public required string SourceUri { get; init; }

    public int Frames { get; init; } = 1000;

    public required string OutPath { get; init; }

    public int Bins { get; init; } = 10;

    /// <summary>libonnxruntime.so to load instead of the packaged one (else EDGEFLEET_ORT_LIB).</summary>
    public string? OrtLibraryPath { get; init; }

    public string FfmpegPath { get; init; } = "ffmpeg";

    public string GstLaunchPath { get; init; } = "gst-launch-1.0";
}

/// <summary>
/// <c>edgefleet-agent profile</c>: runs the real pipeline (capture, preprocessing, model, decoding) on N frames and
/// writes the reference drift profile of what it saw: the same features the agent watches, with quantile bins, a
/// sample of values and summary statistics.
/// </summary>
public static class ProfileCommand
{
    public static async Task<int> ExecuteAsync(ProfileOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (options.Frames < 20)
        {
            await error.WriteLineAsync("error: --frames must be at least 20").ConfigureAwait(false);
            return 2;
        }

        if (!SourceUri.TryParse(options.SourceUri, out var source, out var uriError))
        {
            await error.WriteLineAsync($"error: --source {uriError}").ConfigureAwait(false);
            return 2;
        }

        if (source.Kind is SourceKind.TestPattern or SourceKind.File)
        {
            source = source with { Realtime = false }; // every frame counts; no need to wait for a clock
        }

        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Warning));
        try
        {
            var profile = await Task.Factory.StartNew(() => Build(options, source, loggerFactory, cancellationToken),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            DriftProfiles.Save(profile, options.OutPath);
            await output.WriteLineAsync($"wrote {options.OutPath}: profile {profile.Id}, {profile.Features.Count} features from " +
                $"{profile.Features[0].Count} frames of {source.Display}").ConfigureAwait(false);
            return 0;
        }
        catch (Exception ex) when (ex is ModelLoadException or OnnxRuntimeNotFoundException or OnnxRuntimeException or BenchException
            or IOException or UnauthorizedAccessException)
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

    private static Contracts.Drift.DriftProfile Build(ProfileOptions options, SourceUri source, ILoggerFactory loggerFactory, CancellationToken ct)
    {
        var runtime = OnnxRuntime.Load(options.OrtLibraryPath);
        var settings = new InferenceOptions { Providers = ["cpu"] }.ToSessionSettings(Path.GetTempPath());
        using var model = LoadedModel.Load(runtime, options.ModelPath, settings);
        if (model.RunSelfTest() is { } failure)
        {
            throw new ModelLoadException($"Model {options.ModelPath} failed its self-test: {failure}");
        }

        Contracts.Drift.DriftProfile? profile = null;
        using var done = new ManualResetEventSlim();
        var monitorOptions = new DriftMonitorOptions
        {
            WindowFrames = options.Frames,
            ReservoirSize = Math.Min(options.Frames, 5000),
            Thresholds = new DriftThresholds { Bins = options.Bins },
        };
        var observer = new DriftObserver(model.Manifest, monitorOptions, null, TimeProvider.System, _ => done.Set(),
            loggerFactory.CreateLogger<DriftObserver>());
        var pool = new FramePool(model.InputWidth, model.InputHeight);
        var slot = new LatestFrameSlot(pool, dropOld: source.Realtime);
        var command = CaptureCommand.Create(source, model.InputWidth, model.InputHeight, model.Manifest.Input.Resize, options.FfmpegPath, options.GstLaunchPath);
        var pipeline = new InferencePipeline(slot, model, new PipelineMetrics(), [observer], loggerFactory.CreateLogger<InferencePipeline>(), [observer]);
        using (var frameSource = new FrameSource(source, command, slot, new FrameSourceSettings(), loggerFactory.CreateLogger<FrameSource>()))
        {
            frameSource.Start();
            var frames = pipeline.Run(ct, options.Frames);
            if (frames < options.Frames)
            {
                throw new BenchException($"the source delivered only {frames} of {options.Frames} frames: {frameSource.LastError ?? "it ended"}");
            }
        }

        done.Wait(TimeSpan.FromSeconds(30), ct);
        profile = observer.Monitor.Reference ?? throw new BenchException("no profile was produced");
        var id = $"{model.Manifest.Name}@{model.Manifest.Version}#{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(source.Display + options.Frames)))[..8]}";
        return profile with
        {
            Id = id,
            Model = new ModelRef(model.Manifest.Name, model.Manifest.Version),
            Source = source.Display,
        };
    }
}
