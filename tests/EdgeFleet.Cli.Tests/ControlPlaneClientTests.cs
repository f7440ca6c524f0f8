using System.Net;
using System.Text.Json;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary>
/// ControlPlaneClient over real HTTP. Runs against <see cref="StandInControlPlane"/> for now; re-point at the real
/// control plane once its endpoints exist.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ControlPlaneClientTests
{
    [Fact]
    public async Task PushModelAsync_LargeFile_ManifestPartFirstAndBytesIntact()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, StandInControlPlane.Token);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.LargeModel(dir);
        var reported = new List<long>();

        var response = await new ControlPlaneClient(http).PushModelAsync(manifest, path, new Recorder(reported));

        var parts = server.PushedParts!;
        Assert.Equal(["manifest", "model"], parts.Select(p => p.Name));
        Assert.Equal("application/json", parts[0].ContentType);
        Assert.Equal(ManifestFile.Serialize(manifest), ManifestFile.Serialize(ManifestFile.Parse(System.Text.Encoding.UTF8.GetBytes(parts[0].Text!), "manifest part")));
        Assert.Equal(("large.onnx", "application/octet-stream"), (parts[1].FileName, parts[1].ContentType));
        Assert.Equal(ManifestFile.HashFile(path), (parts[1].Sha256, parts[1].Length));
        Assert.Equal(parts[1].Sha256, response.Value.Sha256);
        Assert.Equal(new FileInfo(path).Length, reported[^1]);
        Assert.True(reported.Count > 1, "progress is reported per chunk");
        Assert.Equal("/api/v1/models/line-cam/versions/1.0.0", server.Requests.Single().Path);
    }

    [Fact]
    public async Task PushModelAsync_ServerRejectsManifest_ExceptionCarriesProblemAndFieldErrors()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, StandInControlPlane.Token);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.SampleModel(dir, name: "rejected");

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).PushModelAsync(manifest, path));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, ex.StatusCode);
        Assert.Equal("Manifest mismatch", ex.Problem!.Title);
        Assert.Equal(["does not match the uploaded file"], ex.Problem.Errors["manifest.artifact.sha256"]);
    }

    [Fact]
    public async Task PushModelAsync_ExistingVersion_ThrowsConflict()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, StandInControlPlane.Token);
        using var dir = new TempDirectory();
        var (path, manifest) = TestFiles.LargeModel(dir);

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).PushModelAsync(manifest with { Name = "existing" }, path));

        Assert.Equal(HttpStatusCode.Conflict, ex.StatusCode);
        Assert.Null(server.PushedParts);
    }

    [Fact]
    public async Task ListModelsAsync_WrongToken_ThrowsUnauthorizedWithTheSentHeader()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, "wrong");

        var ex = await Assert.ThrowsAsync<ControlPlaneException>(() => new ControlPlaneClient(http).ListModelsAsync());

        Assert.Equal(HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.Equal("Bearer wrong", server.Requests.Single().Authorization);
    }

    [Fact]
    public async Task ListModelsAsync_NothingListening_ThrowsUnreachableNamingTheServer()
    {
        var url = new Uri($"http://127.0.0.1:{FreePort.Next()}/");
        using var http = ControlPlaneClient.CreateHttpClient(url, "t");

        var ex = await Assert.ThrowsAsync<ControlPlaneUnreachableException>(() => new ControlPlaneClient(http).ListModelsAsync());

        Assert.Equal(url, ex.Server);
        Assert.Contains(url.AbsoluteUri, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetModelAsync_NameWithSlash_StaysOnePathSegment()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, StandInControlPlane.Token);

        await new ControlPlaneClient(http).GetModelAsync("a/../b");

        Assert.Equal("/api/v1/models/a%2F..%2Fb", server.Requests.Single().Path);
    }

    [Fact]
    public async Task ListDevicesAsync_Response_KeepsTheBodyAsReceived()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var http = ControlPlaneClient.CreateHttpClient(server.Url, StandInControlPlane.Token);

        var response = await new ControlPlaneClient(http).ListDevicesAsync("line=3", online: false);

        Assert.Equal("?tag=line%3D3&online=false", server.Requests.Single().Query);
        Assert.Equal(["cam-1", "cam-2"], response.Value.Select(d => d.Id));
        Assert.Equal(["cam-1", "cam-2"], JsonSerializer.Deserialize(response.Body, ApiJsonContext.Default.IReadOnlyListDeviceInfo)!.Select(d => d.Id));
    }

    private sealed class Recorder(List<long> values) : IProgress<long>
    {
        public void Report(long value) => values.Add(value);
    }
}
