using System.Net.Http.Headers;
using EdgeFleet.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// The real control plane over the real HTTP pipeline, on its own data directory and database (SQLite in the
/// directory, or a fresh PostgreSQL database), with a known admin token. With <c>kestrel: true</c> it listens on
/// a free loopback port through Kestrel (its request limits and parsing) instead of the in-memory test server.
/// Errors it logs are collected in <see cref="LoggedErrors"/>.
/// </summary>
public sealed class ControlPlaneFactory : WebApplicationFactory<Program>
{
    public const string AdminToken = "efp_test-admin-token-0123456789";
    private readonly TempDirectory _data = new("edgefleet-cp");
    private readonly string? _database;
    private readonly Dictionary<string, string?> _settings;
    private readonly ErrorLog _errors = new();

    public ControlPlaneFactory(string? database = null, IReadOnlyDictionary<string, string?>? settings = null, bool kestrel = false)
    {
        _database = database;
        _settings = settings?.ToDictionary() ?? [];
        if (kestrel)
        {
            UseKestrel(0);
        }
    }

    public string DataDirectory => _data.Path;

    /// <summary>Error and critical log entries so far, with their exceptions.</summary>
    public IReadOnlyList<string> LoggedErrors => _errors.Entries;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.UseSetting("ControlPlane:DataDirectory", _data.Path);
        builder.UseSetting("ControlPlane:Database", _database);
        builder.UseSetting("ControlPlane:Mqtt", "none");
        builder.UseSetting("EDGEFLEET_ADMIN_TOKEN", AdminToken);
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.AddProvider(_errors));
    }

    public HttpClient Client(string? token = AdminToken)
    {
        var client = CreateClient();
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _data.Dispose();
    }
}

/// <summary>Collects what the host logs at Error and above.</summary>
internal sealed class ErrorLog : ILoggerProvider
{
    private readonly List<string> _entries = [];

    public IReadOnlyList<string> Entries
    {
        get
        {
            lock (_entries)
            {
                return _entries.ToArray();
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ErrorLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                lock (log._entries)
                {
                    log._entries.Add($"{logLevel} {category}: {formatter(state, exception)} {exception}");
                }
            }
        }
    }
}

/// <summary>One PostgreSQL server for the whole test assembly; each test gets its own database.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public PostgresServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await PostgresServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
