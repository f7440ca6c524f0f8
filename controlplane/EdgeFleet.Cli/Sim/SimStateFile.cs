using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// <c>--state FILE</c>: the simulated devices' identities (broker logins and HTTP tokens, hence mode 0600), their
/// sequence numbers and what each runs, so a second run continues the same fleet instead of enrolling a new one.
/// </summary>
internal sealed class SimState
{
    public int Version { get; set; } = 1;

    /// <summary>The control plane the identities belong to.</summary>
    public string Server { get; set; } = "";

    /// <summary>The registry key pinned at enrollment (PEM), the same for every device of one control plane.</summary>
    public string? RegistryPublicKey { get; set; }

    public List<SimDeviceState> Devices { get; set; } = [];
}

/// <summary>One device in the state file.</summary>
internal sealed class SimDeviceState
{
    public string Id { get; set; } = "";

    public string MqttHost { get; set; } = "";

    public int MqttPort { get; set; }

    public bool MqttTls { get; set; }

    public string MqttUsername { get; set; } = "";

    public string MqttPassword { get; set; } = "";

    public string? HttpToken { get; set; }

    public List<string> Tags { get; set; } = [];

    public DateTimeOffset EnrolledAt { get; set; }

    /// <summary>
    /// The highest sequence number the device may have used: while a run goes on, a reservation ahead of the one in use
    /// (a killed run must not make the next reuse numbers the control plane already has); after a clean stop, exact.
    /// </summary>
    public long Seq { get; set; }

    public string? Model { get; set; }

    public string? ModelVersion { get; set; }

    public string? PreviousModel { get; set; }

    public string? PreviousVersion { get; set; }

    /// <summary>Assignment ids the device has finished with (newest last), so a redelivered retained desired is not redone.</summary>
    public List<string> Settled { get; set; } = [];
}

/// <summary>Reads and writes the state file: owner-only from creation, written to a temporary file, synced and renamed.</summary>
internal static class SimStateFile
{
    public static SimState? Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SimulatorException($"cannot read the state file {path}: {ex.Message}", ex);
        }

        try
        {
            var state = JsonSerializer.Deserialize(bytes, SimJsonContext.Default.SimState)
                ?? throw new SimulatorException($"the state file {path} is empty (JSON null); delete it to enroll a new fleet");
            if (state.Version != 1)
            {
                throw new SimulatorException($"the state file {path} has version {state.Version}; this edgefleet reads version 1");
            }

            return state;
        }
        catch (JsonException ex)
        {
            throw new SimulatorException($"the state file {path} is not a simulator state file ({ex.Message}); delete it to enroll a new fleet", ex);
        }
    }

    public static void Save(string path, SimState state)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        var temp = full + ".tmp";
        try
        {
            Directory.CreateDirectory(directory);
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temp, options))
            {
                JsonSerializer.Serialize(stream, state, SimJsonContext.Default.SimState);
                stream.Flush(flushToDisk: true);
            }

            if (!OperatingSystem.IsWindows())
            {
                // FileMode.Create keeps the mode of a leftover temporary file, and umask can only remove bits.
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SimulatorException($"cannot write the state file {path}: {ex.Message}", ex);
        }
    }
}

/// <summary>The simulator cannot start or go on: bad state file, enrollment refused, control plane unreachable.</summary>
public sealed class SimulatorException : Exception
{
    public SimulatorException()
    {
    }

    public SimulatorException(string message)
        : base(message)
    {
    }

    public SimulatorException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>True when the control plane could not be reached (exit code 3), false when it said no (1).</summary>
    public bool Unreachable { get; init; }
}

/// <summary>The state file: compact (10,000 devices make a few megabytes).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SimState))]
internal sealed partial class SimJsonContext : JsonSerializerContext;

/// <summary>The <c>--json</c> summary: indented, for people and <c>jq</c> alike.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(SimulatorSummary))]
public sealed partial class SimSummaryJsonContext : JsonSerializerContext;
