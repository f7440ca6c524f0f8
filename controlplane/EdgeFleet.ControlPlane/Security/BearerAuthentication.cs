using System.Security.Claims;
using System.Text.Encodings.Web;
using EdgeFleet.Contracts.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>
/// <c>Authorization: Bearer TOKEN</c> against the hashed API tokens, and the devices' HTTP tokens (issued at
/// enrollment, role <see cref="Policies.DeviceRole"/>, invalid once the device is revoked or deleted); the role
/// becomes policies.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiTokens tokens, Fleet.DeviceRegistry devices,
    IProblemDetailsService problems, DashboardSessions sessions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return await AuthenticateCookieAsync().ConfigureAwait(false);
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return AuthenticateResult.Fail("the Authorization header must be 'Bearer TOKEN'");
        }

        var token = header[7..].Trim();
        var deviceToken = token.StartsWith(Fleet.DeviceRegistry.HttpTokenPrefix, StringComparison.Ordinal);
        if (deviceToken && await devices.AuthenticateHttpTokenAsync(token).ConfigureAwait(false) is { } deviceId)
        {
            return Success(deviceId, $"device:{deviceId}", Policies.DeviceRole);
        }

        var principal = await tokens.AuthenticateAsync(token).ConfigureAwait(false);
        if (principal is null)
        {
            return AuthenticateResult.Fail(deviceToken ? "unknown device token, or the device was revoked or deleted" : "unknown or revoked token");
        }

        return Success(principal.Id, principal.Name, principal.Role.ToString());
    }

    /// <summary>
    /// The dashboard's session cookie (only when no Authorization header is sent): the API token sealed in it is
    /// authenticated afresh, so a revoked token ends its sessions. The session goes into
    /// <see cref="HttpContext.Items"/> for the CSRF check of state-changing requests.
    /// </summary>
    private async Task<AuthenticateResult> AuthenticateCookieAsync()
    {
        if (!Request.Cookies.TryGetValue(DashboardSessions.CookieName, out var cookie))
        {
            return AuthenticateResult.NoResult();
        }

        if (sessions.Read(cookie) is not { } session)
        {
            return AuthenticateResult.Fail("the dashboard session expired or is not valid: sign in again");
        }

        if (await tokens.AuthenticateAsync(session.Token).ConfigureAwait(false) is not { } principal)
        {
            return AuthenticateResult.Fail("the token of this dashboard session was revoked: sign in again");
        }

        Context.Items[typeof(DashboardSessions.Session)] = session;
        return Success(principal.Id, principal.Name, principal.Role.ToString());
    }

    private static AuthenticateResult Success(string id, string name, string role)
    {
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, id), new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    /// <summary>401 as problem+json saying what was wrong with the credentials.</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync().ConfigureAwait(false);
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = new Microsoft.AspNetCore.Mvc.ProblemDetails
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = "authentication required",
                Detail = result.Failure?.Message ?? "this call needs an API token: send 'Authorization: Bearer TOKEN'",
            },
        }).ConfigureAwait(false);
    }

    /// <summary>403 as problem+json naming the role the call needs.</summary>
    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        var role = Context.User.FindFirst(ClaimTypes.Role)?.Value ?? "no role";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = new Microsoft.AspNetCore.Mvc.ProblemDetails
            {
                Status = StatusCodes.Status403Forbidden,
                Title = "not allowed",
                Detail = $"the token '{Context.User.Identity?.Name}' has the {role} role, which may not {Context.Request.Method} {Context.Request.Path}",
            },
        }).ConfigureAwait(false);
    }
}

/// <summary>Policies by role: each role includes the ones below it.</summary>
public static class Policies
{
    public const string Viewer = "viewer";
    public const string Operator = "operator";
    public const string Admin = "admin";

    /// <summary>Reads what a device downloads for an update: manifests, signatures, artifacts, drift profiles.</summary>
    public const string DeviceRead = "device-read";

    /// <summary>The role of a device's HTTP token; no policy but <see cref="DeviceRead"/> admits it.</summary>
    public const string DeviceRole = "Device";

    public static void Add(Microsoft.AspNetCore.Authorization.AuthorizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.AddPolicy(Viewer, p => p.RequireRole(nameof(ApiRole.Viewer), nameof(ApiRole.Operator), nameof(ApiRole.Admin)));
        options.AddPolicy(Operator, p => p.RequireRole(nameof(ApiRole.Operator), nameof(ApiRole.Admin)));
        options.AddPolicy(Admin, p => p.RequireRole(nameof(ApiRole.Admin)));
        options.AddPolicy(DeviceRead, p => p.RequireRole(nameof(ApiRole.Viewer), nameof(ApiRole.Operator), nameof(ApiRole.Admin), DeviceRole));
        options.FallbackPolicy = options.GetPolicy(Viewer);
    }

    /// <summary>Name of the caller for the audit log.</summary>
    public static string Actor(this ClaimsPrincipal user) => user?.Identity?.Name ?? "anonymous";
}
