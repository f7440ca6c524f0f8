using System.Globalization;
using System.Text.Json;
using EdgeFleet.Agent.Ota;

namespace EdgeFleet.Agent.Commands;

/// <summary>
/// <c>edgefleet-agent status</c>: what the over-the-air state file says — the model that runs (or the configured one),
/// the assignment in progress with its phase and download progress, and the last failure. Reads only; works while the
/// agent runs and when it does not.
/// </summary>
public static class StatusCommand
{
    public static Task<int> ExecuteAsync(string? configPath, string? stateDirectory, bool json, TextWriter output, TextWriter error) =>
        ExecuteAsync(configPath, stateDirectory, null, json, output, error, CancellationToken.None);

    /// <summary>
    /// Asks the running agent over the local API first (live counters, camera health); when nothing answers on the
    /// socket, or the agent there keeps another state directory, reads the state file and says so on stderr.
    /// </summary>
    public static async Task<int> ExecuteAsync(string? configPath, string? stateDirectory, string? socket, bool json, TextWriter output, TextWriter error,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string directory;
        string? configuredModel;
        try
        {
            (directory, configuredModel) = Locate(configPath, stateDirectory);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or JsonException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        string socketPath;
        try
        {
            socketPath = LocalApi.LocalApiClient.Locate(socket, configPath, stateDirectory);
        }
        catch (JsonException ex)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        if (await LocalApiCommands.TryStatusAsync(socketPath, cancellationToken).ConfigureAwait(false) is { } live
            && (stateDirectory is null || live.StateDirectory == Path.GetFullPath(directory)))
        {
            if (json)
            {
                await output.WriteLineAsync(LocalApiCommands.FormatStatusJson(live)).ConfigureAwait(false);
            }
            else
            {
                await LocalApiCommands.PrintStatusAsync(live, output).ConfigureAwait(false);
            }

            return 0;
        }

        await error.WriteLineAsync($"note: no agent answers on {socketPath}; showing the state file only (no live counters)").ConfigureAwait(false);
        var store = new OtaStateStore(directory, TimeProvider.System);
        if (!File.Exists(store.Path) && !Directory.Exists(directory))
        {
            await error.WriteLineAsync($"error: state directory {directory} does not exist (set --state-dir or Agent:StateDirectory in --config)").ConfigureAwait(false);
            return 2;
        }

        OtaState state;
        string? problem;
        try
        {
            state = store.Load(keepCorrupt: false, out problem);
        }
        catch (UnauthorizedAccessException ex)
        {
            await error.WriteLineAsync($"error: cannot read {store.Path}: {ex.Message} (run as the agent's user or root)").ConfigureAwait(false);
            return 2;
        }

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(state, OtaJsonContext.Default.OtaState)).ConfigureAwait(false);
            return 0;
        }

        var c = CultureInfo.InvariantCulture;
        if (problem is not null)
        {
            await output.WriteLineAsync($"warning: {problem}").ConfigureAwait(false);
        }

        await output.WriteLineAsync(state.Current is { } current
            ? $"model:     {current.Name} {current.Version} ({current.Path})"
            : $"model:     the configured one{(configuredModel is null ? "" : $" ({configuredModel})")}; no update committed yet").ConfigureAwait(false);
        if (state.Previous is { } previous)
        {
            await output.WriteLineAsync($"previous:  {previous.Name} {previous.Version}").ConfigureAwait(false);
        }

        if (state.Job is { } job)
        {
            var d = job.Desired;
            await output.WriteLineAsync($"update:    {d.Model} {d.Version} ({d.Mode}{(d.RolloutId is { } r ? $", rollout {r}" : "")}): {Phase(job.Phase)} since {job.PhaseAt.ToString("u", c)}").ConfigureAwait(false);
            if (job.Phase == OtaPhase.Downloading && job.Total > 0)
            {
                await output.WriteLineAsync(string.Create(c, $"progress:  {job.Bytes} of {job.Total} bytes ({100.0 * job.Bytes / job.Total:0.#} %)")).ConfigureAwait(false);
            }

            if (job.Provider is { } provider)
            {
                await output.WriteLineAsync($"provider:  {provider}").ConfigureAwait(false);
            }
        }
        else
        {
            await output.WriteLineAsync("update:    none received").ConfigureAwait(false);
        }

        if (state.LastFailure is { } f)
        {
            await output.WriteLineAsync($"last failure: {f.Event} ({f.Reason}) of {f.Model} {f.Version} at {f.At.ToString("u", c)}: {f.Message}").ConfigureAwait(false);
        }

        return 0;
    }

    private static string Phase(OtaPhase phase) => phase switch
    {
        OtaPhase.SelfTest => "self-test",
        OtaPhase.RolledBack => "rolled back",
        _ => phase.ToString().ToLowerInvariant(),
    };

    private static (string Directory, string? Model) Locate(string? configPath, string? stateDirectory)
    {
        string? fromConfig = null;
        string? model = null;
        if (configPath is not null)
        {
            if (!File.Exists(configPath))
            {
                throw new IOException($"configuration file {configPath} not found");
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (doc.RootElement.TryGetProperty("Agent", out var agent) && agent.ValueKind == JsonValueKind.Object)
            {
                if (agent.TryGetProperty("StateDirectory", out var dir) && dir.ValueKind == JsonValueKind.String)
                {
                    fromConfig = dir.GetString();
                }

                if (agent.TryGetProperty("Model", out var m) && m.ValueKind == JsonValueKind.Object
                    && m.TryGetProperty("Path", out var p) && p.ValueKind == JsonValueKind.String)
                {
                    model = p.GetString();
                }
            }
        }

        return (stateDirectory ?? Environment.GetEnvironmentVariable("EDGEFLEET_Agent__StateDirectory") ?? fromConfig
            ?? new Configuration.AgentOptions().StateDirectory, model);
    }
}
