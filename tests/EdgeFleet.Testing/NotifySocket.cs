using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace EdgeFleet.Testing;

/// <summary>
/// A real systemd notify socket: a Unix datagram socket bound in a directory, to pass to a child process as
/// NOTIFY_SOCKET. Every datagram received (one sd_notify message, possibly several NAME=VALUE lines) is queued with
/// the time it arrived.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket;
    private readonly Channel<Message> _messages = Channel.CreateUnbounded<Message>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _receiving;

    /// <summary>Binds <c>notify.sock</c> in <paramref name="directory"/>.</summary>
    public NotifySocket(string directory)
    {
        Path = System.IO.Path.Combine(directory, "notify.sock");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _receiving = ReceiveAsync();
    }

    /// <summary>The socket's path (the value for NOTIFY_SOCKET).</summary>
    public string Path { get; }

    /// <summary>Time since the socket was bound.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>The next message, or null if none arrives within <paramref name="timeout"/>.</summary>
    public async Task<Message?> NextAsync(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return _messages.Reader.TryRead(out var queued) ? queued : null;
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _messages.Reader.ReadAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Reads messages until one has the line <paramref name="line"/>; null if none within <paramref name="timeout"/>.</summary>
    public async Task<Message?> WaitForAsync(string line, TimeSpan timeout, ICollection<Message>? seen = null)
    {
        var deadline = Elapsed + timeout;
        while (await NextAsync(deadline - Elapsed).ConfigureAwait(false) is { } message)
        {
            seen?.Add(message);
            if (message.Has(line))
            {
                return message;
            }
        }

        return null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try
        {
            _receiving.GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // closed
        }

        _stop.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
            // the directory is removed with the test
        }
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            _messages.Writer.TryWrite(new Message(Encoding.UTF8.GetString(buffer, 0, n), _clock.Elapsed));
        }
    }

    /// <summary>One datagram: its text and when it arrived (since the socket was bound).</summary>
    public sealed record Message(string Text, TimeSpan At)
    {
        /// <summary>The NAME=VALUE lines.</summary>
        public IReadOnlyList<string> Lines => Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        /// <summary>Whether one line is exactly <paramref name="line"/>.</summary>
        public bool Has(string line) => Lines.Contains(line);

        /// <summary>Whether one line starts with <paramref name="prefix"/>.</summary>
        public bool HasPrefix(string prefix) => Lines.Any(l => l.StartsWith(prefix, StringComparison.Ordinal));
    }
}
