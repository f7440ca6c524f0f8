using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeFleet.Cli.Configuration;

/// <summary>What <c>edgefleet login</c> saves in the user's config file.</summary>
internal sealed record CliConfigFile
{
    public string? Server { get; init; }

    public string? Token { get; init; }
}

/// <summary>The control plane a command talks to and the API token it sends.</summary>
internal sealed record CliSettings(Uri Server, string Token);

/// <summary>The local result of <c>edgefleet login --json</c> (the token is deliberately left out).</summary>
internal sealed record LoginResult(string Server, string ConfigPath);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(CliConfigFile))]
[JsonSerializable(typeof(LoginResult))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

/// <summary>A missing or unusable configuration: the command cannot start (exit code 2).</summary>
internal sealed class CliConfigException : Exception
{
    public CliConfigException(string message)
        : base(message)
    {
    }

    public CliConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CliConfigException()
    {
    }
}

/// <summary>
/// Finds the server and token: <c>EDGEFLEET_SERVER</c>/<c>EDGEFLEET_TOKEN</c> first (CI pipelines), then the file
/// <c>edgefleet login</c> wrote.
/// </summary>
internal static class CliConfig
{
    public const string ServerVariable = "EDGEFLEET_SERVER";
    public const string TokenVariable = "EDGEFLEET_TOKEN";

    private const string LoginHint = "run edgefleet login --server URL --token TOKEN or set EDGEFLEET_SERVER/EDGEFLEET_TOKEN";

    /// <summary><c>$XDG_CONFIG_HOME/edgefleet/config.json</c>, by default <c>~/.config/edgefleet/config.json</c>.</summary>
    public static string DefaultPath(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var xdg = environment("XDG_CONFIG_HOME");

        // The XDG base directory spec says a relative value is invalid and must be ignored.
        var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(NonEmpty(environment("HOME")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(root, "edgefleet", "config.json");
    }

    /// <summary>Each environment variable wins over the file on its own, so CI can override just the token.</summary>
    /// <exception cref="CliConfigException">Neither source names a server or a token, or the file is unreadable.</exception>
    public static CliSettings Resolve(Func<string, string?> environment, string configPath)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var server = NonEmpty(environment(ServerVariable));
        var token = NonEmpty(environment(TokenVariable));

        // With both variables set the file is not read at all: a stale or broken file must not fail a CI job.
        var file = server is null || token is null ? Load(configPath) : null;
        server ??= NonEmpty(file?.Server);
        token ??= NonEmpty(file?.Token);

        return (server, token) switch
        {
            (null, null) => throw new CliConfigException($"not logged in to a control plane: {LoginHint}"),
            (null, _) => throw new CliConfigException($"no control plane URL ({ServerVariable} is not set and {configPath} has none): {LoginHint}"),
            (_, null) => throw new CliConfigException($"no API token ({TokenVariable} is not set and {configPath} has none): {LoginHint}"),
            _ => new CliSettings(ParseServer(server), token),
        };
    }

    /// <summary>The saved file, or null when there is none.</summary>
    public static CliConfigFile? Load(string path)
    {
        try
        {
            var bytes = File.ReadAllBytes(path);
            return JsonSerializer.Deserialize(bytes, CliJsonContext.Default.CliConfigFile);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (JsonException ex)
        {
            throw new CliConfigException($"{path} is not valid JSON ({ex.Message}); run edgefleet login again", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliConfigException($"cannot read {path}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Writes the file readable by its owner only (0600, directory 0700): it holds a bearer token. The temporary file
    /// is created with that mode, so the token is never readable by others, not even for a moment.
    /// </summary>
    public static void Save(string path, CliConfigFile config)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = path + ".tmp";
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
                File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(config, CliJsonContext.Default.CliConfigFile));
            }
            else
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = ownerOnly };
                using (var stream = new FileStream(temp, options))
                {
                    JsonSerializer.Serialize(stream, config, CliJsonContext.Default.CliConfigFile);
                }

                // FileMode.Create keeps the mode of a leftover temporary file, and umask can only remove bits.
                File.SetUnixFileMode(temp, ownerOnly);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliConfigException($"cannot write {path}: {ex.Message}", ex);
        }
    }

    /// <summary>An absolute http(s) URL; the trailing slash lets a control plane live under a path prefix.</summary>
    public static Uri ParseServer(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new CliConfigException($"'{value}' is not a control plane URL (expected http://HOST[:PORT] or https://HOST[:PORT][/PATH])");
        }

        return uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
