using System.Net;
using System.Text.Json;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>ControlPlaneClient over real HTTP against the real control plane (one per class).</summary>
[Trait("Category", "Integration")]
public sealed class ControlPlaneClientTests : IClassFixture<ControlPlaneProcess>, IDisposable
{
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public ControlPlaneClientTests(ControlPlaneProcess cp)
    {
        _cp = cp;
        _errorsBefore = cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    [Fact]
    public async Task PushModelAsync_LargeModel_StoredByteForByteWithProgressPerChunk()
    {
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, _cp.AdminToken);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.LargeModel(dir, Unique.Name("client-large"));
        var reported = new List<long>();

        // The server refuses a 'model' part that comes before the 'manifest' part, so 201 also proves the order.
        var response = await new ControlPlaneClient(http).PushModelAsync(manifest, path, new Recorder(reported));

        Assert.Equal((manifest.Name, manifest.Version), (response.Value.Name, response.Value.Version));
        Assert.Equal((manifest.Artifact.Sha256, manifest.Artifact.Size), (response.Value.Sha256, response.Value.Size));
        Assert.Equal(await File.ReadAllBytesAsync(path), await http.GetByteArrayAsync(new Uri(response.Value.ArtifactUrl!.TrimStart('/'), UriKind.Relative)));
        Assert.Equal(new FileInfo(path).Length, reported[^1]);
        Assert.True(reported.Count > 1, "progress is reported per chunk");
    }

    [Fact]
    public async Task PushModelAsync_ManifestDoesNotDescribeTheFile_ExceptionCarriesProblemAndFieldErrors()
    {
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, _cp.AdminToken);
        using var dir = new TempDirectory();
        var (model, manifestPath) = TestFiles.MismatchedModel(dir, Unique.Name("client-mismatch"));
        var manifest = EdgeFleet.Contracts.Models.ManifestFile.Load(manifestPath);

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).PushModelAsync(manifest, model));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, ex.StatusCode);
        Assert.Equal(("the manifest does not match the model file", 422), (ex.Problem!.Title, ex.Problem.Status));
        Assert.Equal(["manifest.input.shape[2]", "manifest.input.shape[3]"], ex.Problem.Errors.Keys);
        Assert.StartsWith("64 in the manifest, 96 in the model", ex.Problem.Errors["manifest.input.shape[2]"].Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PushModelAsync_ExistingVersion_ThrowsConflict()
    {
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, _cp.AdminToken);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.LargeModel(dir, Unique.Name("client-twice"));
        var client = new ControlPlaneClient(http);
        await client.PushModelAsync(manifest, path);

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => client.PushModelAsync(manifest, path));

        Assert.Equal(HttpStatusCode.Conflict, ex.StatusCode);
        Assert.Contains("already exists", ex.Problem!.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListModelsAsync_WrongToken_ThrowsUnauthorized()
    {
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, "efp_not-a-real-token-000000000000000");

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).ListModelsAsync());

        Assert.Equal(HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.Equal(401, ex.Problem!.Status);
    }

    [Fact]
    public async Task ListModelsAsync_NothingListening_ThrowsUnreachableNamingTheServer()
    {
        var url = CliRunner.Nowhere;
        using var http = ControlPlaneClient.CreateHttpClient(url, "t");

        var ex = await Assert.ThrowsAsync<ControlPlaneUnreachableException>(() => new ControlPlaneClient(http).ListModelsAsync());

        Assert.Equal(url, ex.Server);
        Assert.Contains(url.AbsoluteUri, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetModelAsync_NameWithSlash_StaysOnePathSegment()
    {
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, _cp.AdminToken);

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).GetModelAsync("a/../b"));

        // Unescaped, the path would resolve to /api/v1/models/b: a 404, not a refused name.
        Assert.Equal(HttpStatusCode.BadRequest, ex.StatusCode);
        Assert.Contains("'a%2F..%2Fb'", ex.Problem!.Errors["name"].Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListDevicesAsync_TagAndOnline_FilteredByTheServerAndBodyKeptAsReceived()
    {
        var tag = $"{Unique.Name("line")}=3";
        var tagged = new[] { Unique.Name("cam"), Unique.Name("cam") }.Order(StringComparer.Ordinal).ToArray();
        foreach (var id in tagged)
        {
            await _cp.EnrollDeviceAsync(id, tag);
        }

        await _cp.EnrollDeviceAsync(Unique.Name("cam"));
        using var http = ControlPlaneClient.CreateHttpClient(_cp.Url, _cp.AdminToken);
        var client = new ControlPlaneClient(http);

        var offline = await client.ListDevicesAsync(tag, online: false);
        var online = await client.ListDevicesAsync(tag, online: true);

        Assert.Equal(tagged, offline.Value.Select(d => d.Id));
        Assert.All(offline.Value, d => Assert.Equal([tag], d.Tags));
        Assert.Equal(tagged, JsonSerializer.Deserialize(offline.Body, ApiJsonContext.Default.IReadOnlyListDeviceInfo)!.Select(d => d.Id));
        Assert.Empty(online.Value);
    }

    private sealed class Recorder(List<long> values) : IProgress<long>
    {
        public void Report(long value) => values.Add(value);
    }
}
