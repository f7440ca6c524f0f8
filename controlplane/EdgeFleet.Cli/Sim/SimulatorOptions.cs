using System.Globalization;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Cli.Sim;

/// <summary>What <see cref="FleetSimulator"/> simulates and against which control plane.</summary>
public sealed record SimulatorOptions
{
    /// <summary>The control plane the devices enroll with and download from (the bearer token goes to this origin only).</summary>
    public required Uri Server { get; init; }

    /// <summary>Enrollment token for devices not yet in <see cref="StateFile"/>; null when the state file holds them all.</summary>
    public string? EnrollToken { get; init; }

    /// <summary>Simulated devices.</summary>
    public int Devices { get; init; } = 10;

    /// <summary>
    /// Tags (<c>key</c> or <c>key=value</c>) the devices have on top of their enrollment token's. <c>hw=…</c> shapes the
    /// simulated hardware (latency); with <see cref="ApiToken"/> they are also set on the control plane.
    /// </summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>An operator API token, used only to set <see cref="Tags"/> on newly enrolled devices.</summary>
    public string? ApiToken { get; init; }

    /// <summary>How each model version behaves; versions not listed are <see cref="BehaviorKind.Ok"/>.</summary>
    public IReadOnlyDictionary<string, VersionBehavior> Behaviors { get; init; } = new Dictionary<string, VersionBehavior>();

    /// <summary>The model newly enrolled devices run at first (the state file remembers what each one runs later).</summary>
    public string ModelName { get; init; } = "sim-model";

    public string ModelVersion { get; init; } = "1.0.0";

    /// <summary>Device ids are <c>{IdPrefix}-00001</c>…</summary>
    public string IdPrefix { get; init; } = "sim";

    /// <summary>Seeds every device's figures (with its id): the same seed gives the same fleet.</summary>
    public int Seed { get; init; } = 42;

    public TimeSpan TelemetryInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A drift report every this many telemetry intervals.</summary>
    public int DriftEvery { get; init; } = 6;

    /// <summary>Probation of an activated version, unless its assignment sets <c>probation.seconds</c>.</summary>
    public TimeSpan Probation { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A <c>shadow.report</c> this often while a shadow candidate runs.</summary>
    public TimeSpan ShadowReportInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>This many of the devices (the last ones) enroll but never connect.</summary>
    public int OfflineDevices { get; init; }

    /// <summary>Where identities (credentials: mode 0600), sequence numbers and what each device runs are kept between runs.</summary>
    public string? StateFile { get; init; }

    /// <summary>Frames per second the simulated pipelines infer.</summary>
    public double Fps { get; init; } = 30;

    public int EnrollConcurrency { get; init; } = 16;

    /// <summary>MQTT connections being set up at once.</summary>
    public int ConnectConcurrency { get; init; } = 64;

    /// <summary>Artifact downloads at once, across the fleet.</summary>
    public int DownloadConcurrency { get; init; } = 8;

    /// <summary>Attempts per download (manifest, signature, artifact) before <c>update.rejected</c> reason download.</summary>
    public int DownloadAttempts { get; init; } = 5;

    /// <summary>First retry delay of a failed download; grows exponentially with jitter.</summary>
    public TimeSpan DownloadRetryDelay { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>A download that sends nothing for this long counts as cut.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>MQTT keep-alive of each device (fewer pings for large fleets).</summary>
    public int KeepAliveSeconds { get; init; } = 60;

    /// <summary>Longest reconnect backoff of a device's MQTT connection.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Durable messages a disconnected device keeps; beyond it the oldest are dropped and counted.</summary>
    public int OutboxLimit { get; init; } = 1000;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The simulator's own warnings (enrollment, unexpected failures); the MQTT connections log nothing.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The behaviour of <paramref name="version"/>.</summary>
    public VersionBehavior BehaviorOf(string version) =>
        Behaviors.TryGetValue(version, out var behavior) ? behavior : VersionBehavior.Ok;

    /// <summary>Every problem with these options, in words an operator understands; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Server is null || !Server.IsAbsoluteUri || Server.Scheme is not ("http" or "https"))
        {
            errors.Add("--server must be an http:// or https:// URL of the control plane");
        }

        if (Devices is < 1 or > 100_000)
        {
            errors.Add($"--devices must be between 1 and 100000 (got {Devices})");
        }

        if (OfflineDevices < 0 || OfflineDevices > Devices)
        {
            errors.Add($"--offline must be between 0 and --devices ({Devices}) (got {OfflineDevices})");
        }

        var width = IdWidth(Devices);
        if (!Topics.IsValidDeviceId($"{IdPrefix}-{new string('0', width)}"))
        {
            errors.Add($"--id-prefix '{IdPrefix}' does not make valid device ids: {IdPrefix}-{new string('0', width)} must match [a-z0-9][a-z0-9-]{{0,62}}");
        }

        if (!ManifestFile.IsValidName(ModelName))
        {
            errors.Add($"--model '{ModelName}' is not a valid model name (lowercase letters, digits, '-', '_' and '.')");
        }

        if (!SemVer.TryParse(ModelVersion, out _))
        {
            errors.Add($"--version '{ModelVersion}' is not a semantic version (e.g. 1.0.0)");
        }

        foreach (var tag in Tags)
        {
            if (string.IsNullOrWhiteSpace(tag) || tag.Length > 128 || tag.Any(char.IsWhiteSpace))
            {
                errors.Add($"--tags '{tag}' is not a tag (key or key=value, no spaces)");
            }
        }

        foreach (var version in Behaviors.Keys)
        {
            if (!SemVer.TryParse(version, out _))
            {
                errors.Add($"--behave '{version}': '{version}' is not a semantic version");
            }
        }

        Positive(TelemetryInterval, "--telemetry-interval", errors);
        Positive(ShadowReportInterval, "shadow report interval", errors);
        Positive(ReadTimeout, "read timeout", errors);
        if (Probation < TimeSpan.Zero)
        {
            errors.Add("--probation must not be negative");
        }

        if (DriftEvery < 1 || EnrollConcurrency < 1 || ConnectConcurrency < 1 || DownloadConcurrency < 1 || DownloadAttempts < 1 || OutboxLimit < 1)
        {
            errors.Add("drift interval, concurrency limits, download attempts and outbox limit must be at least 1");
        }

        if (!(Fps > 0 && Fps <= 1000))
        {
            errors.Add($"fps must be between 0 and 1000 (got {Fps.ToString(CultureInfo.InvariantCulture)})");
        }

        return errors;
    }

    /// <summary>The id of device <paramref name="index"/> (0-based).</summary>
    public string DeviceId(int index) => $"{IdPrefix}-{(index + 1).ToString(CultureInfo.InvariantCulture).PadLeft(IdWidth(Devices), '0')}";

    private static int IdWidth(int devices) => Math.Max(5, devices.ToString(CultureInfo.InvariantCulture).Length);

    private static void Positive(TimeSpan value, string name, List<string> errors)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{name} must be positive");
        }
    }
}

