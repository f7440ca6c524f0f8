using System.Collections.Concurrent;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>Wakes the engine early: ingestion signals it when OTA events arrived, the API when an operator acted.</summary>
public sealed class RolloutSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Notify()
    {
        if (_signal.CurrentCount == 0)
        {
            try
            {
                _signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // already signalled
            }
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);
}

/// <summary>
/// Drives every active rollout: loads it, applies <see cref="RolloutStepper"/>, stores the result in one transaction and
/// then publishes the desired messages. All state is in the database; what is kept in memory (which desired messages the
/// broker acknowledged, the rate buckets, registry lookups) is rebuilt after a restart by publishing every in-flight
/// device's stored desired message once more (retained, same id: a device that has it already ignores it).
/// </summary>
public sealed partial class RolloutEngine(RolloutStore store, GateTelemetry telemetry, DesiredFactory factory, IDesiredPublisher publisher, ModelRegistry models,
    ProductionAssignments production, RolloutSignal signal, IOptions<ControlPlaneOptions> options, TimeProvider time, ILogger<RolloutEngine> logger)
    : BackgroundService
{
    private static readonly TimeSpan ProductionEvery = TimeSpan.FromSeconds(10);
    private long _productionAt;
    private readonly ConcurrentDictionary<string, byte> _acknowledged = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Model, string Version, string Mode), DesiredMessage?> _templates = new();
    private readonly Dictionary<string, (double Tokens, DateTimeOffset At)> _buckets = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _stepping = new(1, 1);

    /// <summary>One pass over every active rollout (the loop calls it every tick; tests call it directly).</summary>
    public async Task StepAllAsync(CancellationToken cancellationToken = default)
    {
        await _stepping.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (time.GetElapsedTime(_productionAt) >= ProductionEvery || _productionAt == 0)
            {
                _productionAt = time.GetTimestamp();
                try
                {
                    await production.ReconcileAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogProductionFailed(logger, ex);
                }
            }

            foreach (var id in await store.ActiveIdsAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await StepAsync(id, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogStepFailed(logger, ex, id);
                }
            }
        }
        finally
        {
            _stepping.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!publisher.Enabled)
        {
            LogDisabled(logger);
            return;
        }

        var tick = TimeSpan.FromMilliseconds(Math.Clamp(options.Value.RolloutTickMilliseconds, 20, 60_000));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await StepAllAsync(stoppingToken).ConfigureAwait(false);
                await signal.WaitAsync(tick, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The database away for a moment, say: the next tick tries again.
                LogLoopFailed(logger, ex);
                await Task.Delay(tick, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task StepAsync(string id, CancellationToken cancellationToken)
    {
        var snapshot = await store.LoadAsync(id, cancellationToken).ConfigureAwait(false);
        if (snapshot is null)
        {
            return;
        }

        var now = time.GetUtcNow();
        var r = snapshot.Rollout;
        var plan = r.Plan;
        var before = (r.State, r.Stage, r.Reason);
        var observations = await store.ObservationsAsync(id, cancellationToken).ConfigureAwait(false);

        await PrepareTemplatesAsync(snapshot).ConfigureAwait(false);
        GateWindows? windows = null;
        if (RolloutStepper.LookDue(snapshot, now))
        {
            windows = snapshot.CurrentPlan.Kind == StagePlan.Shadow
                ? ShadowWindows(observations)
                : await WindowsAsync(snapshot, now, cancellationToken).ConfigureAwait(false);
        }

        var budget = Budget(snapshot, now);
        var result = RolloutStepper.Step(snapshot, now, observations, budget, (m, v, mode) => _templates.GetValueOrDefault((m, v, mode)), windows);
        if (result.Changed || before != (r.State, r.Stage, r.Reason))
        {
            if (!await store.SaveAsync(snapshot, now).ConfigureAwait(false))
            {
                LogConcurrent(logger, id);
                return; // an operator changed it meanwhile: the next tick works from what is stored now
            }

            if (before.State != r.State || before.Stage != r.Stage)
            {
                LogTransition(logger, id, before.State, r.State, r.Stage + 1, r.Reason ?? "");
            }
        }

        Spend(id, result.Notified);

        // Publish what this step decided, and every in-flight desired message the broker has not acknowledged yet
        // (after a restart: all of them, once).
        var publications = result.Publications.ToList();
        var decided = publications.Select(p => p.DeviceId).ToHashSet(StringComparer.Ordinal);
        publications.AddRange(snapshot.Devices
            .Where(d => d.DesiredId is not null && d.Desired is not null && !decided.Contains(d.DeviceId) && !_acknowledged.ContainsKey(d.DesiredId!)
                && (RolloutDeviceStates.InFlight(d.State) || d.State is RolloutDeviceStates.Reverting or RolloutDeviceStates.Shadow))
            .Select(d => new Publication(d.DeviceId, d.DesiredId, System.Text.Encoding.UTF8.GetBytes(d.Desired!))));
        await PublishAsync(id, publications, cancellationToken).ConfigureAwait(false);

        if (result.Promote)
        {
            await PromoteAsync(snapshot).ConfigureAwait(false);
        }
    }

    private async Task PublishAsync(string rolloutId, List<Publication> publications, CancellationToken cancellationToken)
    {
        if (publications.Count == 0)
        {
            return;
        }

        // One log line per batch, not per device: at 10,000 devices a line each was most of the publishing time.
        var started = time.GetTimestamp();
        var failed = 0;
        string? lastError = null;
        await Parallel.ForEachAsync(publications, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken }, async (p, ct) =>
        {
            try
            {
                await publisher.PublishAsync(p.DeviceId, p.Payload, ct).ConfigureAwait(false);
                if (p.DesiredId is not null)
                {
                    _acknowledged.TryAdd(p.DesiredId, 0);
                }
            }
            catch (MqttException ex)
            {
                Interlocked.Increment(ref failed);
                lastError = ex.Message;
            }
        }).ConfigureAwait(false);
        LogPublished(logger, rolloutId, publications.Count - failed, publications.Count, (long)time.GetElapsedTime(started).TotalMilliseconds);
        if (failed > 0)
        {
            LogPublishFailed(logger, failed, publications.Count, lastError ?? "");
        }
    }

    private async Task PrepareTemplatesAsync(RolloutSnapshot snapshot)
    {
        var plan = snapshot.Rollout.Plan;
        var wanted = new HashSet<(string, string, string)> { (plan.Model, plan.Version, DesiredModes.Live), (plan.Model, plan.Version, DesiredModes.Shadow) };
        foreach (var d in snapshot.Devices)
        {
            if (d.PreviousModel is not null && d.PreviousVersion is not null)
            {
                wanted.Add((d.PreviousModel, d.PreviousVersion, DesiredModes.Live));
            }
        }

        foreach (var key in wanted)
        {
            if (!_templates.ContainsKey(key) || _templates[key] is null)
            {
                _templates[key] = await factory.BuildAsync(key.Item1, key.Item2, key.Item3, snapshot.Rollout.Plan.BaseUrl).ConfigureAwait(false);
            }
        }
    }

    private Task<GateWindows> WindowsAsync(RolloutSnapshot snapshot, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (from, start) = RolloutStepper.LookWindow(snapshot);
        return telemetry.WindowsAsync(snapshot.Rollout.Id, snapshot.Rollout.Plan.Version, from, start, now, cancellationToken);
    }

    private static GateWindows ShadowWindows(IReadOnlyDictionary<string, OtaObservation> observations)
    {
        var agreement = observations.Values.Where(o => o.Agreement is not null)
            .ToDictionary(o => o.DeviceId, o => new DeviceAggregate(null, 0, 0, 0, null, 0, 0, 1, o.Agreement), StringComparer.Ordinal);
        return new GateWindows(new Dictionary<string, DeviceAggregate>(), agreement, new Dictionary<string, DeviceAggregate>());
    }

    /// <summary>Devices that may be notified now: a token bucket at the plan's rate (growing as devices succeed), at most one second's worth banked.</summary>
    private int Budget(RolloutSnapshot snapshot, DateTimeOffset now)
    {
        var rate = RolloutRules.Rate(snapshot.Rollout.Plan, snapshot.Devices.Count(d => d.State == RolloutDeviceStates.Succeeded)) / 60.0;
        var burst = Math.Max(1.0, rate);
        lock (_buckets)
        {
            var (tokens, at) = _buckets.TryGetValue(snapshot.Rollout.Id, out var b) ? b : (burst, now);
            tokens = Math.Min(burst, tokens + Math.Max(0, (now - at).TotalSeconds) * rate);
            _buckets[snapshot.Rollout.Id] = (tokens, now);
            return (int)Math.Floor(tokens);
        }
    }

    private void Spend(string id, int notified)
    {
        lock (_buckets)
        {
            if (_buckets.TryGetValue(id, out var b))
            {
                _buckets[id] = (Math.Max(0, b.Tokens - notified), b.At);
            }
        }
    }

    private async Task PromoteAsync(RolloutSnapshot snapshot)
    {
        var plan = snapshot.Rollout.Plan;
        try
        {
            await models.ChangeStageAsync(plan.Model, plan.Version, EdgeFleet.Contracts.Api.Stages.Production, $"rollout {snapshot.Rollout.Id} succeeded",
                $"rollout {snapshot.Rollout.Id}").ConfigureAwait(false);
            LogPromoted(logger, snapshot.Rollout.Id, plan.Model, plan.Version);
            _productionAt = 0; // devices that follow production get the new version at the next pass
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogPromoteFailed(logger, ex, snapshot.Rollout.Id, plan.Model, plan.Version);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Sending production versions to the devices that follow their model tag failed; the next pass tries again")]
    private static partial void LogProductionFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rollouts are off: the control plane runs without MQTT (--mqtt none)")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Rollout {Id}: a step failed; the next tick tries again")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "The rollout engine failed a pass; it tries again at the next tick")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Rollout {Id} changed meanwhile; the step is taken again at the next tick")]
    private static partial void LogConcurrent(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rollout {Id}: {From} → {To} (stage {Stage}) {Reason}")]
    private static partial void LogTransition(ILogger logger, string id, string from, string to, int stage, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rollout {Id}: published {Published} of {Total} desired messages in {Milliseconds} ms")]
    private static partial void LogPublished(ILogger logger, string id, int published, int total, long milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rollout desired messages: {Failed} of {Total} were not taken by the broker ({Reason}); they are sent again at the next tick")]
    private static partial void LogPublishFailed(ILogger logger, int failed, int total, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rollout {Id} succeeded: {Model} {Version} promoted to production")]
    private static partial void LogPromoted(ILogger logger, string id, string model, string version);

    [LoggerMessage(Level = LogLevel.Error, Message = "Rollout {Id} succeeded but promoting {Model} {Version} to production failed")]
    private static partial void LogPromoteFailed(ILogger logger, Exception exception, string id, string model, string version);
}
