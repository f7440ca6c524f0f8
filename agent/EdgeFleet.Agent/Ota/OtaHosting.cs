using System.Security.Cryptography;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Enrollment;
using EdgeFleet.Agent.Hosting;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Ota;

/// <summary>
/// What the OTA side needs from enrollment: the registry key to verify manifests with, the control plane's URL and
/// the device's HTTP token. Null members when the device has not enrolled (updates are then rejected, reason signature).
/// </summary>
public sealed class OtaIdentity : IDisposable
{
    public OtaIdentity(IOptions<AgentOptions> options, ILogger<OtaIdentity> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        DeviceIdentity? identity = null;
        try
        {
            identity = DeviceIdentity.Load(options.Value.StateDirectory);
        }
        catch (InvalidDataException ex)
        {
            LogUnusable(logger, ex.Message);
        }

        if (identity is null)
        {
            return;
        }

        Server = Uri.TryCreate(identity.Server, UriKind.Absolute, out var server) ? server : null;
        HttpToken = identity.HttpToken;
        try
        {
            RegistryKey = ManifestSigning.ImportPublicKey(identity.RegistryPublicKey);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            LogUnusable(logger, $"the registry key in {DeviceIdentity.PathIn(options.Value.StateDirectory)} cannot be read: {ex.Message}");
        }
    }

    public ECDsa? RegistryKey { get; }

    public Uri? Server { get; }

    public string? HttpToken { get; }

    public void Dispose() => RegistryKey?.Dispose();

    private static void LogUnusable(ILogger logger, string reason) =>
        logger.LogWarning("Over-the-air updates cannot be verified: {Reason}", reason);
}

/// <summary>Runs the <see cref="OtaService"/> for the lifetime of the host (after the pipeline has started).</summary>
public sealed class OtaHostedService(OtaService ota) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => ota.RunAsync(stoppingToken);
}

/// <summary>The HTTP client the downloader uses: connection timeout, no overall timeout (the downloader times each read).</summary>
public sealed class OtaHttp : IDisposable
{
    private readonly SocketsHttpHandler _handler = new()
    {
        ConnectTimeout = TimeSpan.FromSeconds(15),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    };

    public OtaHttp()
    {
        Client = new HttpClient(_handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public HttpClient Client { get; }

    public void Dispose()
    {
        Client.Dispose();
        _handler.Dispose();
    }
}
