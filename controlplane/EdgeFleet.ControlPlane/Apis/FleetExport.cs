using System.Data.Common;
using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Storage;
using Prometheus;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// Per-device and rollout series for Prometheus, read from the database before each scrape (nothing on the ingestion
/// path): the fleet-wide view of what every device last reported, so Grafana needs no route to the devices themselves
/// (an agent's own <c>/metrics</c> listens on loopback only). Base units as elsewhere in the export: seconds, bytes,
/// ratios. A series whose device, rollout or value is gone is removed, not left at its last value.
/// </summary>
internal sealed class FleetExport
{
    private static readonly string[] RolloutStateNames =
    [
        RolloutStates.Running, RolloutStates.AwaitingApproval, RolloutStates.Paused, RolloutStates.RollingBack,
        RolloutStates.Succeeded, RolloutStates.Failed, RolloutStates.Aborted, RolloutStates.RolledBack,
    ];

    private readonly Family _info;
    private readonly Family _online;
    private readonly Family _lastSeen;
    private readonly Family _drift;
    private readonly Family _fps;
    private readonly Family _p50;
    private readonly Family _p95;
    private readonly Family _p99;
    private readonly Family _cpu;
    private readonly Family _memory;
    private readonly Family _temperature;
    private readonly Family _inferred;
    private readonly Family _dropped;
    private readonly Family _errors;
    private readonly Family _rollouts;
    private readonly Family _rolloutStage;
    private readonly Family _rolloutDevices;
    private readonly Family _verdicts;
    private readonly Family[] _families;
    private readonly Lock _lock = new();

    public FleetExport(MetricFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        string[] device = ["device"];
        _info = new(factory.CreateGauge("edgefleet_device_info", "1 for each enrolled device, with the model and agent its newest status names",
            ["device", "model", "version", "agent_version"]));
        _online = new(factory.CreateGauge("edgefleet_device_online", "1 while the device's retained status says online, else 0", device));
        _lastSeen = new(factory.CreateGauge("edgefleet_device_last_seen_timestamp_seconds", "When the control plane last heard from the device (Unix time)", device));
        _drift = new(factory.CreateGauge("edgefleet_device_drift_severity", "Newest drift severity of the device: 0 none, 1 warn, 2 alert", device));
        _fps = new(factory.CreateGauge("edgefleet_device_fps", "Inferred frames per second in the newest telemetry of an online device", device));
        // Three gauges rather than a quantile label, which promtool allows on summaries only (as edgefleet_ingest_lag_p50_seconds).
        _p50 = new(factory.CreateGauge("edgefleet_device_latency_p50_seconds", "End-to-end latency p50 in the newest telemetry of an online device", device));
        _p95 = new(factory.CreateGauge("edgefleet_device_latency_p95_seconds", "End-to-end latency p95 in the newest telemetry of an online device", device));
        _p99 = new(factory.CreateGauge("edgefleet_device_latency_p99_seconds", "End-to-end latency p99 in the newest telemetry of an online device", device));
        _cpu = new(factory.CreateGauge("edgefleet_device_cpu_ratio", "Machine CPU use (0-1) in the newest telemetry of an online device", device));
        _memory = new(factory.CreateGauge("edgefleet_device_memory_used_bytes", "Memory in use (total - available) in the newest telemetry of an online device", device));
        _temperature = new(factory.CreateGauge("edgefleet_device_temperature_celsius", "Hottest thermal zone in the newest telemetry of an online device", device));
        _inferred = new(factory.CreateCounter("edgefleet_device_frames_inferred_total", "Frames inferred since the agent started (newest telemetry of an online device)", device));
        _dropped = new(factory.CreateCounter("edgefleet_device_frames_dropped_total", "Frames dropped since the agent started (newest telemetry of an online device)", device));
        _errors = new(factory.CreateCounter("edgefleet_device_errors_total", "Frames that failed since the agent started (newest telemetry of an online device)", device));
        _rollouts = new(factory.CreateGauge("edgefleet_rollouts", "Rollouts by state (all of them, finished ones included)", ["state"]));
        _rolloutStage = new(factory.CreateGauge("edgefleet_rollout_stage", "Current stage index of each active rollout", ["rollout", "model", "version"]));
        _rolloutDevices = new(factory.CreateGauge("edgefleet_rollout_devices", "Devices of each active rollout by their state in it",
            ["rollout", "model", "version", "state"]));
        _verdicts = new(factory.CreateCounter("edgefleet_rollout_verdicts_total", "Quality-gate verdicts recorded, by gate and outcome", ["gate", "outcome"]));
        _families = [_info, _online, _lastSeen, _drift, _fps, _p50, _p95, _p99, _cpu, _memory, _temperature, _inferred, _dropped, _errors, _rollouts, _rolloutStage, _rolloutDevices, _verdicts];
    }

