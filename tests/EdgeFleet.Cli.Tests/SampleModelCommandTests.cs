using System.Diagnostics;
using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>The real <c>edgefleet</c> executable, run as a process.</summary>
[Trait("Category", "Integration")]
public sealed class SampleModelCommandTests
{
    internal static (int Code, string Out, string Err) Edgefleet(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgefleet.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr);
    }

    [Fact]
    public void SampleModel_Detection_WritesModelAndManifest()
    {
        using var dir = new TempDirectory();
        var path = dir.File("det.onnx");

        var (code, output, error) = Edgefleet("sample-model", "--task", "detection", "--input-size", "96", "--classes", "3",
            "--name", "line-cam", "--version", "2.0.1", "--seed", "4", "--out", path);

        Assert.True(code == 0, error);
        Assert.Contains("det.manifest.json", output, StringComparison.Ordinal);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        Assert.Equal(("line-cam", "2.0.1", ModelTask.Detection), (manifest.Name, manifest.Version, manifest.Task));
        Assert.Equal(ManifestFile.HashFile(path), (manifest.Artifact.Sha256, manifest.Artifact.Size));
        Assert.Equal("det.onnx", manifest.Artifact.File);
        Assert.Equal([1L, 144, 8], OnnxModelInfo.Read(path).Outputs[0].ManifestShape);
    }

    [Fact]
    public void SampleModel_Json_PrintsTheManifest()
    {
        using var dir = new TempDirectory();

        var (code, output, _) = Edgefleet("sample-model", "--input-size", "32", "--out", dir.File("m.onnx"), "--json");

        Assert.Equal(0, code);
        Assert.Equal("sample-classifier", ManifestFile.Parse(System.Text.Encoding.UTF8.GetBytes(output), "stdout").Name);
    }

    [Theory]
    [InlineData("--task", "segmentation")]
    [InlineData("--fault", "explode")]
    [InlineData("--input-size", "4")]
    [InlineData("--version", "one")]
    public void SampleModel_BadArgument_FailsWithoutWriting(string flag, string value)
    {
        using var dir = new TempDirectory();
        var path = dir.File("m.onnx");

        var (code, _, error) = Edgefleet("sample-model", "--out", path, flag, value);

        Assert.NotEqual(0, code);
        Assert.Contains(value, error, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }
}
