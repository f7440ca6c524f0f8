using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EdgeFleet.Testing;

/// <summary>What the test broker allows.</summary>
public sealed record MosquittoBrokerOptions
{
    /// <summary>Users and passwords; when set, anonymous clients are refused.</summary>
    public IReadOnlyDictionary<string, string>? Users { get; init; }

    /// <summary>ACL file lines (e.g. <c>pattern write ef/v1/%u/#</c>); null: no ACL.</summary>
    public IReadOnlyList<string>? Acl { get; init; }

    /// <summary>Keep queued messages and retained ones across restarts.</summary>
    public bool Persistence { get; init; } = true;

    /// <summary>
    /// mosquitto's <c>max_inflight_messages</c>: QoS 1 messages in flight to each client, and (MQTT 5) the receive
    /// maximum it announces to clients in CONNACK.
    /// </summary>
    public int MaxInflightMessages { get; init; } = 1000;

    /// <summary>TLS: (CA file, server certificate, server key).</summary>
    public (string Ca, string Cert, string Key)? Tls { get; init; }
}

/// <summary>
/// A real mosquitto broker on a free loopback port in a temporary directory, started by the test and removed
/// after. It can be stopped and started again on the same port to simulate outages.
/// </summary>
public sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly TempDirectory _dir = new("mosquitto");
    private readonly MosquittoBrokerOptions _options;
    private Process? _process;

    private MosquittoBroker(MosquittoBrokerOptions options, int port)
    {
        _options = options;
        Port = port;
        ConfigPath = _dir.File("mosquitto.conf");
        WriteConfig();
    }

    public string Host => "127.0.0.1";

    public int Port { get; }

    public string ConfigPath { get; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The broker's log so far.</summary>
    public string Log => File.Exists(_dir.File("mosquitto.log")) ? ReadShared(_dir.File("mosquitto.log")) : "";

    public static async Task<MosquittoBroker> StartAsync(MosquittoBrokerOptions? options = null)
    {
        var broker = new MosquittoBroker(options ?? new MosquittoBrokerOptions(), FreePort.Next());
        await broker.StartAsync().ConfigureAwait(false);
        return broker;
    }

    /// <summary>Starts (again) on the same port.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            return;
        }

        _process?.Dispose();
        var psi = new ProcessStartInfo("mosquitto") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(ConfigPath);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("mosquitto did not start");
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mosquitto exited with {_process.ExitCode}: {Log}");
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(Host, Port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"mosquitto did not listen on {Port}: {Log}");
    }

    /// <summary>Stops the broker gracefully (SIGTERM; it saves its persistence file).</summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } p)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().ConfigureAwait(false);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
        }
    }

    /// <summary>Rewrites users and ACL and makes the running broker reload them (SIGHUP).</summary>
    public void Reload(MosquittoBrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        WriteUsers(options.Users);
        WriteAcl(options.Acl);
        if (_process is { HasExited: false } p)
        {
            using var kill = Process.Start("kill", ["-HUP", p.Id.ToString(CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            await p.WaitForExitAsync().ConfigureAwait(false);
        }

        _process?.Dispose();
        _dir.Dispose();
    }

    private void WriteConfig()
    {
        var c = new StringBuilder();
        // Run as us: started as root, mosquitto would drop to user "mosquitto", who cannot write in our temp dir.
        c.AppendLine(CultureInfo.InvariantCulture, $"user {Environment.UserName}");
        c.AppendLine(CultureInfo.InvariantCulture, $"listener {Port} 127.0.0.1");
        if (_options.Tls is { } tls)
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"cafile {tls.Ca}");
            c.AppendLine(CultureInfo.InvariantCulture, $"certfile {tls.Cert}");
            c.AppendLine(CultureInfo.InvariantCulture, $"keyfile {tls.Key}");
        }

        c.AppendLine(_options.Users is null ? "allow_anonymous true" : "allow_anonymous false");
        if (_options.Users is not null)
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"password_file {_dir.File("passwords")}");
            WriteUsers(_options.Users);
        }

        if (_options.Acl is not null)
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"acl_file {_dir.File("acl")}");
            WriteAcl(_options.Acl);
        }

        c.AppendLine(_options.Persistence ? "persistence true" : "persistence false");
        c.AppendLine(CultureInfo.InvariantCulture, $"persistence_location {_dir.Path}/");
        c.AppendLine("autosave_interval 1");
        // mosquitto's default (1000) silently drops QoS 1 messages to a slow subscriber.
        c.AppendLine("max_queued_messages 1000000");
        c.AppendLine(CultureInfo.InvariantCulture, $"max_inflight_messages {_options.MaxInflightMessages}");
        c.AppendLine(CultureInfo.InvariantCulture, $"log_dest file {_dir.File("mosquitto.log")}");
        c.AppendLine("log_type error");
        c.AppendLine("log_type warning");
        c.AppendLine("log_type notice");
        c.AppendLine("log_type information");
        c.AppendLine("log_type subscribe"); // "CLIENT QOS FILTER": a SUBSCRIBE the broker has handled
        File.WriteAllText(ConfigPath, c.ToString());
    }

    private void WriteUsers(IReadOnlyDictionary<string, string>? users)
    {
        if (users is null)
        {
            return;
        }

        var path = _dir.File("passwords");
        File.WriteAllText(path, "");
        foreach (var (user, password) in users)
        {
            using var p = Process.Start("mosquitto_passwd", ["-b", path, user, password]);
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException($"mosquitto_passwd failed for {user}");
            }
        }
    }

    private void WriteAcl(IReadOnlyList<string>? acl)
    {
        if (acl is not null)
        {
            File.WriteAllLines(_dir.File("acl"), acl);
        }
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
