using System.Net.Sockets;
using System.Text.Json;
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

    /// <summary>The socket: --socket, else EDGEFLEET_Agent__LocalApi__Socket, else the configuration file's key, else the default.</summary>
    public static string Locate(string? socketOption, string? configPath)
    {
        if (socketOption is { Length: > 0 })
        {
            return socketOption;
        }

        if (Environment.GetEnvironmentVariable("EDGEFLEET_Agent__LocalApi__Socket") is { Length: > 0 } env)
        {
            return env;
        }

        if (configPath is not null && File.Exists(configPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (doc.RootElement.TryGetProperty("Agent", out var agent) && agent.ValueKind == JsonValueKind.Object
                && agent.TryGetProperty("LocalApi", out var api) && api.ValueKind == JsonValueKind.Object
                && api.TryGetProperty("Socket", out var s) && s.ValueKind == JsonValueKind.String && s.GetString() is { Length: > 0 } fromFile)
            {
                return fromFile;
            }
        }

        return new LocalApiOptions().ResolveSocket();
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
