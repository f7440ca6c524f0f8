using System.Net.Sockets;
using System.Text.Json;
using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.LocalApi.V1;
using Grpc.Net.Client;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>The CLI's side of the local API: gRPC over the agent's Unix socket.</summary>
public static class LocalApiClient
{
    /// <summary>A channel to the socket; the address is only a placeholder, every connection goes to the socket.</summary>
    public static GrpcChannel Open(string socketPath)
    {
#pragma warning disable IDISP001, CA2000 // the channel owns and disposes the handler
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
#pragma warning restore IDISP001, CA2000
    }

    /// <summary>
    /// The socket: --socket, else EDGEFLEET_Agent__LocalApi__Socket, else the configuration file's key, else
    /// $RUNTIME_DIRECTORY/agent.sock, else the systemd unit's <c>/run/edgefleet/agent.sock</c> when it exists, else
    /// <c>agent.sock</c> in the state directory (<paramref name="stateDirectory"/>, the file's Agent:StateDirectory, or
    /// /var/lib/edgefleet) — where an agent started by hand puts it.
    /// </summary>
    public static string Locate(string? socketOption, string? configPath, string? stateDirectory = null)
    {
        if (socketOption is { Length: > 0 })
        {
            return socketOption;
        }

        if (Environment.GetEnvironmentVariable("EDGEFLEET_Agent__LocalApi__Socket") is { Length: > 0 } env)
        {
            return env;
        }

        string? fileState = null;
        if (configPath is not null && File.Exists(configPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (doc.RootElement.TryGetProperty("Agent", out var agent) && agent.ValueKind == JsonValueKind.Object)
            {
                if (agent.TryGetProperty("LocalApi", out var api) && api.ValueKind == JsonValueKind.Object
                    && api.TryGetProperty("Socket", out var s) && s.ValueKind == JsonValueKind.String && s.GetString() is { Length: > 0 } fromFile)
                {
                    return fromFile;
                }

                if (agent.TryGetProperty("StateDirectory", out var d) && d.ValueKind == JsonValueKind.String && d.GetString() is { Length: > 0 } dir)
                {
                    fileState = dir;
                }
            }
        }

        if (Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY") is not { Length: > 0 } && stateDirectory is null && fileState is null
            && File.Exists(LocalApiOptions.SystemdSocket))
        {
            return LocalApiOptions.SystemdSocket;
        }

        return new LocalApiOptions().ResolveSocket(stateDirectory ?? fileState ?? new AgentOptions().StateDirectory);
    }

    /// <summary>Whether something is listening on the socket (a file alone may be stale).</summary>
    public static bool IsListening(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static AgentLocal.AgentLocalClient Client(GrpcChannel channel) => new(channel);
}
