using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Rollouts;
using EdgeFleet.ControlPlane.Security;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>/api/v1/rollouts and a device's deployment history.</summary>
public static class RolloutsApi
{
    public static RouteGroupBuilder MapRolloutsApi(this RouteGroupBuilder api)
    {
        var rollouts = api.MapGroup("/rollouts").WithTags("Rollouts");
        rollouts.MapPost("/", async (RolloutRequest request, RolloutService service, HttpContext http) =>
        {
            var created = await service.CreateAsync(request, http.User.Actor(), $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}");
            return TypedResults.Created($"/api/v1/rollouts/{created.Id}", created);
        }).RequireAuthorization(Policies.Operator)
            .WithDescription("Starts a staged rollout of a model version to the devices a selector picks. 400 names a wrong field, 404 an unknown version, " +
                "409 devices already in an active rollout (unless supersede) or a control plane without MQTT.");
        rollouts.MapGet("/", async (string? state, int? limit, RolloutService service) => TypedResults.Ok(await service.ListAsync(state, limit)))
            .WithDescription("Rollouts, newest first (without their per-device states).");
        rollouts.MapGet("/{id}", async (string id, RolloutService service) => TypedResults.Ok(await service.GetAsync(id)))
            .WithDescription("A rollout: stages with device counts per state, the newest verdict of every gate with its evidence, every device's state.");
        rollouts.MapPost("/{id}/{action}", async (string id, string action, RolloutActionRequest? request, RolloutService service, HttpContext http) =>
            TypedResults.Ok(await service.ActAsync(id, action, http.User.Actor(), request?.Reason)))
            .RequireAuthorization(Policies.Operator)
            .WithDescription("approve (the next stage, or a stage a gate stopped), pause, resume (a stage a gate stopped is judged afresh), abort (stop, leave " +
                "devices as they are), rollback (every updated device back to its previous version), retry (failed and timed-out devices). Body: {reason}.");

        api.MapGet("/devices/{id}/history", async (string id, int? limit, RolloutStore store, EdgeFleet.ControlPlane.Fleet.DeviceRegistry devices) =>
        {
            if (!EdgeFleet.ControlPlane.Fleet.DeviceRegistry.IsValidDeviceId(id))
            {
                throw ApiProblem.Invalid("id", $"'{Input.Quote(id)}' is not a valid device id");
            }

            if (limit is not null and (< 1 or > 1000))
            {
                throw ApiProblem.Invalid("limit", "must be between 1 and 1000");
            }

            _ = await devices.GetAsync(id) ?? throw ApiProblem.NotFound($"device {id}");
            return TypedResults.Ok(await store.HistoryAsync(id, limit ?? 100));
        }).WithTags("Devices").WithDescription("Which model version ran on the device from when to when, newest first.");
        return api;
    }
}
