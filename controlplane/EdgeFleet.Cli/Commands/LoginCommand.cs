using System.CommandLine;
using System.Text.Json;
using EdgeFleet.Cli.Api;
using EdgeFleet.Cli.Configuration;
using Spectre.Console;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet login</c>: checks a server and token, then saves them for the other commands.</summary>
internal static class LoginCommand
{
    public static Command Create()
    {
        var server = new Option<string>("--server") { HelpName = "URL", Description = "Control plane URL, e.g. https://fleet.example.com", Required = true };
        var token = new Option<string?>("--token")
        {
            HelpName = "TOKEN",
            Description = "API token; without it the token is read from stdin or asked for (keeps it out of the shell history)",
        };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("login",
            "Check that the control plane accepts the token, then save URL and token in ~/.config/edgefleet/config.json " +
            $"($XDG_CONFIG_HOME/edgefleet/config.json when set; mode 0600). {CliConfig.ServerVariable} and {CliConfig.TokenVariable} override the file")
        {
            server, token, json,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(server)!, parse.GetValue(token), parse.GetValue(json), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string serverText, string? token, bool json, CancellationToken cancellationToken)
    {
        Uri server;
        try
        {
            server = CliConfig.ParseServer(serverText);
            token ??= await ReadTokenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CliConfigException ex)
        {
            return ControlPlaneCommand.Fail(ex.Message, ExitCodes.Usage);
        }

        var settings = new CliSettings(server, token);
        using var http = ControlPlaneClient.CreateHttpClient(server, token);
        return await ControlPlaneCommand.RunAsync(new ControlPlaneClient(http), settings, async (client, _) =>
        {
            // Any authenticated read proves both the URL and the token; the model list is one every role may read.
            await client.ListModelsAsync(cancellationToken).ConfigureAwait(false);
            var path = CliConfig.DefaultPath(Environment.GetEnvironmentVariable);
            CliConfig.Save(path, new CliConfigFile { Server = server.AbsoluteUri, Token = token });
            if (json)
            {
                ControlPlaneCommand.WriteJson(JsonSerializer.Serialize(new LoginResult(server.AbsoluteUri, path), CliJsonContext.Default.LoginResult));
            }
            else
            {
                Render.Line($"logged in to {server.AbsoluteUri}; saved in {path} (readable by you only)");
                if (Environment.GetEnvironmentVariable(CliConfig.ServerVariable) is { Length: > 0 } || Environment.GetEnvironmentVariable(CliConfig.TokenVariable) is { Length: > 0 })
                {
                    await Console.Error.WriteLineAsync($"note: {CliConfig.ServerVariable}/{CliConfig.TokenVariable} are set and override the saved file").ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        }).ConfigureAwait(false);
    }

    private static async Task<string> ReadTokenAsync(CancellationToken cancellationToken)
    {
        string? token;
        if (Console.IsInputRedirected)
        {
            token = await Console.In.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var prompt = new TextPrompt<string>("API token:").Secret();
            token = await prompt.ShowAsync(AnsiConsole.Console, cancellationToken).ConfigureAwait(false);
        }

        return string.IsNullOrWhiteSpace(token)
            ? throw new CliConfigException("no token: pass --token TOKEN, pipe it on stdin, or type it when asked")
            : token.Trim();
    }
}
