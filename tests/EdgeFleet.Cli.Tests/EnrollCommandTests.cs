using System.Text.Json;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet enroll create</c> as a process, against <see cref="StandInControlPlane"/> (re-point at the real control plane later).</summary>
[Trait("Category", "Integration")]
public sealed class EnrollCommandTests
{
    [Fact]
    public async Task Create_Options_SentAsRequestAndTokenPrintedWithAgentHint()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("enroll", "create", "--tags", "line=3,pilot", "--expires-in-hours", "2", "--max-uses", "5", "--description", "line 3 cameras");

        Assert.True(result.Code == 0, result.Err);
        var request = JsonSerializer.Deserialize(server.Requests.Single().Body, ApiJsonContext.Default.EnrollmentTokenRequest)!;
        Assert.Equal(["line=3", "pilot"], request.Tags);
        Assert.Equal((2.0, 5, "line 3 cameras"), (request.ExpiresInHours, request.MaxUses, request.Description));
        Assert.Contains($"\n{StandInControlPlane.EnrollmentSecret}\n", result.Out, StringComparison.Ordinal);
        Assert.Contains($"edgefleet-agent enroll --server {server.Url.AbsoluteUri.TrimEnd('/')} --token {StandInControlPlane.EnrollmentSecret}", result.Out, StringComparison.Ordinal);
        Assert.Contains("shown only this once", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_Json_ParsesAsEnrollmentTokenInfo()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("enroll", "create", "--json");

        Assert.True(result.Code == 0, result.Err);
        var token = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.EnrollmentTokenInfo)!;
        Assert.Equal(("tok-1", StandInControlPlane.EnrollmentSecret), (token.Id, token.Token));
        Assert.Equal("{}", server.Requests.Single().Body.Replace("\"tags\":[]", "", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--max-uses", "0")]
    [InlineData("--expires-in-hours", "-1")]
    public async Task Create_NonPositiveLimit_ExitsTwoWithoutARequest(string option, string value)
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);

        var result = await cli.RunAsync("enroll", "create", option, value);

        Assert.Equal(2, result.Code);
        Assert.Empty(server.Requests);
    }
}
