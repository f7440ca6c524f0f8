using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// Thousands of protocol-true simulated devices in one process (DESIGN.md §7, <c>edgefleet sim</c>): enrolled through
/// the real API (or taken from a state file), each with its own MQTT connection, status, telemetry, drift reports and
/// events, and the agent's OTA state machine on its retained <c>desired</c>, with per-version behaviours
/// (<see cref="BehaviorKind"/>). Usable in-process by tests and benchmarks: <see cref="StartAsync"/>, then await
/// conditions (<see cref="WaitUntilAsync"/>, <see cref="WaitAllConnectedAsync"/>, <see cref="WaitForOtaAsync"/>), which
/// are re-checked on every change rather than polled, read <see cref="Snapshot"/> or <see cref="Summary"/>, and
/// <see cref="DisposeAsync"/> (devices say offline and disconnect cleanly).
/// </summary>
public sealed partial class FleetSimulator : IAsyncDisposable
{
    /// <summary>What the simulated devices report as their agent version.</summary>
    public static readonly string AgentVersion = "sim-" + (typeof(FleetSimulator).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    private static readonly TimeSpan SaveInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StopDrain = TimeSpan.FromSeconds(1.5);

    private readonly CancellationTokenSource _stopping = new();
    private readonly List<SimulatedDevice> _devices = [];
    private readonly Dictionary<string, SimulatedDevice> _byId = new(StringComparer.Ordinal);
    private readonly Lock _countsLock = new();
    private readonly Dictionary<(string Version, SimOtaState State), int> _ota = [];
    private readonly Lock _stateLock = new();
    private readonly ILogger _logger;
    private readonly long _created;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private SimState _state = new();
    private ArtifactClient? _artifacts;
    private TickScheduler? _scheduler;
    private SemaphoreSlim? _downloadGate;
    private ECDsa? _registryKey;
    private Task? _saver;
    private Task? _connector;
    private int _started;
    private int _waiters;
    private int _stopped;
    private int _dirty;
    private int _connected;
    private int _gone;
    private int _enrolled;
    private int _reused;
    private long _enrollStart;
    private long _enrollEnd;
    private long _connectStart;
    private long _allConnectedAt;
    private long _stopSeconds;
    private long _connectionLosses;
    private long _telemetry;
    private long _drift;
    private long _events;
    private long _status;
    private long _publishFailures;
    private long _refused;
    private long _evicted;
    private long _downloads;
    private long _downloadedBytes;
    private long _rangeRequests;
    private long _rejectedMessages;
    private long _unexpected;
    private long _peakWorkingSet;

    public FleetSimulator(SimulatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        Options = options;
        _logger = options.Logger ?? NullLogger.Instance;
        _created = options.Time.GetTimestamp();
    }

    public SimulatorOptions Options { get; }

    /// <summary>Devices simulated (those of <c>--offline</c> included).</summary>
    public int DeviceCount => _devices.Count;

    /// <summary>Devices connected now.</summary>
    public int Connected => Volatile.Read(ref _connected);

    /// <summary>Devices that should be connected: all but the <c>--offline</c> ones and those gone on an <c>offline</c> version.</summary>
    public int ExpectedConnected => Options.Devices - Options.OfflineDevices - Volatile.Read(ref _gone);

    /// <summary>Completes (cancelled) when the simulator stops.</summary>
    internal CancellationToken Stopping => _stopping.Token;

    internal TickScheduler Scheduler => _scheduler ?? throw new InvalidOperationException("not started");

    internal ArtifactClient Artifacts => _artifacts ?? throw new InvalidOperationException("not started");

    internal SemaphoreSlim DownloadGate => _downloadGate ?? throw new InvalidOperationException("not started");

    internal ECDsa? RegistryKey => _registryKey;

    internal string? RegistryKeyId { get; private set; }

    /// <summary>
    /// Takes the devices from the state file and enrolls the missing ones (a bounded number at once), then starts
    /// connecting them in the background and returns. Throws <see cref="SimulatorException"/> when enrollment is refused,
    /// the control plane cannot be reached, or the state file belongs to another control plane.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("the simulator was already started");
        }

