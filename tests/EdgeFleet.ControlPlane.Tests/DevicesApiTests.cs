using System.Net;
using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>Fleet registry through the real HTTP stack (broker-less mode); run on SQLite and on PostgreSQL.</summary>
public abstract class DevicesApiTests
{
    protected abstract Task<ControlPlaneFactory> CreateAsync();

    private static async Task<string> TokenAsync(HttpClient admin, EnrollmentTokenRequest request)
    {
        using var r = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", request, ApiJsonContext.Default.EnrollmentTokenRequest);
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
    }

    private static async Task<EnrollResponse> EnrollAsync(HttpClient client, string token, string? id)
    {
        using var r = await client.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = id }, ApiJsonContext.Default.EnrollRequest);
        Assert.True(r.StatusCode == HttpStatusCode.OK, await r.Content.ReadAsStringAsync());
        return (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollResponse))!;
    }

    [Fact]
    public async Task Enroll_GivesIdentityCredentialsAndTheRegistryKey_AndTheTokenTags()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        var token = await TokenAsync(admin, new EnrollmentTokenRequest { Tags = ["site=berlin", "group=line-3"], Description = "line 3 cameras" });

        var named = await EnrollAsync(anonymous, token, "cam-7");
        var generated = await EnrollAsync(anonymous, token, null);

        Assert.Equal(("cam-7", "cam-7"), (named.DeviceId, named.Mqtt.Username));
        Assert.StartsWith("efd_", named.Mqtt.Password, StringComparison.Ordinal);
        Assert.NotEqual(named.Mqtt.Password, generated.Mqtt.Password);
        Assert.StartsWith("dev-", generated.DeviceId, StringComparison.Ordinal);
        Assert.Contains("BEGIN PUBLIC KEY", named.RegistryPublicKey, StringComparison.Ordinal);
        Assert.Equal(["site=berlin", "group=line-3"], named.Tags);

        // The password is not stored in clear anywhere the API can show.
        var body = await admin.GetStringAsync(new Uri("/api/v1/devices/cam-7", UriKind.Relative));
        Assert.DoesNotContain(named.Mqtt.Password, body, StringComparison.Ordinal);
        var tokens = await admin.GetFromJsonAsync("/api/v1/enrollment-tokens", ApiJsonContext.Default.IReadOnlyListEnrollmentTokenInfo);
        var listed = Assert.Single(tokens!);
        Assert.Equal((2, (string?)null, "line 3 cameras"), (listed.Uses, listed.Token, listed.Description));
    }

    [Fact]
    public async Task Devices_TagsGroupsFiltersRevokeAndDelete()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        var token = await TokenAsync(admin, new EnrollmentTokenRequest { Tags = ["site=berlin"] });
        await EnrollAsync(anonymous, token, "cam-1");
        await EnrollAsync(anonymous, token, "cam-2");

        using (var tag = await admin.PutAsJsonAsync("/api/v1/devices/cam-2/tags", new TagChangeRequest { Add = ["group=dock", "outdoor"], Remove = ["site=berlin"] },
                   ApiJsonContext.Default.TagChangeRequest))
        {
            Assert.Equal(["group=dock", "outdoor"], (await tag.Content.ReadFromJsonAsync(ApiJsonContext.Default.DeviceInfo))!.Tags);
        }

        Assert.Equal(["cam-1"], (await admin.GetFromJsonAsync("/api/v1/devices?tag=site%3Dberlin", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Select(d => d.Id));
        Assert.Equal(["cam-2"], (await admin.GetFromJsonAsync("/api/v1/devices?group=dock", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Select(d => d.Id));
        Assert.Equal(2, (await admin.GetFromJsonAsync("/api/v1/devices?online=false", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Count);
        // ids: only the devices named, with the other filters still applied (the dashboard's live path), unknown ids ignored.
        Assert.Equal(["cam-2"], (await admin.GetFromJsonAsync("/api/v1/devices?ids=cam-2,nope", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Select(d => d.Id));
        Assert.Equal(["cam-1", "cam-2"], (await admin.GetFromJsonAsync("/api/v1/devices?ids=cam-2,cam-1,cam-2", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Select(d => d.Id));
        Assert.Empty((await admin.GetFromJsonAsync("/api/v1/devices?ids=cam-1&group=dock", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!);
        Assert.Equal(["group=dock", "outdoor"], (await admin.GetFromJsonAsync("/api/v1/devices?ids=cam-2", ApiJsonContext.Default.IReadOnlyListDeviceInfo))!.Single().Tags);
        using (var bad = await admin.PutAsJsonAsync("/api/v1/devices/cam-2/tags", new TagChangeRequest { Add = ["Not A Tag"] }, ApiJsonContext.Default.TagChangeRequest))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        using (var missing = await admin.GetAsync(new Uri("/api/v1/devices/nope", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var notRevoked = await admin.DeleteAsync(new Uri("/api/v1/devices/cam-1", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Conflict, notRevoked.StatusCode);
        }

        using (var revoke = await admin.PostAsync(new Uri("/api/v1/devices/cam-1/revoke?reason=decommissioned", UriKind.Relative), null))
        {
            Assert.True((await revoke.Content.ReadFromJsonAsync(ApiJsonContext.Default.DeviceInfo))!.Revoked);
        }

        using (var again = await admin.PostAsync(new Uri("/api/v1/devices/cam-1/revoke", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }

        using (var delete = await admin.DeleteAsync(new Uri("/api/v1/devices/cam-1", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        await EnrollAsync(anonymous, token, "cam-1"); // the id is free again
        var audit = await admin.GetFromJsonAsync("/api/v1/audit?target=device/cam-1", ApiJsonContext.Default.PageAuditEntry);
        Assert.Equal(["device.enroll", "device.revoke", "device.delete", "device.enroll"], audit!.Items.Select(a => a.Action));
    }

    [Fact]
    public async Task Roles_OperatorCanTagButNotRevoke_RevokedApiTokenIsRefused()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        await EnrollAsync(anonymous, await TokenAsync(admin, new EnrollmentTokenRequest()), "cam-1");
        using var created = await admin.PostAsJsonAsync("/api/v1/tokens", new ApiTokenRequest { Name = "ci", Role = ApiRole.Operator }, ApiJsonContext.Default.ApiTokenRequest);
        var info = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.ApiTokenInfo))!;
        using var op = cp.Client(info.Token);

        using (var tag = await op.PutAsJsonAsync("/api/v1/devices/cam-1/tags", new TagChangeRequest { Add = ["x"] }, ApiJsonContext.Default.TagChangeRequest))
        {
            Assert.Equal(HttpStatusCode.OK, tag.StatusCode);
        }

        using (var revoke = await op.PostAsync(new Uri("/api/v1/devices/cam-1/revoke", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.Forbidden, revoke.StatusCode);
        }

        using (var revokeToken = await admin.DeleteAsync(new Uri($"/api/v1/tokens/{info.Id}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, revokeToken.StatusCode);
        }

        using var after = await op.GetAsync(new Uri("/api/v1/devices", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task EnrollmentToken_ExpiredOrRevoked_IsRefused()
    {
        await using var cp = await CreateAsync();
        using var admin = cp.Client();
        using var anonymous = cp.Client(token: null);
        using var created = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest(), ApiJsonContext.Default.EnrollmentTokenRequest);
        var info = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!;
        using (var revoke = await admin.DeleteAsync(new Uri($"/api/v1/enrollment-tokens/{info.Id}", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using var refused = await anonymous.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = info.Token!, DeviceId = "cam-1" }, ApiJsonContext.Default.EnrollRequest);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var badExpiry = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest { ExpiresInHours = -1 }, ApiJsonContext.Default.EnrollmentTokenRequest);
        Assert.Equal(HttpStatusCode.BadRequest, badExpiry.StatusCode);
    }
}

[Trait("Category", "Integration")]
public sealed class DevicesApiSqliteTests : DevicesApiTests
{
    protected override Task<ControlPlaneFactory> CreateAsync() => Task.FromResult(new ControlPlaneFactory());
}

[Trait("Category", "Integration")]
[Collection(PostgresCollection.Name)]
public sealed class DevicesApiPostgresTests(PostgresFixture postgres) : DevicesApiTests
{
    protected override async Task<ControlPlaneFactory> CreateAsync() => new(await postgres.Server.CreateDatabaseAsync());
}
