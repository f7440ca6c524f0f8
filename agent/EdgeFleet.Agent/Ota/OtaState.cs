using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Ota;

/// <summary>Where an assignment is (DESIGN.md §6).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OtaPhase>))]
public enum OtaPhase
{
    /// <summary>Nothing assigned, or the assignment is what runs.</summary>
    Idle,

    /// <summary>A new assignment was seen.</summary>
    Received,

    /// <summary>Fetching manifest and artifact.</summary>
    Downloading,

    /// <summary>Checking signature, size and sha256.</summary>
    Verifying,

    /// <summary>Checking compatibility and creating the session.</summary>
    Loading,

    /// <summary>Running the manifest's self-test.</summary>
    SelfTest,

    /// <summary>Serving frames on probation; the previous model is kept for a rollback.</summary>
    Probation,

    /// <summary>Running beside the live model as a shadow.</summary>
    Shadow,

    /// <summary>Probation passed.</summary>
    Committed,

    /// <summary>Not applied (reason in <see cref="OtaState.LastFailure"/>).</summary>
    Rejected,

    /// <summary>Probation failed; the previous model serves again.</summary>
    RolledBack,
}

/// <summary>A model installed under <c>StateDirectory/models/{name}/{version}/</c>.</summary>
public sealed record InstalledModel(string Name, string Version, string Path);

/// <summary>The assignment being worked on, or the last one.</summary>
public sealed record OtaJob
{
    public required DesiredMessage Desired { get; init; }

    public required OtaPhase Phase { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset PhaseAt { get; init; }

    /// <summary>Artifact bytes on disk so far.</summary>
    public long Bytes { get; init; }

    /// <summary>Artifact size.</summary>
    public long Total { get; init; }

    /// <summary>The verified candidate once it is in the model store.</summary>
    public InstalledModel? Candidate { get; init; }

    /// <summary>Execution provider the candidate got.</summary>
    public string? Provider { get; init; }

    public bool IsFinished => Phase is OtaPhase.Idle or OtaPhase.Committed or OtaPhase.Rejected or OtaPhase.RolledBack;
}

/// <summary>Why the last assignment was not applied or was undone.</summary>
public sealed record OtaFailure
{
    public required string DesiredId { get; init; }

    public required string Model { get; init; }

    public required string Version { get; init; }

    /// <summary><c>update.rejected</c> or <c>update.rolled_back</c>.</summary>
    public required string Event { get; init; }

    /// <summary>A <see cref="RejectReasons"/> value, or the failed probation criterion.</summary>
    public required string Reason { get; init; }

    public required string Message { get; init; }

    public DateTimeOffset At { get; init; }
}

/// <summary>
/// Everything the OTA service must remember across restarts and power loss, in <c>StateDirectory/ota-state.json</c>
/// (replaced atomically, see <see cref="OtaStateStore"/>).
/// </summary>
public sealed record OtaState
{
    public const int CurrentSchema = 1;

    public int Schema { get; init; } = CurrentSchema;

    /// <summary>The committed model the agent runs; null: the configured Agent:Model:Path.</summary>
    public InstalledModel? Current { get; init; }

    /// <summary>The model before <see cref="Current"/>, kept on disk for a rollback.</summary>
    public InstalledModel? Previous { get; init; }

    /// <summary>The assignment in progress, or the last one.</summary>
    public OtaJob? Job { get; init; }

    public OtaFailure? LastFailure { get; init; }

    /// <summary>Ids of assignments already finished (newest last), so a retained desired message is not redone.</summary>
    public IReadOnlyList<string> Settled { get; init; } = [];

    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>A copy with <paramref name="id"/> recorded as settled (keeps the newest 32).</summary>
    public OtaState WithSettled(string id) =>
        this with { Settled = [.. Settled.Where(s => s != id).TakeLast(31), id] };
}

/// <summary>Reads and atomically replaces the OTA state file.</summary>
public sealed class OtaStateStore(string stateDirectory, TimeProvider time)
{
    public const string FileName = "ota-state.json";

    public string Path { get; } = System.IO.Path.Combine(stateDirectory, FileName);

    /// <summary>
    /// The stored state; empty when there is none. A file that cannot be read is kept as <c>.corrupt</c> and an empty
    /// state returned with the reason in <paramref name="problem"/> (the agent then runs the configured model).
    /// </summary>
    public OtaState Load(out string? problem) => Load(keepCorrupt: true, out problem);

    /// <param name="keepCorrupt">Copy an unreadable file to <c>.corrupt</c> (false: only read, as <c>status</c> does).</param>
    /// <param name="problem">Why the file could not be used, if it could not.</param>
    public OtaState Load(bool keepCorrupt, out string? problem)
    {
        problem = null;
        if (!File.Exists(Path))
        {
            return new OtaState();
        }

        try
        {
            var state = JsonSerializer.Deserialize(File.ReadAllBytes(Path), OtaJsonContext.Default.OtaState);
            if (state is null || state.Schema != OtaState.CurrentSchema)
            {
                throw new JsonException(state is null ? "empty" : $"schema {state.Schema} is not {OtaState.CurrentSchema}");
            }

            return state;
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or IOException)
        {
            if (!keepCorrupt)
            {
                problem = $"{Path} cannot be read ({ex.Message}); the agent will start from its configured model";
                return new OtaState();
            }

            var kept = Path + ".corrupt";
            File.Copy(Path, kept, overwrite: true);
            problem = $"{Path} could not be read ({ex.Message}); kept as {kept}, starting from the configured model";
            return new OtaState();
        }
    }

    public OtaState Save(OtaState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var stamped = state with { UpdatedAt = time.GetUtcNow() };
        DurableFile.Replace(Path, JsonSerializer.SerializeToUtf8Bytes(stamped, OtaJsonContext.Default.OtaState));
        return stamped;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OtaState))]
internal sealed partial class OtaJsonContext : JsonSerializerContext;
