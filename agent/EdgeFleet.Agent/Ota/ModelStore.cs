using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Ota;

/// <summary>
/// Models received over the air, one folder per version: <c>StateDirectory/models/{name}/{version}/{name}.onnx</c> with
/// <c>{name}.manifest.json</c> (the exact bytes the registry signed), <c>{name}.manifest.json.sig</c> (DER) and, when the
/// registry has one, <c>{name}.profile.json</c>. Downloads go to <c>models/.staging/{name}/{version}/</c> first and move
/// into place only when verified. Names and versions are checked before they become paths (no traversal).
/// </summary>
public sealed class ModelStore
{
    public const string SignatureSuffix = ".sig";
    public const string PartSuffix = ".part";

    private readonly TimeProvider _time;

    public ModelStore(string stateDirectory, TimeProvider time)
    {
        Root = Path.Combine(Path.GetFullPath(stateDirectory), "models");
        _time = time;
    }

    public string Root { get; }

    public string StagingDirectory(string name, string version) => Path.Combine(Root, ".staging", Checked(name, version));

    public string VersionDirectory(string name, string version) => Path.Combine(Root, Checked(name, version));

    /// <summary>The .onnx path of a version inside <paramref name="directory"/> (a version or staging folder).</summary>
    public static string ModelFile(string directory, string name) => Path.Combine(directory, name + ".onnx");

    public static string ManifestPath(string modelPath) => ManifestFile.PathFor(modelPath);

    public static string SignaturePath(string modelPath) => ManifestFile.PathFor(modelPath) + SignatureSuffix;

    /// <summary>The installed model of that version, or null when it is not (completely) on disk.</summary>
    public InstalledModel? Find(string name, string version)
    {
        var path = ModelFile(VersionDirectory(name, version), name);
        return File.Exists(path) && File.Exists(ManifestPath(path)) && File.Exists(SignaturePath(path))
            ? new InstalledModel(name, version, path)
            : null;
    }

    /// <summary>Moves a verified staging folder into place (replacing an incomplete earlier copy) and returns the model.</summary>
    public InstalledModel Install(string name, string version)
    {
        var staging = StagingDirectory(name, version);
        var target = VersionDirectory(name, version);
        var parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        foreach (var part in Directory.EnumerateFiles(staging, "*" + PartSuffix))
        {
            File.Delete(part);
        }

        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.Move(staging, target);
        DurableFile.SyncDirectory(parent);
        Directory.SetLastWriteTimeUtc(target, _time.GetUtcNow().UtcDateTime);
        return new InstalledModel(name, version, ModelFile(target, name));
    }

    /// <summary>
    /// Deletes installed versions beyond the newest <paramref name="keep"/> (by install time) and staging folders of
    /// other versions, never one in <paramref name="protect"/>. Returns the folders deleted.
    /// </summary>
    public IReadOnlyList<string> Prune(int keep, IEnumerable<InstalledModel?> protect, (string Name, string Version)? staging = null)
    {
        var protectedDirs = protect.OfType<InstalledModel>().Select(m => Path.GetDirectoryName(Path.GetFullPath(m.Path))!).ToHashSet(StringComparer.Ordinal);
        var deleted = new List<string>();
        if (!Directory.Exists(Root))
        {
            return deleted;
        }

        var versions = Directory.EnumerateDirectories(Root)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .SelectMany(Directory.EnumerateDirectories)
            .Select(d => new DirectoryInfo(d))
            .OrderByDescending(d => d.LastWriteTimeUtc)
            .ToList();
        var kept = 0;
        foreach (var dir in versions)
        {
            if (protectedDirs.Contains(dir.FullName))
            {
                kept++;
                continue;
            }

            if (kept < keep)
            {
                kept++;
                continue;
            }

            dir.Delete(recursive: true);
            deleted.Add(dir.FullName);
        }

        var stagingRoot = Path.Combine(Root, ".staging");
        var keepStaging = staging is { } s ? StagingDirectory(s.Name, s.Version) : null;
        if (Directory.Exists(stagingRoot))
        {
            foreach (var dir in Directory.EnumerateDirectories(stagingRoot).SelectMany(Directory.EnumerateDirectories))
            {
                if (!string.Equals(Path.GetFullPath(dir), keepStaging, StringComparison.Ordinal))
                {
                    Directory.Delete(dir, recursive: true);
                    deleted.Add(dir);
                }
            }
        }

        foreach (var empty in Directory.EnumerateDirectories(Root).Concat(Directory.Exists(stagingRoot) ? Directory.EnumerateDirectories(stagingRoot) : []))
        {
            if (!Directory.EnumerateFileSystemEntries(empty).Any() && !string.Equals(empty, stagingRoot, StringComparison.Ordinal))
            {
                Directory.Delete(empty);
            }
        }

        return deleted;
    }

    private static string Checked(string name, string version)
    {
        if (!ManifestFile.IsValidName(name))
        {
            throw new ArgumentException($"'{name}' is not a valid model name", nameof(name));
        }

        if (!SemVer.TryParse(version, out _) || version.Contains('/', StringComparison.Ordinal) || version.Contains('\\', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{version}' is not a semantic version", nameof(version));
        }

        return Path.Combine(name, version);
    }
}
