using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// The control plane's MQTT broker: mosquitto 2.0 as a child process, configured from <see cref="BrokerOptions"/>
/// and the device credentials. It is started under <c>setpriv --pdeathsig TERM</c>: when the control plane dies, even
/// by <c>kill -9</c>, mosquitto gets SIGTERM, saves its queued messages (ingestion's persistent session among them)
/// to its database and exits, and the next start loads them (it first waits for such a broker to finish). It is
/// supervised (an unexpected exit is logged and followed by a restart with jittered exponential backoff through
/// Polly), and given new credentials without a restart (rewritten files + SIGHUP). The control plane's own login is
/// generated here at random, kept in memory only and changed at every start.
/// </summary>
internal sealed partial class EmbeddedBroker : IAsyncDisposable
{
    private const long MaxLogBytes = 16L * 1024 * 1024;
    private const int OutputLinesKept = 20;
    private const int LogLinesInErrors = 12;
    private const string SetprivPath = "/usr/bin/setpriv";
    private const string SetsidPath = "/usr/bin/setsid";
    private const string ReloadMarker = "Reloading config.";
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ReloadTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ReloadPoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan ResignalAfter = TimeSpan.FromMilliseconds(500);

    /// <summary>A broker that stayed up this long crashed for a new reason: restart it without the accumulated backoff.</summary>
    private static readonly TimeSpan StableUptime = TimeSpan.FromMinutes(1);

    private readonly BrokerOptions _options;
    private readonly BrokerFiles _files;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IPAddress _bindAddress;
    private readonly IPAddress _localAddress;
    private readonly string _servicePassword;
    private readonly BrokerCredential _serviceCredential;
    private readonly ChildProcessThread _spawner;
    private readonly ResiliencePipeline _restart;
    private readonly SemaphoreSlim _gate = new(1, 1); // one start, reload or stop at a time
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly Queue<string> _output = new();
    private Process? _process;
    private bool _ready;
    private long _startedAt;
    private Task? _supervisor;
    private long _restarts;
    private bool _disposed;

