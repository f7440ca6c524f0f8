using EdgeFleet.Agent.Configuration;
using EdgeFleet.Contracts.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Ota;

/// <summary>
/// The OTA state as the agent found it at start (read once, before the pipeline picks its model) and the models it
/// may start on (<see cref="OtaStartup"/>).
/// </summary>
public sealed partial class OtaBootstrap
{
    private readonly OtaIdentity _identity;

    public OtaBootstrap(IOptions<AgentOptions> options, OtaIdentity identity, TimeProvider time, ILogger<OtaBootstrap> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _identity = identity;
        Store = new OtaStateStore(options.Value.StateDirectory, time);
        Models = new ModelStore(options.Value.StateDirectory, time);
        InitialState = Store.Load(out var problem);
        Problem = problem;
        if (problem is not null)
        {
            LogProblem(logger, problem);
        }
    }

    public OtaStateStore Store { get; }

    public ModelStore Models { get; }

    public OtaState InitialState { get; }

    /// <summary>Why the state file could not be used, if it could not.</summary>
    public string? Problem { get; }

    /// <summary>The models to try at start, best first; <paramref name="skipped"/> receives those that no longer verify.</summary>
    public IReadOnlyList<StartupModel> StartupModels(string configuredPath, ICollection<string> skipped) =>
        OtaStartup.Candidates(InitialState, configuredPath, Models, Verify, skipped);

    /// <summary>Whether an installed model's manifest verifies against the pinned registry key.</summary>
    public (bool Ok, string Reason) Verify(InstalledModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_identity.RegistryKey is null)
        {
            return (false, "no registry key is pinned (the device is not enrolled)");
        }

        try
        {
            var manifest = File.ReadAllBytes(ModelStore.ManifestPath(model.Path));
            var signature = File.ReadAllBytes(ModelStore.SignaturePath(model.Path));
            return ManifestSigning.VerifyDetached(manifest, signature, _identity.RegistryKey, out var reason) ? (true, "") : (false, reason);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (false, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Problem}")]
    private static partial void LogProblem(ILogger logger, string problem);
}
