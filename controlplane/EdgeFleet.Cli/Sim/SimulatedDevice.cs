using System.Globalization;
using System.Security.Cryptography;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// One simulated agent, protocol-true where the control plane can tell: its own broker login and client id, retained
/// <c>status</c> with a Last Will, durable <c>telemetry</c> / <c>drift</c> / <c>events</c> under one growing <c>seq</c>
/// (kept in an in-memory outbox while disconnected and sent in order once connected), and the agent's OTA state machine
/// on its retained <c>desired</c> (see the agent's <c>OtaService</c>): received → downloading → verified → activated →
/// committed or rolled back, rejected with the agent's reasons, shadow runs that report agreement, superseding and
/// clearing. Downloads are real (manifest, signature verified with the pinned key, artifact hashed); inference is not:
/// telemetry comes from the device's <see cref="DeviceProfile"/> and the running version's <see cref="VersionBehavior"/>.
/// Periodic work is driven by the fleet's <see cref="TickScheduler"/>; everything else is event-driven.
/// </summary>
internal sealed class SimulatedDevice : IScheduled
{
    /// <summary>Sequence numbers reserved ahead in the state file, so a killed run never makes the next one reuse numbers.</summary>
    private const long SeqReserve = 1000;

    private const int SettledKept = 32;
    private const long MaxManifestBytes = 1 << 20;
    private const double ShadowSampleShare = 0.5;

    private static readonly string[] InputFeatures =
        ["luma_mean", "luma_std", "sharpness", "red_mean", "green_mean", "blue_mean", "saturation_mean", "dark_fraction", "bright_fraction"];

    private readonly FleetSimulator _fleet;
    private readonly SimulatorOptions _options;
    private readonly SimDeviceState _state;
    private readonly DeviceProfile _profile;
    private readonly Random _noise;
    private readonly Credentials _credentials;
    private readonly Lock _lock = new();
    private readonly Queue<Outgoing> _outbox = new();
    private readonly string _statusTopic;
    private readonly DateTimeOffset _startedAt;
    private readonly long _interval;
    private IMqttConnection? _connection;
    private TaskCompletionSource? _drained;
    private bool _connected;
    private bool _pumping;
    private bool _gone;
    private bool _stopped;
    private long _seq;
    private long _seqLimit;
    private ModelRef _running;
    private ModelRef? _previous;
    private Job? _job;
    private long _nextDue;
    private long _lastTick;
    private int _ticks;
    private double _captured;
    private double _inferred;
    private double _nonFinite;
    private long _delivered;
    private long _connects;
    private long _rejectedMessages;
    private long _evicted;
    private int _rangeRequests;
    private int _cuts;
    private SimOtaState _ota;
    private DesiredMessage? _otaDesired;
    private string? _otaReason;

    public SimulatedDevice(FleetSimulator fleet, SimDeviceState state, bool neverConnects)
    {
        _fleet = fleet;
        _options = fleet.Options;
        _state = state;
        NeverConnects = neverConnects;
        _profile = DeviceProfile.Create(_options.Seed, state.Id, state.Tags);
        _noise = new Random(_profile.Seed ^ 0x5EED);
        _credentials = new Credentials(_options.Server, state.HttpToken);
        _statusTopic = Topics.For(state.Id, Topics.Status);
        _startedAt = _options.Time.GetUtcNow();
        _interval = (long)(_options.TelemetryInterval.TotalSeconds * _options.Time.TimestampFrequency);
        _seq = state.Seq;
        _seqLimit = state.Seq + SeqReserve;
        _running = new ModelRef(state.Model ?? _options.ModelName, state.ModelVersion ?? _options.ModelVersion);
        _previous = state.PreviousModel is { } pm && state.PreviousVersion is { } pv ? new ModelRef(pm, pv) : null;
    }

    public string Id => _state.Id;

    public bool NeverConnects { get; }

    public bool IsConnected
    {
        get
        {
            lock (_lock)
            {
                return _connected;
            }
        }
    }

    /// <summary>Starts connecting; the scheduler starts its telemetry at <paramref name="firstDue"/>.</summary>
    public void Connect(long firstDue)
    {
        IMqttConnection connection;
        lock (_lock)
        {
            if (_stopped || _gone || _connection is not null)
            {
                return;
            }

            connection = _connection = CreateConnection();
            _nextDue = firstDue;
            _lastTick = firstDue - _interval;
        }

        Wire(connection);
        connection.Start();
        _fleet.Scheduler.Schedule(this, firstDue);
    }

    /// <summary>Completes when the current connection is up (or at once when there is none).</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken)
    {
        IMqttConnection? connection;
        lock (_lock)
        {
            connection = _connection;
        }

        return connection?.WaitConnectedAsync(cancellationToken) ?? Task.CompletedTask;
    }

    public SimulatedDeviceSnapshot Snapshot()
    {
        lock (_lock)
        {
            return new SimulatedDeviceSnapshot
            {
                Id = Id,
                Connected = _connected,
                NeverConnects = NeverConnects,
                Gone = _gone,
                Running = _running,
                Ota = _ota,
                OtaModel = _otaDesired?.Model,
                OtaVersion = _otaDesired?.Version,
                OtaDesiredId = _otaDesired?.EffectiveId,
                OtaReason = _otaReason,
                Seq = _seq,
                Delivered = _delivered,
                Pending = _outbox.Count,
                Connects = _connects,
                RejectedMessages = _rejectedMessages,
                RangeRequests = _rangeRequests,
                Cuts = _cuts,
                Tags = _state.Tags,
            };
        }
    }

