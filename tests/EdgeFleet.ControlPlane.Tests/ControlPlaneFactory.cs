using System.Net.Http.Headers;
using EdgeFleet.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// The real control plane over the real HTTP pipeline, on its own data directory and database (SQLite in the
/// directory, or a fresh PostgreSQL database), with a known admin token.
/// </summary>
public sealed class ControlPlaneFactory : WebApplicationFactory<Program>
{
    public const string AdminToken = "efp_test-admin-token-0123456789";
    private readonly TempDirectory _data = new("edgefleet-cp");
    private readonly string? _database;
    private readonly Dictionary<string, string?> _settings;

    public ControlPlaneFactory(string? database = null, IReadOnlyDictionary<string, string?>? settings = null)
    {
        _database = database;
        _settings = settings?.ToDictionary() ?? [];
    }

    public string DataDirectory => _data.Path;

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
