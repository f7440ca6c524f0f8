using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace EdgeFleet.Agent.Capture;

public enum SourceState
{
    Stopped,
    Starting,
    Running,
    Backoff,
    Ended,
}

/// <summary>A lifecycle change of a frame source (becomes an <c>events</c> message: camera.*).</summary>
/// <param name="RestartIn">For a failure or stall: the (jittered) delay before the next start.</param>
public sealed record CaptureEvent(string Type, string Message, TimeSpan? RestartIn = null);

/// <summary>Restart and stall behaviour of a source.</summary>
public sealed record FrameSourceSettings
{
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Median of the first restart delay; it about doubles with each failure in a row (jittered,
    /// <see cref="CaptureRestartPolicy"/>).
    /// </summary>
    public TimeSpan RestartDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Cap of the restart delay.</summary>
    public TimeSpan MaxRestartDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Scheduling niceness of the capture process (0–19): inference keeps priority over decoding and scaling.</summary>
    public int Niceness { get; init; }
}

/// <summary>
/// Runs a capture process (ffmpeg or gst-launch) on a dedicated thread and feeds its frames into a
/// <see cref="LatestFrameSlot"/>. A process that exits or delivers nothing for <c>StallTimeout</c> is killed and
/// restarted with capped, jittered exponential backoff (<see cref="CaptureRestartPolicy"/>: Polly); reconnects and
/// stalls are counted and its stderr goes to the log.
/// Child processes die with the agent: they are started under <c>setpriv --pdeathsig KILL</c> from the capture
/// thread, and killed on stop.
/// </summary>
public sealed partial class FrameSource : IDisposable
{
    private const int StderrLinesKept = 8;
    private const int StderrLinesLoggedPerRun = 20;

    private readonly SourceUri _source;
    private readonly CaptureCommand _command;
    private readonly LatestFrameSlot _slot;
    private readonly FrameSourceSettings _settings;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Queue<string> _stderr = new();
    private readonly Lock _stateLock = new();
    private readonly Timer _watchdog;
    private readonly ResiliencePipeline<CaptureRun> _restart;
    private readonly FrameSequence _sequence;
    private readonly TaskCompletionSource _firstFrame = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _thread;
    private Process? _process;
    private long _lastProgress;
    private volatile bool _waitingForConsumer;
    private volatile bool _stallKill;
    private long _captured;
    private long _restarts;
    private long _stalls;
    private int _stderrLogged;
    private SourceState _state = SourceState.Stopped;
    private string? _lastError;

    /// <param name="time">The clock the restart delays wait on (default: the system's).</param>
    public FrameSource(SourceUri source, CaptureCommand command, LatestFrameSlot slot, FrameSourceSettings settings, ILogger logger,
        TimeProvider? time = null)
        : this(source, command, slot, settings, logger, time ?? TimeProvider.System, null)
    {
    }

    /// <param name="sequence">Numbers the frames; shared by the captures that follow each other in one pipeline.</param>
    public FrameSource(SourceUri source, CaptureCommand command, LatestFrameSlot slot, FrameSourceSettings settings, ILogger logger,
        TimeProvider? time, FrameSequence? sequence)
        : this(source, command, slot, settings, logger, time ?? TimeProvider.System, null, sequence)
    {
    }

    /// <param name="jitter">The restart policy's randomizer (seeded in tests).</param>
    internal FrameSource(SourceUri source, CaptureCommand command, LatestFrameSlot slot, FrameSourceSettings settings, ILogger logger,
        TimeProvider time, Func<double>? jitter, FrameSequence? sequence = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _sequence = sequence ?? new FrameSequence();
        _source = source;
        _command = command;
        _slot = slot;
        _settings = settings;
        _logger = logger;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(settings.StallTimeout.TotalMilliseconds / 4, 50, 1000));
        _watchdog = new Timer(_ => CheckStall(), null, Timeout.InfiniteTimeSpan, period);
        _restart = CaptureRestartPolicy.Create(settings, OnRestart, time, jitter);
    }

    public event Action<CaptureEvent>? Events;

    public SourceUri Source => _source;

    public LatestFrameSlot Slot => _slot;

