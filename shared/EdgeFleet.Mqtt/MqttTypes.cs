namespace EdgeFleet.Mqtt;

/// <summary>How to reach and authenticate with the broker.</summary>
public sealed record MqttClientOptions
{
    public required string Host { get; init; }

    public int Port { get; init; } = 1883;

    /// <summary>Client identifier; must be unique on the broker (two clients with one id knock each other off).</summary>
    public required string ClientId { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    public int KeepAliveSeconds { get; init; } = 30;

    /// <summary>Start every connection with a clean session (subscriptions are re-issued on each connect anyway).</summary>
    public bool CleanSession { get; init; } = true;

    /// <summary>CA certificate file: setting it turns TLS on.</summary>
    public string? CaFile { get; init; }

    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>Skip the server host name check (testing only).</summary>
    public bool TlsInsecure { get; init; }

    /// <summary>Published by the broker when this client disappears without a normal disconnect.</summary>
    public MqttMessage? Will { get; init; }

    /// <summary>First reconnect delay; grows up to <see cref="MaxReconnectDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>QoS 1 messages on the wire awaiting PUBACK.</summary>
    public int MaxInflight { get; init; } = 100;

    /// <summary>Received messages buffered for the consumer; when full the network thread waits (back-pressure).</summary>
    public int ReceiveBuffer { get; init; } = 10_000;
}

/// <summary>An MQTT message.</summary>
public sealed record MqttMessage(string Topic, byte[] Payload, int Qos = 0, bool Retain = false);

/// <summary>The broker's answer to a publish: for QoS 1 the PUBACK reason code (≥ 0x80: refused, e.g. 0x87 not authorised).</summary>
public readonly record struct PublishResult(int MessageId, int ReasonCode)
{
    public bool Accepted => ReasonCode < 0x80;
}

public enum MqttConnectionState
{
    Disconnected,
    Connected,

    /// <summary>The broker refused the credentials or the client id; retried with backoff.</summary>
    Refused,
}

/// <summary>A change of connection state, with the reason.</summary>
public sealed record MqttConnectionEvent(MqttConnectionState State, string Reason);

/// <summary>An MQTT operation failed.</summary>
public sealed class MqttException : Exception
{
    public MqttException(string message, int errorCode)
        : base(message) => ErrorCode = errorCode;

    public MqttException()
    {
    }

    public MqttException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public MqttException(string message)
        : base(message)
    {
    }

    /// <summary>libmosquitto's MOSQ_ERR_* code.</summary>
    public int ErrorCode { get; }
}

/// <summary>libmosquitto is not installed.</summary>
public sealed class MqttLibraryNotFoundException : Exception
{
    public MqttLibraryNotFoundException(string message)
        : base(message)
    {
    }

    public MqttLibraryNotFoundException()
    {
    }

    public MqttLibraryNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
