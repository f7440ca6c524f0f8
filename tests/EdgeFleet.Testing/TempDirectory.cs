namespace EdgeFleet.Testing;

/// <summary>A directory removed when disposed.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates a fresh empty directory under the system temp folder.</summary>
    public TempDirectory(string prefix = "edgefleet")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    /// <summary>The directory.</summary>
    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process the test started may still hold a file; the OS temp cleaner gets it later.
        }
    }
}