    public CaptureCommand Command => _command;

    /// <summary>Completes when the first frame has been handed over; cancelled when the source is disposed first.</summary>
    public Task FirstFrame => _firstFrame.Task;

    public long FramesCaptured => Interlocked.Read(ref _captured);

    /// <summary>Times the capture process was restarted after exiting, failing to start or stalling.</summary>
    public long Restarts => Interlocked.Read(ref _restarts);

    /// <summary>Times the process was killed for delivering no frame within the stall timeout.</summary>
    public long Stalls => Interlocked.Read(ref _stalls);

    public SourceState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>The last failure, with the process's last stderr lines, until frames flow again; null while healthy.</summary>
    public string? LastError
    {
        get
        {
            lock (_stateLock)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Process id of the running capture process, if any (for diagnostics and tests).</summary>
    public int? ProcessId
    {
        get
        {
            lock (_stateLock)
            {
                try
                {
                    return _process is { HasExited: false } p ? p.Id : null;
                }
                catch (InvalidOperationException)
                {
                    return null;
                }
            }
        }
    }

    public void Start()
    {
        if (_thread is not null)
        {
            throw new InvalidOperationException("The source is already started");
        }

        _thread = new Thread(CaptureLoop) { IsBackground = true, Name = "capture" };
        _thread.Start();
        _watchdog.Change(TimeSpan.Zero, TimeSpan.FromMilliseconds(Math.Clamp(_settings.StallTimeout.TotalMilliseconds / 4, 50, 1000)));
    }

    /// <summary>
    /// Stops handing over frames at once, without waiting (a swap replaces this capture): the slot refuses further
    /// frames and the capture thread is told to stop; <see cref="Dispose"/> (which may wait) reaps the process later.
    /// Frames already handed over stay in the slot.
    /// </summary>
    public void Retire()
    {
        if (!_stop.IsCancellationRequested)
        {
            _stop.Cancel();
        }

        _slot.Close();
    }

    /// <summary>Kills the capture process so it is started again (the <c>pipeline.restart</c> command).</summary>
    public void RestartCapture() => KillProcess();

    public void Dispose()
    {
        if (!_stop.IsCancellationRequested)
        {
            _stop.Cancel();
        }

        _watchdog.Dispose();
        _firstFrame.TrySetCanceled();
        KillProcess();
        if (_thread is { } thread && thread != Thread.CurrentThread && !thread.Join(TimeSpan.FromSeconds(5)))
        {
            LogThreadDidNotStop(_logger, _source.Display);
            _slot.Complete();
            return; // the thread still uses the token source; leave it to the GC
        }

        _slot.Complete();
        _stop.Dispose();
    }

    private void CaptureLoop()
    {
        var ct = _stop.Token;
        try
        {
            var run = RunOnce(ct);
            while (run.End == CaptureRunEnd.Failed)
            {
                run = Outage(run, ct);
            }

            if (run.End == CaptureRunEnd.Ended)
            {
                SetState(SourceState.Ended, null);
                Raise("camera.ended", $"{_source.Display} reached its end after {FramesCaptured} frames");
                _slot.Complete();
                return;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopped during a restart delay
        }

        SetState(SourceState.Stopped, null);
    }

    /// <summary>
    /// Restarts after <paramref name="ended"/> failed, with the policy's delays, until a restart delivers frames and
    /// that run ends too (returned: the next outage starts at the first delay again), or the source stops.
    /// </summary>
    private CaptureRun Outage(CaptureRun ended, CancellationToken ct)
    {
        var reported = false;
        return _restart.Execute(token =>
        {
            if (!reported)
            {
                reported = true;
                return ended;
            }

            return RunOnce(token);
        }, ct);
    }

    private ValueTask OnRestart(OnRetryArguments<CaptureRun> args)
    {
        var run = args.Outcome.Result!;
        var message = run.Failure ?? "the capture process ended";
        if (run.Stalled)
        {
            Interlocked.Increment(ref _stalls);
        }

        SetState(SourceState.Backoff, message);
        Interlocked.Increment(ref _restarts);
        LogRestart(_logger, _source.Display, message, args.RetryDelay.TotalSeconds);
        Raise(run.Stalled ? "camera.stalled" : "camera.failed", message, args.RetryDelay);
        return ValueTask.CompletedTask;
    }

    /// <summary>Runs the capture process once, feeding its frames into the slot until it exits, stalls or the source stops.</summary>
    private CaptureRun RunOnce(CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return new CaptureRun(CaptureRunEnd.Stopped, 0);
        }

        SetState(SourceState.Starting, LastError); // the previous failure stays visible until frames flow again
        var framesThisRun = 0L;
        int? exitCode = null;
        string? failure = null;
        Process? process = null;
        try
        {
#pragma warning disable IDISP003 // null on entry: one process per run, reaped in finally
            process = StartProcess();
#pragma warning restore IDISP003
            var stream = process.StandardOutput.BaseStream;
            while (!ct.IsCancellationRequested)
            {
                _waitingForConsumer = true;
                var free = _slot.WaitForSpace(ct);
                _waitingForConsumer = false;
                Volatile.Write(ref _lastProgress, Environment.TickCount64);
                if (!free)
                {
                    break;
                }

                var frame = _slot.Pool.Rent();
                if (!ReadFrame(stream, frame.Data))
                {
                    _slot.Pool.Return(frame);
                    break;
                }

                frame.Sequence = _sequence.Next();
                frame.CapturedAt = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref _captured); // before the hand-over: a consumer never sees more frames than were counted
                Volatile.Write(ref _lastProgress, Environment.TickCount64);
                if (++framesThisRun == 1)
                {
                    SetState(SourceState.Running, null);
                    Raise("camera.started", $"{_source.Display} is delivering frames");
                }

                _waitingForConsumer = true;
                var published = _slot.Publish(frame, ct);
                _waitingForConsumer = false;
                Volatile.Write(ref _lastProgress, Environment.TickCount64);
                if (!published)
                {
                    Interlocked.Decrement(ref _captured); // stopped while waiting to hand it over: never delivered
                    break;
                }

                if (framesThisRun == 1)
                {
                    _firstFrame.TrySetResult();
                }
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            failure = $"cannot start {_command.FileName}: {ex.Message}";
        }
        catch (IOException ex)
        {
            failure = $"reading frames failed: {ex.Message}";
        }
        finally
        {
            exitCode = Reap(process);
        }

        if (ct.IsCancellationRequested)
        {
            return new CaptureRun(CaptureRunEnd.Stopped, framesThisRun);
        }

        var stalled = _stallKill;
        _stallKill = false;
        if (!stalled && failure is null && exitCode == 0 && framesThisRun > 0 && _source.Kind == SourceKind.File && !_source.Loop)
        {
            return new CaptureRun(CaptureRunEnd.Ended, framesThisRun);
        }

        if (stalled)
        {
            failure = $"no frame for {_settings.StallTimeout.TotalSeconds:0.#} s (stall); process killed";
        }

        failure ??= $"{Path.GetFileName(_command.FileName)} exited with code {exitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} after {framesThisRun} frames";
        var detail = StderrTail();
        return new CaptureRun(CaptureRunEnd.Failed, framesThisRun, stalled, detail.Length > 0 ? $"{failure}: {detail}" : failure);
    }

    private Process StartProcess()
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        if (File.Exists("/usr/bin/setpriv"))
        {
            // The kernel kills the child if this (capture) thread dies, e.g. when the agent is killed with -9.
            info.FileName = "/usr/bin/setpriv";
            info.ArgumentList.Add("--pdeathsig");
            info.ArgumentList.Add("KILL");
            info.ArgumentList.Add("--");
            if (File.Exists(SetsidPath))
            {
                // Its own session: a Ctrl-C meant for the agent's terminal does not kill the camera first.
                info.ArgumentList.Add(SetsidPath);
            }

            AddNice(info);
            info.ArgumentList.Add(_command.FileName);
        }
        else if (_settings.Niceness > 0 && File.Exists(NicePath))
        {
            info.FileName = NicePath;
            info.ArgumentList.Add("-n");
            info.ArgumentList.Add(_settings.Niceness.ToString(System.Globalization.CultureInfo.InvariantCulture));
            info.ArgumentList.Add(_command.FileName);
        }
        else
        {
            info.FileName = _command.FileName;
        }

        foreach (var arg in _command.Arguments)
        {
            info.ArgumentList.Add(arg);
        }

        lock (_stderr)
        {
            _stderr.Clear();
            _stderrLogged = 0;
        }

        var process = new Process { StartInfo = info };
        process.ErrorDataReceived += (_, e) => OnStderr(e.Data);
        Volatile.Write(ref _lastProgress, Environment.TickCount64);
        process.Start();
        lock (_stateLock)
        {
            _process = process;
        }

        process.BeginErrorReadLine();
        LogStarted(_logger, _source.Display, process.Id, _command.ToString());
        return process;
    }

    private const string NicePath = "/usr/bin/nice";
    private const string SetsidPath = "/usr/bin/setsid";

    private void AddNice(ProcessStartInfo info)
    {
        if (_settings.Niceness > 0 && File.Exists(NicePath))
        {
            info.ArgumentList.Add(NicePath);
            info.ArgumentList.Add("-n");
            info.ArgumentList.Add(_settings.Niceness.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private static bool ReadFrame(Stream stream, byte[] buffer) =>
        stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) == buffer.Length;

    /// <summary>Waits for (or kills) the process, returns its exit code and disposes it: the caller hands it over.</summary>
#pragma warning disable IDISP007 // ownership moves to Reap
    private int? Reap(Process? process)
    {
        if (process is null)
        {
            return null;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.WaitForExit(5000);
            process.WaitForExit(); // drains the stderr reader
            return process.HasExited ? process.ExitCode : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
        finally
        {
            lock (_stateLock)
            {
                _process = null;
            }

            process.Dispose();
        }
    }
#pragma warning restore IDISP007

    private void KillProcess()
    {
        lock (_stateLock)
        {
            try
            {
                if (_process is { HasExited: false } p)
                {
                    p.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
        }
    }

    private void CheckStall()
    {
        var state = State;
        if (state is not (SourceState.Starting or SourceState.Running) || _waitingForConsumer)
        {
            return;
        }

        var idle = Environment.TickCount64 - Volatile.Read(ref _lastProgress);
        if (idle > _settings.StallTimeout.TotalMilliseconds && ProcessId is not null)
        {
            _stallKill = true;
            KillProcess();
        }
    }

    private void OnStderr(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return;
        }

        line = SourceUri.Mask(line);
        bool log;
        lock (_stderr)
        {
            _stderr.Enqueue(line);
            while (_stderr.Count > StderrLinesKept)
            {
                _stderr.Dequeue();
            }

            log = _stderrLogged++ < StderrLinesLoggedPerRun;
        }

        if (log)
        {
            LogStderr(_logger, Path.GetFileName(_command.FileName), line);
        }
    }

    private string StderrTail()
    {
        lock (_stderr)
        {
            return string.Join(" | ", _stderr);
        }
    }

    private void SetState(SourceState state, string? error)
    {
        lock (_stateLock)
        {
            _state = state;
            _lastError = error;
        }
    }

    private void Raise(string type, string message, TimeSpan? restartIn = null)
    {
        try
        {
            Events?.Invoke(new CaptureEvent(type, message, restartIn));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogEventHandlerFailed(_logger, ex, type);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Capture {Source}: started pid {Pid}: {Command}")]
    private static partial void LogStarted(ILogger logger, string source, int pid, string command);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Capture {Source}: {Error}; restarting in {Delay:0.0} s")]
    private static partial void LogRestart(ILogger logger, string source, string error, double delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Program}: {Line}")]
    private static partial void LogStderr(ILogger logger, string program, string line);

    [LoggerMessage(Level = LogLevel.Error, Message = "Capture {Source}: the capture thread did not stop within 5 s")]
    private static partial void LogThreadDidNotStop(ILogger logger, string source);

    [LoggerMessage(Level = LogLevel.Error, Message = "A handler of capture event {Type} failed")]
    private static partial void LogEventHandlerFailed(ILogger logger, Exception exception, string type);
}
