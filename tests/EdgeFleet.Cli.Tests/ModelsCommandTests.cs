using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet models …</c> as a process, against <see cref="StandInControlPlane"/> (re-point at the real control plane later).</summary>
[Trait("Category", "Integration")]
public sealed class ModelsCommandTests
{
    [Fact]
    public async Task Push_Json_SendsManifestFirstAndTheFileIntactAndPrintsTheContract()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.LargeModel(dir);

        var result = await cli.RunAsync("models", "push", path, "--json");

        Assert.True(result.Code == 0, result.Err);
        var created = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!;
        Assert.Equal((manifest.Name, manifest.Version, manifest.Artifact.Sha256), (created.Name, created.Version, created.Sha256));
        var parts = server.PushedParts!;
        Assert.Equal(["manifest", "model"], parts.Select(p => p.Name));
        Assert.Equal(("large.onnx", manifest.Artifact.Sha256, manifest.Artifact.Size), (parts[1].FileName, parts[1].Sha256, parts[1].Length));
        Assert.Equal("", result.Err);
    }

    [Fact]
    public async Task Push_NameAndVersionOverride_UsedInUrlAndManifestPart()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir, name: "line-cam", version: "1.0.0");

        var result = await cli.RunAsync("models", "push", path, "--name", "line-cam-v2", "--version", "2.1.0-rc.1");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("/api/v1/models/line-cam-v2/versions/2.1.0-rc.1", server.Requests.Single().Path);
        var sent = ManifestFile.Parse(System.Text.Encoding.UTF8.GetBytes(server.PushedParts![0].Text!), "manifest part");
        Assert.Equal(("line-cam-v2", "2.1.0-rc.1"), (sent.Name, sent.Version));
        Assert.Contains("pushed line-cam-v2 2.1.0-rc.1", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_ExplicitManifest_IsUsedInsteadOfTheOneBeside()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.SampleModel(dir);
        var other = dir.File("elsewhere.json");
        ManifestFile.Save(manifest with { Name = "from-elsewhere" }, other);

        var result = await cli.RunAsync("models", "push", path, "--manifest", other, "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("/api/v1/models/from-elsewhere/versions/1.0.0", server.Requests.Single().Path);
    }

    [Fact]
    public async Task Push_ServerRejectsManifest_PrintsTitleDetailAndFieldErrorsAndExitsOne()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir, name: "rejected");

        var result = await cli.RunAsync("models", "push", path, "--json");

        Assert.Equal(1, result.Code);
        Assert.Equal("", result.Out);
        Assert.Contains("error: Manifest mismatch (422", result.Err, StringComparison.Ordinal);
        Assert.Contains("the manifest does not describe the uploaded ONNX file", result.Err, StringComparison.Ordinal);
        Assert.Contains("manifest.artifact.sha256: does not match the uploaded file", result.Err, StringComparison.Ordinal);
        Assert.Contains("manifest.input.shape: the model's input is [1,3,64,64]", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_ExistingVersion_ExitsOneWithHint()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir, name: "existing");

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(1, result.Code);
        Assert.Contains("Version exists (409", result.Err, StringComparison.Ordinal);
        Assert.Contains("push with another --version", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_FileChangedAfterManifest_ExitsTwoWithoutUploading()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir);
        File.AppendAllText(path, "x");

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(2, result.Code);
        Assert.Contains("artifact.sha256: the manifest says", result.Err, StringComparison.Ordinal);
        Assert.Contains("artifact.size", result.Err, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Push_NoManifestBeside_ExitsTwoNamingIt()
    {
        using var cli = CliRunner.For(new Uri("http://127.0.0.1:9/"));
        using var dir = new TempDirectory();
        var path = dir.File("bare.onnx");
        File.WriteAllBytes(path, [1, 2, 3]);

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(2, result.Code);
        Assert.Contains("bare.manifest.json", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_BadVersionOverride_ExitsTwo()
    {
        using var cli = CliRunner.For(new Uri("http://127.0.0.1:9/"));
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir);

        var result = await cli.RunAsync("models", "push", path, "--version", "two");

        Assert.Equal(2, result.Code);
        Assert.Contains("version: 'two' is not a semantic version", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_ServerUnreachable_ExitsThree()
    {
        using var cli = CliRunner.For(new Uri($"http://127.0.0.1:{FreePort.Next()}/"));
        using var dir = new TempDirectory();
        var (path, _) = TestFiles.SampleModel(dir);

        var result = await cli.RunAsync("models", "push", path, "--json");

        Assert.Equal(3, result.Code);
        Assert.Contains("cannot connect to http://127.0.0.1:", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task List_Json_IsExactlyTheServersBody()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "list", "--json");

        Assert.True(result.Code == 0, result.Err);
        var models = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.IReadOnlyListModelSummary)!;
        Assert.Equal(["line-cam", "sorter"], models.Select(m => m.Name));
        Assert.Equal(JsonSerializer.Serialize(models, ApiJsonContext.Default.IReadOnlyListModelSummary), result.Out.TrimEnd('\n'));
    }

    [Fact]
    public async Task List_Human_ShowsATable()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "list");

        Assert.True(result.Code == 0, result.Err);
        var row = result.Out.Split('\n').Single(l => l.Contains("line-cam", StringComparison.Ordinal));
        Assert.Contains("detection", row, StringComparison.Ordinal);
        Assert.Contains("1.2.0", row, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_Version_JsonParsesAsModelVersionInfo()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "show", "line-cam", "--version", "1.1.0", "--json");

        Assert.True(result.Code == 0, result.Err);
        var version = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!;
        Assert.Equal(("line-cam", "1.1.0", 0.91), (version.Name, version.Version, version.Metadata.Metrics!["top1"]));
    }

    [Fact]
    public async Task Show_Model_ListsItsVersions()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "show", "line-cam");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains(result.Out.Split('\n'), l => l.Contains("1.0.0", StringComparison.Ordinal) && l.Contains("production", StringComparison.Ordinal));
        Assert.Contains(result.Out.Split('\n'), l => l.Contains("1.1.0", StringComparison.Ordinal) && l.Contains("staging", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Show_UnknownModel_ExitsOneWithNotFound()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "show", "missing");

        Assert.Equal(1, result.Code);
        Assert.Contains("Not Found (404", result.Err, StringComparison.Ordinal);
        Assert.Contains("edgefleet models list", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_StageAndReason_SentAsStageChangeRequest()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "promote", "line-cam", "1.1.0", "--stage", "production", "--reason", "bake passed");

        Assert.True(result.Code == 0, result.Err);
        var request = server.Requests.Single();
        Assert.Equal(("POST", "/api/v1/models/line-cam/versions/1.1.0/stage"), (request.Method, request.Path));
        Assert.Equal(new StageChangeRequest { Stage = "production", Reason = "bake passed" }, JsonSerializer.Deserialize(request.Body, ApiJsonContext.Default.StageChangeRequest));
        Assert.Contains("line-cam 1.1.0 is now in stage production", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_UnknownStage_ExitsTwoWithoutARequest()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "promote", "line-cam", "1.1.0", "--stage", "live");

        Assert.Equal(2, result.Code);
        Assert.Contains("live", result.Err, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task History_Human_ListsEveryTransition()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("models", "history", "line-cam");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains("bake passed", result.Out, StringComparison.Ordinal);
        Assert.Contains("2026-11-20 10:00:00Z", result.Out, StringComparison.Ordinal);
    }
}
