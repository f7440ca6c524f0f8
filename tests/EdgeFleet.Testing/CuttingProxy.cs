using System.Net;
using System.Net.Sockets;

namespace EdgeFleet.Testing;

/// <summary>
/// A TCP proxy on a free loopback port in front of a real server, for network faults a test needs at an exact point:
/// cut a connection after N bytes of the server's answer, or hold it open and send nothing. Counts the bytes it passed
/// to clients. Each fault applies to the next connection that starts after it was set, once.
/// </summary>
public sealed class CuttingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private readonly Lock _lock = new();
    private long _cutAfter = -1;
    private bool _stallNext;
    private bool _resetNext = true;
    private Hold? _hold;
    private long _bytesToClients;
    private int _connections;
    private TaskCompletionSource _cut = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CuttingProxy(int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptAsync();
    }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}/");

    /// <summary>Bytes of server answers passed on to clients (headers included).</summary>
    public long BytesToClients => Interlocked.Read(ref _bytesToClients);

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Limits what is passed to each client to about this many bytes per second (0: no limit), so a transfer lasts long enough to break.</summary>
    public long BytesPerSecond { get; set; }

    /// <summary>Completes when the armed cut or stall has happened.</summary>
    public Task Faulted
    {
        get
        {
            lock (_lock)
            {
                return _cut.Task;
            }
        }
    }

    /// <summary>
    /// The next connection is cut after <paramref name="bytes"/> bytes of the server's answer: with a reset (data the
    /// client had not read yet is lost, like a pulled cable) or, <paramref name="reset"/> false, closed cleanly so the
    /// client receives exactly those bytes.
    /// </summary>
    public void CutNextAfter(long bytes, bool reset = true)
    {
        lock (_lock)
        {
            _cutAfter = bytes;
            _resetNext = reset;
            _cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>
    /// The first connection from now on to pass <paramref name="bytes"/> bytes of the server's answer holds the rest
    /// (passes nothing, closes nothing) until <see cref="Release"/>: a transfer certainly under way at a point the test
    /// chooses, whatever the machine's speed, and whichever connection the client's pool picks for it (smaller answers
    /// on other connections pass). <see cref="Faulted"/> completes when the hold begins. (Release with a cut rather than
    /// rely on a killed server to break the connection: the kernel still delivers what a dead process had queued in its
    /// socket, which can be the whole rest of a transfer.)
    /// </summary>
    public void HoldAfter(long bytes)
    {
        lock (_lock)
        {
            _cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _hold = new Hold(bytes, _cut);
        }
    }

    /// <summary>Ends the hold armed by <see cref="HoldAfter"/>: the held connection relays the rest, or with <paramref name="cut"/> is reset.</summary>
    public void Release(bool cut = false)
    {
        lock (_lock)
        {
            _hold?.Released.TrySetResult(cut);
            _hold = null;
        }
    }

    /// <summary>The next connection reaches the server but no byte of its answer is passed on until the proxy is disposed.</summary>
    public void StallNext()
    {
        lock (_lock)
        {
            _stallNext = true;
            _cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _accept.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            long cutAfter;
            bool stall;
            bool reset;
            Hold? hold;
            TaskCompletionSource fault;
            lock (_lock)
            {
                cutAfter = _cutAfter;
                stall = _stallNext;
                fault = _cut;
                reset = _resetNext;
                hold = _hold; // armed for every connection until one of them takes it
                _resetNext = true;
                _cutAfter = -1;
                _stallNext = false;
            }

            var fate = new Fault(cutAfter, stall, reset, hold, fault);
            _ = Task.Run(() => RelayAsync(client, fate));
        }
    }

#pragma warning disable IDISP007, IDISP001 // the relay owns the accepted client; the streams belong to their TcpClients
    private async Task RelayAsync(TcpClient client, Fault fate)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(_target, _stop.Token).ConfigureAwait(false);
                var clientStream = client.GetStream();
                var serverStream = server.GetStream();
                using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                var up = clientStream.CopyToAsync(serverStream, connection.Token);
                var down = DownAsync(serverStream, clientStream, fate, connection.Token);
                await Task.WhenAny(up, down).ConfigureAwait(false);
                await connection.CancelAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
            finally
            {
                if (fate.Reset)
                {
                    client.Client.LingerState = new LingerOption(true, 0); // a reset, like a cable pulled mid-transfer
                }
                else
                {
                    client.Client.Shutdown(SocketShutdown.Send); // FIN after what was sent: the client reads it all, then the end
                }
            }
        }
    }

#pragma warning restore IDISP007, IDISP001

    private async Task DownAsync(Stream from, Stream to, Fault fate, CancellationToken ct)
    {
        if (fate.Stall)
        {
            fate.Happened.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }

        var buffer = new byte[16384];
        long sent = 0;
        while (true)
        {
            var limit = fate.CutAfter;
            if (fate.Hold is { Taken: false } armed)
            {
                limit = limit >= 0 ? Math.Min(limit, armed.After) : armed.After;
            }

            var max = limit >= 0 ? (int)Math.Min(buffer.Length, limit - sent) : buffer.Length;
            if (max <= 0 && limit != fate.CutAfter)
            {
                if (fate.Hold!.TryTake())
                {
                    fate.Hold.Happened.TrySetResult();
                    if (await fate.Hold.Released.Task.WaitAsync(ct).ConfigureAwait(false))
                    {
                        return; // released with a cut: the connection is reset
                    }
                }

                continue; // released, or another connection took the hold first
            }

            if (max <= 0)
            {
                fate.Happened.TrySetResult();
                return;
            }

            var read = await from.ReadAsync(buffer.AsMemory(0, max), ct).ConfigureAwait(false);
            if (read == 0)
            {
                return;
            }

            await to.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
            sent += read;
            Interlocked.Add(ref _bytesToClients, read);
            if (BytesPerSecond > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(read / (double)BytesPerSecond), ct).ConfigureAwait(false); // pacing, not waiting for a condition
            }
        }
    }

    /// <summary>What happens to one connection: armed when it was accepted.</summary>
    private sealed record Fault(long CutAfter, bool Stall, bool Reset, Hold? Hold, TaskCompletionSource Happened);

    /// <summary>An armed <see cref="HoldAfter"/>, taken by one connection.</summary>
    private sealed class Hold(long after, TaskCompletionSource happened)
    {
        private int _taken;

        public long After { get; } = after;

        public TaskCompletionSource Happened { get; } = happened;

        public TaskCompletionSource<bool> Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Taken => Volatile.Read(ref _taken) != 0;

        public bool TryTake() => Interlocked.Exchange(ref _taken, 1) == 0;
    }
}
