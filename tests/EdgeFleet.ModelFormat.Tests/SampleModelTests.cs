using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;

namespace EdgeFleet.ModelFormat.Tests;

[Trait("Category", "Unit")]
public sealed class SampleModelTests
{
    [Fact]
    public void Build_SameOptions_SameBytes()
    {
        var a = SampleModelBuilder.Build(TestModels.SmallClassifier);
        var b = SampleModelBuilder.Build(TestModels.SmallClassifier);
        var c = SampleModelBuilder.Build(TestModels.SmallClassifier with { Seed = 99 });

        Assert.Equal(a.Onnx, b.Onnx);
        Assert.Equal(a.Manifest.Artifact.Sha256, b.Manifest.Artifact.Sha256);
        Assert.NotEqual(a.Onnx, c.Onnx);
    }

    [Fact]
    public void Build_Classifier_DeclaresWhatItsManifestSays()
    {
        var model = SampleModelBuilder.Build(TestModels.SmallClassifier with { Classes = 7, InputSize = 96 });
        var info = OnnxModelInfo.Read(new MemoryStream(model.Onnx), "memory");

        Assert.Empty(ManifestFile.Validate(model.Manifest));
        var input = Assert.Single(info.Inputs);
        Assert.Equal(("input", "float32"), (input.Name, input.ElementType));
        Assert.Equal([1L, 3, 96, 96], input.ManifestShape);
        Assert.Equal([1L, 7], Assert.Single(info.Outputs).ManifestShape);
        Assert.Equal(17, info.Opsets[""]);
        Assert.Equal("edgefleet", info.ProducerName);
        Assert.Equal("classification", info.Metadata["edgefleet.task"]);
        Assert.Equal(7, model.Manifest.Labels.Count);
        var expected = Assert.Single(model.Manifest.SelfTest!.Expected);
        Assert.Equal(7, expected.Values.Count);
        Assert.Equal(1.0, expected.Sum, 5); // softmax
    }

    [Fact]
    public void Build_Detector_HasYoloV5OutputOnAStride8Grid()
    {
        var model = SampleModelBuilder.Build(TestModels.SmallDetector with { InputSize = 128, Classes = 4 });
        var info = OnnxModelInfo.Read(new MemoryStream(model.Onnx), "memory");

        Assert.Equal([1L, 16 * 16, 9], Assert.Single(info.Outputs).ManifestShape);
        Assert.Equal("yolov5", model.Manifest.Decoding.Format);
        Assert.Equal(ResizeMode.Letterbox, model.Manifest.Input.Resize);
        Assert.Equal(256, model.Manifest.SelfTest!.Expected[0].Values.Count); // sampled: 2304 values
    }

    [Fact]
    public void Build_BadShapeFault_InputDiffersFromManifest()
    {
        var model = SampleModelBuilder.Build(TestModels.SmallClassifier with { Fault = SampleFault.BadShape });
        var info = OnnxModelInfo.Read(new MemoryStream(model.Onnx), "memory");

        Assert.Equal([1L, 3, 80, 80], info.Inputs[0].ManifestShape);
        Assert.Equal([1L, 3, 64, 64], model.Manifest.Input.Shape);
    }

    [Fact]
    public void Build_SlowFault_HasAboutTenTimesTheConvolutions()
    {
        var healthy = SampleModelBuilder.Build(TestModels.SmallClassifier with { Depth = 2 });
        var slow = SampleModelBuilder.Build(TestModels.SmallClassifier with { Depth = 2, Fault = SampleFault.Slow });

        Assert.Contains("depth 2,", healthy.Manifest.Description, StringComparison.Ordinal);
        Assert.Contains("depth 22,", slow.Manifest.Description, StringComparison.Ordinal); // (27 + 144·2)·10 = 27 + 144·d → d ≈ 21.7
    }

    [Fact]
    public void Build_DynamicBatch_DeclaresASymbolicBatch()
    {
        var model = SampleModelBuilder.Build(TestModels.SmallClassifier with { DynamicBatch = true });
        var info = OnnxModelInfo.Read(new MemoryStream(model.Onnx), "memory");

        Assert.Null(info.Inputs[0].Shape[0]);
        Assert.Equal(-1, model.Manifest.Outputs[0].Shape[0]);
    }

    [Theory]
    [InlineData(8, 10, 1, "--input-size")]
    [InlineData(100, 10, 1, "multiple of 8")]
    [InlineData(64, 0, 1, "--classes")]
    [InlineData(64, 10, -1, "--depth")]
    public void Validate_BadOptions_NameTheFlag(int size, int classes, int depth, string expected)
    {
        var options = new SampleModelOptions { Task = ModelTask.Detection, InputSize = size, Classes = classes, Depth = depth };

        Assert.Contains(options.Validate(), e => e.Contains(expected, StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => SampleModelBuilder.Build(options));
    }

    [Fact]
    public void Read_NotAnOnnxFile_SaysSo()
    {
        using var dir = new TempDirectory();
        var path = dir.File("fake.onnx");
        File.WriteAllText(path, "<html>404 not found</html>");

        var ex = Assert.Throws<OnnxFormatException>(() => OnnxModelInfo.Read(path));
        Assert.Contains("fake.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not an ONNX model", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MissingFile_SaysSo()
    {
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxModelInfo.Read("/nonexistent/m.onnx"));
        Assert.Contains("/nonexistent/m.onnx", ex.Message, StringComparison.Ordinal);
    }
}
