using System.Net;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>
/// Serves the local gRPC API on a Unix domain socket and, when <c>Agent:Metrics:Port</c> is set, Prometheus
/// <c>/metrics</c>, from a small Kestrel server of its own beside the generic host. Neither is needed to run the
/// pipeline: a socket that cannot be created or a port in use is logged and the agent runs on without it.
/// </summary>
public sealed partial class LocalApiServer(
    AgentPipeline pipeline,
    ResultHub hub,
    IOptions<AgentOptions> options,
    TimeProvider time,
    EdgeFleet.Agent.Gpio.GpioService gpio,
    ILoggerFactory loggerFactory) : IHostedLifecycleService, IAsyncDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<LocalApiServer>();
    private WebApplication? _app;
    private string? _socket;

    /// <summary>Before any service starts: the hub must be a sink and frame observer before the pipeline is built.</summary>
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        if (options.Value.LocalApi.Enabled)
        {
            pipeline.AddSink(hub);
            pipeline.AddObserver(hub);
        }

        return Task.CompletedTask;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var socket = o.LocalApi.Enabled ? PrepareSocket(o.LocalApi.ResolveSocket(o.StateDirectory)) : null;
        IPAddress? metricsAddress = null;
        if (o.Metrics.Port != 0 && !IPAddress.TryParse(o.Metrics.Address, out metricsAddress))
        {
            LogMetricsAddress(_logger, o.Metrics.Address);
        }

        if (socket is null && metricsAddress is null)
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory); // the agent's logging, not a second console
        builder.Services.AddSingleton(pipeline);
        builder.Services.AddSingleton(hub);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(gpio); // Status reports the trigger and the LED
        builder.Services.AddGrpc();
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (socket is not null)
            {
                k.ListenUnixSocket(socket, l => l.Protocols = HttpProtocols.Http2);
            }

            if (metricsAddress is not null)
            {
                k.Listen(metricsAddress, o.Metrics.Port, l => l.Protocols = HttpProtocols.Http1);
            }
        });
        var app = builder.Build();
        if (socket is not null)
        {
            app.MapGrpcService<AgentLocalService>();
        }

        if (metricsAddress is not null)
        {
            app.MapMetrics("/metrics", new AgentMetrics(pipeline, hub).Registry);
        }

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // SIGTERM while Kestrel was still starting: the agent is stopping anyway, and that is a clean stop.
            await app.DisposeAsync().ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or InvalidOperationException or UnauthorizedAccessException)
        {
            LogStartFailed(_logger, ex, socket ?? "-", metricsAddress is null ? "-" : $"{metricsAddress}:{o.Metrics.Port}");
            await app.DisposeAsync().ConfigureAwait(false);
            return;
        }

#pragma warning disable IDISP003 // started once per host
        _app = app;
#pragma warning restore IDISP003
        if (socket is not null)
        {
            _socket = socket;
            SocketPermissions.Apply(socket, _logger);
            LogListening(_logger, socket);
        }

        if (metricsAddress is not null)
        {
            LogMetrics(_logger, $"http://{(metricsAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{metricsAddress}]" : metricsAddress)}:{o.Metrics.Port}/metrics");
        }
    }

    /// <summary>The socket path if its directory can hold it (created if missing), with a stale socket removed; else null, logged.</summary>
    private string? PrepareSocket(string path)
    {
        try
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
            Directory.CreateDirectory(directory);
            if (File.Exists(path))
            {
                if (LocalApiClient.IsListening(path))
                {
                    LogInUse(_logger, path);
                    return null;
                }

                // Left by an agent that was killed: nothing answers on it.
                File.Delete(path);
                LogStale(_logger, path);
            }

            var probe = Path.Combine(directory, $".agent-probe-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return path;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogNoSocket(_logger, path, ex.Message);
            return null;
        }
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_socket is { } s)
        {
            try
            {
                File.Delete(s);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // the next start removes it
            }
        }

        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
#pragma warning disable IDISP003 // disposed on the next line
            _app = null;
#pragma warning restore IDISP003
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Local API listening on {Socket}")]
    private static partial void LogListening(ILogger logger, string socket);

    [LoggerMessage(Level = LogLevel.Information, Message = "Prometheus metrics on {Url}")]
    private static partial void LogMetrics(ILogger logger, string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "Local API: removed the stale socket {Socket} (left by an agent that did not stop cleanly)")]
    private static partial void LogStale(ILogger logger, string socket);

    [LoggerMessage(Level = LogLevel.Error, Message = "Local API disabled: cannot create the socket {Socket}: {Reason}. The agent runs on without it; set Agent:LocalApi:Socket to a writable path (systemd: RuntimeDirectory=edgefleet)")]
    private static partial void LogNoSocket(ILogger logger, string socket, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Local API disabled: another agent answers on {Socket}; give each agent its own Agent:LocalApi:Socket. The agent runs on without it")]
    private static partial void LogInUse(ILogger logger, string socket);

    [LoggerMessage(Level = LogLevel.Error, Message = "Agent:Metrics:Address {Address} is not an IP address; metrics are off")]
    private static partial void LogMetricsAddress(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Error, Message = "Local API / metrics could not start (socket {Socket}, metrics {Metrics}); the agent runs on without them")]
    private static partial void LogStartFailed(ILogger logger, Exception exception, string socket, string metrics);
}
