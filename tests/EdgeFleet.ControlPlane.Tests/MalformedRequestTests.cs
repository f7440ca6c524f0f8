using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// Bad input on every endpoint of the real control plane (through Kestrel, so its body limit and request parsing
/// count): nulls, wrong JSON types, unknown enum values, malformed and truncated JSON, empty and oversized bodies,
/// wrong content types, unparsable query values, over-long strings, odd path segments, malformed multipart
/// uploads. Each must be a problem+json 4xx naming the field, never a 5xx; afterwards the server still works and
/// has logged no error. Run once on SQLite and once on PostgreSQL (which, unlike SQLite, refuses NUL in text).
/// </summary>
public abstract class MalformedRequestTests
{
    private const string Model = "/api/v1/models/cls/versions/1.0.0";
    private const string Boundary = "edgefleet-boundary";

    private enum Caller
    {
        Admin,
        Viewer,
        Anonymous,
    }

    /// <summary>One bad request and what it must get: one of <paramref name="Status"/>, and <paramref name="Field"/> named.</summary>
    private sealed record Case(string Name, HttpMethod Method, string Path, Func<HttpContent>? Body, int[] Status, string? Field, Caller Caller = Caller.Admin)
    {
        /// <summary>Refused by Kestrel itself before the application runs (so no problem+json is possible).</summary>
        public bool ByServer { get; init; }
    }

    protected abstract Task<ControlPlaneFactory> CreateAsync();

