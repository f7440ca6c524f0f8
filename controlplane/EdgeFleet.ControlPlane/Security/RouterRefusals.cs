using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>
/// Lets the router's own refusals through authorization: when no endpoint takes the request's method (405) or
/// content type (415), routing picks a bare <see cref="Endpoint"/> (not a <see cref="RouteEndpoint"/>) that only
/// writes that status. The fallback policy would otherwise answer it with 401, so an agent posting its enrollment
/// as text/plain would be told it needs an API token instead of the content type it should send.
/// </summary>
public sealed class RouterRefusals : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(context);
        return context.GetEndpoint() is { } endpoint and not RouteEndpoint && authorizeResult is { Succeeded: false }
            ? next(context)
            : _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
