using EdgeFleet.Testing;

namespace EdgeFleet.Onnx.Tests;

/// <summary>
/// The start-up check on a native library, before the managed API may touch it. These open libraries in the test
/// host without handing them to the managed API (that happens once per process, in <see cref="OnnxRuntime.Load"/>);
/// the same checks through the agent binary are in EdgeFleet.IntegrationTests.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OrtLibraryTests
{
    [Fact]
    public void Open_LibraryOlderThanThePackage_SaysOlderThanAndHowToFix()
    {
        using var dir = new TempDirectory();
        var fake = FakeOnnxRuntime.Build(dir.Path, "1.16.3");
        var library = OrtLibrary.Open(fake, "EDGEFLEET_ORT_LIB");

        Assert.Equal("1.16.3", library.Version);
        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => library.EnsureAtLeast(OnnxRuntime.RequiredVersion, "EDGEFLEET_ORT_LIB"));
        Assert.StartsWith($"ONNX Runtime 1.16.3 at {fake} is older than 1.30.0 that this agent needs. Fix: install ONNX Runtime ≥ 1.30.0",
            ex.Message, StringComparison.Ordinal);
        Assert.Contains("EDGEFLEET_ORT_LIB", ex.Message, StringComparison.Ordinal);
        Assert.Contains("an agent built against an older Microsoft.ML.OnnxRuntime package", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_LibraryOfTheSameMinorOrNewer_Passes()
    {
        using var dir = new TempDirectory();
        var library = OrtLibrary.Open(FakeOnnxRuntime.Build(dir.Path, "1.30.1"), "test");

        library.EnsureAtLeast(new Version(1, 30, 0), "test");
        library.EnsureAtLeast(new Version(1, 29, 2), "test");
    }

    [Fact]
    public void Open_PackagedLibrary_ReportsItsVersion()
    {
        var runtime = OnnxRuntime.Load();
        var library = OrtLibrary.Open(runtime.LibraryPath, "test");

        Assert.Equal(runtime.Version, library.Version);
        Assert.Equal(runtime.LibraryPath, library.Path);
    }

    [Fact]
    public void Open_MissingFile_NamesThePathAndTheFix()
    {
        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => OrtLibrary.Open("/nonexistent/libonnxruntime.so.1", "EDGEFLEET_ORT_LIB"));

        Assert.StartsWith("ONNX Runtime native library not found at /nonexistent/libonnxruntime.so.1 (set by EDGEFLEET_ORT_LIB). Fix: ",
            ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_SharedLibraryThatIsNotOnnxRuntime_SaysSo()
    {
        var zlib = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? "/usr/lib/aarch64-linux-gnu/libz.so.1"
            : "/usr/lib/x86_64-linux-gnu/libz.so.1";

        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => OrtLibrary.Open(zlib, "EDGEFLEET_ORT_LIB"));

        Assert.StartsWith($"{zlib} (set by EDGEFLEET_ORT_LIB) is not ONNX Runtime: it has no OrtGetApiBase export. Fix: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_FileThatIsNotALibrary_SaysItCannotLoad()
    {
        using var dir = new TempDirectory();
        var fake = dir.File("libonnxruntime.so.1");
        File.WriteAllText(fake, "not an ELF file");

        var ex = Assert.Throws<OnnxRuntimeNotFoundException>(() => OrtLibrary.Open(fake, "EDGEFLEET_ORT_LIB"));

        Assert.StartsWith($"Cannot load ONNX Runtime from {fake} (set by EDGEFLEET_ORT_LIB): ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Fix: ", ex.Message, StringComparison.Ordinal);
    }
}

[Trait("Category", "Unit")]
public sealed class OrtVersionTests
{
    [Theory]
    [InlineData("1.30.0", 1, 30, 0)]
    [InlineData("1.16.3-jetson", 1, 16, 3)]
    [InlineData("1.18.1+cu12", 1, 18, 1)]
    [InlineData("1.20", 1, 20, 0)]
    public void TryParseVersion_VersionStrings_ReadsMajorMinorPatch(string text, int major, int minor, int patch)
    {
        Assert.True(OrtLibrary.TryParseVersion(text, out var version));
        Assert.Equal(new Version(major, minor, patch), version);
    }

    [Theory]
    [InlineData("")]
    [InlineData("unknown")]
    public void TryParseVersion_Garbage_Fails(string text) => Assert.False(OrtLibrary.TryParseVersion(text, out _));
}
