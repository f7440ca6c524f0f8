using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace EdgeFleet.Testing;

/// <summary>
/// A throwaway PostgreSQL server from the Debian package (<c>/usr/lib/postgresql/*/bin</c>): initdb into a temporary
/// directory, listening on a free loopback port, removed on dispose. PostgreSQL refuses to run as root, so as root it
/// runs as the <c>postgres</c> user the package creates.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _dir;
    private readonly string _bin;
    private readonly bool _asPostgresUser;
    private int _databases;

    private PostgresServer(string dir, string bin, int port, bool asPostgresUser)
    {
        _dir = dir;
        _bin = bin;
        Port = port;
        _asPostgresUser = asPostgresUser;
    }

    public int Port { get; }

    /// <summary>Connection string of the <c>postgres</c> maintenance database.</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    public static string? FindBinaries() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run deploy/bootstrap.sh (Debian package postgresql)");
        var asPostgres = Environment.UserName == "root";
        var dir = Path.Combine(Path.GetTempPath(), $"edgefleet-pg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        if (asPostgres)
        {
            await RunAsync("chown", ["postgres:postgres", dir]).ConfigureAwait(false);
        }

        var port = FreePort.Next();
        var server = new PostgresServer(dir, bin, port, asPostgres);
        try
        {
            await server.PgAsync("initdb", "-D", Path.Combine(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions").ConfigureAwait(false);
            await server.PgAsync("pg_ctl", "-D", Path.Combine(dir, "data"), "-l", Path.Combine(dir, "server.log"), "-w", "-t", "60",
                "-o", $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                "start").ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates a new empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"ef_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}"[..20];
        await PgAsync("createdb", "-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", name).ConfigureAwait(false);
        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name}";
    }

    public string Log => File.Exists(Path.Combine(_dir, "server.log")) ? File.ReadAllText(Path.Combine(_dir, "server.log")) : "";

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Directory.Exists(Path.Combine(_dir, "data")))
            {
                await PgAsync("pg_ctl", "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop").ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // not running
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // the OS temp cleaner gets it
        }
    }

    private Task PgAsync(string tool, params string[] args) =>
        _asPostgresUser
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args])
            : RunAsync(Path.Combine(_bin, tool), args);

    private static async Task RunAsync(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args)} exited with {p.ExitCode}: {output}");
        }
    }
}
