using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>The model registry through the real HTTP stack; run once on SQLite and once on PostgreSQL.</summary>
public abstract class ModelsApiTests
{
    protected abstract Task<ControlPlaneFactory> CreateAsync(IReadOnlyDictionary<string, string?>? settings = null);

    internal static MultipartFormDataContent Upload(byte[] manifest, byte[] model, string fileName = "model.onnx")
    {
        var content = new MultipartFormDataContent();
        var m = new ByteArrayContent(manifest);
        m.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Add(m, "manifest", "manifest.json");
        var f = new ByteArrayContent(model);
        f.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(f, "model", fileName);
        return content;
    }

    internal static (byte[] Manifest, byte[] Model) Sample(SampleModelOptions? options = null)
    {
        var path = TestModels.Get(options ?? TestModels.SmallClassifier);
        return (File.ReadAllBytes(ManifestFile.PathFor(path)), File.ReadAllBytes(path));
    }

    internal static async Task<ModelVersionInfo> PushAsync(HttpClient client, string name, string version, SampleModelOptions? options = null)
    {
        var (manifest, model) = Sample(options);
        using var content = Upload(manifest, model);
        using var response = await client.PostAsync(new Uri($"/api/v1/models/{name}/versions/{version}", UriKind.Relative), content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.ModelVersionInfo))!;
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    [Fact]
    public async Task Push_SampleModel_IsStoredSignedAndDownloadable()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (_, bytes) = Sample();

        var pushed = await PushAsync(client, "people-counter", "1.2.0");