/// <summary>How a simulated device fares with one model version (<c>--behave VERSION=KIND[:PARAMETER]</c>).</summary>
public enum BehaviorKind
{
    /// <summary>Downloads, verifies, passes probation, commits; figures unchanged.</summary>
    Ok,

    /// <summary>Downloads and verifies, then cannot load it: <c>update.rejected</c> reason load.</summary>
    Fail,

    /// <summary>Activates, outputs NaN on a share of frames during probation, rolls back (criterion nonfinite).</summary>
    Nan,

    /// <summary>Commits (probation does not catch it) but its latency is the parameter times higher (default 1.4).</summary>
    Slow,

    /// <summary>The device goes offline when it receives the version and stays away for the run.</summary>
    Offline,

    /// <summary>Loses its connection mid-download up to the parameter times (default 3), reconnects, resumes with Range, commits.</summary>
    Flaky,

    /// <summary>Commits; its drift reports say alert from then on.</summary>
    Drift,
}

/// <summary>A behaviour and its parameter (latency factor of slow, NaN share of nan, most cuts of flaky).</summary>
public readonly record struct VersionBehavior(BehaviorKind Kind, double Parameter)
{
    public static VersionBehavior Ok => new(BehaviorKind.Ok, 1);

    /// <summary>Parses <c>KIND[:PARAMETER]</c>: ok, fail, nan[:share], slow[:factor], offline, flaky[:most cuts], drift.</summary>
    public static bool TryParse(string text, out VersionBehavior behavior, out string error)
    {
        ArgumentNullException.ThrowIfNull(text);
        behavior = Ok;
        var parts = text.Trim().Split(':', 2);
        var kind = parts[0].ToLowerInvariant();
        double? parameter = null;
        if (parts.Length == 2)
        {
            if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || !double.IsFinite(p))
            {
                error = $"'{parts[1]}' is not a number";
                return false;
            }

            parameter = p;
        }

        (behavior, error) = kind switch
        {
            "ok" or "fail" or "offline" or "drift" when parameter is not null => (Ok, $"{kind} takes no parameter"),
            "ok" => (Ok, ""),
            "fail" => (new VersionBehavior(BehaviorKind.Fail, 1), ""),
            "offline" => (new VersionBehavior(BehaviorKind.Offline, 1), ""),
            "drift" => (new VersionBehavior(BehaviorKind.Drift, 1), ""),
            "slow" when parameter is { } f && !(f > 0 && f <= 100) => (Ok, "the latency factor of slow must be between 0 and 100 (e.g. slow:1.6)"),
            "slow" => (new VersionBehavior(BehaviorKind.Slow, parameter ?? 1.4), ""),
            "nan" when parameter is { } s && !(s > 0 && s <= 1) => (Ok, "the NaN share of nan must be between 0 and 1 (e.g. nan:0.5)"),
            "nan" => (new VersionBehavior(BehaviorKind.Nan, parameter ?? 0.6), ""),
            "flaky" when parameter is { } n && !(n >= 1 && n <= 20 && n == Math.Floor(n)) => (Ok, "the most cuts of flaky must be a whole number from 1 to 20 (e.g. flaky:2)"),
            "flaky" => (new VersionBehavior(BehaviorKind.Flaky, parameter ?? 3), ""),
            _ => (Ok, $"'{parts[0]}' is not a behaviour: ok, fail, nan[:share], slow[:factor], offline, flaky[:most cuts] or drift"),
        };
        return error.Length == 0;
    }

    public override string ToString() => Kind switch
    {
        BehaviorKind.Slow or BehaviorKind.Nan or BehaviorKind.Flaky => string.Create(CultureInfo.InvariantCulture, $"{Kind.ToString().ToLowerInvariant()}:{Parameter}"),
        _ => Kind.ToString().ToLowerInvariant(),
    };
}