    /// <summary>
    /// What the state file keeps: while running, the sequence reservation; after <see cref="StopAsync"/>, the exact number.
    /// Models on probation count as not installed (the committed one runs after a restart, as on the agent).
    /// </summary>
    public SimDeviceState Persisted()
    {
        lock (_lock)
        {
            var probation = _job is { Probation: true, Done: false };
            var running = probation && _previous is not null ? _previous : _running;
            _state.Seq = _stopped ? _seq : _seqLimit;
            _state.Model = running.Name;
            _state.ModelVersion = running.Version;
            _state.PreviousModel = probation ? null : _previous?.Name;
            _state.PreviousVersion = probation ? null : _previous?.Version;
            return new SimDeviceState
            {
                Id = _state.Id,
                MqttHost = _state.MqttHost,
                MqttPort = _state.MqttPort,
                MqttTls = _state.MqttTls,
                MqttUsername = _state.MqttUsername,
                MqttPassword = _state.MqttPassword,
                HttpToken = _state.HttpToken,
                Tags = [.. _state.Tags],
                EnrolledAt = _state.EnrolledAt,
                Seq = _state.Seq,
                Model = _state.Model,
                ModelVersion = _state.ModelVersion,
                PreviousModel = _state.PreviousModel,
                PreviousVersion = _state.PreviousVersion,
                Settled = [.. _state.Settled],
            };
        }
    }

    /// <summary>Periodic telemetry, and a drift report every few intervals (called by the scheduler).</summary>
    public long? OnDue(long now)
    {
        long next;
        lock (_lock)
        {
            if (_stopped || _gone)
            {
                return null;
            }

            _ticks++;
            var elapsed = Math.Max(0, now - _lastTick) / (double)_options.Time.TimestampFrequency;
            _lastTick = now;
            EnqueueLocked(Topics.Telemetry, seq => MessageParser.Serialize(BuildTelemetryLocked(seq, elapsed)));
            if (_ticks % _options.DriftEvery == 0)
            {
                EnqueueLocked(Topics.Drift, seq => MessageParser.Serialize(BuildDriftLocked(seq)));
            }

            // Due times follow a fixed grid: a late tick does not push every later one back.
            _nextDue += _interval;
            if (_nextDue <= now)
            {
                _nextDue = now + _interval;
            }

            next = _nextDue;
        }

        Kick();
        return next;
    }