        Assert.Equal(("people-counter", "1.2.0", Stages.None, "classification"), (pushed.Name, pushed.Version, pushed.Stage, pushed.Task));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), pushed.Sha256);
        Assert.Equal(bytes.Length, pushed.Size);
        Assert.Equal(ControlPlaneFactory.AdminToken.Length > 0 ? "admin" : null, pushed.CreatedBy);

        var list = await client.GetFromJsonAsync("/api/v1/models", ApiJsonContext.Default.IReadOnlyListModelSummary);
        Assert.Equal("1.2.0", Assert.Single(list!).LatestVersion);

        using var download = await client.GetAsync(new Uri(pushed.ArtifactUrl!, UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(bytes, await download.Content.ReadAsByteArrayAsync());
        Assert.Equal(pushed.Sha256, download.Headers.GetValues("X-Content-SHA256").Single());
        Assert.Equal($"\"{pushed.Sha256}\"", download.Headers.ETag?.Tag);

        // The manifest is signed by the registry's key (detached), over exactly the bytes served; no signature inside.
        var manifestJson = await client.GetByteArrayAsync(new Uri(pushed.ManifestUrl!, UriKind.Relative));
        var manifest = ManifestFile.Parse(manifestJson, "served manifest");
        Assert.Equal(("people-counter", "1.2.0", pushed.Sha256), (manifest.Name, manifest.Version, manifest.Artifact.Sha256));
        Assert.DoesNotContain("\"signature\"", Encoding.UTF8.GetString(manifestJson), StringComparison.Ordinal);
        using var sigResponse = await client.GetAsync(new Uri(pushed.SignatureUrl!, UriKind.Relative));
        Assert.Equal("application/octet-stream", sigResponse.Content.Headers.ContentType?.MediaType);
        var signature = await sigResponse.Content.ReadAsByteArrayAsync();
        using var key = ECDsa.Create();
        key.ImportFromPem(await File.ReadAllTextAsync(Path.Combine(cp.DataDirectory, "keys", "registry-signing.pem")));
        using var pub = ManifestSigning.ImportPublicKey(await client.GetStringAsync(new Uri("/api/v1/registry/key", UriKind.Relative)));
        Assert.Equal(ManifestSigning.KeyId(key), sigResponse.Headers.GetValues("X-Signature-KeyId").Single());
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), pub.ExportSubjectPublicKeyInfo());
        Assert.True(ManifestSigning.VerifyDetached(manifestJson, signature, pub, out var reason), reason);
        var altered = manifestJson.ToArray();
        altered[^2] ^= 0x20;
        Assert.False(ManifestSigning.VerifyDetached(altered, signature, pub, out _));
    }

    [Fact]
    public async Task Download_Range_ResumesAndIfNoneMatchIsNotModified()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (_, bytes) = Sample();
        var pushed = await PushAsync(client, "cls", "1.0.0");

        using var range = new HttpRequestMessage(HttpMethod.Get, pushed.ArtifactUrl) { Headers = { Range = new RangeHeaderValue(100, null) } };
        using var partial = await client.SendAsync(range);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
        Assert.Equal(bytes[100..], await partial.Content.ReadAsByteArrayAsync());

        using var conditional = new HttpRequestMessage(HttpMethod.Get, pushed.ArtifactUrl) { Headers = { IfNoneMatch = { new EntityTagHeaderValue($"\"{pushed.Sha256}\"") } } };
        using var notModified = await client.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Fact]
    public async Task Push_SameVersionTwice_IsAConflict()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        await PushAsync(client, "cls", "1.0.0");
        var (manifest, model) = Sample();
        using var content = Upload(manifest, model);

        using var response = await client.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("already exists", (await ProblemAsync(response)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_FileThatIsNotOnnx_IsRefusedWithTheReason()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (manifest, _) = Sample();
        using var content = Upload(manifest, Encoding.UTF8.GetBytes("this is not a model"));

        using var response = await client.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ProblemAsync(response);
        Assert.Contains("not an ONNX model", problem.GetProperty("errors").GetProperty("model")[0].GetString(), StringComparison.Ordinal);
        using var list = await client.GetAsync(new Uri("/api/v1/models/cls", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, list.StatusCode); // nothing half-registered
    }

    [Fact]
    public async Task Push_ManifestOfAnotherModel_ListsEachMismatch()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (manifest, _) = Sample(TestModels.SmallClassifier);
        var (_, otherModel) = Sample(TestModels.SmallClassifier with { InputSize = 96 });
        using var content = Upload(manifest, otherModel);

        using var response = await client.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var errors = (await ProblemAsync(response)).GetProperty("errors");
        Assert.Contains(errors.EnumerateObject(), e => e.Name.StartsWith("manifest.input.shape", StringComparison.Ordinal));
        Assert.Contains(errors.EnumerateObject(), e => e.Name == "manifest.artifact.sha256");
    }

    [Fact]
    public async Task Push_InvalidManifest_NamesTheField()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (manifest, model) = Sample();
        var broken = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(manifest).Replace("\"task\": \"classification\"", "\"task\": \"segmentation\"", StringComparison.Ordinal));
        using var content = Upload(broken, model);

        using var response = await client.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("task", body, StringComparison.Ordinal);
        Assert.Contains("manifest", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_LargerThanTheLimit_Is413()
    {
        await using var cp = await CreateAsync(new Dictionary<string, string?> { ["ControlPlane:MaxUploadBytes"] = "4096" });
        using var client = cp.Client();
        var (manifest, model) = Sample();
        Assert.True(model.Length > 4096);
        using var content = Upload(manifest, model);

        using var response = await client.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData("Bad_Name", "1.0.0", "name")]
    [InlineData("../../etc", "1.0.0", "name")]
    [InlineData("cls", "1.0", "version")]
    [InlineData("cls", "latest", "version")]
    public async Task Push_BadNameOrVersion_Is400WithTheField(string name, string version, string field)
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        var (manifest, model) = Sample();
        using var content = Upload(manifest, model);

        using var response = await client.PostAsync(new Uri($"/api/v1/models/{Uri.EscapeDataString(name)}/versions/{version}", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await ProblemAsync(response)).GetProperty("errors").TryGetProperty(field, out _));
    }

    [Fact]
    public async Task Auth_NoToken401_ViewerCannotWrite403_ViewerCanRead()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        using var created = await admin.PostAsJsonAsync("/api/v1/tokens", new ApiTokenRequest { Name = "dashboard", Role = ApiRole.Viewer }, ApiJsonContext.Default.ApiTokenRequest);
        var viewerToken = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiTokenInfo))!.Token!;
        using var viewer = cp.Client(viewerToken);
        using var wrong = cp.Client("efp_not-a-real-token-000000000000000");
        var (manifest, model) = Sample();

        using (var r = await anonymous.GetAsync(new Uri("/api/v1/models", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }

        using (var r = await wrong.GetAsync(new Uri("/api/v1/models", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("unknown or revoked token", (await ProblemAsync(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        using (var content = Upload(manifest, model))
        using (var r = await viewer.PostAsync(new Uri("/api/v1/models/cls/versions/1.0.0", UriKind.Relative), content))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Contains("Viewer role", (await ProblemAsync(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        using (var r = await viewer.GetAsync(new Uri("/api/v1/tokens", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        using (var r = await viewer.GetAsync(new Uri("/api/v1/models", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        using (var r = await anonymous.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var openapi = await r.Content.ReadAsStringAsync();
            Assert.Contains("/api/v1/models/{name}/versions/{version}", openapi, StringComparison.Ordinal);
            Assert.Contains("/api/v1/models/{name}/versions/{version}/manifest.sig", openapi, StringComparison.Ordinal);
            Assert.Contains("/api/v1/devices/{id}/assignment", openapi, StringComparison.Ordinal);
            Assert.Contains("/api/v1/registry/key", openapi, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Stages_PromotingToProductionArchivesThePreviousOne_AndEverythingIsInTheHistoryAndAudit()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        await PushAsync(client, "cls", "1.0.0");
        await PushAsync(client, "cls", "1.1.0");

        async Task<ModelVersionInfo> Promote(string version, string stage, string reason)
        {
            using var r = await client.PostAsJsonAsync($"/api/v1/models/cls/versions/{version}/stage", new StageChangeRequest { Stage = stage, Reason = reason },
                ApiJsonContext.Default.StageChangeRequest);
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.ModelVersionInfo))!;
        }

        await Promote("1.0.0", Stages.Production, "first release");
        await Promote("1.1.0", Stages.Staging, "validate on the bench");
        var promoted = await Promote("1.1.0", Stages.Production, "better on the bench");

        Assert.Equal(Stages.Production, promoted.Stage);
        var model = await client.GetFromJsonAsync("/api/v1/models/cls", ApiJsonContext.Default.ModelSummary);
        Assert.Equal("1.1.0", model!.ProductionVersion);
        Assert.Equal(Stages.Archived, model.Versions!.Single(v => v.Version == "1.0.0").Stage);

        var history = await client.GetFromJsonAsync("/api/v1/models/cls/history", ApiJsonContext.Default.IReadOnlyListStageHistoryEntry);
        Assert.Equal(
            ["1.0.0: -> none", "1.1.0: -> none", "1.0.0: none -> production", "1.1.0: none -> staging", "1.0.0: production -> archived", "1.1.0: staging -> production"],
            history!.Select(h => $"{h.Version}: {h.From} -> {h.To}".Replace(":  ->", ": ->", StringComparison.Ordinal)));
        Assert.Contains(history!, h => h.Reason == "better on the bench" && h.By == "admin");

        using var again = await client.PostAsJsonAsync("/api/v1/models/cls/versions/1.1.0/stage", new StageChangeRequest { Stage = Stages.Production },
            ApiJsonContext.Default.StageChangeRequest);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        using var unknown = await client.PostAsJsonAsync("/api/v1/models/cls/versions/9.9.9/stage", new StageChangeRequest { Stage = Stages.Staging },
            ApiJsonContext.Default.StageChangeRequest);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        var audit = await client.GetFromJsonAsync("/api/v1/audit?target=model/cls", ApiJsonContext.Default.PageAuditEntry);
        Assert.Contains(audit!.Items, a => a.Action == "model.stage" && a.Target == "model/cls/1.1.0" && a.Details!.Contains("better on the bench", StringComparison.Ordinal));
        Assert.Equal(2, audit.Items.Count(a => a.Action == "model.push"));
    }

    [Fact]
    public async Task Metadata_AndDriftProfile_AreKeptWithTheVersion()
    {
        await using var cp = await CreateAsync();
        using var client = cp.Client();
        await PushAsync(client, "cls", "1.0.0");
        await PushAsync(client, "cls", "1.1.0");

        using var patch = await client.PatchAsJsonAsync("/api/v1/models/cls/versions/1.1.0", new ModelVersionMetadata
        {
            Metrics = new Dictionary<string, double> { ["top1"] = 0.91 },
            DatasetVersion = "shelves-2026-10",
            TrainingRun = "https://mlflow.example/runs/42",
            ParentVersion = "1.0.0",
        }, ApiJsonContext.Default.ModelVersionMetadata);
        Assert.True(patch.IsSuccessStatusCode, await patch.Content.ReadAsStringAsync());
        using var bad = await client.PatchAsJsonAsync("/api/v1/models/cls/versions/1.1.0", new ModelVersionMetadata { TrainingRun = "file:///etc/passwd" },
            ApiJsonContext.Default.ModelVersionMetadata);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var profile = new EdgeFleet.Contracts.Drift.DriftProfile
        {
            Id = "ref-1",
            Features = [new EdgeFleet.Contracts.Drift.ProfileFeature { Name = "luma_mean", Kind = "numeric", Count = 100, Edges = [0.5], Proportions = [0.5, 0.5] }],
        };
        using var put = await client.PutAsJsonAsync("/api/v1/models/cls/versions/1.1.0/drift-profile", profile, ApiJsonContext.Default.DriftProfile);
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);

        var version = await client.GetFromJsonAsync("/api/v1/models/cls/versions/1.1.0", ApiJsonContext.Default.ModelVersionInfo);
        Assert.Equal(0.91, version!.Metadata.Metrics!["top1"]);
        Assert.Equal("1.0.0", version.Metadata.ParentVersion);
        Assert.True(version.HasDriftProfile);
        var stored = await client.GetFromJsonAsync("/api/v1/models/cls/versions/1.1.0/drift-profile", ApiJsonContext.Default.DriftProfile);
        Assert.Equal("ref-1", stored!.Id);
    }
}

[Trait("Category", "Integration")]
public sealed class ModelsApiSqliteTests : ModelsApiTests
{
    protected override Task<ControlPlaneFactory> CreateAsync(IReadOnlyDictionary<string, string?>? settings = null) =>
        Task.FromResult(new ControlPlaneFactory(null, settings));
}

[Trait("Category", "Integration")]
[Collection(PostgresCollection.Name)]
public sealed class ModelsApiPostgresTests(PostgresFixture postgres) : ModelsApiTests
{
    protected override async Task<ControlPlaneFactory> CreateAsync(IReadOnlyDictionary<string, string?>? settings = null) =>
        new(await postgres.Server.CreateDatabaseAsync(), settings);
}
