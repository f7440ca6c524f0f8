using System.Text.Json;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet devices …</c> as a process, against <see cref="StandInControlPlane"/> (re-point at the real control plane later).</summary>
[Trait("Category", "Integration")]
public sealed class DevicesCommandTests
{
    [Fact]
    public async Task List_TagAndOnline_SentAsQueryAndJsonParsesAsDeviceInfo()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "list", "--tag", "line=3", "--online", "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("?tag=line%3D3&online=true", server.Requests.Single().Query);
        var devices = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.IReadOnlyListDeviceInfo)!;
        Assert.Equal(["cam-1", "cam-2"], devices.Select(d => d.Id));
    }

    [Fact]
    public async Task List_Human_ShowsStatusAndHealth()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "list", "--offline");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("?online=false", server.Requests.Single().Query);
        var cam1 = result.Out.Split('\n').Single(l => l.Contains("cam-1", StringComparison.Ordinal));
        Assert.Contains("online", cam1, StringComparison.Ordinal);
        Assert.Contains("29.9", cam1, StringComparison.Ordinal);
        Assert.Contains("offline", result.Out.Split('\n').Single(l => l.Contains("cam-2", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_OnlineAndOffline_ExitsTwoWithoutARequest()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "list", "--online", "--offline");

        Assert.Equal(2, result.Code);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Show_Human_ShowsModelAndCounters()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "show", "cam-7");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal("/api/v1/devices/cam-7", server.Requests.Single().Path);
        Assert.Contains("line-cam 1.2.0", result.Out, StringComparison.Ordinal);
        Assert.Contains("1000 received, 0 lost, 0 invalid", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_AddAndRemoveLists_SentAsTagChangeRequest()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "tag", "cam-1", "--add", "pilot,zone=b", "--add", "gpu", "--remove", "line=3");

        Assert.True(result.Code == 0, result.Err);
        var request = server.Requests.Single();
        Assert.Equal(("PUT", "/api/v1/devices/cam-1/tags"), (request.Method, request.Path));
        var change = JsonSerializer.Deserialize(request.Body, ApiJsonContext.Default.TagChangeRequest)!;
        Assert.Equal(["pilot", "zone=b", "gpu"], change.Add);
        Assert.Equal(["line=3"], change.Remove);
        Assert.Contains("cam-1 tags: pilot, zone=b, gpu", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_NothingToChange_ExitsTwo()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "tag", "cam-1");

        Assert.Equal(2, result.Code);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Revoke_WithoutYesAndNoTerminal_ExitsTwoWithoutARequest()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "revoke", "cam-1");

        Assert.Equal(2, result.Code);
        Assert.Contains("pass --yes", result.Err, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Revoke_Yes_PostsAndJsonShowsRevoked()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("devices", "revoke", "cam-1", "--yes", "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal(("POST", "/api/v1/devices/cam-1/revoke"), (server.Requests.Single().Method, server.Requests.Single().Path));
        Assert.True(JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.DeviceInfo)!.Revoked);
    }
}
