using System.Runtime.Versioning;
using System.Text.Json;
using EdgeFleet.Cli.Configuration;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

/// <summary><c>edgefleet login</c> as a process, against <see cref="StandInControlPlane"/> (re-point at the real control plane later).</summary>
[Trait("Category", "Integration")]
public sealed class LoginCommandTests
{
    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task Login_AcceptedToken_SavesOwnerOnlyConfigThatLaterCommandsUse()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = new CliRunner();

        var login = await cli.RunAsync("login", "--server", server.Url.AbsoluteUri, "--token", StandInControlPlane.Token);

        Assert.True(login.Code == 0, login.Err);
        Assert.Contains(cli.ConfigPath, login.Out, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cli.ConfigPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(cli.ConfigPath)!));
        Assert.Equal(new CliConfigFile { Server = server.Url.AbsoluteUri, Token = StandInControlPlane.Token }, CliConfig.Load(cli.ConfigPath));
        var check = Assert.Single(server.Requests);
        Assert.Equal(("GET", "/api/v1/models", $"Bearer {StandInControlPlane.Token}"), (check.Method, check.Path, check.Authorization));

        var list = await cli.RunAsync("models", "list");

        Assert.True(list.Code == 0, list.Err);
        Assert.Contains("line-cam", list.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_RefusedToken_SaysTheTokenWasRefusedAndSavesNothing()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = new CliRunner();

        var result = await cli.RunAsync("login", "--server", server.Url.AbsoluteUri, "--token", "stale");

        Assert.Equal(1, result.Code);
        Assert.Contains("the token was refused", result.Err, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
        Assert.False(File.Exists(cli.ConfigPath));
    }

    [Fact]
    public async Task Login_NothingListening_NamesTheUrlAndExitsThree()
    {
        using var cli = new CliRunner();
        var url = $"http://127.0.0.1:{FreePort.Next()}/";

        var result = await cli.RunAsync("login", "--server", url, "--token", "t");

        Assert.Equal(3, result.Code);
        Assert.Contains($"cannot connect to {url}", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(cli.ConfigPath));
    }

    [Fact]
    public async Task Login_TokenOnStdinWithJson_PrintsServerAndPathButNotTheToken()
    {
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = new CliRunner { Stdin = StandInControlPlane.Token + "\n" };

        var result = await cli.RunAsync("login", "--server", server.Url.AbsoluteUri, "--json");

        Assert.True(result.Code == 0, result.Err);
        var saved = JsonSerializer.Deserialize(result.Out, CliJsonContext.Default.LoginResult);
        Assert.Equal(new LoginResult(server.Url.AbsoluteUri, cli.ConfigPath), saved);
        Assert.DoesNotContain(StandInControlPlane.Token, result.Out, StringComparison.Ordinal);
        Assert.Equal(StandInControlPlane.Token, CliConfig.Load(cli.ConfigPath)!.Token);
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
        await using var server = await StandInControlPlane.StartAsync();
        using var cli = CliRunner.For(server.Url);
        CliConfig.Save(cli.ConfigPath, new CliConfigFile { Server = $"http://127.0.0.1:{FreePort.Next()}/", Token = "saved-token" });

        var result = await cli.RunAsync("models", "list", "--json");

        Assert.True(result.Code == 0, result.Err);
        Assert.Equal($"Bearer {StandInControlPlane.Token}", server.Requests.Single().Authorization);
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
