using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>Where the control plane publishes what it wants devices to run (retained <c>ef/v1/{id}/desired</c>, QoS 1).</summary>
public interface IDesiredPublisher
{
    /// <summary>False with <c>--mqtt none</c>: there is no broker to publish to.</summary>
    bool Enabled { get; }

    /// <summary>
    /// Publishes <paramref name="payload"/> retained at QoS 1 (an empty payload clears the retained message), waiting a
    /// little for the connection if it is down; completes with the broker's PUBACK.
    /// </summary>
    /// <exception cref="MqttException">The broker is unreachable or refused it.</exception>
    Task PublishAsync(string deviceId, byte[] payload, CancellationToken cancellationToken = default);
}

/// <summary>
/// The control plane's own publishing connection (client id <c>{IngestClientId}-desired</c>, with the control plane's
/// broker login, whose ACL may write every device's <c>desired</c>), kept apart from ingestion's persistent,
/// manually acknowledged session so a publish never waits behind a batch.
/// </summary>
public sealed partial class DesiredPublisher(IMqttConnectionFactory connections, IOptions<ControlPlaneOptions> options, Ingestion.IngestMetrics metrics,
    ILogger<DesiredPublisher> logger)
    : BackgroundService, IDesiredPublisher
{
    private static readonly TimeSpan ConnectPatience = TimeSpan.FromSeconds(10);
    private readonly TaskCompletionSource<IMqttConnection> _connection = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Enabled => !options.Value.MqttDisabled;

    public async Task PublishAsync(string deviceId, byte[] payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        if (!Enabled)
        {
            throw new InvalidOperationException("MQTT is disabled (--mqtt none)");
        }

        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(ConnectPatience);
        IMqttConnection connection;
        try
        {
            connection = await _connection.Task.WaitAsync(wait.Token).ConfigureAwait(false);
            await connection.WaitConnectedAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new MqttNotConnectedException($"the control plane is not connected to the MQTT broker ({ConnectPatience.TotalSeconds:0} s)");
        }

        var result = await connection.PublishAsync(new MqttMessage(Topics.For(deviceId, Topics.Desired), payload, Qos: 1, Retain: true), cancellationToken)
            .ConfigureAwait(false);
        if (!result.Accepted)
        {
            throw new MqttException($"the broker refused the desired message for {deviceId} (reason 0x{result.ReasonCode:x2})");
        }

        metrics.OnDesiredPublished();
        LogPublished(logger, deviceId, payload.Length);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        await using var connection = connections.Create(options.Value.IngestClientId + "-desired");
        connection.Start();
        _connection.TrySetResult(connection);
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Published the retained desired message of {DeviceId} ({Bytes} bytes)")]
    private static partial void LogPublished(ILogger logger, string deviceId, int bytes);
}