    /// <summary>Clean stop: no new work, the update in progress abandoned, pending messages given a moment, offline status, normal disconnect.</summary>
    public async Task StopAsync(TimeSpan drainFor)
    {
        Job? job;
        IMqttConnection? connection;
        bool connected;
        lock (_lock)
        {
            _stopped = true;
            job = _job;
            connection = _connection;
            connected = _connected;
        }

        if (job is not null)
        {
            await job.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (connection is null)
        {
            return;
        }

        if (connected)
        {
            await WaitDrainedAsync(drainFor).ConfigureAwait(false);
            await PublishStatusAsync(connection, online: false).WaitAsync(drainFor, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await connection.DisposeAsync().ConfigureAwait(false); // a normal disconnect: the broker drops the Last Will
    }

    private IMqttConnection CreateConnection() => new MqttConnection(new MqttConnectionOptions
    {
        Host = _state.MqttHost,
        Port = _state.MqttPort,
        ClientId = _state.Id,
        Username = _state.MqttUsername,
        Password = _state.MqttPassword,
        KeepAliveSeconds = _options.KeepAliveSeconds,
        MaxReconnectDelay = _options.MaxReconnectDelay,
        Will = new MqttMessage(_statusTopic, StatusPayload(online: false), Qos: 1, Retain: true),
        Subscriptions = [new MqttSubscription(Topics.For(_state.Id, Topics.Desired)), new MqttSubscription(Topics.For(_state.Id, Topics.Command))],

        // Thousands in one process: small buffers (the messages are a few hundred bytes) and few in flight.
        SocketBufferBytes = 8192,
        ReceiveBuffer = 16,
        MaxInflight = 16,
    }, NullLogger.Instance, _options.Time);

    private void Wire(IMqttConnection connection)
    {
        connection.ConnectionChanged += e => OnConnectionChanged(connection, e);
        _ = ReceiveAsync(connection);
    }

    private void OnConnectionChanged(IMqttConnection connection, MqttConnectionEvent e)
    {
        if (e.State == MqttConnectionState.Connected)
        {
            lock (_lock)
            {
                if (!ReferenceEquals(connection, _connection) || _gone)
                {
                    return;
                }

                _connects++;
                if (!_connected)
                {
                    _connected = true;
                    _fleet.OnConnectedChanged(+1);
                }
            }

            _ = PublishStatusAsync(connection, online: true);
            Kick();
            return;
        }

        lock (_lock)
        {
            if (!ReferenceEquals(connection, _connection) || !_connected)
            {
                return;
            }

            _connected = false;
        }

        _fleet.OnConnectedChanged(-1);
        if (e.State == MqttConnectionState.Disconnected && !_stopped && !_gone)
        {
            _fleet.CountConnectionLoss();
        }
    }

    private async Task ReceiveAsync(IMqttConnection connection)
    {
        try
        {
            await foreach (var message in connection.Messages.ReadAllAsync().ConfigureAwait(false))
            {
                Handle(message);
            }
        }
#pragma warning disable CA1031 // a bug in handling one message must not silence the device
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _fleet.Unexpected(Id, "handling a received message", ex);
        }
    }

    private void Handle(MqttReceivedMessage message)
    {
        if (!Topics.TryParse(message.Topic, out var target, out var kind) || target != Id || kind is not (Topics.Desired or Topics.Command))
        {
            CountRejected();
            return;
        }

        if (kind == Topics.Command)
        {
            // Like the agent: a known command is done (there is no pipeline to restart or drift to re-baseline here).
            if (MessageParser.TryParse<CommandMessage>(message.Payload, out var command, out _))
            {
                Event("cmd.done", "info", $"{command.Command} done", new Dictionary<string, string> { ["id"] = command.Id, ["command"] = command.Command });
            }
            else
            {
                CountRejected();
            }

            return;
        }

        if (message.Payload.Length == 0)
        {
            Submit(null); // a cleared assignment: what is in progress stops, the model stays
            return;
        }

        if (MessageParser.TryParse<DesiredMessage>(message.Payload, out var desired, out var reason))
        {
            Submit(desired);
            return;
        }

        CountRejected();
        Event(UpdateEvents.Rejected, "error", $"the desired message is not valid: {reason}; the device keeps its model",
            new Dictionary<string, string> { ["reason"] = RejectReasons.Download, ["detail"] = "invalid desired message" });
    }

    private void CountRejected()
    {
        lock (_lock)
        {
            _rejectedMessages++;
        }

        _fleet.CountRejectedMessage();
    }

    /// <summary>The agent's inbox rule: the same assignment in progress is ignored, a different one (or none) supersedes it.</summary>
    private void Submit(DesiredMessage? desired)
    {
        lock (_lock)
        {
            if (_stopped || _gone)
            {
                return;
            }

            var previous = _job;
            var running = previous is { Done: false };
            if (desired is not null && running && previous!.Desired.EffectiveId == desired.EffectiveId)
            {
                return; // the retained message again (a reconnect), for the job in progress
            }

            if (running)
            {
                previous!.Cts.Cancel();
            }

            if (desired is null)
            {
                return;
            }

#pragma warning disable IDISP004 // the job owns its token source; RunAfterAsync disposes it when the job is done
            var job = new Job(desired, CancellationTokenSource.CreateLinkedTokenSource(_fleet.Stopping));
#pragma warning restore IDISP004
            _job = job;
            job.Task = RunAfterAsync(running ? previous!.Task : null, job);
        }
    }

    private async Task RunAfterAsync(Task? previous, Job job)
    {
        await Task.Yield(); // never run a job on the receive loop
        try
        {
            if (previous is not null)
            {
                await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            if (!job.Cts.IsCancellationRequested && !IsSettled(job.Desired))
            {
                await RunJobAsync(job).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // reported; the device goes on
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _fleet.Unexpected(Id, $"assignment {job.Desired.EffectiveId}", ex);
        }
        finally
        {
            lock (_lock)
            {
                job.Done = true;
            }

#pragma warning disable IDISP007 // the job's own token source, created for it in Submit
            job.Cts.Dispose();
#pragma warning restore IDISP007
        }
    }

    private bool IsSettled(DesiredMessage desired)
    {
        lock (_lock)
        {
            if (_state.Settled.Contains(desired.EffectiveId))
            {
                return true;
            }

            if (desired.Mode != DesiredModes.Live || _running.Name != desired.Model || _running.Version != desired.Version)
            {
                return false;
            }

            SettleLocked(desired.EffectiveId);
        }

        // Exactly like the agent: a rollback to the version it runs is confirmed, not redone.
        SetOta(SimOtaState.Committed, desired, null);
        Event(UpdateEvents.Committed, "info", desired, $"{desired.Model} {desired.Version} already runs here",
            new Dictionary<string, string> { ["alreadyRunning"] = "true" });
        return true;
    }

    private async Task RunJobAsync(Job job)
    {
        var desired = job.Desired;
        var ct = job.Cts.Token;
        var behavior = _options.BehaviorOf(desired.Version);
        var received = _options.Time.GetTimestamp();
        SetOta(SimOtaState.Received, desired, null);
        Event(UpdateEvents.Received, "info", desired, $"assigned {desired.Model} {desired.Version} ({desired.Mode})");
        try
        {
            if (behavior.Kind == BehaviorKind.Offline)
            {
                await GoOfflineAsync().ConfigureAwait(false);
                return;
            }

            if (_fleet.RegistryKey is null)
            {
                throw new UpdateRejectedException(RejectReasons.Signature, "no registry key is pinned on this device, so no manifest can be verified");
            }

            await _fleet.DownloadGate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await DownloadAsync(desired, behavior, ct).ConfigureAwait(false);
            }
            finally
            {
                _fleet.DownloadGate.Release();
            }

            if (behavior.Kind == BehaviorKind.Fail)
            {
                throw new UpdateRejectedException(RejectReasons.Load,
                    $"{desired.Model} {desired.Version} cannot be loaded: the runtime refused to create a session (simulated: --behave {desired.Version}=fail)");
            }

            ct.ThrowIfCancellationRequested();
            if (desired.Mode == DesiredModes.Shadow)
            {
                await RunShadowAsync(job, behavior, ct).ConfigureAwait(false);
            }
            else
            {
                await ActivateAndProbateAsync(job, behavior, received, ct).ConfigureAwait(false);
            }
        }
        catch (UpdateRejectedException ex)
        {
            Fail(desired, UpdateEvents.Rejected, ex.Reason, ex.Message, new Dictionary<string, string> { ["reason"] = ex.Reason });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (!_fleet.Stopping.IsCancellationRequested)
            {
                // Superseded or cleared: the next assignment takes over; this one is left as it is.
                lock (_lock)
                {
                    SettleLocked(desired.EffectiveId);
                }
            }
        }
#pragma warning disable CA1031 // like the agent: an unexpected failure of one assignment is reported, the model kept
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _fleet.Unexpected(Id, $"assignment {desired.EffectiveId}", ex);
            Fail(desired, UpdateEvents.Rejected, RejectReasons.Load, $"the update failed unexpectedly: {ex.Message}",
                new Dictionary<string, string> { ["reason"] = RejectReasons.Load });
        }
    }

    private async Task DownloadAsync(DesiredMessage desired, VersionBehavior behavior, CancellationToken ct)
    {
        SetOta(SimOtaState.Downloading, desired, null);
        var artifacts = _fleet.Artifacts;
        var manifestBytes = await artifacts.GetSmallAsync(_credentials, desired.ManifestUrl, MaxManifestBytes, optional: false, "manifest", ct).ConfigureAwait(false)
            ?? throw new UpdateRejectedException(RejectReasons.Download, "the manifest is missing");
        var signature = await SignatureAsync(desired, ct).ConfigureAwait(false);
        var key = _fleet.RegistryKey!;
        if (!ManifestSigning.VerifyDetached(manifestBytes, signature, key, out var why))
        {
            var keyNote = desired.KeyId is { } keyId && keyId != _fleet.RegistryKeyId ? $"; it names key {keyId}, this device pins {_fleet.RegistryKeyId}" : "";
            throw new UpdateRejectedException(RejectReasons.Signature, $"the manifest of {desired.Model} {desired.Version} does not verify: {why}{keyNote}");
        }

        ModelManifest manifest;
        try
        {
            manifest = ManifestFile.Parse(manifestBytes, desired.ManifestUrl);
        }
        catch (ManifestException ex)
        {
            throw new UpdateRejectedException(RejectReasons.Incompatible, $"the signed manifest cannot be used by this agent: {ex.Message}", ex);
        }

        if (manifest.Name != desired.Model || manifest.Version != desired.Version)
        {
            throw new UpdateRejectedException(RejectReasons.Signature,
                $"the signed manifest is for {manifest.Name} {manifest.Version}, the assignment names {desired.Model} {desired.Version}");
        }

        if (manifest.Artifact.Size != desired.Size)
        {
            throw new UpdateRejectedException(RejectReasons.Size,
                $"the assignment says {desired.Size} bytes, the signed manifest {manifest.Artifact.Size}; the assignment is not for this manifest");
        }

        if (!string.Equals(manifest.Artifact.Sha256, desired.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new UpdateRejectedException(RejectReasons.Sha256,
                $"the assignment says sha256 {desired.Sha256}, the signed manifest {manifest.Artifact.Sha256}; the assignment is not for this manifest");
        }

        var size = manifest.Artifact.Size;
        var cuts = behavior.Kind == BehaviorKind.Flaky ? PlanCuts(size, (int)behavior.Parameter) : [];
        var lastEvent = long.MinValue;
        Event(UpdateEvents.Downloading, "info", desired, $"0 of {size} bytes", Progress(0, size));
        var result = await artifacts.DownloadArtifactAsync(_credentials, desired.ArtifactUrl, size, cuts, bytes =>
        {
            var now = _options.Time.GetTimestamp();
            if (bytes == size || lastEvent == long.MinValue || _options.Time.GetElapsedTime(lastEvent, now) >= TimeSpan.FromSeconds(1))
            {
                lastEvent = now;
                Event(UpdateEvents.Downloading, "info", desired, $"{bytes} of {size} bytes", Progress(bytes, size));
            }
        }, ReconnectAsync, ct).ConfigureAwait(false);
        lock (_lock)
        {
            _rangeRequests += result.RangeRequests;
            _cuts += result.Cuts;
        }

        _fleet.CountDownload(result);
        if (!string.Equals(result.Sha256, manifest.Artifact.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new UpdateRejectedException(RejectReasons.Sha256,
                $"the artifact's SHA-256 is {result.Sha256}, the signed manifest says {manifest.Artifact.Sha256.ToLowerInvariant()}; the file on the server is not the one that was signed");
        }

        SetOta(SimOtaState.Verified, desired, null);
        Event(UpdateEvents.Verified, "info", desired, $"{desired.Model} {desired.Version}: signature, size and sha256 verified",
            new Dictionary<string, string>
            {
                ["sha256"] = manifest.Artifact.Sha256,
                ["size"] = Number(size),
                ["keyId"] = _fleet.RegistryKeyId!,
                ["rangeRequests"] = Number(result.RangeRequests),
            });
    }

    private async Task<byte[]> SignatureAsync(DesiredMessage desired, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(desired.Signature))
        {
            try
            {
                return Convert.FromBase64String(desired.Signature);
            }
            catch (FormatException ex)
            {
                throw new UpdateRejectedException(RejectReasons.Signature, "the assignment's signature is not base64", ex);
            }
        }

        if (desired.SignatureUrl is { } url
            && await _fleet.Artifacts.GetSmallAsync(_credentials, url, 4096, optional: true, "signature", ct).ConfigureAwait(false) is { Length: > 0 } bytes)
        {
            return bytes;
        }

        throw new UpdateRejectedException(RejectReasons.Signature, $"{desired.Model} {desired.Version} is not signed; unsigned manifests are refused");
    }

    private List<long> PlanCuts(long size, int mostCuts)
    {
        lock (_lock)
        {
            var count = 1 + _noise.Next(Math.Max(1, mostCuts));
            return Enumerable.Range(0, count).Select(_ => 1 + (long)(_noise.NextDouble() * Math.Max(1, size - 2))).Distinct().Order().ToList();
        }
    }

    /// <summary>A flaky device's network drops: the broker sees the connection die (Last Will), then a new one comes up.</summary>
    private async Task ReconnectAsync(CancellationToken ct)
    {
        IMqttConnection? old;
        lock (_lock)
        {
            old = _connection;
        }

        if (old is not null)
        {
            await old.DisconnectAsync(publishWill: true, ct).ConfigureAwait(false);
            await old.DisposeAsync().ConfigureAwait(false);
        }

        var fresh = CreateConnection();
        bool over;
        lock (_lock)
        {
            over = _stopped || _gone;
            if (!over)
            {
                _connection = fresh;
            }
        }

        if (over)
        {
            await fresh.DisposeAsync().ConfigureAwait(false);
            return;
        }

        Wire(fresh);
        fresh.Start();
        await fresh.WaitConnectedAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// An <c>offline</c> version: the device sends what it has, says it is offline and drops off. The offline status is
    /// published explicitly, with the time it goes: the Last Will carries the time the connection was set up, older than
    /// the online status after it, and the control plane keeps the newest status by <c>ts</c>.
    /// </summary>
    private async Task GoOfflineAsync()
    {
        await WaitDrainedAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        IMqttConnection? connection;
        bool connected;
        lock (_lock)
        {
            _gone = true;
            connection = _connection;
            connected = _connected;
        }

        _fleet.CountGone();
        if (connection is not null)
        {
            if (connected)
            {
                await PublishStatusAsync(connection, online: false).WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await connection.DisconnectAsync(publishWill: true).ConfigureAwait(false);
            lock (_lock)
            {
                if (_connected)
                {
                    _connected = false;
                    _fleet.OnConnectedChanged(-1);
                }
            }
        }
    }

    private async Task ActivateAndProbateAsync(Job job, VersionBehavior behavior, long received, CancellationToken ct)
    {
        var desired = job.Desired;
        var seconds = desired.Probation?.Seconds ?? _options.Probation.TotalSeconds;
        var frames = desired.Probation?.Frames ?? (long)Math.Ceiling(_options.Fps * seconds);

        // The probation lasts its seconds and its frames, whichever takes longer.
        var duration = TimeSpan.FromSeconds(Math.Max(seconds, frames / _options.Fps));
        ModelRef previous;
        double previousP95;
        lock (_lock)
        {
            previous = _running;
            previousP95 = InferenceP95(_running.Version);
            _previous = _running;
            _running = new ModelRef(desired.Model, desired.Version);
            job.Probation = true;
        }

        PublishStatus();
        SetOta(SimOtaState.Activated, desired, null);
        var activatedAt = _options.Time.GetTimestamp();
        Event(UpdateEvents.Activated, "info", desired,
            $"{desired.Model} {desired.Version} serves frames on cpu, on probation ({frames} frames, {seconds:0} s)",
            new Dictionary<string, string>
            {
                ["provider"] = "cpu",
                ["previousModel"] = previous.Name,
                ["previousVersion"] = previous.Version,
                ["secondsToActive"] = Number(_options.Time.GetElapsedTime(received, activatedAt).TotalSeconds),
                ["probationFrames"] = Number(frames),
                ["probationSeconds"] = Number(seconds),
            });

        string? criterion = null;
        string message = "";
        Dictionary<string, string> data;
        var p95 = InferenceP95(desired.Version);
        var maxRatio = desired.Probation?.MaxLatencyRatio;
        try
        {
            if (behavior.Kind == BehaviorKind.Nan)
            {
                // The agent fails a clearly broken model early, after its first judged frames.
                await Task.Delay(duration / 2, _options.Time, ct).ConfigureAwait(false);
                var limit = desired.Probation?.MaxNonFiniteShare ?? 0;
                criterion = "nonfinite";
                message = $"{Pct(behavior.Parameter)} of frames had NaN or infinite outputs (previous model 0%, allowed {Pct(limit)})";
                data = new Dictionary<string, string>
                {
                    ["nonFiniteShare"] = Number(behavior.Parameter),
                    ["previousNonFiniteShare"] = "0",
                    ["maxNonFiniteShare"] = Number(limit),
                };
            }
            else if (maxRatio is { } ratioLimit && previousP95 > 0 && p95 / previousP95 > ratioLimit)
            {
                await Task.Delay(duration / 2, _options.Time, ct).ConfigureAwait(false);
                criterion = "latency";
                message = $"p95 inference {p95:0.##} ms is {p95 / previousP95:0.##}× the previous model's {previousP95:0.##} ms (allowed {ratioLimit:0.##}×)";
                data = new Dictionary<string, string>
                {
                    ["p95InferenceMs"] = Number(p95),
                    ["previousP95InferenceMs"] = Number(previousP95),
                    ["latencyRatio"] = Number(p95 / previousP95),
                    ["maxLatencyRatio"] = Number(ratioLimit),
                };
            }
            else
            {
                await Task.Delay(duration, _options.Time, ct).ConfigureAwait(false);
                var elapsed = _options.Time.GetElapsedTime(activatedAt).TotalSeconds;
                var judged = (long)Math.Round(elapsed * _options.Fps);
                data = new Dictionary<string, string>
                {
                    ["frames"] = Number(judged),
                    ["seconds"] = Number(elapsed),
                    ["errorShare"] = "0",
                    ["nonFiniteShare"] = "0",
                    ["p95InferenceMs"] = Number(p95),
                    ["previousP95InferenceMs"] = Number(previousP95),
                    ["meanConfidence"] = Number(ConfidenceOf(desired.Version)),
                    ["previousMeanConfidence"] = Number(ConfidenceOf(previous.Version)),
                    ["drift"] = "no window",
                };
                message = $"{judged} frames in {elapsed:0} s: every criterion held";
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (_fleet.Stopping.IsCancellationRequested)
            {
                lock (_lock)
                {
                    _running = previous; // the simulator stops; the next run starts on the committed model and tries again
                }

                throw;
            }

            criterion = "superseded";
            message = "a newer assignment arrived during probation";
            data = [];
        }

        if (criterion is null)
        {
            lock (_lock)
            {
                SettleLocked(desired.EffectiveId);
                job.Probation = false;
            }

            SetOta(SimOtaState.Committed, desired, null);
            Event(UpdateEvents.Committed, "info", desired, $"{desired.Model} {desired.Version} committed: {message}", data);
            return;
        }

        lock (_lock)
        {
            _running = previous;
            job.Probation = false;
        }

        PublishStatus();
        data["criterion"] = criterion;
        Fail(desired, UpdateEvents.RolledBack, criterion, $"{desired.Model} {desired.Version} rolled back to {previous.Name} {previous.Version}: {message}", data);
    }

    /// <summary>A verified candidate "runs" beside the live model until a newer (or cleared) assignment ends it, reporting agreement.</summary>
    private async Task RunShadowAsync(Job job, VersionBehavior behavior, CancellationToken ct)
    {
        var desired = job.Desired;
        SetOta(SimOtaState.Shadow, desired, null);
        var started = _options.Time.GetTimestamp();
        try
        {
            while (true)
            {
                await Task.Delay(_options.ShadowReportInterval, _options.Time, ct).ConfigureAwait(false);
                ReportShadow(desired, behavior, started, final: false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            ReportShadow(desired, behavior, started, final: true);
            if (_fleet.Stopping.IsCancellationRequested)
            {
                throw;
            }

            lock (_lock)
            {
                SettleLocked(desired.EffectiveId);
            }
        }
    }

    private void ReportShadow(DesiredMessage desired, VersionBehavior behavior, long started, bool final)
    {
        var seconds = _options.Time.GetElapsedTime(started).TotalSeconds;
        var sampled = (long)(seconds * _options.Fps * ShadowSampleShare);
        double agreement;
        ModelRef live;
        lock (_lock)
        {
            live = _running;
            agreement = behavior.Kind switch
            {
                BehaviorKind.Nan => 1 - behavior.Parameter,
                BehaviorKind.Drift => 0.8,
                _ => 0.97,
            } + (0.01 * ((2 * _noise.NextDouble()) - 1));
        }

        agreement = Math.Clamp(agreement, 0, 1);
        var p50 = BaseP50(desired.Version);
        var data = new Dictionary<string, string>
        {
            ["final"] = final ? "true" : "false",
            ["liveModel"] = live.Name,
            ["liveVersion"] = live.Version,
            ["framesSampled"] = Number(sampled),
            ["framesSkipped"] = "0",
            ["framesCompared"] = Number(sampled),
            ["top1Agreement"] = sampled == 0 ? "n/a" : Number(Math.Round(agreement, 4)),
            ["precision"] = "n/a",
            ["recall"] = "n/a",
            ["f1"] = "n/a",
            ["latencyP50Ms"] = Number(p50 * 0.72),
            ["latencyP95Ms"] = Number(InferenceP95(desired.Version)),
            ["liveLatencyP95Ms"] = Number(InferenceP95(live.Version)),
            ["nonFiniteShare"] = Number(behavior.Kind == BehaviorKind.Nan ? behavior.Parameter : 0),
            ["meanConfidence"] = Number(ConfidenceOf(desired.Version)),
            ["liveMeanConfidence"] = Number(ConfidenceOf(live.Version)),
            ["errors"] = "0",
        };
        var summary = sampled == 0 ? "nothing compared yet" : $"top-1 agreement {agreement:P1}";
        SetOta(SimOtaState.Shadow, desired, null);
        Event(UpdateEvents.ShadowReport, "info", desired,
            $"shadow {desired.Model} {desired.Version}: {summary} over {sampled} frames, p95 {InferenceP95(desired.Version):0.##} ms{(final ? " (final)" : "")}", data);
    }

    private void Fail(DesiredMessage desired, string type, string reason, string message, IReadOnlyDictionary<string, string> data)
    {
        lock (_lock)
        {
            SettleLocked(desired.EffectiveId);
        }

        SetOta(type == UpdateEvents.RolledBack ? SimOtaState.RolledBack : SimOtaState.Rejected, desired, reason);
        Event(type, "error", desired, message, data);
    }

    private void SettleLocked(string desiredId)
    {
        _state.Settled.Remove(desiredId);
        _state.Settled.Add(desiredId);
        if (_state.Settled.Count > SettledKept)
        {
            _state.Settled.RemoveAt(0);
        }

        _fleet.MarkDirty();
    }

    private void SetOta(SimOtaState state, DesiredMessage desired, string? reason)
    {
        SimOtaState old;
        string? oldVersion;
        lock (_lock)
        {
            old = _ota;
            oldVersion = _otaDesired?.Version;
            _ota = state;
            _otaDesired = desired;
            _otaReason = reason;
        }

        _fleet.OnOtaChanged(old, oldVersion, state, desired.Version);
    }

    private void Event(string type, string level, DesiredMessage desired, string message, IReadOnlyDictionary<string, string>? extra = null)
    {
        var data = new Dictionary<string, string>
        {
            ["desiredId"] = desired.EffectiveId,
            ["model"] = desired.Model,
            ["version"] = desired.Version,
            ["mode"] = desired.Mode,
        };
        if (desired.RolloutId is { } rollout)
        {
            data["rolloutId"] = rollout;
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            data[key] = value;
        }

        Event(type, level, message, data);
    }

    private void Event(string type, string level, string message, IReadOnlyDictionary<string, string> data)
    {
        var ts = _options.Time.GetUtcNow();
        lock (_lock)
        {
            if (_gone)
            {
                return;
            }

            EnqueueLocked(Topics.Events, seq => MessageParser.Serialize(new EventMessage
            {
                DeviceId = Id,
                Ts = ts,
                Seq = seq,
                Type = type,
                Level = level,
                Message = message,
                Data = data,
            }));
        }

        Kick();
    }

    private void EnqueueLocked(string kind, Func<long, byte[]> build)
    {
        _seq++;
        if (_seq > _seqLimit)
        {
            _seqLimit = _seq + SeqReserve;
            _fleet.MarkDirty();
        }

        if (_outbox.Count >= _options.OutboxLimit)
        {
            _outbox.Dequeue();
            _evicted++;
            _fleet.CountEvicted();
        }

        _outbox.Enqueue(new Outgoing(Topics.For(Id, kind), build(_seq), kind));
    }

    /// <summary>Starts the publisher if there is something to send, a connection, and no publisher running.</summary>
    private void Kick()
    {
        IMqttConnection connection;
        lock (_lock)
        {
            if (_pumping || !_connected || _outbox.Count == 0 || _connection is null)
            {
                return;
            }

            _pumping = true;
            connection = _connection;
        }

        _ = PumpAsync(connection);
    }

    /// <summary>Sends the outbox in order, one QoS 1 publish at a time, removing each message only after its PUBACK.</summary>
    private async Task PumpAsync(IMqttConnection connection)
    {
        while (true)
        {
            Outgoing next;
            lock (_lock)
            {
                if (_outbox.Count == 0 || !_connected || !ReferenceEquals(connection, _connection))
                {
                    _pumping = false;
                    if (_outbox.Count == 0)
                    {
                        _drained?.TrySetResult();
                        _drained = null;
                    }

                    return;
                }

                next = _outbox.Peek();
            }

            PublishResult result;
            try
            {
                result = await connection.PublishAsync(new MqttMessage(next.Topic, next.Payload, Qos: 1)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MqttException or ObjectDisposedException)
            {
                _fleet.CountPublishFailure();
                bool again;
                lock (_lock)
                {
                    _pumping = false;
                    again = _connected && ReferenceEquals(connection, _connection) && connection.IsConnected;
                }

                if (again)
                {
                    // Not Kick() here: a publish that fails at once while the connection still says "connected" (it is
                    // going down) would recurse until the stack overflows; try again a little later instead.
                    _ = KickLaterAsync();
                }

                return; // the next "connected" starts it again
            }

            lock (_lock)
            {
                if (_outbox.Count > 0 && ReferenceEquals(_outbox.Peek(), next))
                {
                    _outbox.Dequeue();
                }

                _delivered++;
            }

            _fleet.CountPublished(next.Kind, result.Accepted);
        }
    }

    private async Task KickLaterAsync()
    {
        await Task.Delay(TimeSpan.FromMilliseconds(200), _options.Time).ConfigureAwait(false);
        Kick();
    }

    /// <summary>Waits until the outbox is empty, at most <paramref name="patience"/> (what is left stays unsent).</summary>
    private async Task WaitDrainedAsync(TimeSpan patience)
    {
        Task drained;
        lock (_lock)
        {
            if (_outbox.Count == 0 || !_connected)
            {
                return;
            }

            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            drained = _drained.Task;
        }

        Kick();
        await drained.WaitAsync(patience, _options.Time, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private void PublishStatus()
    {
        IMqttConnection? connection;
        lock (_lock)
        {
            connection = _connected ? _connection : null;
        }

        if (connection is not null)
        {
            _ = PublishStatusAsync(connection, online: true);
        }
    }

    private async Task PublishStatusAsync(IMqttConnection connection, bool online)
    {
        try
        {
            var result = await connection.PublishAsync(new MqttMessage(_statusTopic, StatusPayload(online), Qos: 1, Retain: true)).ConfigureAwait(false);
            _fleet.CountPublished(Topics.Status, result.Accepted);
        }
        catch (Exception ex) when (ex is MqttException or ObjectDisposedException)
        {
            _fleet.CountPublishFailure(); // published again at the next connect
        }
    }

    private byte[] StatusPayload(bool online)
    {
        ModelRef running;
        lock (_lock)
        {
            running = _running;
        }

        return MessageParser.Serialize(new StatusMessage
        {
            DeviceId = Id,
            Ts = _options.Time.GetUtcNow(),
            Online = online,
            AgentVersion = online ? FleetSimulator.AgentVersion : null,
            Model = online ? running : null,
            StartedAt = online ? _startedAt : null,
            Source = online ? string.Create(CultureInfo.InvariantCulture, $"sim://seed-{_options.Seed}") : null,
            Provider = online ? "CPU" : null,
        });
    }

    private TelemetryMessage BuildTelemetryLocked(long seq, double elapsed)
    {
        var behavior = _options.BehaviorOf(_running.Version);
        var probation = _job is { Probation: true, Done: false };
        var p50 = BaseP50(_running.Version) * Jitter(0.05);
        var p95 = p50 * _profile.P95Ratio * Jitter(0.02);
        var p99 = p95 * _profile.P99Ratio * Jitter(0.02);
        var fps = Math.Min(_options.Fps, 1000 / p50 * 2) * Jitter(0.01);
        _captured += _options.Fps * elapsed;
        _inferred += fps * elapsed;
        if (behavior.Kind == BehaviorKind.Nan && probation)
        {
            _nonFinite += fps * elapsed * behavior.Parameter;
        }

        var captured = (long)_captured;
        var inferred = Math.Min(captured, (long)_inferred);
        static LatencyMs L(double p50, double p95, double p99, double share) => new(Round(p50 * share), Round(p95 * share), Round(p99 * share));
        var cpu = Math.Clamp(_profile.CpuPercent * (behavior.Kind == BehaviorKind.Slow ? behavior.Parameter : 1) * Jitter(0.05), 0, 100);
        return new TelemetryMessage
        {
            DeviceId = Id,
            Ts = _options.Time.GetUtcNow(),
            Seq = seq,
            IntervalSeconds = _options.TelemetryInterval.TotalSeconds,
            Model = _running,
            Fps = Math.Round(fps, 2),
            LatencyMs = L(p50, p95, p99, 1),
            StagesMs = new Dictionary<string, LatencyMs>
            {
                ["captureWait"] = L(p50, p95, p99, 0.08),
                ["preprocess"] = L(p50, p95, p99, 0.12),
                ["inference"] = L(p50, p95, p99, 0.72),
                ["postprocess"] = L(p50, p95, p99, 0.08),
            },
            Frames = new FrameCounters(captured, inferred, captured - inferred),
            Errors = 0,
            NonFinite = (long)_nonFinite,
            Confidence = elapsed > 0 ? Math.Round(ConfidenceLocked(_running.Version, probation) * Jitter(0.01), 4) : null,
            Source = new SourceHealth("running", 0, 0, null),
            System = new SystemHealth
            {
                CpuPercent = Math.Round(cpu, 1),
                ProcessCpuPercent = Math.Round(cpu * 0.8, 1),
                MemTotalBytes = _profile.MemTotalBytes,
                MemUsedBytes = (long)(_profile.MemTotalBytes * _profile.MemUsedShare * Jitter(0.01)),
                TemperatureC = Math.Round(_profile.TemperatureC * Jitter(0.02), 1),
            },
            Outbox = new OutboxHealth(_outbox.Count, _outbox.Sum(o => (long)o.Payload.Length), _evicted, 0),
            RejectedMessages = _rejectedMessages,
        };
    }

    private DriftMessage BuildDriftLocked(long seq)
    {
        var drifting = _options.BehaviorOf(_running.Version).Kind == BehaviorKind.Drift && _job is not { Probation: true, Done: false };
        var now = _options.Time.GetUtcNow();
        var window = _options.TelemetryInterval * _options.DriftEvery;
        var frames = (long)(_options.Fps * window.TotalSeconds);
        var features = new List<FeatureDrift>();
        foreach (var name in InputFeatures.Append("top1_confidence"))
        {
            var shifted = drifting && name is "luma_mean" or "luma_std" or "bright_fraction" or "top1_confidence";
            var psi = shifted ? 0.3 + (0.2 * _noise.NextDouble()) : _profile.BasePsi * Jitter(0.3);
            var severity = psi >= 0.25 ? DriftSeverity.Alert : psi >= 0.1 ? DriftSeverity.Warn : DriftSeverity.None;
            var ks = Math.Min(1, Math.Sqrt(psi) * 0.5);
            var p = shifted ? 1e-6 : Math.Clamp(0.3 + (0.6 * _noise.NextDouble()), 0, 1);
            features.Add(new FeatureDrift
            {
                Name = name,
                N = new SampleSizes(1000, frames),
                NEffective = Math.Round(frames * 0.3, 1),
                Psi = Round(psi),
                Ks = new TestResult(Round(ks), p),
                JsDistance = Round(Math.Sqrt(psi / 8)),
                Wasserstein = Round(psi * 10),
                WassersteinNormed = Round(psi),
                PValueAdjusted = Math.Min(1, p * InputFeatures.Length),
                Severity = severity,
            });
        }

        return new DriftMessage
        {
            DeviceId = Id,
            Ts = now,
            Seq = seq,
            Model = _running,
            ReferenceId = $"{_running.Name}@{_running.Version}",
            Window = new DriftWindow(frames, now - window, now),
            Features = features,
            Severity = features.Max(f => f.Severity),
        };
    }

    private double BaseP50(string version)
    {
        var behavior = _options.BehaviorOf(version);
        return _profile.BaseLatencyMs * (behavior.Kind == BehaviorKind.Slow ? behavior.Parameter : 1);
    }

    private double InferenceP95(string version) => Round(BaseP50(version) * _profile.P95Ratio * 0.72);

    private double ConfidenceOf(string version)
    {
        lock (_lock)
        {
            return Round(ConfidenceLocked(version, probation: true));
        }
    }

    private double ConfidenceLocked(string version, bool probation)
    {
        var behavior = _options.BehaviorOf(version);
        return behavior.Kind switch
        {
            BehaviorKind.Nan when probation => _profile.Confidence * (1 - behavior.Parameter),
            BehaviorKind.Drift => _profile.Confidence - 0.08,
            _ => _profile.Confidence,
        };
    }

    /// <summary>1 ± up to <paramref name="share"/> (uniform), from the device's own generator: callers hold the lock.</summary>
    private double Jitter(double share) => 1 + (share * ((2 * _noise.NextDouble()) - 1));

    private static Dictionary<string, string> Progress(long bytes, long total) => new() { ["bytes"] = Number(bytes), ["total"] = Number(total) };

    private static double Round(double value) => Math.Round(value, 3);

    private static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Pct(double share) => share.ToString("0.##%", CultureInfo.InvariantCulture);

    private sealed class Outgoing(string topic, byte[] payload, string kind)
    {
        public string Topic { get; } = topic;

        public byte[] Payload { get; } = payload;

        public string Kind { get; } = kind;
    }

    private sealed class Job(DesiredMessage desired, CancellationTokenSource cts)
    {
        public DesiredMessage Desired { get; } = desired;

        public CancellationTokenSource Cts { get; } = cts;

        public Task Task { get; set; } = Task.CompletedTask;

        /// <summary>The candidate serves frames on probation (guarded by the device's lock).</summary>
        public bool Probation { get; set; }

        /// <summary>Finished; its token source is disposed (guarded by the device's lock).</summary>
        public bool Done { get; set; }
    }
}
