namespace EdgeFleet.Agent.Ota;

/// <summary>A model the agent may start on, and why it is a candidate.</summary>
public sealed record StartupModel(string Path, string Why);

/// <summary>
/// Which model the agent starts on (DESIGN.md §6): the committed one from the state file if its signature still
/// verifies, else the previous one, else <c>Agent:Model:Path</c>. A model on probation is never among them: after a
/// restart an uncommitted model does not run. The pipeline tries them in order (each is also hash-checked and
/// self-tested when it loads) and starts on the first that works.
/// </summary>
public static class OtaStartup
{
    public static IReadOnlyList<StartupModel> Candidates(OtaState state, string configuredPath, ModelStore models, Func<InstalledModel, (bool Ok, string Reason)> verify,
        ICollection<string>? skipped = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(verify);
        var list = new List<StartupModel>();
        void Consider(InstalledModel? model, string why)
        {
            if (model is null || list.Any(c => SamePath(c.Path, model.Path)))
            {
                return;
            }

            if (!IsInStore(models, model.Path))
            {
                list.Add(new StartupModel(model.Path, why)); // the configured model: trusted by configuration, not by signature
                return;
            }

            var (ok, reason) = verify(model);
            if (ok)
            {
                list.Add(new StartupModel(model.Path, why));
            }
            else
            {
                skipped?.Add($"{model.Name} {model.Version} ({why}) does not verify: {reason}");
            }
        }

        Consider(state.Current, "committed");
        Consider(state.Previous, "previous");
        if (!list.Any(c => SamePath(c.Path, configuredPath)))
        {
            list.Add(new StartupModel(configuredPath, "configured (Agent:Model:Path)"));
        }

        return list;
    }

    private static bool IsInStore(ModelStore models, string path) =>
        System.IO.Path.GetFullPath(path).StartsWith(models.Root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static bool SamePath(string a, string b) => string.Equals(System.IO.Path.GetFullPath(a), System.IO.Path.GetFullPath(b), StringComparison.Ordinal);
}
