namespace EdgeFleet.ControlPlane.Broker;

/// <summary>The embedded broker could not be started; the message says why, with mosquitto's last log lines.</summary>
internal sealed class BrokerStartException : Exception
{
    public BrokerStartException()
    {
    }

    public BrokerStartException(string message)
        : base(message)
    {
    }

    public BrokerStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
