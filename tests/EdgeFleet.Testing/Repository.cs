namespace EdgeFleet.Testing;

/// <summary>The checkout the tests run from: the directory above the test binaries that holds EdgeFleet.sln.</summary>
public static class Repository
{
    private static readonly Lazy<string> RootPath = new(Find);

    /// <summary>The repository's root directory.</summary>
    public static string Root => RootPath.Value;

    /// <summary>A path under the root, from its parts.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "EdgeFleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"EdgeFleet.sln not found above {AppContext.BaseDirectory}");
    }
}
