using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// The control-plane half of over-the-air updates through the real HTTP stack (broker-less): detached manifest
/// signatures, the devices' HTTP tokens, bytes-served accounting, assignment refusals, OTA state and update events.
/// Run once on SQLite and once on PostgreSQL.
/// </summary>
public abstract class OtaApiTests
{
    protected abstract Task<ControlPlaneFactory> CreateAsync();

    internal static async Task<EnrollResponse> EnrollAsync(ControlPlaneFactory cp, string id)
    {
        using var admin = cp.Client();
        using var created = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { MaxUses = 10 }, ApiJsonContext.Default.EnrollmentTokenRequest);
        var token = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
        using var anonymous = cp.Client(token: null);
        using var r = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = id }, ApiJsonContext.Default.EnrollRequest);
        Assert.True(r.StatusCode == HttpStatusCode.OK, await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollResponse))!;
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, HttpMethod method, string path, HttpContent? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = body };
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task DeviceToken_ReadsManifestSignatureArtifactProfileAndKey_AndNothingElse()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        using (var put = await admin.PutAsync(new Uri($"/api/v1/models/cls/versions/1.0.0/drift-profile", UriKind.Relative),
                   Json("""{"id":"p","features":[{"name":"luma_mean","kind":"numeric","count":10,"edges":[0.5],"proportions":[0.5,0.5],"sample":[],"categories":{}}]}""")))
        {
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        }

        var enrolled = await EnrollAsync(cp, "cam-1");
        Assert.StartsWith("efh_", enrolled.HttpToken, StringComparison.Ordinal);
        Assert.DoesNotContain(enrolled.HttpToken!, await admin.GetStringAsync(new Uri("/api/v1/devices/cam-1", UriKind.Relative)), StringComparison.Ordinal);
        using var device = cp.Client(enrolled.HttpToken);

        foreach (var path in new[] { pushed.ManifestUrl!, pushed.SignatureUrl!, pushed.ArtifactUrl!, "/api/v1/models/cls/versions/1.0.0/drift-profile", "/api/v1/registry/key" })
        {
            Assert.True(await StatusAsync(device, HttpMethod.Get, path) == HttpStatusCode.OK, path);
        }

        (HttpMethod, string, HttpContent?)[] forbidden =
        [
            (HttpMethod.Get, "/api/v1/devices", null), (HttpMethod.Get, "/api/v1/devices/cam-1", null), (HttpMethod.Get, "/api/v1/models", null),
            (HttpMethod.Get, "/api/v1/models/cls", null), (HttpMethod.Get, "/api/v1/models/cls/versions/1.0.0", null), (HttpMethod.Get, "/api/v1/models/cls/history", null),
            (HttpMethod.Get, "/api/v1/devices/cam-1/events", null), (HttpMethod.Get, "/api/v1/devices/cam-1/assignment", null), (HttpMethod.Get, "/api/v1/telemetry?device=cam-1", null),
            (HttpMethod.Get, "/api/v1/audit", null), (HttpMethod.Get, "/api/v1/tokens", null), (HttpMethod.Get, "/api/v1/enrollment-tokens", null), (HttpMethod.Get, "/metrics", null),
            (HttpMethod.Post, "/api/v1/devices/cam-1/assignment", Json("""{"model":"cls","version":"1.0.0"}""")), (HttpMethod.Delete, "/api/v1/devices/cam-1/assignment", null),
            (HttpMethod.Put, "/api/v1/devices/cam-1/tags", Json("""{"add":["x"]}""")), (HttpMethod.Post, "/api/v1/devices/cam-1/revoke", null),
            (HttpMethod.Post, "/api/v1/models/cls/versions/1.0.0/stage", Json("""{"stage":"staging"}""")),
            (HttpMethod.Put, "/api/v1/models/cls/versions/1.0.0/drift-profile", Json("""{"id":"p","features":[]}""")),
            (HttpMethod.Post, "/api/v1/enrollment-tokens", Json("{}")),
        ];
        var wrong = new List<string>();
        foreach (var (method, path, body) in forbidden)
        {
            if (await StatusAsync(device, method, path, body) is var status && status != HttpStatusCode.Forbidden)
            {
                wrong.Add($"{method} {path} → {(int)status}");
            }
        }

        Assert.True(wrong.Count == 0, "a device token got more than 403:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public async Task DeviceToken_OfARevokedOrDeletedDevice_Is401()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        var first = await EnrollAsync(cp, "cam-1");
        using var device = cp.Client(first.HttpToken);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(device, HttpMethod.Get, pushed.ManifestUrl!));

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(admin, HttpMethod.Post, "/api/v1/devices/cam-1/revoke"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(device, HttpMethod.Get, pushed.ManifestUrl!));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(device, HttpMethod.Get, pushed.ArtifactUrl!));

        Assert.Equal(HttpStatusCode.NoContent, await StatusAsync(admin, HttpMethod.Delete, "/api/v1/devices/cam-1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(device, HttpMethod.Get, pushed.ManifestUrl!));

        // The same id enrolled again gets a new token; the old one stays dead.
        var second = await EnrollAsync(cp, "cam-1");
        Assert.NotEqual(first.HttpToken, second.HttpToken);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(device, HttpMethod.Get, pushed.ManifestUrl!));
        using var again = cp.Client(second.HttpToken);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(again, HttpMethod.Get, pushed.ManifestUrl!));
        using var madeUp = cp.Client("efh_made-up-token");
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(madeUp, HttpMethod.Get, pushed.ManifestUrl!));
    }

    [Fact]
    public async Task Manifest_IsServedWithAStrongETag_AndRegistryKeyIsPublic()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");

        using var first = await admin.GetAsync(new Uri(pushed.ManifestUrl!, UriKind.Relative));
        var bytes = await first.Content.ReadAsByteArrayAsync();
        Assert.Equal("application/json", first.Content.Headers.ContentType?.MediaType);
        Assert.Equal($"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))}\"", first.Headers.ETag?.Tag);
        using var conditional = new HttpRequestMessage(HttpMethod.Get, pushed.ManifestUrl) { Headers = { IfNoneMatch = { first.Headers.ETag! } } };
        using var notModified = await admin.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using var anonymous = cp.Client(token: null);
        using var key = await anonymous.GetAsync(new Uri("/api/v1/registry/key", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, key.StatusCode);
        using var pub = ManifestSigning.ImportPublicKey(await key.Content.ReadAsStringAsync());
        Assert.Equal(ManifestSigning.KeyId(pub), key.Headers.GetValues("X-Signature-KeyId").Single());
        Assert.Equal(first.Headers.GetValues("X-Signature-KeyId").Single(), key.Headers.GetValues("X-Signature-KeyId").Single());
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(anonymous, HttpMethod.Get, pushed.ManifestUrl!));
    }

    [Fact]
    public async Task StoredManifestWithoutDetachedSignature_IsSignedOverItsExactStoredBytes()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        await ModelsApiTests.PushAsync(admin, "cls", "1.0.1");

        // What an older registry stored: a manifest with an embedded signature field, odd whitespace, no detached signature.
        var database = cp.Services.GetRequiredService<Database>();
        var legacy = new Dictionary<string, string>();
        await using (var connection = await database.OpenAsync())
        {
            foreach (var version in new[] { "1.0.0", "1.0.1" })
            {
                var stored = (string)(await connection.ScalarAsync("SELECT manifest FROM model_versions WHERE name = 'cls' AND version = @v", ("@v", version)))!;
                legacy[version] = stored[..stored.LastIndexOf('}')].TrimEnd() + ",\n  \"signature\": {\"algorithm\": \"ES256\", \"keyId\": \"0123456789abcdef\", \"value\": \"AAAA\"}\n}\n";
                await connection.ExecuteAsync("UPDATE model_versions SET manifest = @m, manifest_signature = NULL, manifest_key_id = NULL WHERE name = 'cls' AND version = @v",
                    ("@m", legacy[version]), ("@v", version));
            }
        }

        // One signed at start (as after an upgrade), one lazily when first served.
        Assert.Equal(2, await cp.Services.GetRequiredService<ModelRegistry>().SignUnsignedAsync());
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE model_versions SET manifest_signature = NULL WHERE name = 'cls' AND version = '1.0.1'");
        }

        using var pub = ManifestSigning.ImportPublicKey(await admin.GetStringAsync(new Uri("/api/v1/registry/key", UriKind.Relative)));
        foreach (var version in new[] { "1.0.0", "1.0.1" })
        {
            var bytes = await admin.GetByteArrayAsync(new Uri($"/api/v1/models/cls/versions/{version}/manifest", UriKind.Relative));
            var signature = await admin.GetByteArrayAsync(new Uri($"/api/v1/models/cls/versions/{version}/manifest.sig", UriKind.Relative));
            Assert.Equal(Encoding.UTF8.GetBytes(legacy[version]), bytes);
            Assert.True(ManifestSigning.VerifyDetached(bytes, signature, pub, out var reason), reason);
            Assert.Equal("cls", ManifestFile.Parse(bytes, "legacy").Name); // the old embedded field is ignored
        }
    }

    [Fact]
    public async Task ArtifactDownload_InTwoRanges_CountsExactlyTheFileSize_AndTheBytesHashToTheManifest()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        var device = cp.Client((await EnrollAsync(cp, "cam-1")).HttpToken);
        var before = await BytesServedAsync(admin);
        var half = pushed.Size / 2;

        using var firstRequest = new HttpRequestMessage(HttpMethod.Get, pushed.ArtifactUrl) { Headers = { Range = new RangeHeaderValue(0, half - 1) } };
        using var first = await device.SendAsync(firstRequest);
        using var restRequest = new HttpRequestMessage(HttpMethod.Get, pushed.ArtifactUrl) { Headers = { Range = new RangeHeaderValue(half, null) } };
        using var rest = await device.SendAsync(restRequest);

        Assert.Equal((HttpStatusCode.PartialContent, HttpStatusCode.PartialContent), (first.StatusCode, rest.StatusCode));
        byte[] whole = [.. await first.Content.ReadAsByteArrayAsync(), .. await rest.Content.ReadAsByteArrayAsync()];
        var manifest = ManifestFile.Parse(await device.GetByteArrayAsync(new Uri(pushed.ManifestUrl!, UriKind.Relative)), "served");
        Assert.Equal(manifest.Artifact.Sha256, Convert.ToHexStringLower(SHA256.HashData(whole)));
        Assert.Equal(pushed.Size, await BytesServedAsync(admin) - before);
        var metrics = await admin.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Matches("edgefleet_artifact_requests_total\\{status=\"206\"\\} 2", metrics);
        device.Dispose();
    }

    private static async Task<long> BytesServedAsync(HttpClient admin)
    {
        var metrics = await admin.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var match = Regex.Match(metrics, "^edgefleet_artifact_bytes_served_total\\{model=\"cls\",version=\"1.0.0\"\\} (\\S+)$", RegexOptions.Multiline);
        return match.Success ? (long)double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [Fact]
    public async Task Assign_RefusesUnknownRevokedBadInputAndNoBroker_WithoutA5xx()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        await EnrollAsync(cp, "cam-1");
        await EnrollAsync(cp, "cam-2");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(admin, HttpMethod.Post, "/api/v1/devices/cam-2/revoke"));

        async Task<(HttpStatusCode Status, string Body)> Assign(string device, string body)
        {
            using var r = await admin.PostAsync(new Uri($"/api/v1/devices/{device}/assignment", UriKind.Relative), Json(body));
            return (r.StatusCode, await r.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.NotFound, (await Assign("cam-404", """{"model":"cls","version":"1.0.0"}""")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Assign("cam-1", """{"model":"cls","version":"9.9.9"}""")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Assign("cam-1", """{"model":"nope","version":"1.0.0"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Assign("cam-1", """{"model":"cls"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Assign("cam-1", """{"model":"cls","version":"1.0.0","mode":"canary"}""")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Assign("cam-1", """{"model":"cls","version":"1.0.0","probation":{"frames":-1}}""")).Status);
        var (revoked, revokedBody) = await Assign("cam-2", """{"model":"cls","version":"1.0.0"}""");
        Assert.Equal(HttpStatusCode.Conflict, revoked);
        Assert.Contains("revoked", revokedBody, StringComparison.Ordinal);
        var (none, noneBody) = await Assign("cam-1", """{"model":"cls","version":"1.0.0","mode":"shadow"}""");
        Assert.Equal(HttpStatusCode.Conflict, none);
        Assert.Contains("--mqtt none", noneBody, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, await StatusAsync(admin, HttpMethod.Get, "/api/v1/devices/cam-1/assignment"));
        Assert.Equal(HttpStatusCode.NotFound, await StatusAsync(admin, HttpMethod.Delete, "/api/v1/devices/cam-1/assignment"));
        Assert.Null((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Desired);
        Assert.Empty(cp.LoggedErrors);
    }

    private static Incoming Event(string device, long seq, DateTimeOffset ts, string type, Dictionary<string, string>? data = null) =>
        new(Topics.Events, device, seq, ts, new EventMessage { DeviceId = device, Ts = ts, Seq = seq, Type = type, Data = data }, [], ts);

    [Fact]
    public async Task UpdateEvents_SetTheDevicesOtaState_AndTheEventsQuerySelectsThemByPrefixOrList()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        await EnrollAsync(cp, "cam-1");
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        var t0 = TimeProvider.System.GetUtcNow().AddMinutes(-5);
        var v = new Dictionary<string, string> { ["model"] = "cls", ["version"] = "1.1.0", ["mode"] = "live" };
        await writer.WriteAsync(
        [
            Event("cam-1", 1, t0, "camera.started"),
            Event("cam-1", 2, t0.AddSeconds(1), UpdateEvents.Received, v),
            Event("cam-1", 3, t0.AddSeconds(2), UpdateEvents.Downloading, new(v) { ["bytes"] = "10", ["total"] = "20" }),
        ], new Dictionary<string, long>(), default);
        var device = await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal(("downloading", "cls", "1.1.0", "live"), (device!.Ota!.State, device.Ota.Model, device.Ota.Version, device.Ota.Mode));

        // A late, older event (replayed) does not move the state back; a newer one does.
        await writer.WriteAsync([Event("cam-1", 6, t0.AddSeconds(6), UpdateEvents.RolledBack, new(v) { ["criterion"] = "latency" }), Event("cam-1", 4, t0.AddSeconds(3), UpdateEvents.Verified, v)],
            new Dictionary<string, long>(), default);
        device = await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal(("rolled_back", "latency"), (device!.Ota!.State, device.Ota.Reason));
        Assert.Equal(t0.AddSeconds(6).ToUnixTimeMilliseconds(), device.Ota.At.ToUnixTimeMilliseconds());
        await writer.WriteAsync([Event("cam-1", 7, t0.AddSeconds(7), UpdateEvents.ShadowReport, new() { ["model"] = "cls", ["version"] = "2.0.0", ["agreement"] = "0.97" }),
            Event("cam-1", 8, t0.AddSeconds(8), "update_like.thing")], new Dictionary<string, long>(), default);
        device = await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal(("shadow.report", "shadow", "2.0.0"), (device!.Ota!.State, device.Ota.Mode, device.Ota.Version));

        async Task<IReadOnlyList<EventInfo>> Events(string query) =>
            (await admin.GetFromJsonAsync($"/api/v1/devices/cam-1/events?{query}", ApiJsonContext.Default.PageEventInfo))!.Items;
        Assert.Equal([2L, 3, 4, 6], (await Events("type=update.")).Select(e => e.Seq));
        Assert.Equal([2L, 3, 4, 6], (await Events("type=update")).Select(e => e.Seq));
        Assert.Equal([1L, 6, 7], (await Events("type=camera.started,update.rolled_back,shadow.")).Select(e => e.Seq));
        Assert.Equal([7L, 6, 4], (await Events("type=update.,shadow.&order=desc&limit=3")).Select(e => e.Seq));
        var rolledBack = Assert.Single(await Events("type=update.rolled_back"));
        Assert.Equal("latency", rolledBack.Data!["criterion"]);
        var page = (await admin.GetFromJsonAsync("/api/v1/devices/cam-1/events?type=update.&order=desc&limit=2", ApiJsonContext.Default.PageEventInfo))!;
        var next = (await admin.GetFromJsonAsync($"/api/v1/devices/cam-1/events?type=update.&order=desc&limit=2&after={page.Next}", ApiJsonContext.Default.PageEventInfo))!;
        Assert.Equal([6L, 4, 3, 2], page.Items.Concat(next.Items).Select(e => e.Seq));
        Assert.Equal(HttpStatusCode.BadRequest, await StatusAsync(admin, HttpMethod.Get, "/api/v1/devices/cam-1/events?order=sideways"));
    }
}

[Trait("Category", "Integration")]
public sealed class OtaApiSqliteTests : OtaApiTests
{
    protected override Task<ControlPlaneFactory> CreateAsync() => Task.FromResult(new ControlPlaneFactory());
}

[Trait("Category", "Integration")]
[Collection(PostgresCollection.Name)]
public sealed class OtaApiPostgresTests(PostgresFixture postgres) : OtaApiTests
{
    protected override async Task<ControlPlaneFactory> CreateAsync() => new(await postgres.Server.CreateDatabaseAsync());
}
