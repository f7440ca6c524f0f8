using System.Threading.Channels;

namespace EdgeFleet.Mqtt;

/// <summary>
/// An MQTT 5 connection as the agent's outbox and the control plane's ingestion need it: it connects (with a Last
/// Will) and keeps reconnecting with jittered backoff until disposed, subscribes its filters on every connect,
/// publishes awaiting the PUBACK, and delivers received messages through a channel (acknowledged automatically, or
/// by the consumer once it has stored them). Nothing is queued while disconnected: a publish then fails at once
/// with <see cref="MqttNotConnectedException"/>, and one whose connection is lost before its PUBACK fails with
/// <see cref="MqttConnectionLostException"/>; the caller decides whether to send again (the agent's outbox does).
/// </summary>
public interface IMqttConnection : IAsyncDisposable
{
    string ClientId { get; }

    MqttConnectionState State { get; }

    bool IsConnected { get; }

    /// <summary>Why the last connection attempt failed or the connection was lost; null while connected.</summary>
    string? LastError { get; }

    /// <summary>Successful connections (reconnects included).</summary>
    long Connects { get; }

    /// <summary>Connections lost without a disconnect of ours.</summary>
    long ConnectionLosses { get; }

    /// <summary>QoS 1 publishes sent and not yet acknowledged on the current connection.</summary>
    int PendingPublishes { get; }

    /// <summary>Received messages, in arrival order. Completed when the connection is disposed.</summary>
    ChannelReader<MqttReceivedMessage> Messages { get; }

    /// <summary>
    /// Raised when the connection comes up (subscriptions in force), goes down or is refused, in that order, on the
    /// connection's own task: keep handlers short.
    /// </summary>
    event Action<MqttConnectionEvent>? ConnectionChanged;

    /// <summary>Starts connecting in the background; attach handlers first, so the first "connected" is not missed.</summary>
    void Start();

    /// <summary>Completes when the connection is up.</summary>
    Task WaitConnectedAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Publishes a message. QoS 1 completes with the broker's PUBACK (its reason code in the result), with at most the
    /// broker's receive maximum in flight; QoS 0 completes once written to the socket.
    /// </summary>
    /// <exception cref="MqttNotConnectedException">Not connected: nothing was sent.</exception>
    /// <exception cref="MqttConnectionLostException">The connection ended before the PUBACK.</exception>
    Task<PublishResult> PublishAsync(MqttMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Subscribes now and on every later connect. Waits for the connection if there is none, and completes with the
    /// broker's SUBACK.
    /// </summary>
    Task<SubscribeResult> SubscribeAsync(string filter, int qos = 1, CancellationToken cancellationToken = default);

    /// <summary>
    /// Acknowledges a message received with <see cref="MqttConnectionOptions.ManualAcknowledge"/>. A message that came
    /// over an earlier connection is not acknowledged (the broker sends it again on this one, marked duplicate);
    /// acknowledging a message twice, or one that needs none (QoS 0, automatic mode), does nothing.
    /// </summary>
    ValueTask AcknowledgeAsync(MqttReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Disconnects and stops reconnecting. Normally the broker drops the Last Will; with <paramref name="publishWill"/>
    /// it publishes it as if the connection had been lost (MQTT 5 reason 0x04).
    /// </summary>
    Task DisconnectAsync(bool publishWill = false, CancellationToken cancellationToken = default);
}
