using System.Net;
using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Live;
using EdgeFleet.ControlPlane.Security;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>The dashboard's server side through the real HTTP stack: session cookie, CSRF check, live stream.</summary>
[Trait("Category", "Integration")]
public sealed class DashboardApiTests
{
    private static async Task<string> TokenAsync(HttpClient admin, ApiRole role)
    {
        using var r = await admin.PostAsJsonAsync("/api/v1/tokens", new ApiTokenRequest { Name = $"dash-{role}".ToLowerInvariant(), Role = role }, ApiJsonContext.Default.ApiTokenRequest);
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiTokenInfo))!.Token!;
    }

    /// <summary>Logs in as <paramref name="token"/> and returns the cookie (name=value) and the session's CSRF value.</summary>
    private static async Task<(string Cookie, SessionInfo Session, string SetCookie)> LoginAsync(HttpClient anonymous, string token)
    {
        using var r = await anonymous.PostAsJsonAsync("/api/v1/session", new LoginRequest { Token = token }, ApiJsonContext.Default.LoginRequest);
        Assert.True(r.StatusCode == HttpStatusCode.OK, await r.Content.ReadAsStringAsync());
        var setCookie = Assert.Single(r.Headers.GetValues("Set-Cookie"));
        var session = (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.SessionInfo))!;
        return (setCookie.Split(';')[0], session, setCookie);
    }

    /// <summary>A client without a cookie jar: each request carries exactly the cookie the test gives it.</summary>
    private static HttpClient Cookieless(ControlPlaneFactory cp) => cp.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { HandleCookies = false });

    private static HttpRequestMessage Request(HttpMethod method, string path, string cookie, string? csrf = null, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = content };
        request.Headers.Add("Cookie", cookie);
        if (csrf is not null)
        {
            request.Headers.Add(DashboardSessions.CsrfHeader, csrf);
        }

        return request;
    }

    private static JsonContent NewEnrollmentToken() => JsonContent.Create(new EnrollmentTokenRequest { Tags = ["site=dash"] }, ApiJsonContext.Default.EnrollmentTokenRequest);

    [Fact]
    public async Task Login_ValidToken_SetsHttpOnlyStrictExpiringCookie_AndTheCookieAuthenticatesReads()
    {
        await using var cp = new ControlPlaneFactory();
        using var anonymous = Cookieless(cp);

        var (cookie, session, setCookie) = await LoginAsync(anonymous, ControlPlaneFactory.AdminToken);

        Assert.StartsWith(DashboardSessions.CookieName + "=", cookie, StringComparison.Ordinal);
        var attributes = setCookie.ToLowerInvariant();
        Assert.Contains("httponly", attributes, StringComparison.Ordinal);
        Assert.Contains("samesite=strict", attributes, StringComparison.Ordinal);
        Assert.Contains("path=/", attributes, StringComparison.Ordinal);
        Assert.Contains("expires=", attributes, StringComparison.Ordinal);
        Assert.DoesNotContain("secure", attributes, StringComparison.Ordinal); // plain http here; https requests get Secure
        Assert.DoesNotContain(ControlPlaneFactory.AdminToken, cookie, StringComparison.Ordinal);
        Assert.Equal(ApiRole.Admin, session.Role);
        Assert.False(string.IsNullOrEmpty(session.Csrf));

        using var devices = await anonymous.SendAsync(Request(HttpMethod.Get, "/api/v1/devices", cookie));
        Assert.Equal(HttpStatusCode.OK, devices.StatusCode);
        using var me = await anonymous.SendAsync(Request(HttpMethod.Get, "/api/v1/session", cookie));
        var info = (await me.Content.ReadFromJsonAsync(ApiJsonContext.Default.SessionInfo))!;
        Assert.Equal((session.Csrf, ApiRole.Admin), (info.Csrf, info.Role));
    }

    [Fact]
    public async Task Login_OverHttps_MarksTheCookieSecure()
    {
        await using var cp = new ControlPlaneFactory();
        using var https = cp.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost"), HandleCookies = false });

        var (_, _, setCookie) = await LoginAsync(https, ControlPlaneFactory.AdminToken);

        Assert.Contains("; secure", setCookie.ToLowerInvariant(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_UnknownOrMissingToken_Is401Or400ProblemJson_AndSetsNoCookie()
    {
        await using var cp = new ControlPlaneFactory();
        using var anonymous = Cookieless(cp);

        using var unknown = await anonymous.PostAsJsonAsync("/api/v1/session", new LoginRequest { Token = "efp_nope" }, ApiJsonContext.Default.LoginRequest);
        using var missing = await anonymous.PostAsJsonAsync("/api/v1/session", new LoginRequest(), ApiJsonContext.Default.LoginRequest);

        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
        Assert.False(unknown.Headers.Contains("Set-Cookie"));
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("token", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CookiePost_WithoutOrWithWrongCsrfHeader_Is403_WithTheHeaderItPasses()
    {
        await using var cp = new ControlPlaneFactory();
        using var anonymous = Cookieless(cp);
        var (cookie, session, _) = await LoginAsync(anonymous, ControlPlaneFactory.AdminToken);

        using var without = await anonymous.SendAsync(Request(HttpMethod.Post, "/api/v1/enrollment-tokens", cookie, content: NewEnrollmentToken()));
        using var wrong = await anonymous.SendAsync(Request(HttpMethod.Post, "/api/v1/enrollment-tokens", cookie, "0123456789abcdef0123456789abcdef", NewEnrollmentToken()));
        using var right = await anonymous.SendAsync(Request(HttpMethod.Post, "/api/v1/enrollment-tokens", cookie, session.Csrf, NewEnrollmentToken()));

        Assert.Equal(HttpStatusCode.Forbidden, without.StatusCode);
        Assert.Equal("application/problem+json", without.Content.Headers.ContentType?.MediaType);
        Assert.Contains("X-EdgeFleet-CSRF", await without.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.Created, right.StatusCode);
        using var admin = cp.Client();
        Assert.Single((await admin.GetFromJsonAsync("/api/v1/enrollment-tokens", ApiJsonContext.Default.IReadOnlyListEnrollmentTokenInfo))!);
    }

    [Fact]
    public async Task BearerPost_WithoutCsrfHeader_IsUnaffected()
    {
        await using var cp = new ControlPlaneFactory();
        using var admin = cp.Client();

        using var r = await admin.PostAsync(new Uri("/api/v1/enrollment-tokens", UriKind.Relative), NewEnrollmentToken());

        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }

    [Fact]
    public async Task ViewerCookie_PostWithCsrf_Is403_ReadsWork()
    {
        await using var cp = new ControlPlaneFactory();
        using var admin = cp.Client();
        using var anonymous = Cookieless(cp);
        var (cookie, session, _) = await LoginAsync(anonymous, await TokenAsync(admin, ApiRole.Viewer));

        using var read = await anonymous.SendAsync(Request(HttpMethod.Get, "/api/v1/rollouts", cookie));
        using var write = await anonymous.SendAsync(Request(HttpMethod.Post, "/api/v1/enrollment-tokens", cookie, session.Csrf, NewEnrollmentToken()));

        Assert.Equal(ApiRole.Viewer, session.Role);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, write.StatusCode);
        Assert.Contains("Viewer role", await write.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cookie_OfRevokedToken_Tampered_OrLoggedOut_Is401()
    {
        await using var cp = new ControlPlaneFactory();
        using var admin = cp.Client();
        using var anonymous = Cookieless(cp);
        using var created = await admin.PostAsJsonAsync("/api/v1/tokens", new ApiTokenRequest { Name = "soon-revoked", Role = ApiRole.Operator }, ApiJsonContext.Default.ApiTokenRequest);
        var token = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiTokenInfo))!;
        var (cookie, session, _) = await LoginAsync(anonymous, token.Token!);
        var tampered = cookie[..^3] + (cookie[^3] == 'A' ? "B" : "A") + cookie[^2..];

        using var tamperedRead = await anonymous.SendAsync(Request(HttpMethod.Get, "/api/v1/devices", tampered));
        using var logout = await anonymous.SendAsync(Request(HttpMethod.Delete, "/api/v1/session", cookie, session.Csrf));
        using (var revoke = await admin.DeleteAsync(new Uri($"/api/v1/tokens/{token.Id}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using var revokedRead = await anonymous.SendAsync(Request(HttpMethod.Get, "/api/v1/devices", cookie));

        Assert.Equal(HttpStatusCode.Unauthorized, tamperedRead.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        Assert.Contains(logout.Headers.GetValues("Set-Cookie"), c => c.StartsWith(DashboardSessions.CookieName + "=;", StringComparison.Ordinal) && c.Contains("expires=Thu, 01 Jan 1970", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Unauthorized, revokedRead.StatusCode);
        Assert.Contains("revoked", await revokedRead.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dashboard_IsServedAtTheRoot_WithAStrictContentSecurityPolicy()
    {
        await using var cp = new ControlPlaneFactory();
        using var anonymous = Cookieless(cp);

        using var index = await anonymous.GetAsync(new Uri("/", UriKind.Relative));
        using var script = await anonymous.GetAsync(new Uri("/dashboard/app.js", UriKind.Relative));
        using var missing = await anonymous.GetAsync(new Uri("/dashboard/nope.js", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Contains("/dashboard/app.js", await index.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("default-src 'none'", index.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var again = new HttpRequestMessage(HttpMethod.Get, new Uri("/dashboard/app.js", UriKind.Relative));
        again.Headers.TryAddWithoutValidation("If-None-Match", script.Headers.ETag!.Tag);
        using var notModified = await anonymous.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Fact]
    public async Task Live_NeedsAuthentication_AndStreamsHelloThenCoalescedChanges()
    {
        await using var cp = new ControlPlaneFactory();
        using var anonymous = Cookieless(cp);
        using var admin = cp.Client();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var refused = await anonymous.GetAsync(new Uri("/api/v1/live", UriKind.Relative), cancel.Token);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        using var response = await admin.GetAsync(new Uri("/api/v1/live", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        Assert.Equal("event: hello", await reader.ReadLineAsync(cancel.Token));
        await reader.ReadLineAsync(cancel.Token);
        await reader.ReadLineAsync(cancel.Token);

        var live = cp.Services.GetRequiredService<LiveEvents>();
        Assert.Equal(1, live.Subscribers);
        live.Publish(LiveEvents.Rollouts, ["ro-1"]);

        Assert.Equal("event: rollouts", await reader.ReadLineAsync(cancel.Token));
        Assert.Equal("""data: {"kind":"rollouts","ids":["ro-1"],"more":false}""", await reader.ReadLineAsync(cancel.Token));
    }

    /// <summary>Reads the stream until an event of <paramref name="kind"/> arrives and returns its data line.</summary>
    private static async Task<string> NextAsync(StreamReader reader, string kind, CancellationToken cancellationToken)
    {
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line == $"event: {kind}")
            {
                return (await reader.ReadLineAsync(cancellationToken))!;
            }
        }

        throw new EndOfStreamException($"the live stream ended before a '{kind}' event");
    }

    [Fact]
    public async Task Live_RegistryChanges_AreStreamed_TagsAndRevokeAsDevices_PushAndStageAsModels()
    {
        await using var cp = new ControlPlaneFactory();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await admin.GetAsync(new Uri("/api/v1/live", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        Assert.Equal("event: hello", await reader.ReadLineAsync(cancel.Token));

        using (var token = await admin.PostAsync(new Uri("/api/v1/enrollment-tokens", UriKind.Relative), NewEnrollmentToken(), cancel.Token))
        {
            var enrollment = (await token.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo, cancel.Token))!;
            using var enroll = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = enrollment.Token!, DeviceId = "cam-live" },
                ApiJsonContext.Default.EnrollRequest, cancel.Token);
            Assert.True(enroll.IsSuccessStatusCode, await enroll.Content.ReadAsStringAsync(cancel.Token));
        }

        Assert.Equal("""data: {"kind":"devices","ids":["cam-live"],"more":false}""", await NextAsync(reader, "devices", cancel.Token));
        using (var tags = await admin.PutAsJsonAsync("/api/v1/devices/cam-live/tags", new TagChangeRequest { Add = ["zone=dock"] }, ApiJsonContext.Default.TagChangeRequest, cancel.Token))
        {
            Assert.True(tags.IsSuccessStatusCode, await tags.Content.ReadAsStringAsync(cancel.Token));
        }

        Assert.Equal("""data: {"kind":"devices","ids":["cam-live"],"more":false}""", await NextAsync(reader, "devices", cancel.Token));
        using (var revoke = await admin.PostAsync(new Uri("/api/v1/devices/cam-live/revoke", UriKind.Relative), null, cancel.Token))
        {
            Assert.True(revoke.IsSuccessStatusCode, await revoke.Content.ReadAsStringAsync(cancel.Token));
        }

        Assert.Contains("cam-live", await NextAsync(reader, "devices", cancel.Token), StringComparison.Ordinal);

        await ModelsApiTests.PushAsync(admin, "live-cls", "1.0.0");
        Assert.Equal("""data: {"kind":"models","ids":["live-cls"],"more":false}""", await NextAsync(reader, "models", cancel.Token));
        using (var stage = await admin.PostAsJsonAsync("/api/v1/models/live-cls/versions/1.0.0/stage", new StageChangeRequest { Stage = Stages.Production },
            ApiJsonContext.Default.StageChangeRequest, cancel.Token))
        {
            Assert.True(stage.IsSuccessStatusCode, await stage.Content.ReadAsStringAsync(cancel.Token));
        }

        Assert.Equal("""data: {"kind":"models","ids":["live-cls"],"more":false}""", await NextAsync(reader, "models", cancel.Token));
    }

    [Fact]
    public async Task ViewerCookie_StageChangeAndTagChange_WithCsrf_Are403_AndChangeNothing()
    {
        await using var cp = new ControlPlaneFactory();
        using var admin = cp.Client();
        using var anonymous = Cookieless(cp);
        await ModelsApiTests.PushAsync(admin, "view-cls", "1.0.0");
        var (cookie, session, _) = await LoginAsync(anonymous, await TokenAsync(admin, ApiRole.Viewer));

        using var stage = await anonymous.SendAsync(Request(HttpMethod.Post, "/api/v1/models/view-cls/versions/1.0.0/stage", cookie, session.Csrf,
            JsonContent.Create(new StageChangeRequest { Stage = Stages.Production }, ApiJsonContext.Default.StageChangeRequest)));
        using var tags = await anonymous.SendAsync(Request(HttpMethod.Put, "/api/v1/devices/cam-1/tags", cookie, session.Csrf,
            JsonContent.Create(new TagChangeRequest { Add = ["zone=x"] }, ApiJsonContext.Default.TagChangeRequest)));

        Assert.Equal(HttpStatusCode.Forbidden, stage.StatusCode);
        Assert.Equal("application/problem+json", stage.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Forbidden, tags.StatusCode);
        var version = await admin.GetFromJsonAsync("/api/v1/models/view-cls/versions/1.0.0", ApiJsonContext.Default.ModelVersionInfo);
        Assert.Equal(Stages.None, version!.Stage);
    }
}
