using System.ComponentModel.DataAnnotations;
using EdgeFleet.Agent.Capture;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Configuration;

/// <summary>
/// Checks the whole configuration at start and names each bad key with its full path
/// (<c>Agent:Inference:IntraOpThreads: must be between 0 and 256 (got 999)</c>), so a typo never surfaces later
/// as a confusing runtime failure.
/// </summary>
/// <param name="gpioChipExists">Whether a GPIO chip's device exists; File.Exists unless a test has a fake chip.</param>
public sealed class AgentOptionsValidator(Func<string, bool>? gpioChipExists = null) : IValidateOptions<AgentOptions>
{
    public static readonly IReadOnlyList<string> KnownProviders = ["tensorrt", "cuda", "cpu"];

    public ValidateOptionsResult Validate(string? name, AgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        Annotations(options, "Agent", errors);
        Annotations(options.Source, "Agent:Source", errors);
        Annotations(options.Model, "Agent:Model", errors);
        Annotations(options.Inference, "Agent:Inference", errors);
        Annotations(options.Pipeline, "Agent:Pipeline", errors);
        Annotations(options.Mqtt, "Agent:Mqtt", errors);
        Annotations(options.Mqtt.Tls, "Agent:Mqtt:Tls", errors);
        Annotations(options.Telemetry, "Agent:Telemetry", errors);
        Annotations(options.Telemetry.Outbox, "Agent:Telemetry:Outbox", errors);
        Annotations(options.Telemetry.Results, "Agent:Telemetry:Results", errors);
        Annotations(options.Drift, "Agent:Drift", errors);
        Annotations(options.Ota, "Agent:Ota", errors);
        Annotations(options.Ota.Probation, "Agent:Ota:Probation", errors);
        Annotations(options.Ota.Shadow, "Agent:Ota:Shadow", errors);
        Annotations(options.LocalApi, "Agent:LocalApi", errors);
        Annotations(options.Metrics, "Agent:Metrics", errors);
        Annotations(options.Gpio.Trigger, "Agent:Gpio:Trigger", errors);
        Annotations(options.Gpio.Led, "Agent:Gpio:Led", errors);
        errors.AddRange(EdgeFleet.Agent.Gpio.GpioOptions.Check(options.Gpio, gpioChipExists));
        if (options.Ota.MaxRetryDelaySeconds < options.Ota.RetryDelaySeconds)
        {
            errors.Add($"Agent:Ota:MaxRetryDelaySeconds: must not be below RetryDelaySeconds ({options.Ota.RetryDelaySeconds})");
        }
        if (options.Drift.PsiAlert < options.Drift.PsiWarn)
        {
            errors.Add($"Agent:Drift:PsiAlert: must not be below PsiWarn ({options.Drift.PsiWarn})");
        }

        if (options.Drift.ReferenceProfile is { Length: > 0 } profile && !File.Exists(profile))
        {
            errors.Add($"Agent:Drift:ReferenceProfile: {profile} does not exist (build one with edgefleet-agent profile)");
        }

        foreach (var (key, file) in new[] { ("CaFile", options.Mqtt.Tls.CaFile), ("CertFile", options.Mqtt.Tls.CertFile), ("KeyFile", options.Mqtt.Tls.KeyFile) })
        {
            if (file is { Length: > 0 } && !File.Exists(file))
            {
                errors.Add($"Agent:Mqtt:Tls:{key}: {file} does not exist");
            }
        }

        if ((options.Mqtt.Tls.CertFile is { Length: > 0 }) != (options.Mqtt.Tls.KeyFile is { Length: > 0 }))
        {
            errors.Add("Agent:Mqtt:Tls: CertFile and KeyFile go together (set both or neither)");
        }

        if (options.Mqtt.ClientId is { Length: > 0 } clientId && (clientId.Length > 128 || clientId.Any(char.IsControl)))
        {
            errors.Add("Agent:Mqtt:ClientId: must be at most 128 printable characters");
        }

        if (!string.IsNullOrWhiteSpace(options.Source.Uri))
        {
            if (!SourceUri.TryParse(options.Source.Uri, out var source, out var error))
            {
                errors.Add($"Agent:Source:Uri: {error}");
            }
            else if (source.Kind == SourceKind.File && !File.Exists(source.Target))
            {
                errors.Add($"Agent:Source:Uri: video file {source.Target} does not exist");
            }
            else
            {
                var tool = source.Kind == SourceKind.GStreamer ? ("Agent:Source:GstLaunchPath", options.Source.GstLaunchPath, "gstreamer1.0-tools")
                    : ("Agent:Source:FfmpegPath", options.Source.FfmpegPath, "ffmpeg");
                if (!string.IsNullOrWhiteSpace(tool.Item2) && FindExecutable(tool.Item2) is null)
                {
                    errors.Add($"{tool.Item1}: '{tool.Item2}' was not found; install the Debian package {tool.Item3} " +
                        "(deploy/bootstrap.sh does) or give the full path");
                }
            }
        }

        if (options.Source.MaxRestartDelaySeconds < options.Source.RestartDelaySeconds)
        {
            errors.Add($"Agent:Source:MaxRestartDelaySeconds: must not be less than RestartDelaySeconds ({options.Source.RestartDelaySeconds})");
        }

        for (var i = 0; i < options.Inference.Providers.Count; i++)
        {
            if (!KnownProviders.Contains(options.Inference.Providers[i].ToLowerInvariant()))
            {
                errors.Add($"Agent:Inference:Providers:{i}: '{options.Inference.Providers[i]}' is not a provider; use {string.Join(", ", KnownProviders)}");
            }
        }

        if (options.Inference.OrtLibraryPath is { Length: > 0 } lib && !File.Exists(lib))
        {
            errors.Add($"Agent:Inference:OrtLibraryPath: {lib} does not exist; point it at a libonnxruntime.so (JetPack's on a Jetson) " +
                "or leave it out to use the one that comes with the agent");
        }

        if (!string.IsNullOrWhiteSpace(options.Model.Path) && !File.Exists(options.Model.Path))
        {
            errors.Add($"Agent:Model:Path: {options.Model.Path} does not exist");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Annotations(object section, string prefix, List<string> errors)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(section, new ValidationContext(section), results, validateAllProperties: true);
        foreach (var result in results)
        {
            foreach (var member in result.MemberNames.DefaultIfEmpty(""))
            {
                var value = member.Length > 0 ? section.GetType().GetProperty(member)?.GetValue(section) : null;
                var got = value is null ? "" : $" (got {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)})";
                errors.Add($"{prefix}:{member}: {result.ErrorMessage}{got}");
            }
        }
    }

    /// <summary>The full path of an executable given by path or looked up on PATH; null if absent.</summary>
    public static string? FindExecutable(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(name) ? Path.GetFullPath(name) : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }
}
