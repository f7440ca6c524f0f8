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

        if (profile is null || profile.Schema != Schemas.DriftProfile || profile.Features is null || string.IsNullOrEmpty(profile.Id))
        {
            throw new DriftDataException($"{path}: not a drift profile (expected schema '{Schemas.DriftProfile}' with an id and features)");
        }

        foreach (var f in profile.Features)
        {
            if (f.Kind == "numeric" && f.Edges.Count + 1 != f.Proportions.Count)
            {
                throw new DriftDataException($"{path}: feature '{f.Name}' has {f.Edges.Count} edges but {f.Proportions.Count} proportions (expected edges + 1)");
            }
        }

        return profile;
    }

    public static void Save(DriftProfile profile, string path)
    {
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(profile, ContractsJsonContext.Default.DriftProfile));
        File.Move(temp, path, overwrite: true);
    }
}
