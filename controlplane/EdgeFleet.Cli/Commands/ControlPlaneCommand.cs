using System.CommandLine;
using System.Net;
using EdgeFleet.Cli.Api;
using EdgeFleet.Cli.Configuration;

namespace EdgeFleet.Cli.Commands;

/// <summary>Exit codes of the commands that talk to the control plane, so scripts can tell failures apart.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The server answered with 4xx/5xx.</summary>
    public const int Refused = 1;

    /// <summary>Bad arguments, no login, unreadable local file.</summary>
    public const int Usage = 2;

    /// <summary>No connection, or no answer in time.</summary>
    public const int Unreachable = 3;
}

/// <summary>The plumbing shared by every command that calls the control plane: settings, client, errors, exit codes.</summary>
internal static class ControlPlaneCommand
{
    public static Option<bool> JsonOption() =>
        new("--json") { Description = "Print exactly the JSON body the server returned and nothing else (for scripts)" };

    /// <summary>
    /// Resolves server and token (environment, then the login file), runs <paramref name="body"/> with a client and
    /// turns the typed failures into a message on stderr and an exit code.
    /// </summary>
    public static async Task<int> RunAsync(Func<ControlPlaneClient, CliSettings, Task<int>> body, Func<ControlPlaneException, string?>? hint = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        CliSettings settings;
        try
        {
            settings = CliConfig.Resolve(Environment.GetEnvironmentVariable, CliConfig.DefaultPath(Environment.GetEnvironmentVariable));
        }
        catch (CliConfigException ex)
        {
            return Fail(ex.Message, ExitCodes.Usage);
        }

        using var http = ControlPlaneClient.CreateHttpClient(settings.Server, settings.Token);
        return await RunAsync(new ControlPlaneClient(http), settings, body, hint).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="body"/> with a given client (login checks a server that is not saved yet).</summary>
    public static async Task<int> RunAsync(
        ControlPlaneClient client, CliSettings settings, Func<ControlPlaneClient, CliSettings, Task<int>> body, Func<ControlPlaneException, string?>? hint = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return await body(client, settings).ConfigureAwait(false);
        }
        catch (ControlPlaneException ex)
        {
            WriteError(ex, settings.Server, hint?.Invoke(ex));
            return ExitCodes.Refused;
        }
        catch (ControlPlaneUnreachableException ex)
        {
            return Fail(ex.Message, ExitCodes.Unreachable);
        }
        catch (CliConfigException ex)
        {
            return Fail(ex.Message, ExitCodes.Usage);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the conventional exit code of a process stopped by SIGINT.
            await Console.Error.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
    }

    public static int Fail(string message, int exitCode)
    {
        Console.Error.WriteLine($"error: {message}");
        return exitCode;
    }

    /// <summary>Prints the response body as received; the newline keeps shells and <c>jq</c> happy.</summary>
    public static void WriteJson(string body)
    {
        Console.Out.Write(body);
        if (!body.EndsWith('\n'))
        {
            Console.Out.WriteLine();
        }
    }

    /// <summary>Title, detail and every field error of a problem+json answer, on stderr.</summary>
    internal static void WriteError(ControlPlaneException ex, Uri server, string? hint)
    {
        var error = Console.Error;
        var problem = ex.Problem;
        var summary = ex.StatusCode switch
        {
            HttpStatusCode.Unauthorized => $"the token was refused by {server} (401 Unauthorized): run edgefleet login again or check EDGEFLEET_TOKEN",
            HttpStatusCode.Forbidden => $"the token's role does not allow {ex.Request} (403 Forbidden)",
            _ when problem?.Title is { } title => $"{title} ({(int)ex.StatusCode} {ex.ReasonPhrase})",
            _ => ex.Message,
        };
        error.WriteLine($"error: {summary}");
        var fieldErrors = (problem?.Errors ?? new Dictionary<string, IReadOnlyList<string>>())
            .SelectMany(e => e.Value.Select(message => $"{e.Key}: {message}")).ToList();
        if (problem?.Detail is { Length: > 0 } detail && !RestatesFieldErrors(detail, fieldErrors))
        {
            error.WriteLine($"  {detail}");
        }

        foreach (var line in fieldErrors)
        {
            error.WriteLine($"  {line}");
        }

        if (hint is not null)
        {
            error.WriteLine($"  {hint}");
        }
    }

    /// <summary>
    /// Whether <paramref name="detail"/> is just the field errors joined with "; " (in any order), as the control plane
    /// writes it for validation failures: then it is left out instead of printing every error twice.
    /// </summary>
    internal static bool RestatesFieldErrors(string detail, IReadOnlyList<string> fieldErrors) =>
        fieldErrors.Count > 0
        && detail.Length == fieldErrors.Sum(l => l.Length) + "; ".Length * (fieldErrors.Count - 1)
        && fieldErrors.All(l => detail.Contains(l, StringComparison.Ordinal));

    /// <summary><c>--add a,b --add c</c> → a, b, c.</summary>
    public static IReadOnlyList<string> SplitList(IEnumerable<string>? values) =>
        (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToArray();
}
