using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet enroll create</c> as a process against the real control plane (one per class).</summary>
[Trait("Category", "Integration")]
public sealed class EnrollCommandTests : IClassFixture<ControlPlaneProcess>, IDisposable
{
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public EnrollCommandTests(ControlPlaneProcess cp)
    {
        _cp = cp;
        _errorsBefore = cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    [Fact]
    public async Task Create_Options_PrintsATokenThatEnrollsADeviceWithThoseTags()
    {
        var description = $"line 3 cameras {Guid.NewGuid():N}";
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("enroll", "create", "--tags", "line=3,pilot", "--expires-in-hours", "2", "--max-uses", "5", "--description", description);

        Assert.True(result.Code == 0, result.Err);
        var lines = result.Out.Split('\n');
        Assert.StartsWith("enrollment token ", lines[0], StringComparison.Ordinal);
        Assert.Contains("5 device(s) until", lines[0], StringComparison.Ordinal);
        Assert.Contains("tags line=3, pilot", lines[0], StringComparison.Ordinal);
        var secret = lines[2];
        Assert.StartsWith("efe_", secret, StringComparison.Ordinal);
        Assert.Contains($"edgefleet-agent enroll --server {_cp.Url.AbsoluteUri.TrimEnd('/')} --token {secret}", result.Out, StringComparison.Ordinal);
        Assert.Contains("shown only this once", result.Out, StringComparison.Ordinal);

        var device = await _cp.EnrollAsync(secret, Unique.Name("cam"));

        Assert.Equal(["line=3", "pilot"], device.Tags);
        using var admin = _cp.CreateClient(_cp.AdminToken);
        var stored = Assert.Single((await admin.GetFromJsonAsync("api/v1/enrollment-tokens", ApiJsonContext.Default.IReadOnlyListEnrollmentTokenInfo))!,
            t => t.Description == description);
        Assert.Equal((5, 1, (string?)null), (stored.MaxUses, stored.Uses, stored.Token));
        Assert.Equal(TimeSpan.FromHours(2), stored.ExpiresAt - stored.CreatedAt);
        Assert.Contains(stored.Id, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_Json_ParsesAsEnrollmentTokenInfoWithTheServersDefaults()
    {
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("enroll", "create", "--json");

        Assert.True(result.Code == 0, result.Err);
        var token = JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.EnrollmentTokenInfo)!;
        Assert.StartsWith("efe_", token.Token, StringComparison.Ordinal);
        Assert.Equal(((int?)null, "admin"), (token.MaxUses, token.CreatedBy));
        Assert.Empty(token.Tags);
        Assert.Equal(TimeSpan.FromHours(24), token.ExpiresAt - token.CreatedAt);
    }

    [Fact]
    public async Task Create_InvalidTag_ExitsOneWithTheServersFieldError()
    {
        using var cli = CliRunner.For(_cp);

        var result = await cli.RunAsync("enroll", "create", "--tags", "Line 3");

        Assert.Equal(1, result.Code);
        Assert.Contains("error: invalid request (400 Bad Request)", result.Err, StringComparison.Ordinal);
        Assert.Contains("tags: 'Line 3' is not a valid tag", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task Create_ViewerToken_Exits403()
    {
        using var cli = CliRunner.For(_cp, await _cp.CreateTokenAsync(ApiRole.Viewer));

        var result = await cli.RunAsync("enroll", "create");

        Assert.Equal(1, result.Code);
        Assert.Contains("the token's role does not allow POST api/v1/enrollment-tokens (403 Forbidden)", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--max-uses", "0")]
    [InlineData("--expires-in-hours", "-1")]
    public async Task Create_NonPositiveLimit_ExitsTwoWithoutARequest(string option, string value)
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync("enroll", "create", option, value);

        Assert.Equal(2, result.Code);
    }
}
