using System.Diagnostics;

namespace EdgeFleet.Testing;

/// <summary>Debian's <c>promtool</c> (package prometheus, installed by deploy/bootstrap.sh), the linter of Prometheus's own project.</summary>
public static class Promtool
{
    /// <summary><c>promtool check metrics</c> on an exposition: exit code 0 and no output when it is clean.</summary>
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition)
    {
        var start = new ProcessStartInfo("promtool", ["check", "metrics"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start; install Debian's prometheus package (deploy/bootstrap.sh)");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition).ConfigureAwait(false);
        process.StandardInput.Close();
        await process.WaitForExitAsync().ConfigureAwait(false);
        return (process.ExitCode, ((await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false))).Trim());
    }
}
