using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Domain;
using Microsoft.AspNetCore.Http.HttpResults;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Security;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>/api/v1/devices, /api/v1/enrollment-tokens and the anonymous /api/v1/enroll.</summary>
public static class FleetApi
{
    public static RouteGroupBuilder MapFleetApi(this RouteGroupBuilder api)
    {
        var devices = api.MapGroup("/devices").WithTags("Devices");
        devices.MapGet("/", async (string? tag, string? group, bool? online, string? ids, DeviceRegistry registry) => TypedResults.Ok(await registry.ListAsync(tag, group, online, ids)))
            .WithDescription($"Devices by id, filtered by tag (key or key=value), group and online; ids=a,b,c (at most {DeviceRegistry.MaxListIds}) lists only those.");
        devices.MapGet("/{id}", async (string id, DeviceRegistry registry) => TypedResults.Ok(await Find(registry, id)));
        devices.MapPut("/{id}/tags", async (string id, TagChangeRequest change, DeviceRegistry registry, HttpContext http) =>
        {
            await Find(registry, id);
            return TypedResults.Ok(await registry.ChangeTagsAsync(id, change, http.User.Actor()));
        }).RequireAuthorization(Policies.Operator);
        devices.MapPost("/{id}/revoke", async (string id, string? reason, DeviceRegistry registry, HttpContext http) =>
        {
            await Find(registry, id);
            return TypedResults.Ok(await registry.RevokeAsync(id, http.User.Actor(), reason));
        }).RequireAuthorization(Policies.Admin);
        devices.MapPost("/{id}/assignment", async (string id, AssignmentRequest request, DeviceRegistry registry, Assignments assignments, HttpContext http) =>
        {
            var device = await Find(registry, id);
            var desired = await assignments.AssignAsync(device, request, http.User.Actor(), $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}");
            return TypedResults.Accepted($"/api/v1/devices/{id}/assignment", desired);
        }).RequireAuthorization(Policies.Operator)
            .WithDescription("Assign one device a model version directly: {model, version, mode?: live|shadow, probation?: {frames, seconds, …}}. " +
                "Publishes the retained desired message (QoS 1) and answers 202 with it. 409 for a revoked device or without MQTT.");
        devices.MapGet("/{id}/assignment", async Task<Ok<DesiredMessage>> (string id, DeviceRegistry registry, Assignments assignments) =>
        {
            await Find(registry, id);
            return TypedResults.Ok(await assignments.GetAsync(id) ?? throw ApiProblem.NotFound($"an assignment of device {id}"));
        }).WithDescription("The device's current assignment, exactly as published.");
        devices.MapDelete("/{id}/assignment", async (string id, DeviceRegistry registry, Assignments assignments, HttpContext http) =>
        {
            await assignments.ClearAsync(await Find(registry, id), http.User.Actor());
            return TypedResults.NoContent();
        }).RequireAuthorization(Policies.Operator).WithDescription("Clears the assignment (an empty retained desired); the device keeps what it runs.");
        devices.MapDelete("/{id}", async (string id, DeviceRegistry registry, Assignments assignments, HttpContext http) =>
        {
            await Find(registry, id);
            await registry.DeleteAsync(id, http.User.Actor());
            await assignments.ForgetRetainedAsync(id);
            return TypedResults.NoContent();
        }).RequireAuthorization(Policies.Admin);

        var tokens = api.MapGroup("/enrollment-tokens").WithTags("Enrollment").RequireAuthorization(Policies.Operator);
        tokens.MapGet("/", async (DeviceRegistry registry) => TypedResults.Ok(await registry.ListEnrollmentTokensAsync()));
        tokens.MapPost("/", async (EnrollmentTokenRequest request, DeviceRegistry registry, HttpContext http) =>
        {
            var created = await registry.CreateEnrollmentTokenAsync(request, http.User.Actor());
            return TypedResults.Created($"/api/v1/enrollment-tokens/{created.Id}", created);
        });
        tokens.MapDelete("/{id}", async (string id, DeviceRegistry registry, HttpContext http) =>
            await registry.RevokeEnrollmentTokenAsync(id, http.User.Actor()) ? Results.NoContent() : throw ApiProblem.NotFound($"enrollment token {id}"));

        api.MapPost("/enroll", async (EnrollRequest request, DeviceRegistry registry, RegistryKey key, IOptions<ControlPlaneOptions> options,
            IMqttEndpoint endpoint, HttpContext http) =>
        {
            var (deviceId, password, httpToken, tags) = await registry.EnrollAsync(request);
            var o = options.Value;
            return TypedResults.Ok(new EnrollResponse
            {
                DeviceId = deviceId,
                Mqtt = new MqttCredentials
                {
                    Host = o.MqttPublicHost ?? endpoint.PublicHost ?? http.Request.Host.Host,
                    Port = o.MqttPublicPort ?? endpoint.Port,
                    Tls = endpoint.Tls,
                    Username = deviceId,
                    Password = password,
                },
                RegistryPublicKey = key.PublicKeyPem,
                HttpToken = httpToken,
                Tags = tags,
            });
        }).AllowAnonymous().WithTags("Enrollment").WithDescription("The only anonymous call: an agent exchanges an enrollment token for its identity.");
        return api;
    }

    private static async Task<DeviceInfo> Find(DeviceRegistry registry, string id) =>
        DeviceRegistry.IsValidDeviceId(id)
            ? await registry.GetAsync(id) ?? throw ApiProblem.NotFound($"device {id}")
            : throw ApiProblem.Invalid("id", $"'{Input.Quote(id)}' is not a valid device id (1–63 of a-z 0-9 -, starting with a letter or digit)");
}
