using System.Diagnostics;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

internal sealed record CliResult(int Code, string Out, string Err);

/// <summary>
/// The real <c>edgefleet</c> executable as a child process with its own environment: a private
/// <c>XDG_CONFIG_HOME</c> and no inherited <c>EDGEFLEET_*</c> variables, so neither the machine's login nor another
/// test's can leak in.
/// </summary>
internal sealed class CliRunner : IDisposable
{
    private readonly TempDirectory _configHome = new("edgefleet-config");

    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal);

    public string? Stdin { get; init; }

    public string ConfigPath => Path.Combine(_configHome.Path, "edgefleet", "config.json");

    /// <summary>A URL where nothing listens: a command that exits 2 there, not 3, never tried to connect.</summary>
    public static Uri Nowhere => new($"http://127.0.0.1:{FreePort.Next()}/");

    /// <summary>Points the CLI at a control plane through the environment, the way a CI pipeline does; default: as admin.</summary>
    public static CliRunner For(ControlPlaneProcess controlPlane, string? token = null)
    {
        ArgumentNullException.ThrowIfNull(controlPlane);
        return For(controlPlane.Url, token ?? controlPlane.AdminToken);
    }

    /// <summary>Points the CLI at <paramref name="server"/> through the environment.</summary>
    public static CliRunner For(Uri server, string token)
    {
        var runner = new CliRunner();
        runner.Environment["EDGEFLEET_SERVER"] = server.AbsoluteUri;
        runner.Environment["EDGEFLEET_TOKEN"] = token;
        return runner;
    }

    public async Task<CliResult> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgefleet.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("EDGEFLEET_SERVER");
        psi.Environment.Remove("EDGEFLEET_TOKEN");
        psi.Environment["XDG_CONFIG_HOME"] = _configHome.Path;
        foreach (var (key, value) in Environment)
        {
            psi.Environment[key] = value;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (Stdin is not null)
        {
            await process.StandardInput.WriteAsync(Stdin);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"edgefleet {string.Join(' ', args)} did not exit within 2 minutes; stderr: {await stderr}");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public void Dispose() => _configHome.Dispose();
}
