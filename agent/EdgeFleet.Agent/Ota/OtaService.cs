using System.Diagnostics;
using System.Security.Cryptography;
using System.Threading.Channels;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.Ota;

/// <summary>
/// Reconciles the <c>desired</c> assignment with what runs (DESIGN.md §6): received → downloading → verifying →
/// loading → self-test → probation → committed, or rejected / rolled back with a reason; shadow assignments run beside
/// the live model instead. Every transition is first written to the state file (atomically) and then published as a
/// durable event. One assignment is worked on at a time; a newer one supersedes it (a model on probation is then rolled
/// back first). After a restart the state file says where to go on: an interrupted download resumes, a probation that
/// did not finish counts as failed (the agent started on the committed model).
/// </summary>
public sealed partial class OtaService : IAsyncDisposable
{
    private static readonly TimeSpan ProbationTick = TimeSpan.FromMilliseconds(250);

    private readonly IModelHost _host;
    private readonly OtaStateStore _store;
    private readonly ModelStore _models;
    private readonly UpdateDownloader _downloader;
    private readonly OtaOptions _options;
    private readonly ECDsa? _registryKey;
    private readonly OtaEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<DesiredMessage?> _inbox = Channel.CreateUnbounded<DesiredMessage?>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _stateLock = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<InstalledModel, (bool Ok, string Reason)> _verify;
    private OtaState _state;

