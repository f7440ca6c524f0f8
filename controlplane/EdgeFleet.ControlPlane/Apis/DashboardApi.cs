using System.Security.Claims;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Live;
using EdgeFleet.ControlPlane.Security;
using Microsoft.AspNetCore.Http.Features;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// The dashboard's server side: its session (login exchanges an API token for a cookie, logout clears it), the CSRF
/// check of cookie-authenticated state-changing requests, the live stream (<c>GET /api/v1/live</c>, server-sent
/// events) and the bundled single-page app at <c>/</c>.
/// </summary>
public static class DashboardApi
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    public static RouteGroupBuilder MapDashboardApi(this RouteGroupBuilder api)
    {
        var session = api.MapGroup("/session").WithTags("Dashboard");
        session.MapPost("/", async (LoginRequest request, ApiTokens tokens, DashboardSessions sessions, HttpContext http) =>
        {
            var token = request.Token?.Trim();
            if (string.IsNullOrEmpty(token))
            {
                throw ApiProblem.Invalid("token", "is required: paste an API token (efp_…)");
            }

            if (token.Length > 200 || await tokens.AuthenticateAsync(token) is not { } principal)
            {
                throw new ApiProblem(StatusCodes.Status401Unauthorized, "authentication required", "unknown or revoked API token");
            }

            var (cookie, issued) = sessions.Issue(token);
            http.Response.Cookies.Append(DashboardSessions.CookieName, cookie, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = http.Request.IsHttps,
                Path = "/",
                Expires = issued.Expires,
                IsEssential = true,
            });
            http.Response.Headers.CacheControl = "no-store";
            return TypedResults.Ok(new SessionInfo { Name = principal.Name, Role = principal.Role, Csrf = issued.Csrf, Expires = issued.Expires });
        }).AllowAnonymous().WithDescription("Exchanges an API token for the dashboard's session cookie (HttpOnly, SameSite=Strict). 401 for an unknown token.");

        session.MapGet("/", (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "no-store";
            var current = http.Items[typeof(DashboardSessions.Session)] as DashboardSessions.Session;
            return TypedResults.Ok(new SessionInfo
            {
                Name = http.User.Identity?.Name ?? "",
                Role = Enum.Parse<ApiRole>(http.User.FindFirstValue(ClaimTypes.Role) ?? nameof(ApiRole.Viewer)),
                Csrf = current?.Csrf,
                Expires = current?.Expires,
            });
        }).WithDescription("Who is signed in, and the CSRF value a cookie session sends in X-EdgeFleet-CSRF.");

        session.MapDelete("/", (HttpContext http) =>
        {
            http.Response.Cookies.Delete(DashboardSessions.CookieName, new CookieOptions { Path = "/", HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps });
            return TypedResults.NoContent();
        }).AllowAnonymous().WithDescription("Signs out: clears the session cookie.");

        api.MapGet("/live", StreamAsync).WithTags("Dashboard")
            .WithDescription("Server-sent events: 'devices' when ingestion wrote a device's telemetry/status/events or the registry enrolled, tagged, revoked or deleted it, " +
                "'rollouts' when a rollout changed, 'models' when a version was pushed or changed stage, metadata or drift profile; " +
                "data {kind, ids, more}. A client that falls behind is disconnected (reconnect and fetch again).");
        return api;
    }

    /// <summary>
    /// Refuses (403) a state-changing request that a session cookie authenticated unless it carries the session's
    /// CSRF value in <c>X-EdgeFleet-CSRF</c>. Bearer-token requests never use the cookie, so they are not affected.
    /// </summary>
    public static async Task RequireCsrfAsync(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        if (context.Items[typeof(DashboardSessions.Session)] is DashboardSessions.Session session
            && !(HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method) || HttpMethods.IsOptions(context.Request.Method))
            && !DashboardSessions.CsrfMatches(session, context.Request.Headers[DashboardSessions.CsrfHeader].ToString()))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails = new Microsoft.AspNetCore.Mvc.ProblemDetails
                {
                    Status = StatusCodes.Status403Forbidden,
                    Title = "CSRF check failed",
                    Detail = $"a request authenticated by the dashboard's session cookie must send the session's {DashboardSessions.CsrfHeader} header " +
                        "(GET /api/v1/session returns it); API clients send 'Authorization: Bearer TOKEN' instead",
                },
            }).ConfigureAwait(false);
            return;
        }

        await next(context).ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpContext http, LiveEvents live, IHostApplicationLifetime lifetime)
    {
        using var subscription = live.Subscribe()
            ?? throw new ApiProblem(StatusCodes.Status503ServiceUnavailable, "too many live clients", $"{live.MaxSubscribers} live clients are connected; try again later");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var body = http.Response.Body;
        try
        {
            // The first event tells the client it is connected: it fetches everything once, then only what changes.
            await WriteAsync(body, "hello", "{}", stop.Token).ConfigureAwait(false);
            var pending = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            while (!stop.IsCancellationRequested)
            {
                using var beat = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                beat.CancelAfter(Heartbeat);
                bool more;
                try
                {
                    more = await subscription.Reader.WaitToReadAsync(beat.Token).ConfigureAwait(false);
                }
                catch (SlowSubscriberException)
                {
                    await WriteAsync(body, "dropped", "{\"reason\":\"the client fell behind\"}", stop.Token).ConfigureAwait(false);
                    break;
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    await body.WriteAsync(": keep-alive\n\n"u8.ToArray(), stop.Token).ConfigureAwait(false);
                    await body.FlushAsync(stop.Token).ConfigureAwait(false);
                    continue;
                }

                if (!more)
                {
                    break;
                }

                // Coalesce what is queued: one event per kind, however many writes it stands for.
                while (subscription.Reader.TryRead(out var change))
                {
                    if (!pending.TryGetValue(change.Kind, out var ids))
                    {
                        pending[change.Kind] = ids = new HashSet<string>(StringComparer.Ordinal);
                    }

                    ids.UnionWith(change.Ids);
                }

                foreach (var (kind, ids) in pending)
                {
                    var info = new LiveChangeInfo { Kind = kind, Ids = ids.Count > 100 ? [] : ids.Order(StringComparer.Ordinal).ToList(), More = ids.Count > 100 };
                    await WriteAsync(body, kind, JsonSerializer.Serialize(info, ApiJsonContext.Default.LiveChangeInfo), stop.Token).ConfigureAwait(false);
                }

                pending.Clear();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // the client went away or the server stops
        }
    }

    private static async Task WriteAsync(Stream body, string name, string json, CancellationToken cancellationToken)
    {
        await body.WriteAsync(Encoding.UTF8.GetBytes($"event: {name}\ndata: {json}\n\n"), cancellationToken).ConfigureAwait(false);
        await body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
