using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

internal static class TestFiles
{
    /// <summary>A real ONNX classifier (<see cref="TestModels.SmallClassifier"/>, about 13 KB) named <paramref name="name"/>, with its manifest beside it.</summary>
    public static (string Path, ModelManifest Manifest) SampleModel(TempDirectory dir, string name, string version = "1.0.0", string fileName = "cls.onnx")
    {
        var path = dir.File(fileName);
        var manifest = SampleModelBuilder.Write(TestModels.SmallClassifier with { Name = name, Version = version }, path);
        return (path, manifest);
    }

    /// <summary>
    /// A real ONNX classifier of about 2.4 MB (wide convolutions on a 16×16 input: big weights, little compute), so
    /// an upload takes many 64 KiB chunks.
    /// </summary>
    public static (string Path, ModelManifest Manifest) LargeModel(TempDirectory dir, string name)
    {
        var path = dir.File("large.onnx");
        var manifest = SampleModelBuilder.Write(new SampleModelOptions { InputSize = 16, Classes = 10, Width = 128, Depth = 4, Seed = 5, Name = name }, path);
        return (path, manifest);
    }

    /// <summary>
    /// A 96×96 classifier and, in another file, the manifest of a 64×64 one whose artifact hash and size were
    /// rewritten to the 96×96 file's: the CLI's local hash check passes, and only the server, which reads the ONNX
    /// graph, can tell that the input shape is wrong.
    /// </summary>
    public static (string Model, string Manifest) MismatchedModel(TempDirectory dir, string name)
    {
        var model = dir.File("cls96.onnx");
        File.Copy(TestModels.Get(TestModels.SmallClassifier with { InputSize = 96 }), model);
        var small = ManifestFile.Load(ManifestFile.PathFor(TestModels.Get(TestModels.SmallClassifier)));
        var (sha256, size) = ManifestFile.HashFile(model);
        var manifest = dir.File("cls64.manifest.json");
        ManifestFile.Save(small with { Name = name, Artifact = new ManifestArtifact { File = "cls96.onnx", Sha256 = sha256, Size = size } }, manifest);
        return (model, manifest);
    }
}

internal static class Unique
{
    /// <summary>A model name, device id or tag key no other test uses: tests share a control plane per class.</summary>
    public static string Name(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];
}
