namespace EdgeFleet.Mqtt;

/// <summary>An MQTT message to publish (or a Last Will).</summary>
public sealed record MqttMessage(string Topic, byte[] Payload, int Qos = 0, bool Retain = false);

/// <summary>
/// A message the broker delivered. With <see cref="MqttConnectionOptions.ManualAcknowledge"/> a QoS 1 message stays
/// unacknowledged (the broker keeps it, and sends it again after a reconnect of a persistent session) until
/// <see cref="IMqttConnection.AcknowledgeAsync"/> is called for it.
/// </summary>
public sealed class MqttReceivedMessage
{
    public MqttReceivedMessage(string topic, byte[] payload, int qos, bool retain, bool duplicate)
    {
        Topic = topic;
        Payload = payload;
        Qos = qos;
        Retain = retain;
        Duplicate = duplicate;
    }

    public string Topic { get; }

    public byte[] Payload { get; }

    public int Qos { get; }

    public bool Retain { get; }

    /// <summary>The broker sent it before (DUP): a redelivery after a reconnect of a persistent session.</summary>
    public bool Duplicate { get; }

    /// <summary>What the connection needs to acknowledge it later; null when there is nothing to acknowledge.</summary>
    internal object? AckState { get; set; }
}

/// <summary>
/// The broker's answer to a publish: for QoS 1 the PUBACK reason code (≥ 0x80: refused, e.g. 0x87 not authorised;
/// 0x10 "no matching subscribers" counts as delivered), for QoS 0 always 0.
/// </summary>
public readonly record struct PublishResult(int MessageId, int ReasonCode)
{
    public bool Accepted => ReasonCode < 0x80;
}

/// <summary>The broker's SUBACK for one filter: the granted QoS (0–2), or a reason code ≥ 0x80 when refused.</summary>
public readonly record struct SubscribeResult(string Filter, int ReasonCode)
{
    public bool Granted => ReasonCode < 0x80;
}

/// <summary>A filter the connection subscribes to on every connect, before it reports itself connected.</summary>
public sealed record MqttSubscription(string Filter, int Qos = 1);

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
public class MqttException : Exception
{
    public MqttException()
    {
    }

    public MqttException(string message)
        : base(message)
    {
    }

    public MqttException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A publish or subscribe while there is no connection: nothing was sent.</summary>
public sealed class MqttNotConnectedException : MqttException
{
    public MqttNotConnectedException()
    {
    }

    public MqttNotConnectedException(string message)
        : base(message)
    {
    }

    public MqttNotConnectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The connection went away (or the broker stopped answering) after the message was handed over and before its
/// PUBACK: the broker may or may not have it. Send it again on the next connection if it must arrive.
/// </summary>
public sealed class MqttConnectionLostException : MqttException
{
    public MqttConnectionLostException()
    {
    }

    public MqttConnectionLostException(string message)
        : base(message)
    {
    }

    public MqttConnectionLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
