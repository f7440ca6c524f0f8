using System.Security.Cryptography;
using EdgeFleet.Agent.Ota;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ModelFormat;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The agent's downloader against the real control plane's artifact endpoint, with network faults put in by a TCP proxy
/// at exact byte counts.
/// </summary>
[Trait("Category", "Integration")]
public sealed class UpdateDownloaderTests : IClassFixture<ControlPlaneProcess>
{
    // About 1.2 MB of weights: big enough that "only the rest" is measurable against the headers.
    private static readonly SampleModelOptions Big = new() { InputSize = 32, Classes = 10, Width = 64, Depth = 8, Seed = 3 };

    private readonly ControlPlaneProcess _cp;

    public UpdateDownloaderTests(ControlPlaneProcess cp)
    {
        _cp = cp;
    }

    private static OtaOptions Fast(int attempts = 4) => new()
    {
        DownloadAttempts = attempts,
        RetryDelaySeconds = 0.05,
        MaxRetryDelaySeconds = 0.2,
        ReadTimeoutSeconds = 2,
    };

    private async Task<ModelVersionInfo> PushAsync(string name, SampleModelOptions options)
    {
        using var admin = _cp.CreateClient(_cp.AdminToken);
        return await RegistryUploads.PushAsync(admin, name, "1.0.0", options);
    }

    private UpdateDownloader Downloader(OtaOptions options, Uri server, HttpClient http) =>
        new(http, options, server, _cp.AdminToken, TimeProvider.System, NullLogger.Instance);

