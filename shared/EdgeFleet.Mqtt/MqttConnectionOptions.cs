namespace EdgeFleet.Mqtt;

/// <summary>How to reach and authenticate with the broker, and how the connection behaves.</summary>
public sealed record MqttConnectionOptions
{
    public required string Host { get; init; }

    public int Port { get; init; } = 1883;

    /// <summary>Client identifier; must be unique on the broker (two clients with one id knock each other off).</summary>
    public required string ClientId { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>A dead connection is noticed after about 1.5× this without traffic (PINGREQ, then half of it for PINGRESP).</summary>
    public int KeepAliveSeconds { get; init; } = 30;

    /// <summary>
    /// false: a persistent session — the broker keeps the subscriptions and queues QoS 1 messages while this client is
    /// away (for <see cref="SessionExpiry"/>), and sends the unacknowledged ones again after it reconnects.
    /// </summary>
    public bool CleanStart { get; init; } = true;

    /// <summary>How long the broker keeps a persistent session after the connection ends (MQTT 5 session expiry).</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// The MQTT 5 receive maximum announced to the broker: how many QoS 1 messages it may send before this client
    /// acknowledges them. With <see cref="ManualAcknowledge"/> it must cover what the consumer holds unacknowledged
    /// (a batch being written), or the broker stops sending.
    /// </summary>
    public int ReceiveMaximum { get; init; } = 1000;

    /// <summary>Received QoS 1 messages are acknowledged only through <see cref="IMqttConnection.AcknowledgeAsync"/>.</summary>
    public bool ManualAcknowledge { get; init; }

    /// <summary>Subscribed on every connect, each awaiting its SUBACK, before the connection reports itself connected.</summary>
    public IReadOnlyList<MqttSubscription> Subscriptions { get; init; } = [];

    /// <summary>CA certificate file (PEM): setting it turns TLS on, trusting only this CA.</summary>
    public string? CaFile { get; init; }

    /// <summary>Client certificate (PEM) for brokers that require one; with <see cref="KeyFile"/>.</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>Skip the server host name check (testing only); the chain must still lead to <see cref="CaFile"/>.</summary>
    public bool TlsInsecure { get; init; }

    /// <summary>Published by the broker when this client disappears without a normal disconnect.</summary>
    public MqttMessage? Will { get; init; }

    /// <summary>First reconnect delay; grows exponentially, with jitter, up to <see cref="MaxReconnectDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// QoS 1 publishes on the wire awaiting PUBACK; further ones wait. The broker's own receive maximum (CONNACK;
    /// mosquitto announces 20) caps it further.
    /// </summary>
    public int MaxInflight { get; init; } = 100;

    /// <summary>Received messages buffered for the consumer; when full, delivery waits (the broker holds the rest).</summary>
    public int ReceiveBuffer { get; init; } = 10_000;

    /// <summary>
    /// Socket send and receive buffer. MQTTnet's default (8 KiB) was measured to stall a subscriber in a burst to
    /// ~35 msg/s against mosquitto; 64 KiB never did.
    /// </summary>
    public int SocketBufferBytes { get; init; } = 64 * 1024;

    /// <summary>Connecting, and waiting for a PUBACK or SUBACK; past it the connection counts as dead and is replaced.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
