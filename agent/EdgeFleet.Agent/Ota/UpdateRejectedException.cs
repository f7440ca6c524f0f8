using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Ota;

/// <summary>An assignment that will not be applied: <see cref="Reason"/> is one of <see cref="RejectReasons"/>.</summary>
public sealed class UpdateRejectedException : Exception
{
    public UpdateRejectedException(string reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public UpdateRejectedException()
        : this(RejectReasons.Download, "The update was rejected")
    {
    }

    public UpdateRejectedException(string message)
        : this(RejectReasons.Download, message)
    {
    }

    public UpdateRejectedException(string message, Exception innerException)
        : this(RejectReasons.Download, message, innerException)
    {
    }

    public string Reason { get; }
}