    [Fact]
    public async Task DownloadArtifact_CutAtHalf_ResumesWithARangeRequestAndFetchesOnlyTheRest()
    {
        var model = await PushAsync("cut-half", Big);
        await using var proxy = new CuttingProxy(_cp.Url.Port);
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), proxy.Url, http);
        using var dir = new TempDirectory();
        var part = dir.File("m.onnx.part");
        var progress = new List<DownloadProgress>();
        proxy.CutNextAfter(model.Size / 2, reset: false); // a clean close: the client keeps every byte passed (a reset drops unread ones)

        await downloader.DownloadArtifactAsync(new Uri(proxy.Url, $"api/v1/models/cut-half/versions/1.0.0/artifact").ToString(), part, model.Size, model.Sha256,
            progress.Add, CancellationToken.None);

        Assert.True(proxy.Faulted.IsCompleted);
        Assert.Equal(1, downloader.Retries);
        Assert.Equal(2, proxy.Connections);
        Assert.Equal(model.Sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(part))));
        // Half the file, then the other half: the whole file once plus two sets of response headers, not 1.5 files.
        Assert.InRange(proxy.BytesToClients, model.Size, model.Size + 4096);
        Assert.Equal(new DownloadProgress(model.Size, model.Size), progress[^1]);
    }

    [Fact]
    public async Task DownloadArtifact_ConnectionResetMidway_ResumesFromWhatReachedTheDiskAndCompletes()
    {
        var model = await PushAsync("reset", Big);
        await using var proxy = new CuttingProxy(_cp.Url.Port);
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), proxy.Url, http);
        using var dir = new TempDirectory();
        proxy.CutNextAfter(model.Size / 3); // a reset: what the client had not read yet is lost on the way

        await downloader.DownloadArtifactAsync(new Uri(proxy.Url, "api/v1/models/reset/versions/1.0.0/artifact").ToString(), dir.File("m.part"),
            model.Size, model.Sha256, _ => { }, CancellationToken.None);

        Assert.Equal(1, downloader.Retries);
        Assert.Equal(model.Sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir.File("m.part")))));
    }

    [Fact]
    public async Task DownloadArtifact_StalledResponse_IsCutAfterTheReadTimeoutAndResumed()
    {
        var model = await PushAsync("stall", TestModels.SmallClassifier);
        await using var proxy = new CuttingProxy(_cp.Url.Port);
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), proxy.Url, http);
        using var dir = new TempDirectory();
        proxy.StallNext();

        await downloader.DownloadArtifactAsync(new Uri(proxy.Url, "api/v1/models/stall/versions/1.0.0/artifact").ToString(), dir.File("m.part"),
            model.Size, model.Sha256, _ => { }, CancellationToken.None);

        Assert.Equal(1, downloader.Retries);
        Assert.Equal(model.Size, new FileInfo(dir.File("m.part")).Length);
    }

    [Fact]
    public async Task DownloadArtifact_ServerGone_RetriesABoundedNumberOfTimesThenRejectsWithDownload()
    {
        using var http = new HttpClient();
        var port = FreePort.Next();
        var downloader = Downloader(Fast(attempts: 3), new Uri($"http://127.0.0.1:{port}/"), http);
        using var dir = new TempDirectory();

        var ex = await Assert.ThrowsAsync<UpdateRejectedException>(() => downloader.DownloadArtifactAsync(
            $"http://127.0.0.1:{port}/api/v1/models/x/versions/1.0.0/artifact", dir.File("m.part"), 100, new string('0', 64), _ => { }, CancellationToken.None));

        Assert.Equal(RejectReasons.Download, ex.Reason);
        Assert.Contains("after 3 attempts", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, downloader.Retries);
    }

    [Fact]
    public async Task DownloadArtifact_WrongHash_RejectsWithSha256AndDeletesThePart()
    {
        var model = await PushAsync("wrong-hash", TestModels.SmallClassifier);
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), _cp.Url, http);
        using var dir = new TempDirectory();

        var ex = await Assert.ThrowsAsync<UpdateRejectedException>(() => downloader.DownloadArtifactAsync(
            new Uri(_cp.Url, "api/v1/models/wrong-hash/versions/1.0.0/artifact").ToString(), dir.File("m.part"), model.Size, new string('a', 64), _ => { },
            CancellationToken.None));

        Assert.Equal(RejectReasons.Sha256, ex.Reason);
        Assert.False(File.Exists(dir.File("m.part")));
    }

    [Fact]
    public async Task DownloadArtifact_OtherSizeThanSigned_RejectsWithSizeWithoutRetrying()
    {
        var model = await PushAsync("wrong-size", TestModels.SmallClassifier);
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), _cp.Url, http);
        using var dir = new TempDirectory();

        var ex = await Assert.ThrowsAsync<UpdateRejectedException>(() => downloader.DownloadArtifactAsync(
            new Uri(_cp.Url, "api/v1/models/wrong-size/versions/1.0.0/artifact").ToString(), dir.File("m.part"), model.Size + 1, model.Sha256, _ => { },
            CancellationToken.None));

        Assert.Equal(RejectReasons.Size, ex.Reason);
        Assert.Equal(0, downloader.Retries);
    }

    [Fact]
    public async Task GetSmall_MissingVersion_IsNullWhenOptionalAndARejectionNamingIt()
    {
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), _cp.Url, http);
        var url = new Uri(_cp.Url, "api/v1/models/none/versions/9.9.9/manifest").ToString();

        Assert.Null(await downloader.GetSmallAsync(url, 1 << 20, optional: true, "manifest", CancellationToken.None));
        var ex = await Assert.ThrowsAsync<UpdateRejectedException>(() => downloader.GetSmallAsync(url, 1 << 20, optional: false, "manifest", CancellationToken.None));

        Assert.Equal(RejectReasons.Download, ex.Reason);
        Assert.Contains("404", ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_ToAnotherOrigin_NeverCarryTheDeviceToken()
    {
        await PushAsync("origin", TestModels.SmallClassifier);
        await using var proxy = new CuttingProxy(_cp.Url.Port); // same server, other origin (port)
        using var http = new HttpClient();
        var downloader = Downloader(Fast(), _cp.Url, http);

        var ex = await Assert.ThrowsAsync<UpdateRejectedException>(() => downloader.GetSmallAsync(
            new Uri(proxy.Url, "api/v1/models/origin/versions/1.0.0/manifest").ToString(), 1 << 20, optional: false, "manifest", CancellationToken.None));

        Assert.Contains("401", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(await downloader.GetSmallAsync(new Uri(_cp.Url, "api/v1/models/origin/versions/1.0.0/manifest").ToString(), 1 << 20, optional: false,
            "manifest", CancellationToken.None));
    }
}
