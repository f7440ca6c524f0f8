using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

internal static class TestFiles
{
    /// <summary>A generated ONNX model (a few kilobytes) with its manifest beside it.</summary>
    public static (string Path, ModelManifest Manifest) SampleModel(TempDirectory dir, string fileName = "cls.onnx", string name = "line-cam", string version = "1.0.0")
    {
        var path = dir.File(fileName);
        var manifest = SampleModelBuilder.Write(new SampleModelOptions { InputSize = 32, Classes = 3, Name = name, Version = version }, path);
        return (path, manifest);
    }

    /// <summary>
    /// A file of random bytes, several upload chunks long, described by a valid manifest: the CLI never parses the
    /// ONNX, so this checks that a large body arrives intact.
    /// </summary>
    public static (string Path, ModelManifest Manifest) LargeModel(TempDirectory dir, int bytes = 3 * 1024 * 1024 + 17)
    {
        var (_, template) = SampleModel(dir, "template.onnx");
        var path = dir.File("large.onnx");
        var data = new byte[bytes];
        new Random(42).NextBytes(data);
        File.WriteAllBytes(path, data);
        var (sha256, size) = ManifestFile.HashFile(path);
        var manifest = template with { Artifact = template.Artifact with { File = "large.onnx", Sha256 = sha256, Size = size } };
        ManifestFile.Save(manifest, ManifestFile.PathFor(path));
        return (path, manifest);
    }
}
