using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>
/// <c>edgefleet models …</c> as a process against the real control plane (one per class, SQLite, no broker), with
/// real sample ONNX models; every test uses model names of its own.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ModelsCommandTests : IClassFixture<ControlPlaneProcess>, IDisposable
{
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public ModelsCommandTests(ControlPlaneProcess cp)
    {
        _cp = cp;
        _errorsBefore = cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    private async Task<ModelVersionInfo> PushAsync(CliRunner cli, TempDirectory dir, string name, string version)
    {
        var (path, _) = TestFiles.SampleModel(dir, name, version, $"{name}-{version}.onnx");
        var result = await cli.RunAsync("models", "push", path, "--json");
        Assert.True(result.Code == 0, result.Err);
        return JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!;
    }

    private async Task<HttpStatusCode> StatusOfAsync(string path)
    {
        using var admin = _cp.CreateClient(_cp.AdminToken);
        using var response = await admin.GetAsync(new Uri(path, UriKind.Relative));
        return response.StatusCode;
    }

    [Fact]
    public async Task Push_LargeModelJson_StoredByteForByteAndPrintsTheContract()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("large");
        var (path, manifest) = TestFiles.LargeModel(dir, name);

        var result = await cli.RunAsync("models", "push", path, "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("", result.Err);
        var created = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!;
        Assert.Equal((name, "1.0.0", Stages.None, "classification"), (created.Name, created.Version, created.Stage, created.Task));
        Assert.Equal((manifest.Artifact.Sha256, manifest.Artifact.Size), (created.Sha256, created.Size));
        Assert.Equal("admin", created.CreatedBy);
        using var admin = _cp.CreateClient(_cp.AdminToken);
        Assert.Equal(await File.ReadAllBytesAsync(path), await admin.GetByteArrayAsync(new Uri(created.ArtifactUrl!.TrimStart('/'), UriKind.Relative)));
    }

    [Fact]
    public async Task Push_NameAndVersionOverride_RegisteredAndSignedUnderThem()
    {
        using var cli = CliRunner.For(_cp);
        var name = Unique.Name("renamed");

        // The shared sample model, whose own manifest calls it sample-classifier 1.0.0.
        var result = await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--name", name, "--version", "2.1.0-rc.1");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains($"pushed {name} 2.1.0-rc.1 (stage none)", result.Out, StringComparison.Ordinal);
        Assert.Contains($"edgefleet models promote {name} 2.1.0-rc.1 --stage staging", result.Out, StringComparison.Ordinal);
        using var admin = _cp.CreateClient(_cp.AdminToken);
        var served = ManifestFile.Parse(await admin.GetByteArrayAsync(new Uri($"api/v1/models/{name}/versions/2.1.0-rc.1/manifest", UriKind.Relative)), "served");
        Assert.Equal((name, "2.1.0-rc.1"), (served.Name, served.Version));
        var signature = await admin.GetByteArrayAsync(new Uri($"api/v1/models/{name}/versions/2.1.0-rc.1/manifest.sig", UriKind.Relative));
        using var key = ManifestSigning.ImportPublicKey(await admin.GetStringAsync(new Uri("api/v1/registry/key", UriKind.Relative)));
        var bytes = await admin.GetByteArrayAsync(new Uri($"api/v1/models/{name}/versions/2.1.0-rc.1/manifest", UriKind.Relative));
        Assert.True(ManifestSigning.VerifyDetached(bytes, signature, key, out var reason), reason);
    }

    [Fact]
    public async Task Push_ExplicitManifest_IsUsedInsteadOfTheOneBeside()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var beside = Unique.Name("beside");
        var elsewhere = Unique.Name("elsewhere");
        var (path, manifest) = TestFiles.SampleModel(dir, beside);
        var other = dir.File("elsewhere.json");
        ManifestFile.Save(manifest with { Name = elsewhere }, other);

        var result = await cli.RunAsync("models", "push", path, "--manifest", other, "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal(elsewhere, JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!.Name);
        Assert.Equal(HttpStatusCode.NotFound, await StatusOfAsync($"api/v1/models/{beside}"));
    }

    [Fact]
    public async Task Push_ManifestDoesNotDescribeTheModel_PrintsThe422FieldErrorsAndExitsOne()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("mismatch");
        var (model, manifest) = TestFiles.MismatchedModel(dir, name);

        var result = await cli.RunAsync("models", "push", model, "--manifest", manifest, "--json");

        Assert.Equal(1, result.Code);
        Assert.Equal("", result.Out);
        Assert.Contains("error: the manifest does not match the model file (422 ", result.Err, StringComparison.Ordinal);
        Assert.Contains("  manifest.input.shape[2]: 64 in the manifest, 96 in the model", result.Err, StringComparison.Ordinal);
        Assert.Contains("  manifest.input.shape[3]: 64 in the manifest, 96 in the model", result.Err, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, await StatusOfAsync($"api/v1/models/{name}"));
    }

    [Fact]
    public async Task Push_FieldErrors_EachPrintedOnce()
    {
        // The server's detail repeats the field errors ("a: x; b: y"); the CLI shows each once.
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var (model, manifest) = TestFiles.MismatchedModel(dir, Unique.Name("once"));

        var result = await cli.RunAsync("models", "push", model, "--manifest", manifest);

        Assert.Equal(1, result.Code);
        var lines = result.Err.Split('\n');
        Assert.Single(lines, l => l.Contains("shape[2]", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("shape[3]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Push_ExistingVersion_Exits409WithHint()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("twice");
        var (path, _) = TestFiles.SampleModel(dir, name);
        var first = await cli.RunAsync("models", "push", path);
        Assert.True(first.Code == 0, first.Err);

        var second = await cli.RunAsync("models", "push", path);

        Assert.Equal(1, second.Code);
        Assert.Contains("error: conflict (409 Conflict)", second.Err, StringComparison.Ordinal);
        Assert.Contains($"model {name} version 1.0.0 already exists", second.Err, StringComparison.Ordinal);
        Assert.Contains("push with another --version", second.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_ViewerToken_Exits403NamingTheRequestAndRegistersNothing()
    {
        using var cli = CliRunner.For(_cp, await _cp.CreateTokenAsync(ApiRole.Viewer));
        using var dir = new TempDirectory();
        var name = Unique.Name("viewer");
        var (path, _) = TestFiles.SampleModel(dir, name);

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(1, result.Code);
        Assert.Contains($"error: the token's role does not allow POST api/v1/models/{name}/versions/1.0.0 (403 Forbidden)", result.Err, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, await StatusOfAsync($"api/v1/models/{name}"));
    }

    [Fact]
    public async Task Push_FileChangedAfterManifest_ExitsTwoWithoutUploading()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("changed");
        var (path, _) = TestFiles.SampleModel(dir, name);
        await File.AppendAllTextAsync(path, "x");

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(2, result.Code);
        Assert.Contains("artifact.sha256: the manifest says", result.Err, StringComparison.Ordinal);
        Assert.Contains("artifact.size", result.Err, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, await StatusOfAsync($"api/v1/models/{name}"));
    }

    [Fact]
    public async Task Push_NoManifestBeside_ExitsTwoNamingIt()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");
        using var dir = new TempDirectory();
        var path = dir.File("bare.onnx");
        File.Copy(TestModels.Get(TestModels.SmallClassifier), path);

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(2, result.Code);
        Assert.Contains("bare.manifest.json", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_BadVersionOverride_ExitsTwo()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--version", "two");

        Assert.Equal(2, result.Code);
        Assert.Contains("version: 'two' is not a semantic version", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_ServerUnreachable_ExitsThree()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("models", "push", TestModels.Get(TestModels.SmallClassifier), "--json");

        Assert.Equal(3, result.Code);
        Assert.Contains("cannot connect to http://127.0.0.1:", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task List_Json_IsExactlyTheServersBodyAndParsesAsModelSummaries()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("listed");
        await PushAsync(cli, dir, name, "1.0.0");
        await PushAsync(cli, dir, name, "1.1.0");

        var result = await cli.RunAsync("models", "list", "--json");

        Assert.True(result.Code == 0, result.Err);
        var model = Assert.Single(JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.IReadOnlyListModelSummary)!, m => m.Name == name);
        Assert.Equal((2, "1.1.0", "classification"), (model.VersionCount, model.LatestVersion, model.Task));
        using var admin = _cp.CreateClient(_cp.AdminToken);
        Assert.Equal(await admin.GetStringAsync(new Uri("api/v1/models", UriKind.Relative)), result.Out.TrimEnd('\n'));
    }

    [Fact]
    public async Task List_Human_ShowsATableWithoutEscapeCodes()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("table");
        await PushAsync(cli, dir, name, "1.0.0");
        await PushAsync(cli, dir, name, "1.2.0");
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "production")).Code);

        var result = await cli.RunAsync("models", "list");

        Assert.True(result.Code == 0, result.Err);
        var row = Assert.Single(result.Out.Split('\n'), l => l.Contains(name, StringComparison.Ordinal));
        Assert.Equal([name, "classification", "2", "1.2.0", "1.0.0", "–"], row.Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)[..6]);
        Assert.DoesNotContain("\u001b[", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_Version_JsonParsesAsModelVersionInfoWithItsMetadata()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("meta");
        await PushAsync(cli, dir, name, "1.1.0");
        using (var admin = _cp.CreateClient(_cp.AdminToken))
        using (var patched = await admin.PatchAsJsonAsync($"api/v1/models/{name}/versions/1.1.0",
            new ModelVersionMetadata { Metrics = new Dictionary<string, double> { ["top1"] = 0.91 }, DatasetVersion = "ds-7" }, ApiJsonContext.Default.ModelVersionMetadata))
        {
            Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        }

        var json = await cli.RunAsync("models", "show", name, "--version", "1.1.0", "--json");
        var human = await cli.RunAsync("models", "show", name, "--version", "1.1.0");

        Assert.True(json.Code == 0, json.Err);
        var version = JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.ModelVersionInfo)!;
        Assert.Equal((name, "1.1.0", 0.91, "ds-7"), (version.Name, version.Version, version.Metadata.Metrics!["top1"], version.Metadata.DatasetVersion));
        Assert.True(human.Code == 0, human.Err);
        Assert.Contains("top1=0.91", human.Out, StringComparison.Ordinal);
        Assert.Contains("ds-7", human.Out, StringComparison.Ordinal);
        Assert.Contains(version.Sha256, human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_Model_ListsItsVersionsWithStages()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("shown");
        await PushAsync(cli, dir, name, "1.0.0");
        await PushAsync(cli, dir, name, "1.1.0");
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "production")).Code);
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.1.0", "--stage", "staging")).Code);

        var result = await cli.RunAsync("models", "show", name);
        var json = await cli.RunAsync("models", "show", name, "--json");

        Assert.True(result.Code == 0, result.Err);
        var lines = result.Out.Split('\n');
        Assert.Contains(lines, l => l.Contains("1.0.0", StringComparison.Ordinal) && l.Contains("production", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("1.1.0", StringComparison.Ordinal) && l.Contains("staging", StringComparison.Ordinal));
        var model = JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.ModelSummary)!;
        Assert.Equal("1.0.0", model.ProductionVersion);
        Assert.Equal(["1.1.0"], model.StagingVersions);
        Assert.Equal(["1.1.0", "1.0.0"], model.Versions!.Select(v => v.Version));
    }

    [Fact]
    public async Task Show_UnknownModel_ExitsOneWithTheServersNotFound()
    {
        using var cli = CliRunner.For(_cp);
        var name = Unique.Name("missing");

        var result = await cli.RunAsync("models", "show", name);

        Assert.Equal(1, result.Code);
        Assert.Contains("error: not found (404 Not Found)", result.Err, StringComparison.Ordinal);
        Assert.Contains($"model {name} does not exist", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_NameWithSlash_StaysOnePathSegmentAndIsRefusedAsAName()
    {
        using var cli = CliRunner.For(_cp);

        // Unescaped, "a/../b" would resolve to /api/v1/models/b and come back 404.
        var result = await cli.RunAsync("models", "show", "a/../b");

        Assert.Equal(1, result.Code);
        Assert.Contains("error: invalid request (400 Bad Request)", result.Err, StringComparison.Ordinal);
        Assert.Contains("name: 'a%2F..%2Fb' is not a valid model name", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_ToProduction_MovesTheStageAndArchivesThePreviousProductionVersion()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("promoted");
        await PushAsync(cli, dir, name, "1.0.0");
        await PushAsync(cli, dir, name, "1.1.0");
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "production")).Code);

        var result = await cli.RunAsync("models", "promote", name, "1.1.0", "--stage", "production", "--reason", "bake passed");
        var json = await cli.RunAsync("models", "show", name, "--version", "1.0.0", "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Contains($"{name} 1.1.0 is now in stage production", result.Out, StringComparison.Ordinal);
        Assert.Equal(Stages.Archived, JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.ModelVersionInfo)!.Stage);
    }

    [Fact]
    public async Task Promote_Json_ParsesAsModelVersionInfo()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("promote-json");
        await PushAsync(cli, dir, name, "0.3.0");

        var result = await cli.RunAsync("models", "promote", name, "0.3.0", "--stage", "staging", "--json");

        Assert.True(result.Code == 0, result.Err);
        var version = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.ModelVersionInfo)!;
        Assert.Equal((name, "0.3.0", Stages.Staging), (version.Name, version.Version, version.Stage));
    }

    [Fact]
    public async Task Promote_AlreadyInThatStage_Exits409()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("again");
        await PushAsync(cli, dir, name, "1.0.0");
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "staging")).Code);

        var result = await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "staging");

        Assert.Equal(1, result.Code);
        Assert.Contains("error: conflict (409 Conflict)", result.Err, StringComparison.Ordinal);
        Assert.Contains($"model {name} version 1.0.0 is already in staging", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_UnknownVersion_ExitsOneWithNotFound()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("noversion");
        await PushAsync(cli, dir, name, "1.0.0");

        var result = await cli.RunAsync("models", "promote", name, "9.9.9", "--stage", "staging");

        Assert.Equal(1, result.Code);
        Assert.Contains($"model {name} version 9.9.9 does not exist", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_UnknownStage_ExitsTwoWithoutARequest()
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("models", "promote", "line-cam", "1.1.0", "--stage", "live");

        Assert.Equal(2, result.Code);
        Assert.Contains("live", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task History_ListsEveryTransitionWithWhoAndWhy()
    {
        using var cli = CliRunner.For(_cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("history");
        await PushAsync(cli, dir, name, "1.0.0");
        await PushAsync(cli, dir, name, "1.1.0");
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.0.0", "--stage", "production", "--reason", "first release")).Code);
        Assert.Equal(0, (await cli.RunAsync("models", "promote", name, "1.1.0", "--stage", "production", "--reason", "bake passed")).Code);

        var json = await cli.RunAsync("models", "history", name, "--json");
        var human = await cli.RunAsync("models", "history", name);

        Assert.True(json.Code == 0, json.Err);
        var history = JsonSerializer.Deserialize(json.Out, ApiJsonContext.Default.IReadOnlyListStageHistoryEntry)!;
        Assert.Equal(
            [
                ("1.0.0", "", Stages.None, "pushed"),
                ("1.1.0", "", Stages.None, "pushed"),
                ("1.0.0", Stages.None, Stages.Production, "first release"),
                ("1.0.0", Stages.Production, Stages.Archived, "replaced by 1.1.0"),
                ("1.1.0", Stages.None, Stages.Production, "bake passed"),
            ],
            history.Select(e => (e.Version, e.From, e.To, e.Reason)));
        Assert.All(history, e => Assert.Equal("admin", e.By));
        Assert.True(human.Code == 0, human.Err);
        var rows = human.Out.Split('\n').Where(l => l.Contains("admin", StringComparison.Ordinal)).ToList();
        Assert.Equal(history.Count, rows.Count);
        Assert.Contains("replaced by 1.1.0", rows[3], StringComparison.Ordinal);
        Assert.Contains(history[4].At.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture), rows[4], StringComparison.Ordinal);
    }

    [Fact]
    public async Task History_UnknownModel_ExitsOneWithNotFound()
    {
        using var cli = CliRunner.For(_cp);
        var name = Unique.Name("nohistory");

        var result = await cli.RunAsync("models", "history", name);

        Assert.Equal(1, result.Code);
        Assert.Contains($"model {name} does not exist", result.Err, StringComparison.Ordinal);
    }
}

/// <summary>Pushes to a control plane started with a small upload limit (<c>ControlPlane__MaxUploadBytes=4096</c>).</summary>
[Trait("Category", "Integration")]
public sealed class ModelsPushLimitTests
{
    [Fact]
    public async Task Push_LargerThanTheServersLimit_Exits413WithTheLimitAndAHint()
    {
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            Environment = new Dictionary<string, string> { ["ControlPlane__MaxUploadBytes"] = "4096" },
        });
        using var cli = CliRunner.For(cp);
        using var dir = new TempDirectory();
        var name = Unique.Name("toolarge");
        var (path, manifest) = TestFiles.SampleModel(dir, name);
        Assert.True(manifest.Artifact.Size > 4096);

        var result = await cli.RunAsync("models", "push", path);

        Assert.Equal(1, result.Code);
        Assert.Contains("error: model too large (413 Payload Too Large)", result.Err, StringComparison.Ordinal);
        Assert.Contains("the upload is larger than the 4096 bytes allowed", result.Err, StringComparison.Ordinal);
        Assert.Contains("cls.onnx is larger than the server accepts", result.Err, StringComparison.Ordinal);
        using var admin = cp.CreateClient(cp.AdminToken);
        using var response = await admin.GetAsync(new Uri($"api/v1/models/{name}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