    public EmbeddedBroker(BrokerOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        Validator.ValidateObject(options, new ValidationContext(options), validateAllProperties: true);
        _options = options;
        _time = time;
        _logger = logger;
        _files = new BrokerFiles(options);
        _bindAddress = IPAddress.Parse(options.BindAddress);
        _localAddress = _bindAddress.Equals(IPAddress.Any) ? IPAddress.Loopback
            : _bindAddress.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : _bindAddress;
        _servicePassword = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        ServiceSharedGroup = "cp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _serviceCredential = MosquittoPasswordHasher.CreateCredential(options.ServiceUsername, _servicePassword);
        _restart = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is not null and not OperationCanceledException),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromSeconds(options.RestartDelaySeconds),
                MaxDelay = TimeSpan.FromSeconds(options.MaxRestartDelaySeconds),
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is BrokerStartException ex)
                    {
                        LogRestartFailed(_logger, ex.Message, args.RetryDelay.TotalSeconds);
                    }
                    else if (args.Outcome.Exception is BrokerExitedException exited)
                    {
                        LogExited(_logger, exited.Pid, exited.Exit, exited.Uptime.TotalSeconds, args.RetryDelay.TotalSeconds, exited.Detail);
                    }
                    else
                    {
                        LogSupervisorFailed(_logger, args.RetryDelay.TotalSeconds, args.Outcome.Exception!);
                    }

                    return ValueTask.CompletedTask;
                },
            })
            .Build();
        _spawner = new ChildProcessThread("mosquitto-spawner"); // last: nothing may throw after the thread exists
    }

    /// <summary>The address a client on this machine uses (loopback when the broker listens on all interfaces).</summary>
    public string Host => _localAddress.ToString();

    public int Port => _options.Port;

    /// <summary>mosquitto is up and was seen accepting connections.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_lock)
            {
                return _ready && _process is { HasExited: false };
            }
        }
    }

    /// <summary>Times the supervisor started mosquitto again after it exited unexpectedly (attempts, failed or not).</summary>
    public long Restarts => Interlocked.Read(ref _restarts);

    /// <summary>mosquitto's process id while it runs (diagnostics and tests).</summary>
    public int? ProcessId
    {
        get
        {
            lock (_lock)
            {
                return _process is { HasExited: false } p ? p.Id : null;
            }
        }
    }

    public string ServiceUsername => _options.ServiceUsername;

    /// <summary>
    /// The group name for the control plane's shared subscriptions (<c>$share/{group}/ef/v1/+/…</c>), random per
    /// instance. mosquitto 2.0's ACL file cannot refuse a subscription, it only filters deliveries: a device that
    /// joined a guessable group such as <c>cp</c> would be handed its round-robin share of the group's messages, which
    /// mosquitto then drops as not readable by the device, so the control plane would never see them. A group name
    /// the devices cannot know keeps them out.
    /// </summary>
    public string ServiceSharedGroup { get; }

    public BrokerFiles Files => _files;

    /// <summary>Connection settings for the control plane's own client, with the service login.</summary>
    public MqttConnectionOptions ServiceClientOptions(string clientId) => new()
    {
        Host = Host,
        Port = Port,
        ClientId = clientId,
        Username = ServiceUsername,
        Password = _servicePassword,
    };

    /// <summary>The last lines of mosquitto's log.</summary>
    public IReadOnlyList<string> LogTail(int lines) => BrokerLog.ReadLastLines(_files.LogPath, lines);

    /// <summary>
    /// Writes the files, starts mosquitto, waits until it accepts connections, then supervises it.
    /// </summary>
    /// <exception cref="BrokerStartException">mosquitto is missing, the port is taken, or it did not come up in time.</exception>
    public async Task StartAsync(IEnumerable<BrokerCredential> devices, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var validated = ValidateDevices(devices);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_stopping.IsCancellationRequested)
            {
                throw new InvalidOperationException("the broker was stopped; a stopped broker is not started again (create a new one)");
            }

            if (_supervisor is not null)
            {
                throw new InvalidOperationException("the broker was already started");
            }

            _files.WriteAll([_serviceCredential, .. validated]);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            await LaunchAsync(linked.Token).ConfigureAwait(false);
            _supervisor = Task.Run(SuperviseAsync, CancellationToken.None);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Replaces the device logins: rewrites <c>passwd</c> and <c>acl</c> and makes the running mosquitto reload them
    /// (SIGHUP), waiting until its log confirms it. mosquitto 2.0 re-checks every connected client on reload and
    /// disconnects those no longer in the password file (or whose password changed). If mosquitto is not running
    /// just now, it reads the new files when the supervisor restarts it.
    /// </summary>
    public async Task UpdateCredentialsAsync(IEnumerable<BrokerCredential> devices, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var validated = ValidateDevices(devices);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _files.WriteCredentials([_serviceCredential, .. validated]);
            Process? process;
            lock (_lock)
            {
                // Before "running" mosquitto has no SIGHUP handler yet, and the signal's default action would kill it.
                process = _ready ? _process : null;
            }

            if (process is null || process.HasExited)
            {
                LogCredentialsForNextStart(_logger, validated.Count);
                return;
            }

            // mosquitto logs "Reloading config." when its loop takes up the SIGHUP, *before* it reads the files, and clears
            // its reload flag *after*: a SIGHUP that lands in between is lost. A marker after this point means a reload
            // that began after the files were written (so it reads them); without one soon, signal again (a second
            // reload costs nothing, a lost one stalled enrollment for the whole timeout).
            var log = new BrokerLog(_files.LogPath);
            var started = _time.GetTimestamp();
            var signalled = long.MinValue;
            while (!log.Saw(line => line.EndsWith(ReloadMarker, StringComparison.Ordinal)))
            {
                if (process.HasExited)
                {
                    return; // the supervisor restarts it, with the new files
                }

                if (_time.GetElapsedTime(started) > ReloadTimeout)
                {
                    LogReloadNotConfirmed(_logger, process.Id, (int)ReloadTimeout.TotalSeconds, string.Join(" | ", log.Recent));
                    return;
                }

                if (signalled == long.MinValue || _time.GetElapsedTime(signalled) > ResignalAfter)
                {
                    if (!Signal(process, NativeMethods.SigHup))
                    {
                        LogCredentialsForNextStart(_logger, validated.Count);
                        return;
                    }

                    signalled = _time.GetTimestamp();
                }

                await Task.Delay(ReloadPoll, _time, cancellationToken).ConfigureAwait(false);
            }

            LogReloaded(_logger, process.Id, validated.Count);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Stops mosquitto: SIGTERM (it saves queued messages), then SIGKILL after the stop timeout.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_disposed)
        {
            return;
        }

        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_supervisor is { } supervisor)
            {
                await supervisor.ConfigureAwait(false);
            }

            Process? process;
            lock (_lock)
            {
                process = _process;
            }

            if (process is not null)
            {
                await TerminateAsync(process).ConfigureAwait(false);
                Release(process);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        await StopAsync().ConfigureAwait(false);
        _disposed = true;
        _spawner.Dispose();
        _stopping.Dispose();
        _gate.Dispose();
    }

    private IReadOnlyList<BrokerCredential> ValidateDevices(IEnumerable<BrokerCredential> devices)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var list = devices.ToList();
        foreach (var device in list)
        {
            ArgumentNullException.ThrowIfNull(device, nameof(devices));
            if (string.Equals(device.Username, _options.ServiceUsername, StringComparison.Ordinal))
            {
                throw new ArgumentException($"'{device.Username}' is the control plane's own broker login and cannot be a device", nameof(devices));
            }
        }

        _ = BrokerFiles.RenderPasswd(list); // validates every line and refuses duplicates before anything is written
        return list;
    }

    /// <summary>Starts mosquitto and waits until it logged "running" and accepts a TCP connection.</summary>
    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var mosquitto = ResolveMosquitto();
        await WaitForPreviousBrokerAsync(cancellationToken).ConfigureAwait(false);
        EnsurePortFree();
        _files.RotateLog(MaxLogBytes);
        var log = new BrokerLog(_files.LogPath);
        lock (_output)
        {
            _output.Clear();
        }

        Process process;
        try
        {
            process = await _spawner.RunAsync(() => StartProcess(mosquitto)).ConfigureAwait(false);
        }
        catch (Win32Exception ex)
        {
            throw new BrokerStartException($"cannot start {mosquitto}: {ex.Message}", ex);
        }

        lock (_lock)
        {
            _process = process;
            _ready = false;
            _startedAt = _time.GetTimestamp();
        }

        try
        {
            _files.WritePid(process.Id); // setpriv and setsid exec into mosquitto: the pid is the broker's
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var started = _time.GetTimestamp();
            var running = false;
            while (true)
            {
                if (process.HasExited)
                {
                    await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false); // drains its output
                    log.Saw(_ => false);
                    throw new BrokerStartException(
                        $"mosquitto exited with {ExitDescription(process.ExitCode)} before listening on {_options.BindAddress}:{Port}{Detail(log.Recent)}");
                }

                if (OutputContains("Unable to open log file"))
                {
                    // mosquitto carries on without its log, but readiness and reloads are confirmed from the log.
                    throw new BrokerStartException($"mosquitto cannot write its log file {_files.LogPath}{Detail(log.Recent)}");
                }

                // "running" is logged after the signal handlers are installed, a moment after the port opens.
                running = log.Saw(IsRunningLine) || running;
                if (running && await AcceptsConnectionsAsync(cancellationToken).ConfigureAwait(false))
                {
                    lock (_lock)
                    {
                        _ready = true;
                    }

                    LogListening(_logger, process.Id, _options.BindAddress, Port);
                    return;
                }

                if (_time.GetElapsedTime(started) > TimeSpan.FromSeconds(_options.StartTimeoutSeconds))
                {
                    throw new BrokerStartException(
                        $"mosquitto (pid {process.Id}) did not start listening on {_options.BindAddress}:{Port} within {_options.StartTimeoutSeconds:0.#} s{Detail(log.Recent)}");
                }

                await Task.Delay(Poll, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            Kill(process);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            Release(process);
            throw;
        }
    }

    private Process StartProcess(string mosquitto)
    {
        var info = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (File.Exists(SetprivPath))
        {
            // The kernel signals mosquitto when the spawning thread ends, which it does at the latest with our process
            // (even on kill -9). TERM, not KILL: mosquitto then saves its queued messages — those it already
            // acknowledged to devices and not yet delivered to ingestion — before it exits, and frees the port.
            info.FileName = SetprivPath;
            info.ArgumentList.Add("--pdeathsig");
            info.ArgumentList.Add("TERM");
            info.ArgumentList.Add("--");
            if (File.Exists(SetsidPath))
            {
                // Its own session: a Ctrl-C for the control plane's terminal must not stop the broker under it.
                info.ArgumentList.Add(SetsidPath);
            }

            info.ArgumentList.Add(mosquitto);
        }
        else
        {
            LogNoSetpriv(_logger, SetprivPath);
            info.FileName = mosquitto;
        }

        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(_files.ConfigPath);
        var process = new Process { StartInfo = info };
        try
        {
            process.ErrorDataReceived += (_, e) => KeepOutput(e.Data);
            process.OutputDataReceived += (_, e) => KeepOutput(e.Data);
            process.Start();
            return process;
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Restarts mosquitto whenever it exits without being asked to. One Polly execution covers a run of failures:
    /// each quick exit (or failed start) is retried after a jittered, exponentially growing delay; a broker that stayed
    /// up <see cref="StableUptime"/> ends the run, and the next exit starts again from the first delay.
    /// </summary>
    private async Task SuperviseAsync()
    {
        var ct = _stopping.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _restart.ExecuteAsync(SuperviseOnceAsync, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Starts mosquitto if it is not running, then waits for it to exit; throws if that was soon (a retry follows).</summary>
    private async ValueTask SuperviseOnceAsync(CancellationToken ct)
    {
        Process? process;
        lock (_lock)
        {
            process = _process;
        }

        if (process is null)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                Interlocked.Increment(ref _restarts);
                await LaunchAsync(ct).ConfigureAwait(false);
                LogRestarted(_logger, Restarts);
            }
            finally
            {
                _gate.Release();
            }

            lock (_lock)
            {
                process = _process;
            }

            if (process is null)
            {
                return;
            }
        }

        long startedAt;
        lock (_lock)
        {
            startedAt = _startedAt;
        }

        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        var uptime = _time.GetElapsedTime(startedAt);
        var exited = new BrokerExitedException(process.Id, ExitDescription(process.ExitCode), uptime, Detail(LogTail(LogLinesInErrors)));
        Release(process);
        if (uptime < StableUptime)
        {
            throw exited; // the retry logs it with its delay
        }

        LogExited(_logger, exited.Pid, exited.Exit, uptime.TotalSeconds, 0, exited.Detail);
    }

    /// <summary>
    /// A mosquitto of this data directory may still be running: the one a control plane that died left behind is
    /// saving its messages after the SIGTERM it got. Wait for it (then it is asked, then forced, to go), so the port is
    /// free and the saved database is complete when the new broker loads it.
    /// </summary>
    private async Task WaitForPreviousBrokerAsync(CancellationToken cancellationToken)
    {
        if (!int.TryParse(ReadPidFile(), CultureInfo.InvariantCulture, out var pid) || !IsOurBroker(pid))
        {
            return;
        }

        LogPreviousBroker(_logger, pid, _options.StopTimeoutSeconds);
        var timeout = TimeSpan.FromSeconds(_options.StopTimeoutSeconds);
        foreach (var signal in new[] { 0, NativeMethods.SigTerm, NativeMethods.SigKill })
        {
            if (signal != 0)
            {
                _ = NativeMethods.Kill(pid, signal); // gone already is fine: the loop below sees it
            }

            var started = _time.GetTimestamp();
            while (IsOurBroker(pid) && _time.GetElapsedTime(started) < timeout)
            {
                await Task.Delay(Poll, _time, cancellationToken).ConfigureAwait(false);
            }

            if (!IsOurBroker(pid))
            {
                return;
            }
        }
    }

    private string? ReadPidFile()
    {
        try
        {
            return File.Exists(_files.PidPath) ? File.ReadAllText(_files.PidPath).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>A live (not zombie) mosquitto started with this directory's configuration.</summary>
    private bool IsOurBroker(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat.Contains(") Z ", StringComparison.Ordinal))
            {
                return false;
            }

            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return cmdline.Any(a => a.EndsWith("mosquitto", StringComparison.Ordinal)) && cmdline.Contains(_files.ConfigPath);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private async Task TerminateAsync(Process process)
    {
        if (process.HasExited)
        {
            return;
        }

        var timeout = TimeSpan.FromSeconds(_options.StopTimeoutSeconds);
        if (Signal(process, NativeMethods.SigTerm))
        {
            using var wait = new CancellationTokenSource(timeout, _time);
            try
            {
                await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
                LogStopped(_logger, process.Id);
                return;
            }
            catch (OperationCanceledException)
            {
                LogKilledAfterTimeout(_logger, process.Id, timeout.TotalSeconds);
            }
        }

        Kill(process);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Sends a signal with libc's <c>kill</c> (.NET itself can only send SIGKILL); false if the process is gone.</summary>
    private bool Signal(Process process, int signal)
    {
        int pid;
        try
        {
            if (process.HasExited)
            {
                return false;
            }

            pid = process.Id;
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        if (NativeMethods.Kill(pid, signal) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            LogSignalFailed(_logger, signal, pid, new Win32Exception(errno).Message);
            return false;
        }

        return true;
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    /// <summary>Forgets and disposes a process that has exited.</summary>
#pragma warning disable IDISP007 // every caller hands its process over here
    private void Release(Process process)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_process, process))
            {
                _process = null;
                _ready = false;
            }
        }

        process.Dispose();
    }
#pragma warning restore IDISP007

    /// <summary>
    /// mosquitto cannot tell "port taken" from a failed start until it has tried, and a readiness probe could
    /// reach whoever holds the port; so check first, binding the way mosquitto does (SO_REUSEADDR, so connections
    /// of an earlier broker lingering in TIME_WAIT do not count).
    /// </summary>
    private void EnsurePortFree()
    {
        using var socket = new Socket(_bindAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (OperatingSystem.IsLinux())
        {
            // Not Socket.ReuseAddress: on Unix .NET maps that to SO_REUSEADDR plus SO_REUSEPORT, which would share the port.
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        }

        try
        {
            socket.Bind(new IPEndPoint(_bindAddress, Port));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new BrokerStartException(
                $"cannot start the MQTT broker: port {Port} on {_options.BindAddress} is already in use by another process (set ControlPlane:Broker:Port to a free port, or stop the other broker)", ex);
        }
        catch (SocketException ex)
        {
            throw new BrokerStartException($"cannot start the MQTT broker on {_options.BindAddress}:{Port}: {ex.Message}", ex);
        }
    }

    private async Task<bool> AcceptsConnectionsAsync(CancellationToken cancellationToken)
    {
        using var probe = new Socket(_localAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await probe.ConnectAsync(new IPEndPoint(_localAddress, Port), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Debian installs mosquitto in /usr/sbin, which is not in every user's PATH.</summary>
    private string ResolveMosquitto()
    {
        var configured = _options.MosquittoPath;
        if (configured.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(configured) ? Path.GetFullPath(configured)
                : throw new BrokerStartException($"mosquitto was not found at {configured} (ControlPlane:Broker:MosquittoPath); install the Debian package 'mosquitto' (2.0)");
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/usr/local/sbin", "/sbin"]))
        {
            var candidate = Path.Combine(dir, configured);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new BrokerStartException(
            $"'{configured}' was not found in PATH, /usr/sbin or /usr/local/sbin; install the Debian package 'mosquitto' (2.0) or set ControlPlane:Broker:MosquittoPath");
    }

    private bool OutputContains(string text)
    {
        lock (_output)
        {
            return _output.Any(line => line.Contains(text, StringComparison.Ordinal));
        }
    }

    private static bool IsRunningLine(string line) =>
        line.Contains("mosquitto version ", StringComparison.Ordinal) && line.EndsWith(" running", StringComparison.Ordinal);

    private void KeepOutput(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return;
        }

        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > OutputLinesKept)
            {
                _output.Dequeue();
            }
        }
    }

    /// <summary>What mosquitto printed (configuration errors come before its log opens) and its last log lines.</summary>
    private string Detail(IReadOnlyList<string> logLines)
    {
        string[] output;
        lock (_output)
        {
            output = [.. _output];
        }

        var detail = "";
        if (output.Length > 0)
        {
            detail += $"; its output: {string.Join(" | ", output)}";
        }

        var lines = logLines.TakeLast(LogLinesInErrors).ToArray();
        detail += lines.Length > 0 ? $"; its log ({_files.LogPath}): {string.Join(" | ", lines)}" : $"; nothing in its log ({_files.LogPath})";
        return detail;
    }

    private static string ExitDescription(int exitCode) => exitCode is > 128 and < 160
        ? string.Create(CultureInfo.InvariantCulture, $"code {exitCode} (killed by signal {exitCode - 128})")
        : string.Create(CultureInfo.InvariantCulture, $"code {exitCode}");

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT broker: mosquitto (pid {Pid}) is listening on {Address}:{Port}")]
    private static partial void LogListening(ILogger logger, int pid, string address, int port);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT broker: mosquitto (pid {Pid}) exited unexpectedly with {Exit} after {Uptime:0.#} s; restarting in {Delay:0.#} s{Detail}")]
    private static partial void LogExited(ILogger logger, int pid, string exit, double uptime, double delay, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: restarted mosquitto (restart {Restarts})")]
    private static partial void LogRestarted(ILogger logger, long restarts);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT broker: restart failed: {Reason}; next attempt in {Delay:0.#} s")]
    private static partial void LogRestartFailed(ILogger logger, string reason, double delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT broker: supervision step failed; retrying in {Delay:0.#} s")]
    private static partial void LogSupervisorFailed(ILogger logger, double delay, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: mosquitto (pid {Pid}) of an earlier control plane is still running (saving its messages); waiting up to {Seconds} s for it")]
    private static partial void LogPreviousBroker(ILogger logger, int pid, double seconds);

    /// <summary>mosquitto exited on its own; carried to the retry, which logs it with the delay before the restart.</summary>
    private sealed class BrokerExitedException(int pid, string exit, TimeSpan uptime, string detail) : Exception($"mosquitto (pid {pid}) exited with {exit}")
    {
        public int Pid { get; } = pid;

        public string Exit { get; } = exit;

        public TimeSpan Uptime { get; } = uptime;

        public string Detail { get; } = detail;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT broker: mosquitto (pid {Pid}) reloaded the logins ({Devices} devices)")]
    private static partial void LogReloaded(ILogger logger, int pid, int devices);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT broker: logins written ({Devices} devices); mosquitto is not running and reads them when it starts")]
    private static partial void LogCredentialsForNextStart(ILogger logger, int devices);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: mosquitto (pid {Pid}) did not log a reload within {Seconds} s of SIGHUP; new logins may not be in force. Its log: {Log}")]
    private static partial void LogReloadNotConfirmed(ILogger logger, int pid, int seconds, string log);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: signal {Signal} to pid {Pid} failed: {Error}")]
    private static partial void LogSignalFailed(ILogger logger, int signal, int pid, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT broker: mosquitto (pid {Pid}) stopped")]
    private static partial void LogStopped(ILogger logger, int pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: mosquitto (pid {Pid}) did not stop within {Seconds:0.#} s of SIGTERM; killing it")]
    private static partial void LogKilledAfterTimeout(ILogger logger, int pid, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker: {Setpriv} not found; mosquitto may outlive the control plane if it is killed")]
    private static partial void LogNoSetpriv(ILogger logger, string setpriv);
}
