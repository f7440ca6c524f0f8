using EdgeFleet.Agent.Ota;
using EdgeFleet.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

public sealed class ModelStoreTests
{
    private static InstalledModel Install(ModelStore store, FakeTimeProvider time, string version)
    {
        var staging = store.StagingDirectory("cls", version);
        Directory.CreateDirectory(staging);
        var model = ModelStore.ModelFile(staging, "cls");
        File.WriteAllText(model, version);
        File.WriteAllText(ModelStore.ManifestPath(model), "{}");
        File.WriteAllText(ModelStore.SignaturePath(model), "sig");
        File.WriteAllText(model + ModelStore.PartSuffix, "left over");
        time.Advance(TimeSpan.FromMinutes(1));
        return store.Install("cls", version);
    }

    [Fact]
    public void Install_MovesTheVerifiedFilesIntoTheVersionFolder()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider();
        var store = new ModelStore(dir.Path, time);

        var installed = Install(store, time, "1.0.0");

        Assert.Equal(Path.Combine(dir.Path, "models", "cls", "1.0.0", "cls.onnx"), installed.Path);
        Assert.Equal(installed, store.Find("cls", "1.0.0"));
        Assert.False(Directory.Exists(store.StagingDirectory("cls", "1.0.0")));
        Assert.False(File.Exists(installed.Path + ModelStore.PartSuffix));
        Assert.Null(store.Find("cls", "2.0.0"));
    }

    [Fact]
    public void Prune_KeepsTheNewestAndNeverTheRunningOrPreviousOne()
    {
        using var dir = new TempDirectory();
        var time = new FakeTimeProvider();
        var store = new ModelStore(dir.Path, time);
        var v1 = Install(store, time, "1.0.0");
        var v2 = Install(store, time, "2.0.0");
        Install(store, time, "3.0.0");
        Install(store, time, "4.0.0");
        var v5 = Install(store, time, "5.0.0");
        Directory.CreateDirectory(store.StagingDirectory("cls", "9.0.0"));

        var deleted = store.Prune(3, [v1, v5]);

        // Newest first: 5 (running), 4, 3 fill the three places; 1 is protected; 2 goes. The stale staging folder goes too.
        Assert.Null(store.Find("cls", "2.0.0"));
        Assert.NotNull(store.Find("cls", "1.0.0"));
        Assert.NotNull(store.Find("cls", "3.0.0"));
        Assert.NotNull(store.Find("cls", "4.0.0"));
        Assert.NotNull(store.Find("cls", "5.0.0"));
        Assert.Contains(Path.GetDirectoryName(v2.Path)!, deleted);
        Assert.False(Directory.Exists(store.StagingDirectory("cls", "9.0.0")));
    }

    [Theory]
    [InlineData("../etc", "1.0.0")]
    [InlineData("cls", "../../1.0.0")]
    [InlineData("cls", "1.0")]
    [InlineData("Cls", "1.0.0")]
    public void Paths_RefuseNamesThatAreNotModelNamesOrVersions(string name, string version)
    {
        using var dir = new TempDirectory();
        var store = new ModelStore(dir.Path, new FakeTimeProvider());

        Assert.Throws<ArgumentException>(() => store.VersionDirectory(name, version));
    }
}
