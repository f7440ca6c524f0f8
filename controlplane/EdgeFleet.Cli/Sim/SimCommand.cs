using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using EdgeFleet.Cli.Commands;
using EdgeFleet.Cli.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// <c>edgefleet sim</c>: a fleet of protocol-true simulated devices behind a control plane, for rollouts, dashboards and
/// load tests without hardware. Runs until Ctrl+C / SIGTERM or <c>--duration</c>, printing a progress line every few
/// seconds and a summary at the end (<c>--json</c>: the summary as JSON on stdout, progress on stderr).
/// </summary>
internal static class SimCommand
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    public static Command Create()
    {
        var server = new Option<string>("--server") { HelpName = "URL", Description = "The control plane the devices enroll with and download from", Required = true };
        var enrollToken = new Option<string?>("--enroll-token")
        {
            HelpName = "TOKEN",
            Description = "Enrollment token (edgefleet enroll create) for devices not in the state file yet",
        };
        var devices = new Option<int>("--devices") { HelpName = "N", Description = "Simulated devices", DefaultValueFactory = _ => 10 };
        var tags = new Option<string[]>("--tags")
        {
            HelpName = "TAG",
            Description = "Tags of the devices: KEY=VALUE[,…], repeatable. hw=… shapes the simulated hardware (jetson-nano, orin, xavier, rpi4, x86, gpu); " +
                "with an operator API token (--api-token, EDGEFLEET_TOKEN or edgefleet login) they are also set on newly enrolled devices",
        };
        var apiToken = new Option<string?>("--api-token") { HelpName = "TOKEN", Description = "Operator API token used only to tag newly enrolled devices" };
        var behave = new Option<string[]>("--behave")
        {
            HelpName = "VERSION=KIND",
            Description = "How a model version behaves, repeatable: ok, fail (rejected: load), nan[:share] (rolled back: nonfinite), slow[:factor] " +
                "(commits, latency ×factor, default 1.4), offline (the device drops off), flaky[:cuts] (cut mid-download, resumes, commits), " +
                "drift (commits, drift alert). Unlisted versions are ok",
        };
        var model = new Option<string>("--model") { HelpName = "NAME", Description = "Model newly enrolled devices run at first", DefaultValueFactory = _ => "sim-model" };
        var version = new Option<string>("--version") { HelpName = "VERSION", Description = "Its version", DefaultValueFactory = _ => "1.0.0" };
        var prefix = new Option<string>("--id-prefix") { HelpName = "PREFIX", Description = "Device ids are PREFIX-00001…", DefaultValueFactory = _ => "sim" };
        var seed = new Option<int>("--seed") { HelpName = "S", Description = "Seed of every device's figures: the same seed gives the same fleet", DefaultValueFactory = _ => 42 };
        var telemetry = new Option<string>("--telemetry-interval") { HelpName = "DURATION", Description = "Telemetry period (e.g. 5s, 500ms, 1m)", DefaultValueFactory = _ => "5s" };
        var driftEvery = new Option<int>("--drift-every")
        {
            HelpName = "N",
            Description = "A drift report every N telemetry intervals (the drift gate needs some in every bake)",
            DefaultValueFactory = _ => 6,
        };
        var probation = new Option<string>("--probation") { HelpName = "DURATION", Description = "Probation of an activated version unless its assignment sets one", DefaultValueFactory = _ => "5s" };
        var offline = new Option<int>("--offline") { HelpName = "COUNT", Description = "This many of the devices enroll but never connect" };
        var state = new Option<string?>("--state")
        {
            HelpName = "FILE",
            Description = "Keep identities (credentials: mode 0600), sequence numbers and running models here; a second run reuses them",
        };
        var duration = new Option<string?>("--duration") { HelpName = "DURATION", Description = "Stop after this long (default: until Ctrl+C or SIGTERM)" };
        var downloads = new Option<int>("--download-concurrency") { HelpName = "N", Description = "Artifact downloads at once, fleet-wide", DefaultValueFactory = _ => 8 };
        var connects = new Option<int>("--connect-concurrency") { HelpName = "N", Description = "MQTT connections being set up at once", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON on stdout (progress goes to stderr)" };
        var command = new Command("sim", "Simulate a fleet of protocol-true devices behind a control plane (enrollment, MQTT, telemetry, drift, OTA)")
        {
            server, enrollToken, devices, tags, apiToken, behave, model, version, prefix, seed, telemetry, driftEvery, probation, offline, state, duration, downloads,
            connects, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var errors = new List<string>();
            Uri? serverUri = null;
            try
            {
                serverUri = CliConfig.ParseServer(parse.GetValue(server)!);
            }
            catch (CliConfigException ex)
            {
                errors.Add($"--server: {ex.Message}");
            }

            var behaviors = new Dictionary<string, VersionBehavior>(StringComparer.Ordinal);
            foreach (var item in ControlPlaneCommand.SplitList(parse.GetValue(behave)))
            {
                var parts = item.Split('=', 2);
                if (parts.Length != 2 || parts[0].Length == 0)
                {
                    errors.Add($"--behave '{item}' is not VERSION=KIND (e.g. 2.0.0=nan)");
                }
                else if (!VersionBehavior.TryParse(parts[1], out var behavior, out var why))
                {
                    errors.Add($"--behave '{item}': {why}");
                }
                else if (!behaviors.TryAdd(parts[0], behavior))
                {
                    errors.Add($"--behave names version {parts[0]} twice");
                }
            }

            var interval = Duration(parse.GetValue(telemetry), "--telemetry-interval", errors);
            var probationTime = Duration(parse.GetValue(probation), "--probation", errors, allowZero: true);
            var runFor = parse.GetValue(duration) is { } d ? Duration(d, "--duration", errors) : (TimeSpan?)null;
            var tagList = ControlPlaneCommand.SplitList(parse.GetValue(tags));
            if (errors.Count > 0 || serverUri is null)
            {
                return Usage(errors);
            }

            var asJson = parse.GetValue(json);
            var progress = asJson ? Console.Error : Console.Out;
            var options = new SimulatorOptions
            {
                Server = serverUri,
                EnrollToken = parse.GetValue(enrollToken),
                Devices = parse.GetValue(devices),
                Tags = tagList,
                ApiToken = tagList.Count > 0 ? parse.GetValue(apiToken) ?? SavedToken(serverUri) : null,
                Behaviors = behaviors,
                ModelName = parse.GetValue(model)!,
                ModelVersion = parse.GetValue(version)!,
                IdPrefix = parse.GetValue(prefix)!,
                Seed = parse.GetValue(seed),
                TelemetryInterval = interval,
                DriftEvery = parse.GetValue(driftEvery),
                Probation = probationTime,
                OfflineDevices = parse.GetValue(offline),
                StateFile = parse.GetValue(state),
                DownloadConcurrency = parse.GetValue(downloads),
                ConnectConcurrency = parse.GetValue(connects),
                Logger = new WriterLogger(Console.Error),
            };
            errors.AddRange(options.Validate());
            if (errors.Count > 0)
            {
                return Usage(errors);
            }

            if (tagList.Count > 0 && options.ApiToken is null)
            {
                await Console.Error.WriteLineAsync("warning: --tags shape the simulated hardware only: without an operator API token (--api-token, EDGEFLEET_TOKEN or " +
                    "edgefleet login) they are not set on the control plane; an enrollment token created with --tags tags devices too").ConfigureAwait(false);
            }

            // System.CommandLine leaves SIGINT/SIGTERM alone unless configured to, and then gives the action 2 s: a fleet
            // needs longer to say offline. The first signal stops the simulation cleanly; a second one ends the process.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            void OnSignal(PosixSignalContext context)
            {
                if (!stop.IsCancellationRequested)
                {
                    context.Cancel = true;
                    stop.Cancel();
                }
            }

            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            return await RunAsync(options, runFor, asJson, progress, stop.Token).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(SimulatorOptions options, TimeSpan? runFor, bool asJson, TextWriter progress, CancellationToken cancellationToken)
    {
        var time = options.Time;
        await using var sim = new FleetSimulator(options);
        using var stopProgress = new CancellationTokenSource();
        var progressLoop = ProgressAsync(sim, progress, stopProgress.Token);
        try
        {
            var never = options.OfflineDevices > 0 ? Invariant($", {options.OfflineDevices} never connect") : "";
            var behaviours = options.Behaviors.Count > 0 ? ", " + string.Join(", ", options.Behaviors.Select(b => $"{b.Key}={b.Value}")) : "";
            await progress.WriteLineAsync(Invariant($"simulating {options.Devices} devices against {options.Server} (seed {options.Seed}{never}{behaviours})"))
                .ConfigureAwait(false);
            await sim.StartAsync(cancellationToken).ConfigureAwait(false);
            var started = sim.Summary();
            await progress.WriteLineAsync(started.Enrolled > 0
                ? Invariant($"enrolled {started.Enrolled} devices in {started.EnrollSeconds:0.0} s ({started.EnrollsPerSecond:0.#}/s){(started.Reused > 0 ? $", {started.Reused} from the state file" : "")}")
                : Invariant($"{started.Reused} devices from the state file {options.StateFile}")).ConfigureAwait(false);

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (runFor is { } limit)
            {
                deadline.CancelAfter(limit);
            }

            try
            {
                await sim.WaitAllConnectedAsync(deadline.Token).ConfigureAwait(false);
                var connected = sim.Summary();
                await progress.WriteLineAsync(Invariant($"connected {connected.Connected} devices in {connected.ConnectSeconds:0.00} s ({connected.ConnectsPerSecond:0.#}/s)"))
                    .ConfigureAwait(false);
                await Task.Delay(Timeout.InfiniteTimeSpan, time, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                // --duration elapsed, or Ctrl+C / SIGTERM: stop cleanly
            }
        }
        catch (SimulatorException ex)
        {
            await stopProgress.CancelAsync().ConfigureAwait(false);
            await progressLoop.ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ex.Unreachable ? ExitCodes.Unreachable : ExitCodes.Refused;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync(options.StateFile is null
                ? "cancelled while enrolling"
                : "cancelled while enrolling; the devices enrolled so far are in the state file").ConfigureAwait(false);
        }

        await progress.WriteLineAsync("stopping: the devices publish their offline status and disconnect").ConfigureAwait(false);
        await sim.StopAsync().ConfigureAwait(false);
        await stopProgress.CancelAsync().ConfigureAwait(false);
        await progressLoop.ConfigureAwait(false);
        var summary = sim.Summary();
        if (asJson)
        {
            await Console.Out.WriteLineAsync(JsonSerializer.Serialize(summary, SimSummaryJsonContext.Default.SimulatorSummary)).ConfigureAwait(false);
        }
        else
        {
            await Console.Out.WriteLineAsync(Describe(summary)).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    private static async Task ProgressAsync(FleetSimulator sim, TextWriter output, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ProgressInterval, sim.Options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                await output.WriteLineAsync(ProgressLine(sim.Summary())).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
    }

    internal static string ProgressLine(SimulatorSummary s)
    {
        static int Of(SimulatorSummary s, string state) => s.Ota.GetValueOrDefault(state);
        var connectable = s.Devices - s.NeverConnect - s.Gone;
        var enrolling = s.Enrolled + s.Reused < s.Devices ? Invariant($"enrolled {s.Enrolled + s.Reused}/{s.Devices} | ") : "";
        return Invariant($"[{s.UptimeSeconds,6:0}s] {enrolling}connected {s.Connected}/{connectable}{(s.Gone > 0 ? $" (gone {s.Gone})" : "")} | ") +
            Invariant($"received {Of(s, "received")} downloading {Of(s, "downloading")} verified {Of(s, "verified")} activated {Of(s, "activated")} ") +
            Invariant($"committed {Of(s, "committed")} rejected {Of(s, "rejected")} rolled_back {Of(s, "rolled_back")}{(Of(s, "shadow") > 0 ? $" shadow {Of(s, "shadow")}" : "")} | ") +
            Invariant($"sent {s.Telemetry + s.DriftReports + s.Events} msgs, {s.PublishFailures} failed | {s.WorkingSetBytes / (1024 * 1024)} MiB");
    }

    internal static string Describe(SimulatorSummary s)
    {
        var lines = new List<string>
        {
            Invariant($"devices      {s.Devices} ({s.Enrolled} enrolled now, {s.Reused} from the state file, {s.NeverConnect} never connect, {s.Gone} went offline)"),
            Invariant($"connected    {s.Connected} at the end; all up after {Or(s.ConnectSeconds, "0.00")} s ({Or(s.ConnectsPerSecond, "0.#")}/s); {s.Connects} connects, {s.ConnectionLosses} lost"),
            Invariant($"sent         {s.Telemetry} telemetry, {s.DriftReports} drift, {s.Events} events, {s.StatusMessages} status; {s.PublishFailures} failed, {s.Refused} refused, {s.Evicted} evicted"),
            Invariant($"updates      {(s.Ota.Count == 0 ? "none" : string.Join(", ", s.Ota.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}")))}"),
        };
        foreach (var (v, states) in s.OtaByVersion.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            lines.Add(Invariant($"  {v,-10} {string.Join(", ", states.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}"))}"));
        }

        lines.Add(Invariant($"running      {string.Join(", ", s.Running.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} ×{kv.Value}"))}"));
        lines.Add(Invariant($"downloads    {s.Downloads} ({s.DownloadedBytes / 1048576.0:0.0} MiB, {s.RangeRequests} resumed with Range, {s.DownloadRetries} retries); {s.RejectedMessages} bad messages received"));
        lines.Add(Invariant($"process      {s.UptimeSeconds:0.0} s, {s.CpuSeconds:0.0} s CPU, {s.WorkingSetBytes / 1048576.0:0} MiB (peak {s.PeakWorkingSetBytes / 1048576.0:0} MiB), heap {s.ManagedHeapBytes / 1048576.0:0} MiB, {s.Threads} threads; stopped in {Or(s.StopSeconds, "0.00")} s"));
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>
    /// <c>5s</c>, <c>500ms</c>, <c>10m</c>, <c>1h30m</c>, <c>90</c> (seconds) or <c>00:10:00</c>.
    /// </summary>
    internal static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain))
        {
            value = double.IsFinite(plain) && plain >= 0 && plain < 1e9 ? TimeSpan.FromSeconds(plain) : TimeSpan.Zero;
            return double.IsFinite(plain) && plain >= 0 && plain < 1e9;
        }

        var total = 0.0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            if (unitStart == start || !double.TryParse(text.AsSpan(start, unitStart - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            var unit = text[unitStart..i].ToLowerInvariant();
            double? seconds = unit switch
            {
                "ms" => number / 1000,
                "s" => number,
                "m" or "min" => number * 60,
                "h" => number * 3600,
                _ => null,
            };
            if (seconds is null)
            {
                return false;
            }

            total += seconds.Value;
        }

        if (!(total < 1e9))
        {
            return false;
        }

        value = TimeSpan.FromSeconds(total);
        return true;
    }

    private static TimeSpan Duration(string? text, string name, List<string> errors, bool allowZero = false)
    {
        if (TryParseDuration(text, out var value) && (allowZero || value > TimeSpan.Zero))
        {
            return value;
        }

        errors.Add($"{name} '{text}' is not a{(allowZero ? "" : " positive")} duration (e.g. 500ms, 5s, 10m, 1h30m)");
        return TimeSpan.FromSeconds(1);
    }

    /// <summary>The token of <c>EDGEFLEET_TOKEN</c> or the login file, when that login is for this server.</summary>
    private static string? SavedToken(Uri server)
    {
        try
        {
            var settings = CliConfig.Resolve(Environment.GetEnvironmentVariable, CliConfig.DefaultPath(Environment.GetEnvironmentVariable));
            return string.Equals(settings.Server.AbsoluteUri, server.AbsoluteUri, StringComparison.OrdinalIgnoreCase) ? settings.Token : null;
        }
        catch (CliConfigException)
        {
            return null;
        }
    }

    private static int Usage(List<string> errors)
    {
        foreach (var error in errors)
        {
            Console.Error.WriteLine($"error: {error}");
        }

        Console.Error.WriteLine("usage: edgefleet sim --server URL --enroll-token TOKEN --devices N [--behave VERSION=KIND]… (edgefleet sim --help)");
        return ExitCodes.Usage;
    }

    private static string Or(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>The simulator's warnings on stderr, one line each.</summary>
    private sealed class WriterLogger(TextWriter writer) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                writer.WriteLine($"warning: {formatter(state, exception)}{(exception is null ? "" : $": {exception.Message}")}");
            }
        }
    }
}