        var time = Options.Time;
        _state = (Options.StateFile is { } path ? SimStateFile.Load(path) : null) ?? new SimState { Server = Options.Server.AbsoluteUri };
        if (!SameServer(_state.Server, Options.Server))
        {
            throw new SimulatorException($"the state file {Options.StateFile} holds devices of {_state.Server}, not {Options.Server}; use another state file for this control plane");
        }

        var known = _state.Devices.ToDictionary(d => d.Id, StringComparer.Ordinal);
        var ids = Enumerable.Range(0, Options.Devices).Select(Options.DeviceId).ToList();
        var missing = ids.Where(id => !known.ContainsKey(id)).ToList();
        _reused = ids.Count - missing.Count;
        if (missing.Count > 0 && string.IsNullOrEmpty(Options.EnrollToken))
        {
            throw new SimulatorException($"{missing.Count} of the {ids.Count} devices are not in the state file and no enrollment token was given (--enroll-token)");
        }

        if (Options.StateFile is not null)
        {
            _saver = Task.Run(SaveLoopAsync, CancellationToken.None);
        }

        _enrollStart = time.GetTimestamp();
        if (missing.Count > 0)
        {
            await EnrollAsync(missing, known, cancellationToken).ConfigureAwait(false);
        }

        _enrollEnd = time.GetTimestamp();
        if (_state.RegistryPublicKey is not { } pem)
        {
            throw new SimulatorException("the state file has no registry key; delete it to enroll a new fleet");
        }

#pragma warning disable IDISP003 // StartAsync runs once (guarded above); DisposeAsync releases these
        try
        {
            _registryKey = ManifestSigning.ImportPublicKey(pem);
            RegistryKeyId = ManifestSigning.KeyId(_registryKey);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            throw new SimulatorException($"the registry key the control plane gave cannot be read: {ex.Message}", ex);
        }

        _artifacts = new ArtifactClient(Options);
        _downloadGate = new SemaphoreSlim(Options.DownloadConcurrency, Options.DownloadConcurrency);
#pragma warning restore IDISP003
        for (var i = 0; i < ids.Count; i++)
        {
            var device = new SimulatedDevice(this, known[ids[i]], neverConnects: i >= Options.Devices - Options.OfflineDevices);
            _devices.Add(device);
            _byId[device.Id] = device;
        }

