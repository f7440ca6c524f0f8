using System.Text.Json;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Drift;

/// <summary>Reads and writes drift profile files.</summary>
public static class DriftProfiles
{
    /// <summary>The profile that belongs to a model file by convention: <c>NAME.onnx</c> → <c>NAME.profile.json</c>.</summary>
    public static string PathFor(string modelPath)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        return Path.Combine(directory, Path.GetFileNameWithoutExtension(modelPath) + ".profile.json");
    }

    /// <exception cref="DriftDataException">Missing, not JSON or not a profile.</exception>
    public static DriftProfile Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new DriftDataException($"{path}: drift profile not found");
        }

        DriftProfile? profile;
        try
        {
            profile = JsonSerializer.Deserialize(File.ReadAllBytes(path), ContractsJsonContext.Default.DriftProfile);
        }
        catch (JsonException ex)
        {
            throw new DriftDataException($"{path}: not a valid drift profile: {ex.Message}", ex);
        }

        if (profile is null)
        {
            throw new DriftDataException($"{path}: not a drift profile (JSON null)");
        }

        var errors = Validate(profile);
        if (errors.Count > 0)
        {
            throw new DriftDataException($"{path}: {string.Join("; ", errors)}");
        }

        return profile;
    }

    /// <summary>Every structural problem of a profile, as "field: message"; empty when it can be used.</summary>
    public static IReadOnlyList<string> Validate(DriftProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var errors = new List<string>();
        if (profile.Schema != Schemas.DriftProfile)
        {
            errors.Add($"schema: '{profile.Schema}' is not a drift profile (expected '{Schemas.DriftProfile}')");
        }

        if (string.IsNullOrEmpty(profile.Id))
        {
            errors.Add("id: is required");
        }

        if (profile.Features is null || profile.Features.Count == 0)
        {
            errors.Add("features: at least one feature is required");
            return errors;
        }

        foreach (var f in profile.Features)
        {
            if (f.Kind == "numeric" && f.Edges.Count + 1 != f.Proportions.Count)
            {
                errors.Add($"features.{f.Name}: {f.Edges.Count} edges but {f.Proportions.Count} proportions (expected edges + 1)");
            }
            else if (f.Kind is not ("numeric" or "categorical"))
            {
                errors.Add($"features.{f.Name}: kind '{f.Kind}' must be numeric or categorical");
            }
        }

        return errors;
    }

    public static void Save(DriftProfile profile, string path)
    {
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(profile, ContractsJsonContext.Default.DriftProfile));
        File.Move(temp, path, overwrite: true);
    }
}
