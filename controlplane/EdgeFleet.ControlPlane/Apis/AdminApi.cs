using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>/api/v1/tokens (admin) and /api/v1/audit.</summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this RouteGroupBuilder api)
    {
        var tokens = api.MapGroup("/tokens").WithTags("Tokens").RequireAuthorization(Policies.Admin);
        tokens.MapGet("/", async (ApiTokens store) => TypedResults.Ok(await store.ListAsync()));
        tokens.MapPost("/", async (ApiTokenRequest request, ApiTokens store, HttpContext http) =>
        {
            var created = await store.CreateAsync(request.Name, request.Role, http.User.Actor());
            return TypedResults.Created($"/api/v1/tokens/{created.Id}", created);
        });
        tokens.MapDelete("/{id}", async (string id, ApiTokens store, HttpContext http) =>
            await store.RevokeAsync(id, http.User.Actor()) ? Results.NoContent() : throw ApiProblem.NotFound($"active token {id}"));

        api.MapGet("/audit", async (DateTimeOffset? from, DateTimeOffset? to, string? target, long? after, int? limit, AuditLog audit) =>
        {
            if (from > to)
            {
                throw ApiProblem.Invalid("from", $"must not be after 'to' ({from:O} > {to:O})");
            }

            return TypedResults.Ok(await audit.QueryAsync(from, to, Input.Text(target, "target", 300), after, Limit(limit)));
        }).WithTags("Audit");
        return api;
    }

    internal static int Limit(int? limit) => limit switch
    {
        null => 100,
        < 1 or > 10_000 => throw ApiProblem.Invalid("limit", $"must be between 1 and 10000 (got {limit})"),
        { } l => l,
    };
}
