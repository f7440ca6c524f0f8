namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>Where devices reach the broker the control plane uses.</summary>
public interface IMqttEndpoint
{
    /// <summary>Host to give devices; null: the host the enrollment request was addressed to.</summary>
    string? PublicHost { get; }

    int Port { get; }

    bool Tls { get; }
}
