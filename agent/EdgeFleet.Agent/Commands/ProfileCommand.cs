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

    /// <summary>The agent's configuration file: its <c>Agent:Source</c> and <c>Agent:Inference</c> keys apply unless overridden here.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>libonnxruntime.so to load instead of the packaged one (null: the configuration's, else EDGEFLEET_ORT_LIB).</summary>
    public string? OrtLibraryPath { get; init; }

    /// <summary>Null: the configuration's with --config, else cpu.</summary>
    public IReadOnlyList<string>? Providers { get; init; }

    public string? FfmpegPath { get; init; }

    public string? GstLaunchPath { get; init; }
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
            or IOException or UnauthorizedAccessException or InvalidDataException)
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
        var builder = new BenchOptions
        {
            ModelPath = options.ModelPath,
            SourceUri = options.SourceUri,
            ConfigPath = options.ConfigPath,
            OrtLibraryPath = options.OrtLibraryPath,
            Providers = options.Providers,
            FfmpegPath = options.FfmpegPath,
            GstLaunchPath = options.GstLaunchPath,
        }.CreateBuilder(loggerFactory);
#pragma warning disable IDISP001 // the host below owns it and disposes it
        var model = builder.LoadModel(options.ModelPath, selfTest: true);
#pragma warning restore IDISP001
        var manifest = model.Manifest;
        Contracts.Drift.DriftProfile? profile = null;
        using var done = new ManualResetEventSlim();
        var monitorOptions = new DriftMonitorOptions
        {
            WindowFrames = options.Frames,
            ReservoirSize = Math.Min(options.Frames, 5000),
            Thresholds = new DriftThresholds { Bins = options.Bins },
        };
        var observer = new DriftObserver(manifest, monitorOptions, null, TimeProvider.System, _ => done.Set(),
            loggerFactory.CreateLogger<DriftObserver>());
        using (var host = builder.Build(source, builder.Activate(model, observer), new PipelineMetrics(), []))
        {
            host.StartCapture();
            var frames = host.Pipeline.Run(ct, options.Frames);
            if (frames < options.Frames)
            {
                throw new BenchException($"the source delivered only {frames} of {options.Frames} frames: {host.Source.LastError ?? "it ended"}");
            }
        }

        done.Wait(TimeSpan.FromSeconds(30), ct);
        profile = observer.Monitor.Reference ?? throw new BenchException("no profile was produced");
        var id = $"{manifest.Name}@{manifest.Version}#{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(source.Display + options.Frames)))[..8]}";
        return profile with
        {
            Id = id,
            Model = new ModelRef(manifest.Name, manifest.Version),
            Source = source.Display,
        };
    }
}