        SaveNow(); // the sequence reservations are on disk before the first message goes out
        _scheduler = new TickScheduler(time, TimeSpan.FromMilliseconds(100), Unexpected);
        _connector = Task.Run(ConnectAllAsync, CancellationToken.None);
        Changed();
    }

    /// <summary>Every device now, in id order.</summary>
    public IReadOnlyList<SimulatedDeviceSnapshot> Snapshot() => _devices.Select(d => d.Snapshot()).ToList();

    /// <summary>One device now; null when it is not simulated here.</summary>
    public SimulatedDeviceSnapshot? Device(string id) => _byId.TryGetValue(id, out var device) ? device.Snapshot() : null;

    /// <summary>Devices whose newest update event is <paramref name="state"/> for <paramref name="version"/>.</summary>
    public int CountOta(string version, SimOtaState state)
    {
        lock (_countsLock)
        {
            return _ota.GetValueOrDefault((version, state));
        }
    }

    /// <summary>
    /// Completes once <paramref name="condition"/> holds. It is checked now and again after every change (a device
    /// connecting or disconnecting, an update event, an enrollment), never on a timer.
    /// </summary>
    public async Task WaitUntilAsync(Func<FleetSimulator, bool> condition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        Interlocked.Increment(ref _waiters);
        try
        {
            while (true)
            {
                var changed = Volatile.Read(ref _changed).Task;
                if (condition(this))
                {
                    return;
                }

                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }
    }

    /// <summary>Completes once every device that should be online is connected.</summary>
    public Task WaitAllConnectedAsync(CancellationToken cancellationToken = default) =>
        WaitUntilAsync(s => s._connector is not null && s.Connected >= s.ExpectedConnected, cancellationToken);

    /// <summary>Completes once at least <paramref name="count"/> devices' newest update event is <paramref name="state"/> for <paramref name="version"/>.</summary>
    public Task WaitForOtaAsync(string version, SimOtaState state, int count, CancellationToken cancellationToken = default) =>
        WaitUntilAsync(s => s.CountOta(version, state) >= count, cancellationToken);

    /// <summary>What the run did so far.</summary>
    public SimulatorSummary Summary()
    {
        var time = Options.Time;
        using var process = Process.GetCurrentProcess();
        var workingSet = process.WorkingSet64;
        var peak = Math.Max(Interlocked.Read(ref _peakWorkingSet), workingSet);
        Interlocked.Exchange(ref _peakWorkingSet, peak);
        double? Seconds(long from, long to) => from == 0 || to == 0 ? null : Math.Round(time.GetElapsedTime(from, to).TotalSeconds, 3);
        var enrollSeconds = Seconds(_enrollStart, _enrollEnd);
        var connectSeconds = Seconds(Interlocked.Read(ref _connectStart), Interlocked.Read(ref _allConnectedAt));
        var connectable = Options.Devices - Options.OfflineDevices;
        Dictionary<string, int> ota;
        Dictionary<string, IReadOnlyDictionary<string, int>> byVersion;
        lock (_countsLock)
        {
            ota = _ota.Where(kv => kv.Value > 0).GroupBy(kv => Name(kv.Key.State)).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value), StringComparer.Ordinal);
            byVersion = _ota.Where(kv => kv.Value > 0).GroupBy(kv => kv.Key.Version, StringComparer.Ordinal).ToDictionary(g => g.Key,
                g => (IReadOnlyDictionary<string, int>)g.ToDictionary(kv => Name(kv.Key.State), kv => kv.Value, StringComparer.Ordinal), StringComparer.Ordinal);
        }

        var snapshots = Snapshot();
        return new SimulatorSummary
        {
            Devices = Options.Devices,
            Enrolled = Volatile.Read(ref _enrolled),
            Reused = _reused,
            NeverConnect = Options.OfflineDevices,
            Connected = Connected,
            Gone = Volatile.Read(ref _gone),
            EnrollSeconds = _enrolled > 0 ? enrollSeconds : null,
            EnrollsPerSecond = _enrolled > 0 && enrollSeconds > 0 ? Math.Round(_enrolled / enrollSeconds.Value, 1) : null,
            ConnectSeconds = connectSeconds,
            ConnectsPerSecond = connectSeconds > 0 ? Math.Round(connectable / connectSeconds.Value, 1) : null,
            Connects = snapshots.Sum(s => s.Connects),
            ConnectionLosses = Interlocked.Read(ref _connectionLosses),
            Telemetry = Interlocked.Read(ref _telemetry),
            DriftReports = Interlocked.Read(ref _drift),
            Events = Interlocked.Read(ref _events),
            StatusMessages = Interlocked.Read(ref _status),
            PublishFailures = Interlocked.Read(ref _publishFailures),
            Refused = Interlocked.Read(ref _refused),
            Evicted = Interlocked.Read(ref _evicted),
            Ota = ota,
            OtaByVersion = byVersion,
            Running = snapshots.GroupBy(s => $"{s.Running.Name} {s.Running.Version}", StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
            Downloads = Interlocked.Read(ref _downloads),
            DownloadedBytes = Interlocked.Read(ref _downloadedBytes),
            RangeRequests = Interlocked.Read(ref _rangeRequests),
            DownloadRetries = _artifacts?.Retries ?? 0,
            RejectedMessages = Interlocked.Read(ref _rejectedMessages),
            UptimeSeconds = Math.Round(time.GetElapsedTime(_created).TotalSeconds, 3),
            StopSeconds = Interlocked.Read(ref _stopSeconds) is var stop and > 0 ? stop / 1000.0 : null,
            CpuSeconds = Math.Round(process.TotalProcessorTime.TotalSeconds, 2),
            WorkingSetBytes = workingSet,
            PeakWorkingSetBytes = peak,
            ManagedHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
            Threads = process.Threads.Count,
            LargestSchedulerBatch = _scheduler?.LargestBatch ?? 0,
        };
    }

    /// <summary>
    /// Stops: no more telemetry, updates in progress abandoned (a model on probation counts as not committed, as after an
    /// agent restart), each device sends what it can for a moment, publishes its offline status and disconnects
    /// normally; the state file gets the exact sequence numbers. Idempotent.
    /// </summary>
    public async Task StopAsync()
    {
        if (Volatile.Read(ref _started) == 0 || Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        var started = Options.Time.GetTimestamp();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_connector is not null)
        {
            await _connector.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_scheduler is not null)
        {
            await _scheduler.DisposeAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_devices.Select(d => d.StopAsync(StopDrain))).ConfigureAwait(false);
        if (_saver is not null)
        {
            await _saver.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_devices.Count > 0)
        {
            SaveNow();
        }

        Interlocked.Exchange(ref _stopSeconds, Math.Max(1, (long)Options.Time.GetElapsedTime(started).TotalMilliseconds));
        Changed();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _artifacts?.Dispose();
        _downloadGate?.Dispose();
        _registryKey?.Dispose();
        _stopping.Dispose();
    }

    internal void OnConnectedChanged(int delta)
    {
        var now = Interlocked.Add(ref _connected, delta);
        if (delta > 0 && now >= ExpectedConnected && Interlocked.Read(ref _allConnectedAt) == 0)
        {
            Interlocked.CompareExchange(ref _allConnectedAt, Options.Time.GetTimestamp(), 0);
        }

        Changed();
    }

    internal void OnOtaChanged(SimOtaState old, string? oldVersion, SimOtaState state, string version)
    {
        lock (_countsLock)
        {
            if (old != SimOtaState.None && oldVersion is not null)
            {
                _ota[(oldVersion, old)] = _ota.GetValueOrDefault((oldVersion, old)) - 1;
            }

            _ota[(version, state)] = _ota.GetValueOrDefault((version, state)) + 1;
        }

        Changed();
    }

    internal void CountGone()
    {
        Interlocked.Increment(ref _gone);
        Changed();
    }

    internal void CountConnectionLoss() => Interlocked.Increment(ref _connectionLosses);

    internal void CountEvicted() => Interlocked.Increment(ref _evicted);

    internal void CountPublishFailure() => Interlocked.Increment(ref _publishFailures);

    internal void CountRejectedMessage()
    {
        Interlocked.Increment(ref _rejectedMessages);
        Changed();
    }

    internal void CountPublished(string kind, bool accepted)
    {
        Changed();
        if (!accepted)
        {
            Interlocked.Increment(ref _refused);
            return;
        }

        switch (kind)
        {
            case Topics.Telemetry:
                Interlocked.Increment(ref _telemetry);
                break;
            case Topics.Drift:
                Interlocked.Increment(ref _drift);
                break;
            case Topics.Events:
                Interlocked.Increment(ref _events);
                break;
            default:
                Interlocked.Increment(ref _status);
                break;
        }
    }

    internal void CountDownload(ArtifactResult result)
    {
        Interlocked.Increment(ref _downloads);
        Interlocked.Add(ref _downloadedBytes, result.Bytes);
        Interlocked.Add(ref _rangeRequests, result.RangeRequests);
        Changed();
    }

    internal void MarkDirty() => Volatile.Write(ref _dirty, 1);

    internal void Unexpected(string deviceId, string what, Exception exception)
    {
        if (Interlocked.Increment(ref _unexpected) <= 20)
        {
            LogUnexpected(_logger, exception, deviceId, what);
        }
    }

    private void Unexpected(Exception exception) => Unexpected("(scheduler)", "periodic work", exception);

    /// <summary>Wakes the waiters (only when there are some: a large fleet changes thousands of times a second).</summary>
    private void Changed()
    {
        if (Volatile.Read(ref _waiters) > 0)
        {
            Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    private async Task EnrollAsync(List<string> missing, Dictionary<string, SimDeviceState> known, CancellationToken cancellationToken)
    {
        using var enroller = new Enroller(Options);
        try
        {
            await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = Options.EnrollConcurrency, CancellationToken = cancellationToken },
                async (id, ct) =>
                {
                    var (device, key) = await enroller.EnrollAsync(id, ct).ConfigureAwait(false);
                    lock (_stateLock)
                    {
                        if (_state.RegistryPublicKey is null)
                        {
                            _state.RegistryPublicKey = key;
                        }
                        else if (_state.RegistryPublicKey != key)
                        {
                            LogOtherKey(_logger, id);
                        }

                        _state.Devices.Add(device);
                        known[id] = device;
                    }

                    Interlocked.Increment(ref _enrolled);
                    MarkDirty();
                    Changed();
                }).ConfigureAwait(false);
        }
        finally
        {
            // Whatever was enrolled is kept, even when the rest failed: those ids are taken on the control plane now.
            if (Options.StateFile is not null && _enrolled > 0)
            {
                SaveNow();
            }
        }
    }

    private async Task ConnectAllAsync()
    {
        var time = Options.Time;
        var connectable = _devices.Where(d => !d.NeverConnects).ToList();
        using var gate = new SemaphoreSlim(Options.ConnectConcurrency, Options.ConnectConcurrency);
        var interval = Scheduler.Ticks(Options.TelemetryInterval);
        var waits = new List<Task>(connectable.Count);
        Interlocked.Exchange(ref _connectStart, time.GetTimestamp());
        if (connectable.Count == 0)
        {
            Interlocked.Exchange(ref _allConnectedAt, time.GetTimestamp());
        }

        try
        {
            foreach (var device in connectable)
            {
                await gate.WaitAsync(Stopping).ConfigureAwait(false);

                // Spread over the interval by a fixed per-device phase, so the fleet does not publish in lockstep.
                var phase = (long)((uint)DeviceProfile.SeedOf(Options.Seed, device.Id) / (double)uint.MaxValue * interval);
                device.Connect(time.GetTimestamp() + phase);
                waits.Add(ReleaseWhenConnectedAsync(device, gate));
            }

            await Task.WhenAll(waits).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (Stopping.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task ReleaseWhenConnectedAsync(SimulatedDevice device, SemaphoreSlim gate)
    {
        try
        {
            using var patience = CancellationTokenSource.CreateLinkedTokenSource(Stopping);
            patience.CancelAfter(TimeSpan.FromSeconds(30));
            await device.WaitConnectedAsync(patience.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // still trying on its own (with backoff); let the next one start
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task SaveLoopAsync()
    {
        using var timer = new PeriodicTimer(SaveInterval, Options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(Stopping).ConfigureAwait(false))
            {
                if (Interlocked.Exchange(ref _dirty, 0) != 0)
                {
                    SaveNow();
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping: StopAsync writes the final state
        }
    }

    private void SaveNow()
    {
        if (Options.StateFile is not { } path)
        {
            return;
        }

        Volatile.Write(ref _dirty, 0);
        lock (_stateLock)
        {
            // Devices simulated in this run as they are now; others of the file (a smaller --devices) as they were.
            var current = _devices.Select(d => d.Persisted()).ToDictionary(d => d.Id, StringComparer.Ordinal);
            var document = new SimState
            {
                Server = _state.Server,
                RegistryPublicKey = _state.RegistryPublicKey,
                Devices = _state.Devices.Select(d => current.GetValueOrDefault(d.Id) ?? d).OrderBy(d => d.Id, StringComparer.Ordinal).ToList(),
            };
            try
            {
                SimStateFile.Save(path, document);
            }
            catch (SimulatorException ex) when (_devices.Count > 0)
            {
                LogSaveFailed(_logger, ex.Message); // running on; the next save tries again
                MarkDirty();
            }
        }
    }

    private static bool SameServer(string saved, Uri server) =>
        Uri.TryCreate(saved, UriKind.Absolute, out var s) && string.Equals(s.AbsoluteUri.TrimEnd('/'), server.AbsoluteUri.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);

    private static string Name(SimOtaState state) => state switch
    {
        SimOtaState.RolledBack => "rolled_back",
        _ => state.ToString().ToLowerInvariant(),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "{DeviceId}: {What} failed unexpectedly")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string deviceId, string what);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{DeviceId} was given another registry key than the devices before it; the first one is pinned")]
    private static partial void LogOtherKey(ILogger logger, string deviceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Saving the state file failed: {Reason}")]
    private static partial void LogSaveFailed(ILogger logger, string reason);
}