    /// <summary>Reads everything first, then replaces the series under a lock (two scrapes at once must not interleave).</summary>
    public async Task RefreshAsync(DbConnection connection)
    {
        var devices = await connection.QueryAsync("""
            SELECT d.id, d.online, d.model_name, d.model_version, d.agent_version, d.drift_severity, d.last_seen,
                   t.fps, t.p50, t.p95, t.p99, t.inferred, t.dropped, t.errors, t.cpu, t.mem, t.temp
            FROM devices d
            LEFT JOIN telemetry t ON t.device_id = d.id AND t.seq = (SELECT MAX(seq) FROM telemetry WHERE device_id = d.id)
            WHERE d.revoked = 0
            """, r => new DeviceRow(r.GetString(0), r.Bool(1), r.NullableString(2) ?? "", r.NullableString(3) ?? "", r.NullableString(4) ?? "",
                r.NullableString(5), r.NullableLong(6), r.NullableDouble(7), r.NullableDouble(8), r.NullableDouble(9), r.NullableDouble(10),
                r.NullableLong(11), r.NullableLong(12), r.NullableLong(13), r.NullableDouble(14), r.NullableLong(15), r.NullableDouble(16)))
            .ConfigureAwait(false);
        var states = (await connection.QueryAsync("SELECT state, COUNT(*) FROM rollouts GROUP BY state", r => (State: r.GetString(0), Count: r.Long(1)))
            .ConfigureAwait(false)).ToDictionary(s => s.State, s => s.Count, StringComparer.Ordinal);
        var active = string.Join(", ", RolloutStateNames.Where(RolloutStates.IsActive).Select(s => $"'{s}'"));
        var stages = await connection.QueryAsync($"SELECT id, model, version, stage FROM rollouts WHERE state IN ({active})",
            r => (Id: r.GetString(0), Model: r.GetString(1), Version: r.GetString(2), Stage: r.Long(3))).ConfigureAwait(false);
        var rolloutDevices = await connection.QueryAsync($"""
            SELECT r.id, r.model, r.version, rd.state, COUNT(*) FROM rollouts r JOIN rollout_devices rd ON rd.rollout_id = r.id
            WHERE r.state IN ({active}) GROUP BY r.id, r.model, r.version, rd.state
            """, r => (Id: r.GetString(0), Model: r.GetString(1), Version: r.GetString(2), State: r.GetString(3), Count: r.Long(4))).ConfigureAwait(false);
        var verdicts = await connection.QueryAsync("SELECT gate, outcome, COUNT(*) FROM rollout_verdicts GROUP BY gate, outcome",
            r => (Gate: r.GetString(0), Outcome: r.GetString(1), Count: r.Long(2))).ConfigureAwait(false);

        lock (_lock)
        {
            foreach (var d in devices)
            {
                _info.Set(1, d.Id, d.Model, d.Version, d.AgentVersion);
                _online.Set(d.Online ? 1 : 0, d.Id);
                _lastSeen.Set(d.LastSeenMs / 1000.0, d.Id);
                _drift.Set(d.Drift switch { "none" => 0, "warn" => 1, "alert" => 2, _ => null }, d.Id);
                if (!d.Online)
                {
                    continue; // its newest telemetry describes a device that is not running now
                }

                _fps.Set(d.Fps, d.Id);
                _p50.Set(d.P50 / 1000, d.Id);
                _p95.Set(d.P95 / 1000, d.Id);
                _p99.Set(d.P99 / 1000, d.Id);
                _cpu.Set(d.CpuPercent / 100, d.Id);
                _memory.Set(d.Memory, d.Id);
                _temperature.Set(d.Temperature, d.Id);
                _inferred.Set(d.Inferred, d.Id);
                _dropped.Set(d.Dropped, d.Id);
                _errors.Set(d.Errors, d.Id);
            }

            foreach (var state in RolloutStateNames.Union(states.Keys, StringComparer.Ordinal))
            {
                _rollouts.Set(states.GetValueOrDefault(state), state);
            }

            foreach (var r in stages)
            {
                _rolloutStage.Set(r.Stage, r.Id, r.Model, r.Version);
            }

            foreach (var r in rolloutDevices)
            {
                _rolloutDevices.Set(r.Count, r.Id, r.Model, r.Version, r.State);
            }

            foreach (var v in verdicts)
            {
                _verdicts.Set(v.Count, v.Gate, v.Outcome);
            }

            foreach (var family in _families)
            {
                family.Sweep();
            }
        }
    }

    private sealed record DeviceRow(string Id, bool Online, string Model, string Version, string AgentVersion, string? Drift, long? LastSeenMs,
        double? Fps, double? P50, double? P95, double? P99, long? Inferred, long? Dropped, long? Errors, double? CpuPercent, long? Memory, double? Temperature);

    /// <summary>
    /// One metric's series as of the last refresh: those not set again are removed. A counter set to a smaller value
    /// (the agent restarted, its counters began again) is removed and recreated, which Prometheus reads as a reset.
    /// </summary>
    private sealed class Family(Collector collector)
    {
        private Dictionary<string, string[]> _previous = new(StringComparer.Ordinal);
        private Dictionary<string, string[]> _current = new(StringComparer.Ordinal);

        public void Set(double? value, params string[] labels)
        {
            if (value is not { } v || !double.IsFinite(v))
            {
                return;
            }

            _current[string.Join('\u001f', labels)] = labels;
            switch (collector)
            {
                case Gauge gauge:
                    gauge.WithLabels(labels).Set(v);
                    break;
                case Counter counter:
                    if (v < counter.WithLabels(labels).Value)
                    {
                        counter.RemoveLabelled(labels);
                    }

                    counter.WithLabels(labels).IncTo(v);
                    break;
            }
        }

        public void Sweep()
        {
            foreach (var (key, labels) in _previous)
            {
                if (!_current.ContainsKey(key))
                {
                    switch (collector)
                    {
                        case Gauge gauge:
                            gauge.RemoveLabelled(labels);
                            break;
                        case Counter counter:
                            counter.RemoveLabelled(labels);
                            break;
                    }
                }
            }

            (_previous, _current) = (_current, _previous);
            _current.Clear();
        }
    }
}