    [Fact]
    public async Task EveryEndpoint_MalformedInput_Is4xxProblemNamingTheField_AndTheServerKeepsWorking()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        var (manifest, model) = ModelsApiTests.Sample();
        await ModelsApiTests.PushAsync(admin, "cls", "1.0.0");
        var enrollmentToken = await EnrollmentTokenAsync(admin);
        using (var enrolled = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = enrollmentToken, DeviceId = "cam-1" }, ApiJsonContext.Default.EnrollRequest))
        {
            Assert.True(enrolled.IsSuccessStatusCode, await enrolled.Content.ReadAsStringAsync());
        }

        using var created = await admin.PostAsJsonAsync("/api/v1/tokens", new ApiTokenRequest { Name = "viewer", Role = ApiRole.Viewer }, ApiJsonContext.Default.ApiTokenRequest);
        using var viewer = cp.Client((await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiTokenInfo))!.Token);
        var cases = Table(manifest, model, enrollmentToken);

        var clients = new Dictionary<Caller, HttpClient> { [Caller.Admin] = admin, [Caller.Viewer] = viewer, [Caller.Anonymous] = anonymous };
        var failures = new List<string>();
        foreach (var c in cases)
        {
            using var request = new HttpRequestMessage(c.Method, new Uri(c.Path, UriKind.Relative)) { Content = c.Body?.Invoke() };

            // A server refusing a large body answers before reading it; waiting for "100 Continue" lets the client
            // read that answer instead of failing on a closed socket halfway through sending.
            request.Headers.ExpectContinue = request.Content?.Headers.ContentLength > 64 * 1024;
            using var response = await clients[c.Caller].SendAsync(request);
            if (Check(c, (int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync()) is { } failure)
            {
                failures.Add(failure);
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} bad requests were not refused as they should be:\n{string.Join("\n", failures)}");

        // The server is still fine: it reads, writes, and has logged nothing as an error.
        using (var ok = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { Tags = ["site=a"] }, ApiJsonContext.Default.EnrollmentTokenRequest))
        {
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        }

        var models = await admin.GetFromJsonAsync("/api/v1/models", ApiJsonContext.Default.IReadOnlyListModelSummary);
        Assert.Equal(["cls"], models!.Select(m => m.Name));
        Assert.Equal("ok", JsonDocument.Parse(await anonymous.GetStringAsync(new Uri("/healthz", UriKind.Relative))).RootElement.GetProperty("status").GetString());
        Assert.Empty(cp.LoggedErrors);
    }

    /// <summary>Null when the response is what the case demands, else why not.</summary>
    private static string? Check(Case c, int status, string? mediaType, string body)
    {
        var what = $"  {c.Name}: {c.Method} {(c.Path.Length > 80 ? c.Path[..80] + "…" : c.Path)} → {status} {mediaType}: {(body.Length > 300 ? body[..300] + "…" : body)}";
        if (status >= 500 || !c.Status.Contains(status))
        {
            return $"{what} (expected {string.Join(" or ", c.Status)})";
        }

        if (status < 400 || c.ByServer)
        {
            return null;
        }

        if (mediaType != "application/problem+json")
        {
            return $"{what} (expected application/problem+json)";
        }

        using var problem = JsonDocument.Parse(body);
        var root = problem.RootElement;
        if (root.GetProperty("status").GetInt32() != status || !root.TryGetProperty("title", out _))
        {
            return $"{what} (problem without its status or title)";
        }

        if (c.Field is null)
        {
            return null;
        }

        // A field error names the field in "errors" (and in "detail", for clients that print only that); refusals
        // that are not about a field (401, 403, 404, 405) say what was wrong in "detail".
        // A field's own errors count too: "manifest" is named by "manifest.input.shape[2]".
        bool Names(string key) => key == c.Field || key.StartsWith(c.Field + ".", StringComparison.Ordinal) || key.StartsWith(c.Field + "[", StringComparison.Ordinal);
        var named = root.TryGetProperty("errors", out var errors)
            ? errors.EnumerateObject().Any(e => Names(e.Name) && e.Value.GetArrayLength() > 0 && e.Value[0].GetString() is { Length: > 0 })
                && root.GetProperty("detail").GetString()!.Contains(c.Field, StringComparison.Ordinal)
            : status is 401 or 403 or 404 or 405 && root.TryGetProperty("detail", out var detail) && detail.GetString()!.Contains(c.Field, StringComparison.OrdinalIgnoreCase);
        return named ? null : $"{what} (expected the field '{c.Field}' to be named)";
    }

    private static async Task<string> EnrollmentTokenAsync(HttpClient admin)
    {
        using var r = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { MaxUses = 1000 }, ApiJsonContext.Default.EnrollmentTokenRequest);
        return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
    }

    private static Func<HttpContent> Json(string json, string contentType = "application/json") => () =>
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    };

    private static Func<HttpContent> Bytes(byte[] bytes, string? contentType) => () =>
    {
        var content = new ByteArrayContent(bytes);
        if (contentType is not null)
        {
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        return content;
    };

    /// <summary>A multipart body written by hand, so it can be wrong in ways MultipartFormDataContent never is.</summary>
    private static Func<HttpContent> Multipart(params (string? Name, byte[] Data)[] parts)
    {
        using var buffer = new MemoryStream();
        foreach (var (name, data) in parts)
        {
            var header = name is null ? $"--{Boundary}\r\n\r\n" : $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n";
            buffer.Write(Encoding.ASCII.GetBytes(header));
            buffer.Write(data);
            buffer.Write("\r\n"u8);
        }

        buffer.Write(Encoding.ASCII.GetBytes($"--{Boundary}--\r\n"));
        return Bytes(buffer.ToArray(), $"multipart/form-data; boundary={Boundary}");
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static string Quote(string text) => JsonSerializer.Serialize(text, ApiJsonContext.Default.Options);

    /// <summary>The manifest of the sample model with one field replaced (a JSON fragment, or null to remove it).</summary>
    private static byte[] ManifestWith(byte[] manifest, string path, string? json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(manifest)!;
        var segments = path.Split('.');
        var parent = segments[..^1].Aggregate(node, (n, s) => n[s]!);
        if (json is null)
        {
            parent.AsObject().Remove(segments[^1]);
        }
        else
        {
            parent[segments[^1]] = System.Text.Json.Nodes.JsonNode.Parse(json);
        }

        return Utf8(node.ToJsonString());
    }

    private static List<Case> Table(byte[] manifest, byte[] model, string enrollmentToken)
    {
        var cases = new List<Case>();
        void Add(string name, HttpMethod method, string path, Func<HttpContent>? body, int status, string? field, Caller caller = Caller.Admin) =>
            cases.Add(new Case(name, method, path, body, [status], field, caller));

        var longText = new string('x', 5000);
        var huge = Utf8($"{{\"description\":\"{new string('a', 1_100_000)}\"}}");
        var deep = Utf8(string.Concat(Enumerable.Repeat("[", 200)) + string.Concat(Enumerable.Repeat("]", 200)));

        // Every JSON endpoint: the body as a whole is wrong. Each with a body it would take, and a string field of it.
        (string Name, HttpMethod Method, string Path, Caller Caller, string Valid, string Text, string TextField)[] jsonEndpoints =
        [
            ("enrollment token", HttpMethod.Post, "/api/v1/enrollment-tokens", Caller.Admin, """{"tags":[]}""", """{"description":"#"}""", "description"),
            ("tags", HttpMethod.Put, "/api/v1/devices/cam-1/tags", Caller.Admin, """{"add":["a"]}""", """{"add":["#"]}""", "add[0]"),
            ("api token", HttpMethod.Post, "/api/v1/tokens", Caller.Admin, """{"name":"ci"}""", """{"name":"#"}""", "name"),
            ("enroll", HttpMethod.Post, "/api/v1/enroll", Caller.Anonymous, """{"token":"efe_x"}""", """{"token":"#"}""", "token"),
            ("stage", HttpMethod.Post, $"{Model}/stage", Caller.Admin, """{"stage":"staging"}""", """{"stage":"#"}""", "stage"),
            ("metadata", HttpMethod.Patch, Model, Caller.Admin, "{}", """{"datasetVersion":"#"}""", "datasetVersion"),
            ("drift profile", HttpMethod.Put, $"{Model}/drift-profile", Caller.Admin, """{"id":"p","features":[]}""", """{"id":"#","features":[]}""", "id"),
            ("assignment", HttpMethod.Post, "/api/v1/devices/cam-1/assignment", Caller.Admin, """{"model":"cls","version":"1.0.0"}""", """{"model":"#"}""", "model"),
            ("rollout", HttpMethod.Post, "/api/v1/rollouts", Caller.Admin, """{"model":"cls","version":"1.0.0"}""", """{"model":"#"}""", "model"),
        ];
        foreach (var (name, method, path, caller, valid, text, textField) in jsonEndpoints)
        {
            Add($"{name}: empty body", method, path, Json(""), 400, "body", caller);
            Add($"{name}: null body", method, path, Json("null"), 400, "body", caller);
            Add($"{name}: array body", method, path, Json("[]"), 400, "body", caller);
            Add($"{name}: string body", method, path, Json("\"x\""), 400, "body", caller);
            Add($"{name}: number body", method, path, Json("42"), 400, "body", caller);
            Add($"{name}: not JSON", method, path, Json("hello"), 400, "body", caller);
            Add($"{name}: truncated", method, path, Json("{\"a\":"), 400, "a", caller);
            Add($"{name}: unclosed object", method, path, Json("{"), 400, "body", caller);
            Add($"{name}: trailing garbage", method, path, Json(valid + " x"), 400, "body", caller);
            Add($"{name}: two documents", method, path, Json(valid + valid), 400, "body", caller);
            Add($"{name}: nested too deep", method, path, Bytes(deep, "application/json"), 400, "body", caller);
            var utf8 = Utf8(text);
            var hole = Array.IndexOf(utf8, (byte)'#');
            Add($"{name}: invalid UTF-8 in a string", method, path, Bytes([.. utf8[..hole], 0xff, 0xfe, .. utf8[(hole + 1)..]], "application/json"), 400, textField, caller);
            Add($"{name}: text/plain", method, path, Json(valid, "text/plain"), 415, "Content-Type", caller);
            Add($"{name}: form content type", method, path, Json("a=b", "application/x-www-form-urlencoded"), 415, "Content-Type", caller);
            Add($"{name}: no content type", method, path, Bytes(Utf8(valid), null), 415, "Content-Type", caller);
            Add($"{name}: unknown charset", method, path, Json(valid, "application/json; charset=klingon"), 415, "Content-Type", caller);
            Add($"{name}: over the 1 MiB limit", method, path, Bytes(huge, "application/json"), 413, "body", caller);
        }

        // POST /api/v1/enrollment-tokens
        const string Tokens = "/api/v1/enrollment-tokens";
        Add("enrollment token: null tag", HttpMethod.Post, Tokens, Json("""{"tags":[null]}"""), 400, "tags[0]");
        Add("enrollment token: null after a good tag", HttpMethod.Post, Tokens, Json("""{"tags":["a", null]}"""), 400, "tags[1]");
        Add("enrollment token: tags null", HttpMethod.Post, Tokens, Json("""{"tags":null}"""), 400, "tags");
        Add("enrollment token: tags a string", HttpMethod.Post, Tokens, Json("""{"tags":"site=a"}"""), 400, "tags");
        Add("enrollment token: tags an object", HttpMethod.Post, Tokens, Json("""{"tags":{}}"""), 400, "tags");
        Add("enrollment token: tag a number", HttpMethod.Post, Tokens, Json("""{"tags":[1]}"""), 400, "tags[0]");
        Add("enrollment token: tag an array", HttpMethod.Post, Tokens, Json("""{"tags":[[]]}"""), 400, "tags[0]");
        Add("enrollment token: invalid tag", HttpMethod.Post, Tokens, Json("""{"tags":["Not A Tag"]}"""), 400, "tags");
        Add("enrollment token: 5000-character tag", HttpMethod.Post, Tokens, Json($$"""{"tags":[{{Quote(longText)}}]}"""), 400, "tags");
        Add("enrollment token: 101 tags", HttpMethod.Post, Tokens, Json($$"""{"tags":[{{string.Join(",", Enumerable.Range(0, 101).Select(i => $"\"t{i}\""))}}]}"""), 400, "tags");
        Add("enrollment token: duplicate field", HttpMethod.Post, Tokens, Json("""{"tags":[],"tags":["a"]}"""), 400, "tags");
        Add("enrollment token: hours a string", HttpMethod.Post, Tokens, Json("""{"expiresInHours":"5"}"""), 400, "expiresInHours");
        Add("enrollment token: hours NaN", HttpMethod.Post, Tokens, Json("""{"expiresInHours":"NaN"}"""), 400, "expiresInHours");
        Add("enrollment token: hours Infinity", HttpMethod.Post, Tokens, Json("""{"expiresInHours":"Infinity"}"""), 400, "expiresInHours");
        Add("enrollment token: hours negative", HttpMethod.Post, Tokens, Json("""{"expiresInHours":-1}"""), 400, "expiresInHours");
        Add("enrollment token: hours 1e308", HttpMethod.Post, Tokens, Json("""{"expiresInHours":1e308}"""), 400, "expiresInHours");
        Add("enrollment token: hours an object", HttpMethod.Post, Tokens, Json("""{"expiresInHours":{}}"""), 400, "expiresInHours");
        Add("enrollment token: uses a string", HttpMethod.Post, Tokens, Json("""{"maxUses":"5"}"""), 400, "maxUses");
        Add("enrollment token: uses a fraction", HttpMethod.Post, Tokens, Json("""{"maxUses":1.5}"""), 400, "maxUses");
        Add("enrollment token: uses past int", HttpMethod.Post, Tokens, Json("""{"maxUses":1e20}"""), 400, "maxUses");
        Add("enrollment token: uses zero", HttpMethod.Post, Tokens, Json("""{"maxUses":0}"""), 400, "maxUses");
        Add("enrollment token: uses true", HttpMethod.Post, Tokens, Json("""{"maxUses":true}"""), 400, "maxUses");
        Add("enrollment token: description a number", HttpMethod.Post, Tokens, Json("""{"description":5}"""), 400, "description");
        Add("enrollment token: description too long", HttpMethod.Post, Tokens, Json($$"""{"description":{{Quote(longText)}}}"""), 400, "description");
        Add("enrollment token: description with NUL", HttpMethod.Post, Tokens, Json("""{"description":"a\u0000b"}"""), 400, "description");
        Add("enrollment token: description with a lone surrogate", HttpMethod.Post, Tokens, Json("""{"description":"\ud800"}"""), 400, "description");
        Add("enrollment token: viewer may not", HttpMethod.Post, Tokens, Json("{}"), 403, "role", Caller.Viewer);
        Add("enrollment token: no token", HttpMethod.Post, Tokens, Json("{}"), 401, "token", Caller.Anonymous);
        Add("enrollment token: revoke a malformed id", HttpMethod.Delete, $"{Tokens}/not-an-id", null, 400, "id");
        Add("enrollment token: revoke an odd id", HttpMethod.Delete, $"{Tokens}/%E2%80%AE%22%3B", null, 400, "id");
        Add("enrollment token: revoke an unknown id", HttpMethod.Delete, $"{Tokens}/0123456789abcdef", null, 404, "0123456789abcdef");

        // PUT /api/v1/devices/{id}/tags and the other device calls
        const string Tags = "/api/v1/devices/cam-1/tags";
        Add("tags: null to add", HttpMethod.Put, Tags, Json("""{"add":[null]}"""), 400, "add[0]");
        Add("tags: null to remove", HttpMethod.Put, Tags, Json("""{"remove":["x", null]}"""), 400, "remove[1]");
        Add("tags: add null", HttpMethod.Put, Tags, Json("""{"add":null}"""), 400, "add");
        Add("tags: remove an object", HttpMethod.Put, Tags, Json("""{"remove":{"a":1}}"""), 400, "remove");
        Add("tags: add a number", HttpMethod.Put, Tags, Json("""{"add":[7]}"""), 400, "add[0]");
        Add("tags: add an empty tag", HttpMethod.Put, Tags, Json("""{"add":[""]}"""), 400, "add");
        Add("tags: add with NUL", HttpMethod.Put, Tags, Json("""{"add":["a\u0000"]}"""), 400, "add");
        Add("tags: add a 5000-character tag", HttpMethod.Put, Tags, Json($$"""{"add":[{{Quote(longText)}}]}"""), 400, "add");
        Add("tags: device id with capitals", HttpMethod.Put, "/api/v1/devices/Cam-1/tags", Json("""{"add":["a"]}"""), 400, "id");
        Add("tags: unknown device", HttpMethod.Put, "/api/v1/devices/cam-404/tags", Json("""{"add":["a"]}"""), 404, "cam-404");
        Add("tags: viewer may not", HttpMethod.Put, Tags, Json("""{"add":["a"]}"""), 403, "role", Caller.Viewer);
        Add("device: traversal", HttpMethod.Get, "/api/v1/devices/..%2F..%2Fetc%2Fpasswd", null, 400, "id");
        Add("device: dot dot", HttpMethod.Get, "/api/v1/devices/..", null, 404, null);
        Add("device: 5000 characters", HttpMethod.Get, $"/api/v1/devices/{new string('a', 5000)}", null, 400, "id");
        Add("device: unicode", HttpMethod.Get, "/api/v1/devices/caf%C3%A9", null, 400, "id");
        Add("device: invalid percent-encoding", HttpMethod.Get, "/api/v1/devices/%FF%FE", null, 400, "id");
        Add("device: quote and semicolon", HttpMethod.Get, "/api/v1/devices/a'%3B%20DROP%20TABLE%20devices", null, 400, "id");
        Add("device: NUL", HttpMethod.Get, "/api/v1/devices/a%00b", null, 400, null);
        cases[^1] = cases[^1] with { ByServer = true };
        Add("device: unknown", HttpMethod.Get, "/api/v1/devices/cam-404", null, 404, "cam-404");
        Add("devices: online not a bool", HttpMethod.Get, "/api/v1/devices?online=maybe", null, 400, "online");
        Add("devices: invalid tag filter", HttpMethod.Get, "/api/v1/devices?tag=Not%20A%20Tag", null, 400, "tag");
        Add("devices: NUL tag filter", HttpMethod.Get, "/api/v1/devices?tag=a%00", null, 400, "tag");
        Add("devices: invalid group", HttpMethod.Get, "/api/v1/devices?group=Line%203", null, 400, "group");
        Add("devices: invalid id in ids", HttpMethod.Get, "/api/v1/devices?ids=cam-1,..%2Fetc", null, 400, "ids");
        Add("devices: too many ids", HttpMethod.Get, "/api/v1/devices?ids=" + string.Join(',', Enumerable.Range(0, 501).Select(i => $"d{i}")), null, 400, "ids");
        Add("devices: NUL group", HttpMethod.Get, "/api/v1/devices?group=%00", null, 400, "group");
        Add("revoke: malformed id", HttpMethod.Post, "/api/v1/devices/CAM_1/revoke", null, 400, "id");
        Add("revoke: reason too long", HttpMethod.Post, $"/api/v1/devices/cam-1/revoke?reason={longText}", null, 400, "reason");
        Add("revoke: reason with NUL", HttpMethod.Post, "/api/v1/devices/cam-1/revoke?reason=a%00b", null, 400, "reason");
        Add("delete device: malformed id", HttpMethod.Delete, "/api/v1/devices/-", null, 400, "id");

        // POST/GET/DELETE /api/v1/devices/{id}/assignment (this server runs with --mqtt none)
        const string Assign = "/api/v1/devices/cam-1/assignment";
        Add("assignment: empty object", HttpMethod.Post, Assign, Json("{}"), 400, "model");
        Add("assignment: model null", HttpMethod.Post, Assign, Json("""{"model":null,"version":"1.0.0"}"""), 400, "model");
        Add("assignment: model a number", HttpMethod.Post, Assign, Json("""{"model":5,"version":"1.0.0"}"""), 400, "model");
        Add("assignment: model traversal", HttpMethod.Post, Assign, Json("""{"model":"../keys","version":"1.0.0"}"""), 400, "model");
        Add("assignment: model with NUL", HttpMethod.Post, Assign, Json("""{"model":"cls\u0000","version":"1.0.0"}"""), 400, "model");
        Add("assignment: no version", HttpMethod.Post, Assign, Json("""{"model":"cls"}"""), 400, "version");
        Add("assignment: version not semver", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"latest"}"""), 400, "version");
        Add("assignment: version an array", HttpMethod.Post, Assign, Json("""{"model":"cls","version":[1]}"""), 400, "version");
        Add("assignment: unknown mode", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","mode":"canary"}"""), 400, "mode");
        Add("assignment: mode a number", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","mode":1}"""), 400, "mode");
        Add("assignment: mode too long", HttpMethod.Post, Assign, Json($$"""{"model":"cls","version":"1.0.0","mode":{{Quote(longText)}}}"""), 400, "mode");
        Add("assignment: probation a string", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":"long"}"""), 400, "probation");
        Add("assignment: probation frames negative", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"frames":-1}}"""), 400, "probation.frames");
        Add("assignment: probation frames a fraction", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"frames":1.5}}"""), 400, "probation.frames");
        Add("assignment: probation frames a string", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"frames":"100"}}"""), 400, "probation.frames");
        Add("assignment: probation seconds NaN", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"seconds":"NaN"}}"""), 400, "probation.seconds");
        Add("assignment: probation seconds a year", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"seconds":31536000}}"""), 400, "probation.seconds");
        Add("assignment: probation error share 2", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"maxErrorShare":2}}"""), 400, "probation.maxErrorShare");
        Add("assignment: probation latency ratio 0", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"maxLatencyRatio":0}}"""), 400, "probation.maxLatencyRatio");
        Add("assignment: probation drift severity unknown", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0","probation":{"maxDriftSeverity":"panic"}}"""), 400, "probation.maxDriftSeverity");
        Add("assignment: duplicate field", HttpMethod.Post, Assign, Json("""{"model":"cls","model":"cls","version":"1.0.0"}"""), 400, "model");
        // /api/v1/rollouts (without MQTT a valid rollout is a 409; every refusal below comes first)
        const string Rollouts = "/api/v1/rollouts";
        Add("rollout: empty object", HttpMethod.Post, Rollouts, Json("{}"), 400, "model");
        Add("rollout: model a number", HttpMethod.Post, Rollouts, Json("""{"model":5,"version":"1.0.0"}"""), 400, "model");
        Add("rollout: model traversal", HttpMethod.Post, Rollouts, Json("""{"model":"../keys","version":"1.0.0"}"""), 400, "model");
        Add("rollout: version not semver", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"latest"}"""), 400, "version");
        Add("rollout: stages not an array", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":{"percent":1}}"""), 400, "stages");
        Add("rollout: stages empty", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[]}"""), 400, "stages");
        Add("rollout: stage null", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[null]}"""), 400, "stages[0]");
        Add("rollout: stage percent 0", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"percent":0}]}"""), 400, "stages[0].percent");
        Add("rollout: stage percent 101", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"percent":101}]}"""), 400, "stages[0].percent");
        Add("rollout: stage percent NaN", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"percent":"NaN"}]}"""), 400, "stages[0].percent");
        Add("rollout: stages shrinking", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"percent":50},{"percent":10}]}"""), 400, "stages[1].percent");
        Add("rollout: stage count a string", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"count":"ten"}]}"""), 400, "stages[0].count");
        Add("rollout: stage bake negative", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","stages":[{"percent":100,"bakeSeconds":-5}]}"""), 400, "stages[0].bakeSeconds");
        Add("rollout: unknown policy", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","onFailure":"explode"}"""), 400, "onFailure");
        Add("rollout: unknown gate", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","gates":["speed"]}"""), 400, "gates[0]");
        Add("rollout: gate null", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","gates":[null]}"""), 400, "gates[0]");
        Add("rollout: shadow gate without shadow stage", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","gates":["shadow"]}"""), 400, "gates");
        Add("rollout: selector not a tag", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","selector":["Not A Tag"]}"""), 400, "selector[0]");
        Add("rollout: device traversal", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","devices":["../x"]}"""), 400, "devices[0]");
        Add("rollout: unknown device", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","devices":["cam-404"]}"""), 400, "devices");
        Add("rollout: deadline negative", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","deadlineSeconds":-1}"""), 400, "deadlineSeconds");
        Add("rollout: rate a string", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","ratePerMinute":"fast"}"""), 400, "ratePerMinute");
        Add("rollout: rate 0", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","ratePerMinute":0}"""), 400, "ratePerMinute");
        Add("rollout: margin negative", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","margins":{"latency":-1}}"""), 400, "margins.latency");
        Add("rollout: margin of an unknown gate", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","margins":{"speed":0.1}}"""), 400, "margins.speed");
        Add("rollout: alpha 1", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","alpha":1}"""), 400, "alpha");
        Add("rollout: failure share 2", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","maxFailureShare":2}"""), 400, "maxFailureShare");
        Add("rollout: probation frames negative", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"1.0.0","probation":{"frames":-1}}"""), 400, "probation.frames");
        Add("rollout: reason too long", HttpMethod.Post, Rollouts, Json($$"""{"model":"cls","version":"1.0.0","reason":{{Quote(longText)}}}"""), 400, "reason");
        Add("rollout: unknown version", HttpMethod.Post, Rollouts, Json("""{"model":"cls","version":"9.9.9"}"""), 404, "9.9.9");
        Add("rollout: unknown id", HttpMethod.Get, $"{Rollouts}/ro-404", null, 404, "ro-404");
        Add("rollout: id traversal", HttpMethod.Get, $"{Rollouts}/..%2F..%2Fetc", null, 400, "id");
        Add("rollout: id too long", HttpMethod.Get, $"{Rollouts}/{new string('a', 500)}", null, 400, "id");
        Add("rollouts: unknown state", HttpMethod.Get, $"{Rollouts}?state=happy", null, 400, "state");
        Add("rollouts: limit 0", HttpMethod.Get, $"{Rollouts}?limit=0", null, 400, "limit");
        Add("rollouts: limit a word", HttpMethod.Get, $"{Rollouts}?limit=many", null, 400, "limit");
        Add("rollout: unknown action", HttpMethod.Post, $"{Rollouts}/ro-404/explode", Json("{}"), 400, "action");
        Add("rollout: action on an unknown rollout", HttpMethod.Post, $"{Rollouts}/ro-404/pause", Json("{}"), 404, "ro-404");
        Add("rollout: action reason a number", HttpMethod.Post, $"{Rollouts}/ro-404/pause", Json("""{"reason":5}"""), 400, "reason");
        Add("rollout: action body not JSON", HttpMethod.Post, $"{Rollouts}/ro-404/pause", Json("hello"), 400, "body");
        Add("history: malformed id", HttpMethod.Get, "/api/v1/devices/-/history", null, 400, "id");
        Add("history: limit 0", HttpMethod.Get, "/api/v1/devices/cam-1/history?limit=0", null, 400, "limit");
        Add("assignment: unknown model", HttpMethod.Post, Assign, Json("""{"model":"nope","version":"1.0.0"}"""), 404, "nope");
        Add("assignment: unknown version", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"7.0.0"}"""), 404, "7.0.0");
        Add("assignment: unknown device", HttpMethod.Post, "/api/v1/devices/cam-404/assignment", Json("""{"model":"cls","version":"1.0.0"}"""), 404, "cam-404");
        Add("assignment: bad device id", HttpMethod.Post, "/api/v1/devices/Cam_1/assignment", Json("""{"model":"cls","version":"1.0.0"}"""), 400, "id");
        Add("assignment: without a broker", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0"}"""), 409, null);
        Add("assignment: viewer may not", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0"}"""), 403, "role", Caller.Viewer);
        Add("assignment: no token", HttpMethod.Post, Assign, Json("""{"model":"cls","version":"1.0.0"}"""), 401, "token", Caller.Anonymous);
        Add("assignment: none to read", HttpMethod.Get, Assign, null, 404, "cam-1");
        Add("assignment: read, bad device id", HttpMethod.Get, "/api/v1/devices/..%2Fx/assignment", null, 400, "id");
        Add("assignment: none to clear", HttpMethod.Delete, Assign, null, 404, "cam-1");
        Add("assignment: clear, unknown device", HttpMethod.Delete, "/api/v1/devices/cam-404/assignment", null, 404, "cam-404");
        Add("assignment: viewer may not clear", HttpMethod.Delete, Assign, null, 403, "role", Caller.Viewer);

        // POST /api/v1/tokens (admin)
        const string ApiTokens = "/api/v1/tokens";
        Add("api token: no name", HttpMethod.Post, ApiTokens, Json("""{"role":"operator"}"""), 400, "name");
        Add("api token: name null", HttpMethod.Post, ApiTokens, Json("""{"name":null}"""), 400, "name");
        Add("api token: name blank", HttpMethod.Post, ApiTokens, Json("""{"name":"  "}"""), 400, "name");
        Add("api token: name a number", HttpMethod.Post, ApiTokens, Json("""{"name":5}"""), 400, "name");
        Add("api token: name an array", HttpMethod.Post, ApiTokens, Json("""{"name":["a"]}"""), 400, "name");
        Add("api token: name too long", HttpMethod.Post, ApiTokens, Json($$"""{"name":{{Quote(longText)}}}"""), 400, "name");
        Add("api token: name with a control character", HttpMethod.Post, ApiTokens, Json("""{"name":"ci\u001b[31m"}"""), 400, "name");
        Add("api token: unknown role", HttpMethod.Post, ApiTokens, Json("""{"name":"ci","role":"root"}"""), 400, "role");
        Add("api token: role out of range", HttpMethod.Post, ApiTokens, Json("""{"name":"ci","role":7}"""), 400, "role");
        Add("api token: role null", HttpMethod.Post, ApiTokens, Json("""{"name":"ci","role":null}"""), 400, "role");
        Add("api token: role an object", HttpMethod.Post, ApiTokens, Json("""{"name":"ci","role":{}}"""), 400, "role");
        Add("api token: viewer may not", HttpMethod.Post, ApiTokens, Json("""{"name":"ci"}"""), 403, "role", Caller.Viewer);
        Add("api token: revoke a malformed id", HttpMethod.Delete, $"{ApiTokens}/..%2F..", null, 400, "id");
        Add("api token: revoke an unknown id", HttpMethod.Delete, $"{ApiTokens}/fedcba9876543210", null, 404, "fedcba9876543210");

        // POST /api/v1/enroll (anonymous)
        const string Enroll = "/api/v1/enroll";
        Add("enroll: no token", HttpMethod.Post, Enroll, Json("""{"deviceId":"cam-9"}"""), 400, "token", Caller.Anonymous);
        Add("enroll: token null", HttpMethod.Post, Enroll, Json("""{"token":null}"""), 400, "token", Caller.Anonymous);
        Add("enroll: token a number", HttpMethod.Post, Enroll, Json("""{"token":5}"""), 400, "token", Caller.Anonymous);
        Add("enroll: token wrong", HttpMethod.Post, Enroll, Json("""{"token":"efe_wrong"}"""), 401, "token", Caller.Anonymous);
        Add("enroll: token too long", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(longText)}}}"""), 401, "token", Caller.Anonymous);
        Add("enroll: device id invalid", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"deviceId":"Cam 9"}"""), 400, "deviceId", Caller.Anonymous);
        Add("enroll: device id a number", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"deviceId":9}"""), 400, "deviceId", Caller.Anonymous);
        Add("enroll: device id traversal", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"deviceId":"../../etc"}"""), 400, "deviceId", Caller.Anonymous);
        Add("enroll: agent version too long", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"agentVersion":{{Quote(longText)}}}"""), 400, "agentVersion", Caller.Anonymous);
        Add("enroll: agent version with NUL", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"agentVersion":"1\u0000"}"""), 400, "agentVersion", Caller.Anonymous);
        Add("enroll: already enrolled", HttpMethod.Post, Enroll, Json($$"""{"token":{{Quote(enrollmentToken)}},"deviceId":"cam-1"}"""), 409, null, Caller.Anonymous);

        // POST …/stage
        Add("stage: missing", HttpMethod.Post, $"{Model}/stage", Json("""{"reason":"x"}"""), 400, "stage");
        Add("stage: null", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":null}"""), 400, "stage");
        Add("stage: unknown", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":"gold"}"""), 400, "stage");
        Add("stage: a number", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":2}"""), 400, "stage");
        Add("stage: reason too long", HttpMethod.Post, $"{Model}/stage", Json($$"""{"stage":"staging","reason":{{Quote(longText)}}}"""), 400, "reason");
        Add("stage: reason with NUL", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":"staging","reason":"\u0000"}"""), 400, "reason");
        Add("stage: reason an object", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":"staging","reason":{}}"""), 400, "reason");
        Add("stage: unknown version", HttpMethod.Post, "/api/v1/models/cls/versions/9.9.9/stage", Json("""{"stage":"staging"}"""), 404, "9.9.9");
        Add("stage: viewer may not", HttpMethod.Post, $"{Model}/stage", Json("""{"stage":"staging"}"""), 403, "role", Caller.Viewer);

        // PATCH …/versions/{version} (metadata)
        Add("metadata: metrics an array", HttpMethod.Patch, Model, Json("""{"metrics":[1]}"""), 400, "metrics");
        Add("metadata: metric null", HttpMethod.Patch, Model, Json("""{"metrics":{"top1":null}}"""), 400, "metrics.top1");
        Add("metadata: metric a string", HttpMethod.Patch, Model, Json("""{"metrics":{"top1":"high"}}"""), 400, "metrics.top1");
        Add("metadata: metric NaN", HttpMethod.Patch, Model, Json("""{"metrics":{"top1":"NaN"}}"""), 400, "metrics.top1");
        Add("metadata: metric empty name", HttpMethod.Patch, Model, Json("""{"metrics":{"":1}}"""), 400, "metrics");
        Add("metadata: parameter null", HttpMethod.Patch, Model, Json("""{"parameters":{"lr":null}}"""), 400, "parameters.lr");
        Add("metadata: parameter a number", HttpMethod.Patch, Model, Json("""{"parameters":{"lr":0.1}}"""), 400, "parameters.lr");
        Add("metadata: parameter with NUL", HttpMethod.Patch, Model, Json("""{"parameters":{"lr":"\u0000"}}"""), 400, "parameters.lr");
        Add("metadata: training run not a URL", HttpMethod.Patch, Model, Json("""{"trainingRun":"file:///etc/passwd"}"""), 400, "trainingRun");
        Add("metadata: training run a number", HttpMethod.Patch, Model, Json("""{"trainingRun":42}"""), 400, "trainingRun");
        Add("metadata: parent not semver", HttpMethod.Patch, Model, Json("""{"parentVersion":"latest"}"""), 400, "parentVersion");
        Add("metadata: dataset too long", HttpMethod.Patch, Model, Json($$"""{"datasetVersion":{{Quote(longText)}}}"""), 400, "datasetVersion");
        var parameters = string.Join(",", Enumerable.Range(0, 30).Select(i => $"\"k{i}\":{Quote(new string('q', 9000))}"));
        Add("metadata: over 256 KiB", HttpMethod.Patch, Model, Json("{\"parameters\":{" + parameters + "}}"), 413, "body");
        Add("metadata: unknown version", HttpMethod.Patch, "/api/v1/models/cls/versions/2.0.0", Json("{}"), 404, "2.0.0");

        // PUT …/drift-profile
        const string Profile = $"{Model}/drift-profile";
        const string Feature = """{"name":"luma_mean","kind":"numeric","count":10,"edges":[0.5],"proportions":[0.5,0.5],"sample":[],"categories":{}""";
        Add("profile: empty object", HttpMethod.Put, Profile, Json("{}"), 400, "id");
        Add("profile: id null", HttpMethod.Put, Profile, Json($$"""{"id":null,"features":[{{Feature}}}]}"""), 400, "id");
        Add("profile: features null", HttpMethod.Put, Profile, Json("""{"id":"p","features":null}"""), 400, "features");
        Add("profile: feature null", HttpMethod.Put, Profile, Json("""{"id":"p","features":[null]}"""), 400, "features[0]");
        Add("profile: feature a string", HttpMethod.Put, Profile, Json("""{"id":"p","features":["luma"]}"""), 400, "features[0]");
        Add("profile: edge null", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","count":1,"edges":[null]}]}"""), 400, "features[0].edges[0]");
        Add("profile: edge NaN", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","kind":"numeric","count":1,"edges":["NaN"],"proportions":[0.5,0.5],"sample":[],"categories":{}}]}"""), 400, "features[0].edges");
        Add("profile: edges null", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","kind":"numeric","count":1,"edges":null,"proportions":[1],"sample":[],"categories":{}}]}"""), 400, "features[0].edges");
        Add("profile: kind null", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","kind":null,"count":1,"edges":[],"proportions":[1],"sample":[],"categories":{}}]}"""), 400, "features[0].kind");
        Add("profile: kind unknown", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","kind":"fuzzy","count":1,"edges":[],"proportions":[1],"sample":[],"categories":{}}]}"""), 400, "features.a");
        Add("profile: count a string", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","count":"many"}]}"""), 400, "features[0].count");
        Add("profile: category count null", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","count":1,"categories":{"x":null}}]}"""), 400, "features[0].categories.x");
        Add("profile: edges and proportions disagree", HttpMethod.Put, Profile, Json("""{"id":"p","features":[{"name":"a","kind":"numeric","count":1,"edges":[1,2],"proportions":[1],"sample":[],"categories":{}}]}"""), 400, "features.a");
        Add("profile: wrong schema", HttpMethod.Put, Profile, Json($$"""{"schema":"ef.manifest/1","id":"p","features":[{{Feature}}}]}"""), 400, "schema");
        Add("profile: id too long", HttpMethod.Put, Profile, Json($$"""{"id":{{Quote(longText)}},"features":[{{Feature}}}]}"""), 400, "id");
        Add("profile: no features", HttpMethod.Put, Profile, Json("""{"id":"p","features":[]}"""), 400, "features");
        Add("profile: created at not a date", HttpMethod.Put, Profile, Json($$"""{"id":"p","createdAt":"yesterday","features":[{{Feature}}}]}"""), 400, "createdAt");

        // POST …/versions/{version}: the multipart upload
        const string Push = "/api/v1/models/cls/versions/2.0.0";
        Add("upload: JSON instead of multipart", HttpMethod.Post, Push, Json("{}"), 415, "Content-Type");
        Add("upload: multipart without boundary", HttpMethod.Post, Push, Bytes(Utf8("x"), "multipart/form-data"), 400, "Content-Type");
        Add("upload: no content type", HttpMethod.Post, Push, Bytes(Utf8("x"), null), 415, "Content-Type");
        Add("upload: garbage body", HttpMethod.Post, Push, Bytes(Utf8("garbage"), $"multipart/form-data; boundary={Boundary}"), 400, "body");
        Add("upload: empty body", HttpMethod.Post, Push, Bytes([], $"multipart/form-data; boundary={Boundary}"), 400, "body");
        Add("upload: no closing boundary", HttpMethod.Post, Push, Bytes(Utf8($"--{Boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{{}}"), $"multipart/form-data; boundary={Boundary}"), 400, "body");
        Add("upload: header line too long", HttpMethod.Post, Push, Bytes(Utf8($"--{Boundary}\r\nX-Junk: {new string('h', 20_000)}\r\n\r\nx\r\n--{Boundary}--\r\n"), $"multipart/form-data; boundary={Boundary}"), 400, "body");
        Add("upload: no parts", HttpMethod.Post, Push, Multipart(), 400, "manifest");
        Add("upload: only the manifest", HttpMethod.Post, Push, Multipart(("manifest", manifest)), 400, "model");
        Add("upload: only the model", HttpMethod.Post, Push, Multipart(("model", model)), 400, "manifest");
        Add("upload: model before manifest", HttpMethod.Post, Push, Multipart(("model", model), ("manifest", manifest)), 400, "manifest");
        Add("upload: parts without names", HttpMethod.Post, Push, Multipart((null, manifest), (null, model)), 400, "manifest");
        Add("upload: manifest null", HttpMethod.Post, Push, Multipart(("manifest", Utf8("null")), ("model", model)), 400, "manifest");
        Add("upload: manifest empty", HttpMethod.Post, Push, Multipart(("manifest", []), ("model", model)), 400, "manifest");
        Add("upload: manifest not JSON", HttpMethod.Post, Push, Multipart(("manifest", Utf8("name: cls")), ("model", model)), 400, "manifest");
        Add("upload: manifest truncated", HttpMethod.Post, Push, Multipart(("manifest", manifest[..(manifest.Length / 2)]), ("model", model)), 400, "manifest");
        Add("upload: manifest an array", HttpMethod.Post, Push, Multipart(("manifest", Utf8("[]")), ("model", model)), 400, "manifest");
        Add("upload: manifest without name", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "name", null)), ("model", model)), 400, "manifest.name");
        Add("upload: manifest task unknown", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "task", "\"segmentation\"")), ("model", model)), 400, "manifest.task");
        Add("upload: manifest output null", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "outputs", "[null]")), ("model", model)), 400, "manifest.outputs[0]");
        Add("upload: manifest label null", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "labels", "[null]")), ("model", model)), 400, "manifest.labels[0]");
        Add("upload: manifest shape a string", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "input.shape", "[1,3,\"h\",64]")), ("model", model)), 400, "manifest.input.shape[2]");
        Add("upload: manifest input null", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "input", "null")), ("model", model)), 400, "manifest.input");
        Add("upload: manifest mean NaN", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "input.mean", "[\"NaN\",0,0]")), ("model", model)), 400, "manifest.input.mean");
        Add("upload: manifest over 4 MiB", HttpMethod.Post, Push, Multipart(("manifest", new byte[5 * 1024 * 1024]), ("model", model)), 413, "body");
        Add("upload: model not ONNX", HttpMethod.Post, Push, Multipart(("manifest", manifest), ("model", Utf8("not a model"))), 400, "model");
        Add("upload: model empty", HttpMethod.Post, Push, Multipart(("manifest", manifest), ("model", [])), 400, "model");
        Add("upload: model over the upload limit", HttpMethod.Post, Push, Multipart(("manifest", manifest), ("model", new byte[100_000])), 413, "model");
        Add("upload: manifest of another size", HttpMethod.Post, Push, Multipart(("manifest", ManifestWith(manifest, "artifact.size", "1")), ("model", model)), 422, "manifest.artifact.size");
        Add("upload: version exists", HttpMethod.Post, Model, Multipart(("manifest", manifest), ("model", model)), 409, null);
        Add("upload: name with capitals", HttpMethod.Post, "/api/v1/models/Cls/versions/2.0.0", Multipart(("manifest", manifest), ("model", model)), 400, "name");
        Add("upload: name traversal", HttpMethod.Post, "/api/v1/models/..%2F..%2Ftmp/versions/2.0.0", Multipart(("manifest", manifest), ("model", model)), 400, "name");
        Add("upload: version not semver", HttpMethod.Post, "/api/v1/models/cls/versions/latest", Multipart(("manifest", manifest), ("model", model)), 400, "version");
        Add("upload: version too long", HttpMethod.Post, $"/api/v1/models/cls/versions/1.0.0-{new string('a', 100)}", Multipart(("manifest", manifest), ("model", model)), 400, "version");
        Add("upload: viewer may not", HttpMethod.Post, Push, Multipart(("manifest", manifest), ("model", model)), 403, "role", Caller.Viewer);

        // Model reads with odd path segments.
        foreach (var suffix in new[] { "", "/history" })
        {
            Add($"model{suffix}: name with capitals", HttpMethod.Get, $"/api/v1/models/NotValid{suffix}", null, 400, "name");
            Add($"model{suffix}: name traversal", HttpMethod.Get, $"/api/v1/models/..%2F..%2Fetc{suffix}", null, 400, "name");
            Add($"model{suffix}: unknown", HttpMethod.Get, $"/api/v1/models/nope{suffix}", null, 404, "nope");
        }

        foreach (var suffix in new[] { "", "/manifest", "/manifest.sig", "/artifact", "/drift-profile" })
        {
            Add($"version{suffix}: not semver", HttpMethod.Get, $"/api/v1/models/cls/versions/1.0{suffix}", null, 400, "version");
            Add($"version{suffix}: traversal", HttpMethod.Get, $"/api/v1/models/cls/versions/..%2F..%2Fkeys{suffix}", null, 400, "version");
            Add($"version{suffix}: bad name", HttpMethod.Get, $"/api/v1/models/cls%20x/versions/1.0.0{suffix}", null, 400, "name");
            Add($"version{suffix}: unknown", HttpMethod.Get, $"/api/v1/models/cls/versions/3.0.0{suffix}", null, 404, "3.0.0");
        }

        // Queries: telemetry, drift, events (by device and fleet-wide) and audit.
        foreach (var path in new[] { "/api/v1/telemetry", "/api/v1/drift", "/api/v1/events", "/api/v1/devices/cam-1/telemetry", "/api/v1/devices/cam-1/drift", "/api/v1/devices/cam-1/events", "/api/v1/audit" })
        {
            var q = path.Split('/')[^1];
            Add($"{q}: limit not a number", HttpMethod.Get, $"{path}?limit=ten", null, 400, "limit");
            Add($"{q}: limit zero", HttpMethod.Get, $"{path}?limit=0", null, 400, "limit");
            Add($"{q}: limit too large", HttpMethod.Get, $"{path}?limit=10001", null, 400, "limit");
            Add($"{q}: limit past int", HttpMethod.Get, $"{path}?limit=99999999999", null, 400, "limit");
            Add($"{q}: limit twice", HttpMethod.Get, $"{path}?limit=1&limit=2", null, 400, "limit");
            Add($"{q}: from not a date", HttpMethod.Get, $"{path}?from=yesterday", null, 400, "from");
            Add($"{q}: to not a date", HttpMethod.Get, $"{path}?to=2026-13-45T99:00:00Z", null, 400, "to");
            Add($"{q}: from after to", HttpMethod.Get, $"{path}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", null, 400, "from");
            Add($"{q}: cursor garbage", HttpMethod.Get, $"{path}?after=%27%3B--", null, 400, "after");
            Add($"{q}: the whole calendar", HttpMethod.Get, $"{path}?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", null, 200, null);
            Add($"{q}: to at year 1", HttpMethod.Get, $"{path}?to=0001-01-01T00:00:00Z", null, 200, null);
        }

        foreach (var path in new[] { "/api/v1/telemetry", "/api/v1/drift", "/api/v1/events" })
        {
            var q = path.Split('/')[^1];
            Add($"{q}: device invalid", HttpMethod.Get, $"{path}?device=Cam%201", null, 400, "device");
            Add($"{q}: device with NUL", HttpMethod.Get, $"{path}?device=a%00", null, 400, "device");
            Add($"{q}: cursor with a bad device", HttpMethod.Get, $"{path}?after=1:Bad%20Dev:1", null, 400, "after");
            Add($"{q}: cursor with NUL", HttpMethod.Get, $"{path}?after=1:%00:1", null, 400, "after");
            Add($"{q}: cursor numbers too large", HttpMethod.Get, $"{path}?after=99999999999999999999:a:1", null, 400, "after");
        }

        foreach (var path in new[] { "/api/v1/devices/CAM/telemetry", "/api/v1/devices/..%2Fx/drift", "/api/v1/devices/a%20b/events" })
        {
            Add($"device query: bad id {path}", HttpMethod.Get, path, null, 400, "device");
        }

        foreach (var path in new[] { "/api/v1/telemetry", "/api/v1/drift" })
        {
            var q = path.Split('/')[^1];
            Add($"{q}: model traversal", HttpMethod.Get, $"{path}?model=..%2F..", null, 400, "model");
            Add($"{q}: model with NUL", HttpMethod.Get, $"{path}?model=cls%00", null, 400, "model");
            Add($"{q}: version not semver", HttpMethod.Get, $"{path}?model=cls&version=v1", null, 400, "version");
        }

        Add("telemetry: unknown resolution", HttpMethod.Get, "/api/v1/telemetry?resolution=5m", null, 400, "resolution");
        Add("drift: unknown severity", HttpMethod.Get, "/api/v1/drift?severity=panic", null, 400, "severity");
        Add("events: type with NUL", HttpMethod.Get, "/api/v1/events?type=model%00", null, 400, "type");
        Add("events: type too long", HttpMethod.Get, $"/api/v1/events?type={longText}", null, 400, "type");
        Add("events: one of the types too long", HttpMethod.Get, $"/api/v1/events?type=update.,{new string('u', 150)}", null, 400, "type");
        Add("events: 21 types", HttpMethod.Get, $"/api/v1/events?type={string.Join(",", Enumerable.Range(0, 21).Select(i => $"t{i}"))}", null, 400, "type");
        Add("events: unknown order", HttpMethod.Get, "/api/v1/devices/cam-1/events?order=random", null, 400, "order");
        Add("events: order twice", HttpMethod.Get, "/api/v1/events?order=asc&order=desc", null, 400, "order");
        Add("events: type list with LIKE wildcards", HttpMethod.Get, "/api/v1/events?type=%25,_,update.", null, 200, null);
        Add("events: descending pages", HttpMethod.Get, "/api/v1/events?order=desc&after=1:cam-1:1", null, 200, null);
        Add("audit: cursor not a number", HttpMethod.Get, "/api/v1/audit?after=abc", null, 400, "after");
        Add("audit: target with NUL", HttpMethod.Get, "/api/v1/audit?target=device%2F%00", null, 400, "target");
        Add("audit: target too long", HttpMethod.Get, $"/api/v1/audit?target={longText}", null, 400, "target");

        // Outside any endpoint.
        Add("unknown path", HttpMethod.Get, "/api/v1/nothing-here", null, 404, "/api/v1/nothing-here");
        Add("wrong method", HttpMethod.Put, "/api/v1/models", Json("{}"), 405, "PUT");
        Add("no token", HttpMethod.Get, "/api/v1/devices", null, 401, "token", Caller.Anonymous);
        Add("metrics without a token", HttpMethod.Get, "/metrics", null, 401, "token", Caller.Anonymous);
        return cases;
    }
}

[Trait("Category", "Integration")]
public sealed class MalformedRequestSqliteTests : MalformedRequestTests
{
    protected override Task<ControlPlaneFactory> CreateAsync() =>
        Task.FromResult(new ControlPlaneFactory(null, new Dictionary<string, string?> { ["ControlPlane:MaxUploadBytes"] = "65536" }, kestrel: true));
}

[Trait("Category", "Integration")]
[Collection(PostgresCollection.Name)]
public sealed class MalformedRequestPostgresTests(PostgresFixture postgres) : MalformedRequestTests
{
    protected override async Task<ControlPlaneFactory> CreateAsync() =>
        new(await postgres.Server.CreateDatabaseAsync(), new Dictionary<string, string?> { ["ControlPlane:MaxUploadBytes"] = "65536" }, kestrel: true);
}