    public OtaService(IModelHost host, OtaBootstrap bootstrap, UpdateDownloader downloader, OtaOptions options,
        ECDsa? registryKey, Telemetry.DeviceReporter reporter, TimeProvider time, ILogger<OtaService> logger)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        _host = host;
        _store = bootstrap.Store;
        _models = bootstrap.Models;
        _verify = bootstrap.Verify;
        _downloader = downloader;
        _options = options;
        _registryKey = registryKey;
        _events = new OtaEvents(reporter);
        _time = time;
        _logger = logger;
        _state = bootstrap.InitialState;
    }

    /// <summary>The newest state (what the state file holds).</summary>
    public OtaState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>Raised after each state change (tests and the status topic).</summary>
    public event Action<OtaState>? StateChanged;

    /// <summary>Hands over a desired assignment (null: the retained assignment was cleared).</summary>
    public void Submit(DesiredMessage? desired) => _inbox.Writer.TryWrite(desired);

    /// <summary>Reports a desired message that could not be parsed.</summary>
    public void RejectInvalid(string reason)
    {
        LogInvalid(_logger, reason);
        _events.InvalidDesired(reason);
    }

    /// <summary>Runs until cancelled: resumes what the state file left unfinished, then works through assignments.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var resume = Recover();
        Task? running = null;
        CancellationTokenSource? jobCts = null;
        DesiredMessage? runningDesired = null;
        if (resume is not null)
        {
            (running, jobCts, runningDesired) = Start(resume, stoppingToken);
        }

        var read = _inbox.Reader.WaitToReadAsync(stoppingToken).AsTask();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (running is null)
                {
                    await read.ConfigureAwait(false);
                }
                else
                {
                    await Task.WhenAny(read, running).ConfigureAwait(false);
                    if (running.IsCompleted)
                    {
                        await running.ConfigureAwait(false);
                        running = null;
                        jobCts!.Dispose();
                        jobCts = null;
                        runningDesired = null;
                    }
                }

                if (!read.IsCompleted)
                {
                    continue;
                }

                if (!await read.ConfigureAwait(false))
                {
                    break;
                }

                var got = false;
                DesiredMessage? latest = null;
                while (_inbox.Reader.TryRead(out var item))
                {
                    latest = item;
                    got = true;
                }

                read = _inbox.Reader.WaitToReadAsync(stoppingToken).AsTask();
                if (!got)
                {
                    continue;
                }

                if (latest is not null && runningDesired is not null && latest.EffectiveId == runningDesired.EffectiveId)
                {
                    continue; // the retained message again, for the job in progress
                }

                if (running is not null)
                {
                    LogSuperseded(_logger, runningDesired!.EffectiveId, latest?.EffectiveId ?? "(cleared)");
                    await jobCts!.CancelAsync().ConfigureAwait(false);
                    await running.ConfigureAwait(false);
                    jobCts.Dispose();
                    running = null;
                    jobCts = null;
                    runningDesired = null;
                }

                if (latest is null || IsSettled(latest))
                {
                    continue;
                }

                (running, jobCts, runningDesired) = Start(latest, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            if (running is not null)
            {
                await jobCts!.CancelAsync().ConfigureAwait(false);
                await running.ConfigureAwait(false);
                jobCts.Dispose();
            }

            _idle.TrySetResult();
        }
    }

    public ValueTask DisposeAsync()
    {
        _inbox.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    private (Task, CancellationTokenSource, DesiredMessage) Start(DesiredMessage desired, CancellationToken stoppingToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var task = Task.Run(() => RunJobAsync(desired, cts.Token, stoppingToken), CancellationToken.None);
        return (task, cts, desired);
    }

    /// <summary>Applies what the state file says was left unfinished; returns the assignment to resume, if any.</summary>
    private DesiredMessage? Recover()
    {
        var state = State;
        if (state.Job is not { IsFinished: false } job)
        {
            return null;
        }

        if (job.Phase == OtaPhase.Probation)
        {
            var message = $"the agent restarted while {job.Desired.Model} {job.Desired.Version} was on probation; it runs the committed model " +
                $"{_host.Active.Ref.Name} {_host.Active.Ref.Version} again";
            Fail(job.Desired, UpdateEvents.RolledBack, "restart", message, new Dictionary<string, string> { ["criterion"] = "restart" });
            return null;
        }

        LogResume(_logger, job.Desired.EffectiveId, job.Phase.ToString());
        return job.Desired;
    }

    private bool IsSettled(DesiredMessage desired)
    {
        var state = State;
        if (state.Settled.Contains(desired.EffectiveId))
        {
            return true;
        }

        var active = _host.Active.Ref;
        if (desired.Mode == DesiredModes.Live && active.Name == desired.Model && active.Version == desired.Version)
        {
            Save(s => s.WithSettled(desired.EffectiveId) with { Job = new OtaJob { Desired = desired, Phase = OtaPhase.Committed, StartedAt = _time.GetUtcNow(), PhaseAt = _time.GetUtcNow() } });
            _events.Publish(UpdateEvents.Committed, "info", desired, $"{desired.Model} {desired.Version} already runs here",
                new Dictionary<string, string> { ["alreadyRunning"] = "true" });
            return true;
        }

        return false;
    }

#pragma warning disable IDISP001, IDISP003 // the candidate is disposed on every failure path, or handed to the host
    private async Task RunJobAsync(DesiredMessage desired, CancellationToken cancellationToken, CancellationToken stoppingToken)
    {
        var received = _time.GetTimestamp();
        var resumed = State.Job is { IsFinished: false } j && j.Desired.EffectiveId == desired.EffectiveId;
        if (!resumed)
        {
            var now = _time.GetUtcNow();
            Save(s => s with { Job = new OtaJob { Desired = desired, Phase = OtaPhase.Received, StartedAt = now, PhaseAt = now, Total = desired.Size } });
            _events.Publish(UpdateEvents.Received, "info", desired, $"assigned {desired.Model} {desired.Version} ({desired.Mode})");
        }

        LoadedModel? candidate = null;
        try
        {
            if (!_options.Enabled)
            {
                throw new UpdateRejectedException(RejectReasons.Incompatible, "over-the-air updates are turned off on this device (Agent:Ota:Enabled)");
            }

            if (_registryKey is null)
            {
                throw new UpdateRejectedException(RejectReasons.Signature,
                    "no registry key is pinned on this device, so no manifest can be verified; enroll it (edgefleet-agent enroll)");
            }

            InstalledModel installed;
            if (_models.Find(desired.Model, desired.Version) is { } existing && VerifyInstalled(existing, out _))
            {
                installed = existing; // installed earlier (a rollback target, or a retry): verified again, not downloaded again
                SetPhase(OtaPhase.Verifying, job => job with { Candidate = installed, Bytes = desired.Size });
                _events.Publish(UpdateEvents.Verified, "info", desired, $"{desired.Model} {desired.Version} is already on disk; its signature verified",
                    new Dictionary<string, string> { ["keyId"] = ManifestSigning.KeyId(_registryKey), ["downloaded"] = "false" });
            }
            else
            {
                installed = await DownloadAsync(desired, cancellationToken).ConfigureAwait(false);
            }

            candidate = Load(desired, installed, desired.Mode == DesiredModes.Shadow ? _host.ShadowSessionSettings : _host.SessionSettings);
            SetPhase(OtaPhase.SelfTest);
            if (candidate.Manifest.SelfTest is not null && candidate.RunSelfTest() is { } failure)
            {
                throw new UpdateRejectedException(RejectReasons.SelfTest, $"{desired.Model} {desired.Version} failed its self-test: {failure}");
            }

            cancellationToken.ThrowIfCancellationRequested();
            var owned = candidate;
            candidate = null; // the host (live) or the shadow run owns it from here
            if (desired.Mode == DesiredModes.Shadow)
            {
                await RunShadowAsync(desired, installed, owned, cancellationToken, stoppingToken).ConfigureAwait(false);
            }
            else
            {
                await ActivateAndProbateAsync(desired, installed, owned, received, cancellationToken, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (UpdateRejectedException ex)
        {
            candidate?.Dispose();
            Fail(desired, UpdateEvents.Rejected, ex.Reason, ex.Message, new Dictionary<string, string> { ["reason"] = ex.Reason });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            candidate?.Dispose();
            if (!stoppingToken.IsCancellationRequested)
            {
                // Superseded: the next assignment takes over; this one is left as it is (its download may be reused).
                Save(s => s.WithSettled(desired.EffectiveId) with { Job = s.Job is { } job ? job with { Phase = OtaPhase.Idle } : null });
            }
        }
#pragma warning disable CA1031 // an unexpected failure of one assignment must not stop the agent: it is reported and the model kept
        catch (Exception ex)
#pragma warning restore CA1031
        {
            candidate?.Dispose();
            LogUnexpected(_logger, ex, desired.EffectiveId);
            Fail(desired, UpdateEvents.Rejected, RejectReasons.Load, $"the update failed unexpectedly: {ex.Message}",
                new Dictionary<string, string> { ["reason"] = RejectReasons.Load });
        }
    }

#pragma warning restore IDISP001, IDISP003

    private async Task<InstalledModel> DownloadAsync(DesiredMessage desired, CancellationToken cancellationToken)
    {
        var staging = _models.StagingDirectory(desired.Model, desired.Version);
        Directory.CreateDirectory(staging);
        var modelPath = ModelStore.ModelFile(staging, desired.Model);
        var partPath = modelPath + ModelStore.PartSuffix;
        var already = File.Exists(partPath) ? new FileInfo(partPath).Length : 0;
        SetPhase(OtaPhase.Downloading, job => job with { Bytes = already, Total = desired.Size });

        var manifestBytes = await _downloader.GetSmallAsync(desired.ManifestUrl, _options.MaxManifestBytes, optional: false, "manifest", cancellationToken)
            .ConfigureAwait(false) ?? throw new UpdateRejectedException(RejectReasons.Download, "the manifest is missing");
        var signature = await SignatureAsync(desired, cancellationToken).ConfigureAwait(false);
        if (!ManifestSigning.VerifyDetached(manifestBytes, signature, _registryKey!, out var why))
        {
            var keyNote = desired.KeyId is { } keyId && keyId != ManifestSigning.KeyId(_registryKey!)
                ? $"; it names key {keyId}, this device pins {ManifestSigning.KeyId(_registryKey!)}"
                : "";
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

        if (manifest.Artifact.Size > _options.MaxArtifactBytes)
        {
            throw new UpdateRejectedException(RejectReasons.Size,
                $"the artifact is {manifest.Artifact.Size} bytes, more than Agent:Ota:MaxArtifactBytes ({_options.MaxArtifactBytes})");
        }

        CheckDisk(staging, manifest.Artifact.Size - already);
        DurableFile.Replace(ModelStore.ManifestPath(modelPath), manifestBytes);
        DurableFile.Replace(ModelStore.SignaturePath(modelPath), signature);
        await FetchProfileAsync(desired, modelPath, cancellationToken).ConfigureAwait(false);

        var lastEvent = long.MinValue;
        await _downloader.DownloadArtifactAsync(desired.ArtifactUrl, partPath, manifest.Artifact.Size, manifest.Artifact.Sha256, progress =>
        {
            SetPhase(OtaPhase.Downloading, job => job with { Bytes = progress.Bytes, Total = progress.Total });
            var now = _time.GetTimestamp();
            if (lastEvent == long.MinValue || _time.GetElapsedTime(lastEvent, now) >= TimeSpan.FromSeconds(1) || progress.Bytes == progress.Total)
            {
                lastEvent = now;
                _events.Publish(UpdateEvents.Downloading, "info", desired, $"{progress.Bytes} of {progress.Total} bytes",
                    new Dictionary<string, string> { ["bytes"] = OtaEvents.Number(progress.Bytes), ["total"] = OtaEvents.Number(progress.Total) });
            }
        }, cancellationToken).ConfigureAwait(false);

        File.Move(partPath, modelPath, overwrite: true);
        DurableFile.SyncDirectory(staging);
        var installed = _models.Install(desired.Model, desired.Version);
        SetPhase(OtaPhase.Verifying, job => job with { Candidate = installed, Bytes = manifest.Artifact.Size });
        _events.Publish(UpdateEvents.Verified, "info", desired, $"{desired.Model} {desired.Version}: signature, size and sha256 verified",
            new Dictionary<string, string>
            {
                ["sha256"] = manifest.Artifact.Sha256,
                ["size"] = OtaEvents.Number(manifest.Artifact.Size),
                ["keyId"] = ManifestSigning.KeyId(_registryKey!),
            });
        return installed;
    }

    private async Task<byte[]> SignatureAsync(DesiredMessage desired, CancellationToken cancellationToken)
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
            && await _downloader.GetSmallAsync(url, 4096, optional: true, "signature", cancellationToken).ConfigureAwait(false) is { Length: > 0 } bytes)
        {
            return bytes;
        }

        throw new UpdateRejectedException(RejectReasons.Signature, $"{desired.Model} {desired.Version} is not signed; unsigned manifests are refused");
    }

    private async Task FetchProfileAsync(DesiredMessage desired, string modelPath, CancellationToken cancellationToken)
    {
        if (!desired.ManifestUrl.EndsWith("/manifest", StringComparison.Ordinal))
        {
            return;
        }

        var url = desired.ManifestUrl[..^"manifest".Length] + "drift-profile";
        try
        {
            if (await _downloader.GetSmallAsync(url, 16L << 20, optional: true, "drift profile", cancellationToken).ConfigureAwait(false) is { } profile)
            {
                DurableFile.Replace(EdgeFleet.Drift.DriftProfiles.PathFor(modelPath), profile);
            }
        }
        catch (UpdateRejectedException ex)
        {
            LogNoProfile(_logger, desired.EffectiveId, ex.Message); // drift then starts from its first window
        }
    }

    private void CheckDisk(string directory, long bytes)
    {
        long available;
        try
        {
            available = new DriveInfo(Path.GetFullPath(directory)).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return; // cannot tell: the download itself will fail clearly on a full disk
        }

        var needed = Math.Max(0, bytes) + _options.DiskHeadroomBytes;
        if (available < needed)
        {
            throw new UpdateRejectedException(RejectReasons.Disk,
                $"not enough disk space in {directory}: the download needs {Mib(needed)} (artifact {Mib(bytes)} + headroom {Mib(_options.DiskHeadroomBytes)}, " +
                $"Agent:Ota:DiskHeadroomBytes), {Mib(available)} are free");
        }
    }

    private LoadedModel Load(DesiredMessage desired, InstalledModel installed, SessionSettings settings)
    {
        SetPhase(OtaPhase.Loading);
        ModelManifest manifest;
        try
        {
            manifest = ManifestFile.Load(ModelStore.ManifestPath(installed.Path));
        }
        catch (ManifestException ex)
        {
            throw new UpdateRejectedException(RejectReasons.Incompatible, ex.Message, ex);
        }

        if (_host.CheckCapturable(manifest.Input) is { } problem)
        {
            throw new UpdateRejectedException(RejectReasons.Incompatible, $"{desired.Model} {desired.Version} cannot be fed by this device's capture: {problem}");
        }

        CheckMemory(new FileInfo(installed.Path).Length);
        try
        {
            return LoadedModel.Load(_host.Runtime, installed.Path, settings);
        }
        catch (ModelLoadException ex)
        {
            var reason = ex.InnerException is OnnxRuntimeException ? RejectReasons.Load : RejectReasons.Incompatible;
            throw new UpdateRejectedException(reason, ex.Message, ex);
        }
    }

    private static void CheckMemory(long modelBytes)
    {
        var available = new Telemetry.SystemStats().MemAvailableBytes();
        if (available is not { } free)
        {
            return;
        }

        // A second session holds about the weights once more (plus ORT's arena); leave 64 MiB for everything else.
        var needed = (2 * modelBytes) + (64L << 20);
        if (free < needed)
        {
            throw new UpdateRejectedException(RejectReasons.Load,
                $"not enough memory to load a second session beside the running one: about {Mib(needed)} needed, {Mib(free)} available");
        }
    }

    private async Task ActivateAndProbateAsync(DesiredMessage desired, InstalledModel installed, LoadedModel candidate, long received,
        CancellationToken cancellationToken, CancellationToken stoppingToken)
    {
        var settings = ProbationSettings.From(_options.Probation, desired.Probation);
        var before = _host.Active;
        await WaitForBaselineAsync(before, settings, cancellationToken).ConfigureAwait(false);
        var baseline = Figures(before.Stats.Snapshot().Recent, null);
        var provider = candidate.Session.ActiveProvider.ToString().ToLowerInvariant();
        ActiveModel previous;
        try
        {
            previous = await _host.SwapAsync(candidate, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
#pragma warning disable IDISP007 // ownership passes to the host only when the swap succeeds
            candidate.Dispose();
#pragma warning restore IDISP007
            throw;
        }

        var activatedAt = _time.GetTimestamp();
        SetPhase(OtaPhase.Probation, job => job with { Candidate = installed, Provider = provider });
        _events.Publish(UpdateEvents.Activated, "info", desired,
            $"{desired.Model} {desired.Version} serves frames on {provider}, on probation ({settings.Frames} frames, {settings.Duration.TotalSeconds:0} s)",
            new Dictionary<string, string>
            {
                ["provider"] = provider,
                ["previousModel"] = previous.Ref.Name,
                ["previousVersion"] = previous.Ref.Version,
                ["secondsToActive"] = OtaEvents.Number(_time.GetElapsedTime(received, activatedAt).TotalSeconds),
                ["probationFrames"] = OtaEvents.Number(settings.Frames),
                ["probationSeconds"] = OtaEvents.Number(settings.Duration.TotalSeconds),
            });
        LogActivated(_logger, desired.Model, desired.Version, provider, _time.GetElapsedTime(received, activatedAt).TotalSeconds);

        ProbationVerdict verdict;
        var active = _host.Active;
        try
        {
            while (true)
            {
                var stats = active.Stats.Snapshot().SinceActivation;
                verdict = ProbationJudge.Judge(baseline, Figures(stats, active.Drift?.WorstSeverity), _time.GetElapsedTime(activatedAt), settings);
                if (verdict.Outcome != ProbationOutcome.Pending)
                {
                    break;
                }

                await Task.Delay(ProbationTick, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (stoppingToken.IsCancellationRequested)
            {
                previous.Dispose(); // the agent stops; on restart it runs the committed model and counts this as a rollback
                throw;
            }

            verdict = new ProbationVerdict
            {
                Outcome = ProbationOutcome.Failed,
                Criterion = "superseded",
                Message = "a newer assignment arrived during probation",
            };
        }

        if (verdict.Outcome == ProbationOutcome.Passed)
        {
            var previousInstalled = State.Current ?? new InstalledModel(previous.Ref.Name, previous.Ref.Version, previous.Model.Path);
            Save(s => s.WithSettled(desired.EffectiveId) with
            {
                Previous = previousInstalled,
                Current = installed,
                Job = s.Job! with { Phase = OtaPhase.Committed, PhaseAt = _time.GetUtcNow() },
            });
            previous.Dispose();
            _events.Publish(UpdateEvents.Committed, "info", desired, $"{desired.Model} {desired.Version} committed: {verdict.Message}", verdict.Values);
            LogCommitted(_logger, desired.Model, desired.Version, verdict.Message);
            Prune();
            return;
        }

        var replaced = await _host.SwapBackAsync(previous, CancellationToken.None).ConfigureAwait(false);
        replaced.Dispose();
        var data = new Dictionary<string, string>(verdict.Values) { ["criterion"] = verdict.Criterion ?? "unknown" };
        Fail(desired, UpdateEvents.RolledBack, verdict.Criterion ?? "unknown",
            $"{desired.Model} {desired.Version} rolled back to {previous.Ref.Name} {previous.Ref.Version}: {verdict.Message}", data);
    }

    /// <summary>
    /// Runs a verified, self-tested candidate beside the live model until a newer assignment (or a cleared one) ends it,
    /// publishing a <c>shadow.report</c> every <see cref="ShadowOptions"/> report interval and a final one when it stops.
    /// Its results are never published and nothing about the live model changes.
    /// </summary>
#pragma warning disable IDISP007 // the shadow run owns the candidate it is handed
    private async Task RunShadowAsync(DesiredMessage desired, InstalledModel installed, LoadedModel candidate, CancellationToken cancellationToken,
        CancellationToken stoppingToken)
    {
        try
        {
            _host.StartShadow(candidate, new ShadowOptions { SampleShare = _options.Shadow.SampleShare });
        }
        catch (InvalidOperationException ex)
        {
            candidate.Dispose();
            throw new UpdateRejectedException(RejectReasons.Incompatible, $"{desired.Model} {desired.Version} cannot run as a shadow: {ex.Message}", ex);
        }

        var provider = candidate.Session.ActiveProvider.ToString().ToLowerInvariant();
        SetPhase(OtaPhase.Shadow, job => job with { Candidate = installed, Provider = provider });
        LogShadow(_logger, desired.Model, desired.Version, _options.Shadow.SampleShare);
        var interval = TimeSpan.FromSeconds(_options.Shadow.ReportSeconds);
        try
        {
            while (true)
            {
                await Task.Delay(interval, _time, cancellationToken).ConfigureAwait(false);
                if (_host.ShadowSnapshot() is { } stats)
                {
                    ReportShadow(desired, stats, final: false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var final = _host.StopShadow();
            candidate.Dispose();
            ReportShadow(desired, final, final: true);
            if (stoppingToken.IsCancellationRequested)
            {
                throw; // the state stays "shadow": after a restart the shadow runs again
            }

            Save(s => s.WithSettled(desired.EffectiveId) with { Job = s.Job is { } job ? job with { Phase = OtaPhase.Idle, PhaseAt = _time.GetUtcNow() } : null });
        }
    }

#pragma warning restore IDISP007

    private void ReportShadow(DesiredMessage desired, ShadowStats stats, bool final)
    {
        static string Opt(double? value) => value is { } v && !double.IsNaN(v) ? OtaEvents.Number(v) : "n/a";
        var live = _host.Active.Stats.Snapshot().Recent;
        var data = new Dictionary<string, string>
        {
            ["final"] = final ? "true" : "false",
            ["liveModel"] = _host.Active.Ref.Name,
            ["liveVersion"] = _host.Active.Ref.Version,
            ["framesSampled"] = OtaEvents.Number(stats.FramesSampled),
            ["framesSkipped"] = OtaEvents.Number(stats.FramesSkipped),
            ["framesCompared"] = OtaEvents.Number(stats.FramesCompared),
            ["top1Agreement"] = Opt(stats.Top1Agreement),
            ["precision"] = Opt(stats.Precision),
            ["recall"] = Opt(stats.Recall),
            ["f1"] = Opt(stats.F1),
            ["latencyP50Ms"] = Opt(stats.LatencyP50Ms),
            ["latencyP95Ms"] = Opt(stats.LatencyP95Ms),
            ["liveLatencyP95Ms"] = Opt(live.LatencyP95Ms),
            ["nonFiniteShare"] = Opt(stats.NonFiniteShare),
            ["meanConfidence"] = Opt(stats.MeanConfidence),
            ["liveMeanConfidence"] = Opt(live.MeanConfidence),
            ["errors"] = OtaEvents.Number(stats.Stats.SinceActivation.Errors),
        };
        var agreement = stats.Top1Agreement is { } a ? $"top-1 agreement {a:P1}" : stats.F1 is { } f ? $"F1 {f:0.###} at IoU 0.5" : "nothing compared yet";
        _events.Publish(UpdateEvents.ShadowReport, "info", desired,
            $"shadow {desired.Model} {desired.Version}: {agreement} over {stats.FramesCompared} frames, p95 {stats.LatencyP95Ms:0.##} ms{(final ? " (final)" : "")}", data);
    }

    /// <summary>
    /// Gives the running model the chance to show its figures first (a swap right after start would compare against
    /// nothing): waits until it has inferred MinFramesToJudge frames, at most probation seconds (a dead camera must not
    /// hold the update forever; the probation then fails on frames).
    /// </summary>
    private async Task WaitForBaselineAsync(ActiveModel running, ProbationSettings settings, CancellationToken cancellationToken)
    {
        var start = _time.GetTimestamp();
        var limit = settings.Duration > TimeSpan.FromSeconds(5) ? settings.Duration : TimeSpan.FromSeconds(5);
        while (running.Stats.Snapshot().Recent.Frames < settings.MinFramesToJudge && _time.GetElapsedTime(start) < limit)
        {
            await Task.Delay(ProbationTick, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether an installed model's manifest still verifies with the pinned key (its sha256 is checked when it loads).</summary>
    public bool VerifyInstalled(InstalledModel model, out string reason)
    {
        (var ok, reason) = _verify(model);
        return ok;
    }

    private void Prune()
    {
        var state = State;
        try
        {
            foreach (var deleted in _models.Prune(_options.KeepVersions, [state.Current, state.Previous]))
            {
                LogPruned(_logger, deleted);
            }
        }
        catch (IOException ex)
        {
            LogPruneFailed(_logger, ex.Message);
        }
    }

    private void Fail(DesiredMessage desired, string type, string reason, string message, IReadOnlyDictionary<string, string> data)
    {
        var now = _time.GetUtcNow();
        Save(s => s.WithSettled(desired.EffectiveId) with
        {
            Job = (s.Job is { } job && job.Desired.EffectiveId == desired.EffectiveId ? job : new OtaJob { Desired = desired, Phase = OtaPhase.Received, StartedAt = now })
                with { Phase = type == UpdateEvents.RolledBack ? OtaPhase.RolledBack : OtaPhase.Rejected, PhaseAt = now },
            LastFailure = new OtaFailure
            {
                DesiredId = desired.EffectiveId,
                Model = desired.Model,
                Version = desired.Version,
                Event = type,
                Reason = reason,
                Message = message,
                At = now,
            },
        });
        LogFailed(_logger, type, reason, message);
        _events.Publish(type, "error", desired, message, data);
        if (type == UpdateEvents.Rejected)
        {
            Prune();
        }
    }

    private void SetPhase(OtaPhase phase, Func<OtaJob, OtaJob>? change = null) =>
        Save(s => s.Job is { } job
            ? s with { Job = (change?.Invoke(job) ?? job) with { Phase = phase, PhaseAt = phase == job.Phase ? job.PhaseAt : _time.GetUtcNow() } }
            : s);

    private void Save(Func<OtaState, OtaState> change)
    {
        OtaState saved;
        lock (_stateLock)
        {
            saved = _store.Save(change(_state));
            _state = saved;
        }

        StateChanged?.Invoke(saved);
    }

    private static ProbationFigures Figures(ModelStatsWindow w, DriftSeverity? drift) => new()
    {
        Frames = w.Frames,
        Errors = w.Errors,
        NonFiniteFrames = w.NonFinite,
        P95InferenceMs = w.Frames == 0 ? double.NaN : w.LatencyP95Ms,
        MeanConfidence = w.MeanConfidence ?? double.NaN,
        Drift = drift,
    };

    private static string Mib(long bytes) => $"{bytes / 1048576.0:0.#} MiB";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Desired message rejected: {Reason}")]
    private static partial void LogInvalid(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Assignment {Old} superseded by {New}")]
    private static partial void LogSuperseded(ILogger logger, string old, string @new);

    [LoggerMessage(Level = LogLevel.Information, Message = "Resuming assignment {Id} from {Phase}")]
    private static partial void LogResume(ILogger logger, string id, string phase);

    [LoggerMessage(Level = LogLevel.Error, Message = "Assignment {Id} failed unexpectedly")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No drift profile for {Id}: {Reason}")]
    private static partial void LogNoProfile(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Model} {Version} active on {Provider}, {Seconds:0.00} s after the assignment; on probation")]
    private static partial void LogActivated(ILogger logger, string model, string version, string provider, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Model} {Version} committed: {Message}")]
    private static partial void LogCommitted(ILogger logger, string model, string version, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Type} ({Reason}): {Message}")]
    private static partial void LogFailed(ILogger logger, string type, string reason, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Model} {Version} runs as a shadow on {Share:P0} of the frames")]
    private static partial void LogShadow(ILogger logger, string model, string version, double share);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted old model version {Path}")]
    private static partial void LogPruned(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete old model versions: {Reason}")]
    private static partial void LogPruneFailed(ILogger logger, string reason);
}
