using System.Runtime.Versioning;
using System.Text.Json;
using EdgeFleet.Cli.Configuration;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet login</c> and where the other commands find server and token, against the real control plane (one per class).</summary>
[Trait("Category", "Integration")]
public sealed class LoginCommandTests : IClassFixture<ControlPlaneProcess>, IDisposable
{
    private readonly ControlPlaneProcess _cp;
    private readonly int _errorsBefore;

    public LoginCommandTests(ControlPlaneProcess cp)
    {
        _cp = cp;
        _errorsBefore = cp.LoggedErrors.Count;
    }

    public void Dispose() => _cp.AssertNoErrorsSince(_errorsBefore);

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task Login_AcceptedToken_SavesOwnerOnlyConfigThatLaterCommandsUse()
    {
        var token = await _cp.CreateTokenAsync(ApiRole.Viewer, "login-test");
        using var cli = new CliRunner();

        var login = await cli.RunAsync("login", "--server", _cp.Url.AbsoluteUri, "--token", token);

        Assert.True(login.Code == 0, login.Err);
        Assert.Contains($"logged in to {_cp.Url.AbsoluteUri}; saved in {cli.ConfigPath}", login.Out, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cli.ConfigPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(cli.ConfigPath)!));
        Assert.Equal(new CliConfigFile { Server = _cp.Url.AbsoluteUri, Token = token }, CliConfig.Load(cli.ConfigPath));

        var list = await cli.RunAsync("models", "list", "--json");

        Assert.True(list.Code == 0, list.Err);
        Assert.NotNull(JsonSerializer.Deserialize(list.Out, ApiJsonContext.Default.IReadOnlyListModelSummary));
    }

    [Fact]
    public async Task Login_RefusedToken_SaysTheTokenWasRefusedAndSavesNothing()
    {
        using var cli = new CliRunner();

        var result = await cli.RunAsync("login", "--server", _cp.Url.AbsoluteUri, "--token", "efp_stale-token-0000000000000000");

        Assert.Equal(1, result.Code);
        Assert.Contains($"error: the token was refused by {_cp.Url.AbsoluteUri} (401 Unauthorized)", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
        Assert.False(File.Exists(cli.ConfigPath));
    }

    [Fact]
    public async Task Login_NothingListening_NamesTheUrlAndExitsThree()
    {
        using var cli = new CliRunner();
        var url = CliRunner.Nowhere.AbsoluteUri;

        var result = await cli.RunAsync("login", "--server", url, "--token", "t");

        Assert.Equal(3, result.Code);
        Assert.Contains($"cannot connect to {url}", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(cli.ConfigPath));
    }

    [Fact]
    public async Task Login_TokenOnStdinWithJson_PrintsServerAndPathButNotTheToken()
    {
        var token = await _cp.CreateTokenAsync(ApiRole.Operator, "stdin-test");
        using var cli = new CliRunner { Stdin = token + "\n" };

        var result = await cli.RunAsync("login", "--server", _cp.Url.AbsoluteUri, "--json");

        Assert.True(result.Code == 0, result.Err);
        var saved = JsonSerializer.Deserialize(result.Out, CliJsonContext.Default.LoginResult);
        Assert.Equal(new LoginResult(_cp.Url.AbsoluteUri, cli.ConfigPath), saved);
        Assert.DoesNotContain(token, result.Out, StringComparison.Ordinal);
        Assert.Equal(token, CliConfig.Load(cli.ConfigPath)!.Token);
    }

    [Fact]
    public async Task Login_NotAUrl_ExitsTwo()
    {
        using var cli = new CliRunner();

        var result = await cli.RunAsync("login", "--server", "fleet.example.com", "--token", "t");

        Assert.Equal(2, result.Code);
        Assert.Contains("'fleet.example.com' is not a control plane URL", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ModelsList_EnvironmentSet_OverridesTheSavedLogin()
    {
        // The saved login points where nothing listens: any use of it would exit 3.
        using var cli = CliRunner.For(_cp);
        CliConfig.Save(cli.ConfigPath, new CliConfigFile { Server = CliRunner.Nowhere.AbsoluteUri, Token = "saved-token" });

        var result = await cli.RunAsync("models", "list", "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.NotNull(JsonSerializer.Deserialize(result.Out, ApiJsonContext.Default.IReadOnlyListModelSummary));
    }

    [Fact]
    public async Task ModelsList_TokenVariableOnly_OverridesTheSavedTokenAndKeepsTheSavedServer()
    {
        using var cli = new CliRunner();
        CliConfig.Save(cli.ConfigPath, new CliConfigFile { Server = _cp.Url.AbsoluteUri, Token = "efp_saved-but-revoked-000000000000" });
        cli.Environment["EDGEFLEET_TOKEN"] = _cp.AdminToken;

        var result = await cli.RunAsync("models", "list");

        Assert.True(result.Code == 0, result.Err);
    }

    [Fact]
    public async Task ModelsList_WrongTokenInEnvironment_Exits401WithTheRefusedMessage()
    {
        using var cli = CliRunner.For(_cp, "efp_not-a-real-token-000000000000000");

        var result = await cli.RunAsync("models", "list");

        Assert.Equal(1, result.Code);
        Assert.Contains($"error: the token was refused by {_cp.Url.AbsoluteUri} (401 Unauthorized): run edgefleet login again or check EDGEFLEET_TOKEN",
            result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task ModelsList_NoLoginAndNoVariables_ExitsTwoWithHint()
    {
        using var cli = new CliRunner();

        var result = await cli.RunAsync("models", "list");

        Assert.Equal(2, result.Code);
        Assert.Contains("run edgefleet login", result.Err, StringComparison.Ordinal);
        Assert.Contains("set EDGEFLEET_SERVER/EDGEFLEET_TOKEN", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task Help_Root_ListsEveryCommand()
    {
        using var cli = new CliRunner();

        var result = await cli.RunAsync("--help");

        Assert.Equal(0, result.Code);
        foreach (var command in new[] { "login", "models", "devices", "enroll", "sample-model", "drift" })
        {
            Assert.Contains($"  {command} ", result.Out, StringComparison.Ordinal);
        }
    }
}
