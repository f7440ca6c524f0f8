using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace EdgeFleet.ControlPlane.Storage;

public enum SqlDialect
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The control plane's store: SQLite in the data directory by default, or PostgreSQL when several replicas share
/// one database. Both speak the same SQL here (named parameters, ON CONFLICT, RETURNING, times as Unix
/// milliseconds); the few type names that differ are filled in by <see cref="Migrations"/>.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqlite;

    private Database(SqlDialect dialect, string? sqlite, NpgsqlDataSource? postgres, string display)
    {
        Dialect = dialect;
        _sqlite = sqlite;
        _postgres = postgres;
        Display = display;
    }

    public SqlDialect Dialect { get; }

    /// <summary>Where the data is, without secrets (for logs).</summary>
    public string Display { get; }

    /// <summary>
    /// <paramref name="db"/>: null or empty → SQLite file <c>DIR/edgefleet.db</c>; a path ending in .db / .sqlite
    /// or <c>sqlite:PATH</c> → that SQLite file; otherwise a PostgreSQL connection string
    /// (<c>Host=…;Database=…;Username=…</c> or <c>postgres://user:pass@host:port/db</c>).
    /// </summary>
    public static Database Open(string? db, string dataDirectory)
    {
        if (string.IsNullOrWhiteSpace(db))
        {
            return Sqlite(Path.Combine(dataDirectory, "edgefleet.db"));
        }

        if (db.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            return Sqlite(Path.GetFullPath(db["sqlite:".Length..], dataDirectory));
        }

        if (db.EndsWith(".db", StringComparison.OrdinalIgnoreCase) || db.EndsWith(".sqlite", StringComparison.OrdinalIgnoreCase))
        {
            return Sqlite(Path.GetFullPath(db, dataDirectory));
        }

        return Postgres(ToNpgsql(db));
    }

    public static Database Sqlite(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var cs = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        return new Database(SqlDialect.Sqlite, cs, null, $"SQLite {path}");
    }

    public static Database Postgres(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"--db is neither a SQLite file nor a valid PostgreSQL connection string: {ex.Message}", ex);
        }

        var display = $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database}";
        var source = NpgsqlDataSource.Create(builder);
        return new Database(SqlDialect.Postgres, null, source, display);
    }

    /// <summary>Opens a connection; SQLite connections get WAL, a busy timeout and foreign keys.</summary>
    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }

        var connection = new SqliteConnection(_sqlite);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;";
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Turns <c>postgres://user:pass@host:port/db?sslmode=…</c> into Npgsql's key=value form.</summary>
    private static string ToNpgsql(string db)
    {
        if (!db.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !db.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return db;
        }

        var uri = new Uri(db);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = uri.AbsolutePath.Trim('/'),
        };
        if (uri.UserInfo.Split(':', 2) is [var user, ..] and var parts)
        {
            builder.Username = Uri.UnescapeDataString(user);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            builder[Uri.UnescapeDataString(kv[0])] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        }

        return builder.ToString();
    }
}
