using EdgeFleet.Contracts.Api;
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
        devices.MapGet("/", async (string? tag, string? group, bool? online, DeviceRegistry registry) => TypedResults.Ok(await registry.ListAsync(tag, group, online)));
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
        devices.MapDelete("/{id}", async (string id, DeviceRegistry registry, HttpContext http) =>
        {
            await Find(registry, id);
            await registry.DeleteAsync(id, http.User.Actor());
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

/// <summary>Where devices reach the broker the control plane uses.</summary>
public interface IMqttEndpoint
{
    /// <summary>Host to give devices; null: the host the enrollment request was addressed to.</summary>
    string? PublicHost { get; }

    int Port { get; }

    bool Tls { get; }
}
