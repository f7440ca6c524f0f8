using System.ComponentModel.DataAnnotations;

namespace EdgeFleet.Agent.LocalApi;

/// <summary><c>Agent:LocalApi</c>: the gRPC service on a Unix domain socket (agent/README.md, "Local API").</summary>
public sealed class LocalApiOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Socket path; null: <c>$RUNTIME_DIRECTORY/agent.sock</c> under systemd (the unit sets <c>RuntimeDirectory=edgefleet</c>:
    /// <c>/run/edgefleet/agent.sock</c>), else <c>agent.sock</c> in the state directory, so agents run by hand or by tests
    /// side by side each get their own.
    /// </summary>
    public string? Socket { get; set; }

    /// <summary>Results kept per <c>Results</c> subscriber before the oldest is dropped.</summary>
    [Range(1, 10000)]
    public int SubscriberBuffer { get; set; } = 64;

    /// <summary>How long <c>Snapshot</c> waits for the next frame.</summary>
    [Range(0.1, 60)]
    public double SnapshotTimeoutSeconds { get; set; } = 2;

    [Range(1, 100)]
    public int JpegQuality { get; set; } = 85;

    /// <summary>The socket path in effect for an agent whose state directory is <paramref name="stateDirectory"/>.</summary>
    public string ResolveSocket(string stateDirectory) =>
        Socket is { Length: > 0 } s ? s : DefaultSocket(Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY"), stateDirectory);

    /// <summary>systemd may set several runtime directories separated by ':'; the first is ours.</summary>
    public static string DefaultSocket(string? runtimeDirectory, string stateDirectory) =>
        runtimeDirectory is { Length: > 0 } r ? Path.Combine(r.Split(':')[0], "agent.sock") : Path.Combine(stateDirectory, "agent.sock");

    /// <summary>Where the installed systemd unit puts the socket (<c>RuntimeDirectory=edgefleet</c>).</summary>
    public const string SystemdSocket = "/run/edgefleet/agent.sock";
}

/// <summary><c>Agent:Metrics</c>: Prometheus <c>/metrics</c>, off unless a port is set.</summary>
public sealed class MetricsOptions
{
    /// <summary>0: off.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>Listen address; loopback unless set on purpose.</summary>
    public string Address { get; set; } = "127.0.0.1";
}
