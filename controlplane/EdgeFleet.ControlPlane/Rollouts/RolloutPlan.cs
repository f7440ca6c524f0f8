using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Fleet;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>One stage of a plan, every default filled in.</summary>
public sealed record StagePlan(string Kind, double? Percent, int? Count, int MinDevices, double BakeSeconds, bool Approval)
{
    public const string Live = "live";
    public const string Shadow = "shadow";
}

/// <summary>
/// A rollout as created: the request with every default filled in and checked, stored as JSON with the rollout so
/// that the engine after a restart works from exactly what was asked.
/// </summary>
public sealed record RolloutPlan
{
    public required string Model { get; init; }

    public required string Version { get; init; }

    public IReadOnlyList<string> Selector { get; init; } = [];

    public IReadOnlyList<string> Devices { get; init; } = [];

    public required IReadOnlyList<StagePlan> Stages { get; init; }

    public IReadOnlyList<string> Gates { get; init; } = [];

    public IReadOnlyList<string> DryRunGates { get; init; } = [];

    public string OnFailure { get; init; } = FailurePolicies.Pause;

    public double DeadlineSeconds { get; init; } = 1800;

    public double RatePerMinute { get; init; } = 1000;

    public double RateGrowthFactor { get; init; } = 1;

    public int RateGrowthEvery { get; init; } = 100;

    public bool ApproveEach { get; init; }

    public bool Promote { get; init; }

    public double MaxFailureShare { get; init; } = 0.1;

    public int MinFinished { get; init; } = 3;

    public double Alpha { get; init; } = 0.05;

    public int MinGateDevices { get; init; } = 5;

    public IReadOnlyDictionary<string, double> Margins { get; init; } = new Dictionary<string, double>();

    public string StratifyBy { get; init; } = "hw";

    public ProbationOverrides? Probation { get; init; }

    /// <summary>Where devices fetch artifacts: the control plane's public URL, or the one the rollout was created through.</summary>
    public required string BaseUrl { get; init; }

    /// <summary>Index of the first live stage (1 after a shadow stage, else 0).</summary>
    public int FirstLiveStage => Stages.Count > 0 && Stages[0].Kind == StagePlan.Shadow ? 1 : 0;

    /// <summary>Whether a gate is acted on (not only shown).</summary>
    public bool IsDryRun(string gate) => DryRunGates.Contains(gate, StringComparer.Ordinal);

    public double Margin(string gate) => Margins.TryGetValue(gate, out var m) ? m : RolloutRules.DefaultMargins[gate];
}

public static class FailurePolicies
{
    public const string Pause = "pause";
    public const string Rollback = "rollback";
}

/// <summary>Gate names.</summary>
public static class GateNames
{
    public const string Delivery = "delivery";
    public const string Latency = "latency";
    public const string Errors = "errors";
    public const string NonFinite = "nan";
    public const string Confidence = "confidence";
    public const string Drift = "drift";
    public const string ShadowAgreement = "shadow";

    public static readonly IReadOnlyList<string> Quality = [Latency, Errors, NonFinite, Confidence, Drift, ShadowAgreement];
}

/// <summary>The rules of a rollout that need no database: defaults, validation, device order, stage sizes.</summary>
public static class RolloutRules
{
    public static readonly IReadOnlyDictionary<string, double> DefaultMargins = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [GateNames.Latency] = 0.10,      // 10 % slower p95
        [GateNames.Errors] = 0.01,       // one more failed frame in a hundred
        [GateNames.NonFinite] = 0.001,   // one more NaN/Inf output in a thousand
        [GateNames.Confidence] = 0.05,   // 5 % lower mean confidence
        [GateNames.Drift] = 0.10,        // 10 points more of drift windows at warn or worse
        [GateNames.ShadowAgreement] = 0.10, // agreement with the live model more than 10 points below perfect
    };

    private static readonly IReadOnlyList<StagePlan> DefaultStages =
    [
        new(StagePlan.Live, 1, null, 5, 600, false),
        new(StagePlan.Live, 10, null, 5, 600, false),
        new(StagePlan.Live, 50, null, 5, 600, false),
        new(StagePlan.Live, 100, null, 5, 600, false),
    ];

    /// <summary>Fills in the defaults and checks every field; <see cref="InvalidInputException"/> names the one that is wrong.</summary>
    public static RolloutPlan Resolve(RolloutRequest request, string baseUrl)
    {
        ArgumentNullException.ThrowIfNull(request);
        var model = Required(request.Model, "model", "the name of a registered model");
        var version = Required(request.Version, "version", "the version of that model to roll out");

        var selector = List(request.Selector, "selector", 32);
        for (var i = 0; i < selector.Count; i++)
        {
            if (!DeviceRegistry.IsValidTag(selector[i]))
            {
                throw new InvalidInputException($"selector[{i}]", $"'{Quote(selector[i])}' is not a tag (key or key=value; group=NAME for a group)");
            }
        }

        var devices = List(request.Devices, "devices", 100_000);
        for (var i = 0; i < devices.Count; i++)
        {
            if (!DeviceRegistry.IsValidDeviceId(devices[i]))
            {
                throw new InvalidInputException($"devices[{i}]", $"'{Quote(devices[i])}' is not a device id");
            }
        }

        var shadowSeconds = Seconds(request.ShadowSeconds, "shadowSeconds", 0, 7 * 86400) ?? 0;
        var stages = new List<StagePlan>();
        if (request.Stages is { } requested)
        {
            if (requested.Count is 0 or > 20)
            {
                throw new InvalidInputException("stages", "must hold 1 to 20 stages, e.g. [{\"percent\": 1}, {\"percent\": 100}]");
            }

            double lastPercent = 0;
            var lastCount = 0;
            for (var i = 0; i < requested.Count; i++)
            {
                var s = requested[i] ?? throw new InvalidInputException($"stages[{i}]", "must be a stage object, not null");
                if ((s.Percent is null) == (s.Count is null))
                {
                    throw new InvalidInputException($"stages[{i}]", "give either percent (cumulative share of the devices) or count (cumulative number of devices)");
                }

                if (s.Percent is { } p && (!double.IsFinite(p) || p <= 0 || p > 100 || p < lastPercent))
                {
                    throw new InvalidInputException($"stages[{i}].percent", $"must be more than 0, at most 100 and not below the previous stage's ({lastPercent.ToString(CultureInfo.InvariantCulture)})");
                }

                if (s.Count is { } c && (c < 1 || c < lastCount))
                {
                    throw new InvalidInputException($"stages[{i}].count", $"must be at least 1 and not below the previous stage's ({lastCount})");
                }

                if (s.MinDevices is < 0 or > 1_000_000)
                {
                    throw new InvalidInputException($"stages[{i}].minDevices", "must be between 0 and 1000000");
                }

                lastPercent = s.Percent ?? lastPercent;
                lastCount = s.Count ?? lastCount;
                stages.Add(new StagePlan(StagePlan.Live, s.Percent, s.Count, s.MinDevices ?? 5,
                    Seconds(s.BakeSeconds, $"stages[{i}].bakeSeconds", 0, 30 * 86400) ?? 600, s.Approval ?? false));
            }
        }
        else
        {
            stages.AddRange(DefaultStages);
        }

        if (request.ApproveEach)
        {
            stages = stages.Select((s, i) => i == 0 ? s : s with { Approval = true }).ToList();
        }

        var gates = request.Gates is null
            ? GateNames.Quality.Where(g => g != GateNames.ShadowAgreement).ToList()
            : List(request.Gates, "gates", 10).Select((g, i) => KnownGate(g, $"gates[{i}]")).Distinct(StringComparer.Ordinal).ToList();
        if (shadowSeconds > 0)
        {
            stages.Insert(0, new StagePlan(StagePlan.Shadow, stages[0].Percent, stages[0].Count, stages[0].MinDevices, shadowSeconds, false));
            if (!gates.Contains(GateNames.ShadowAgreement))
            {
                gates.Add(GateNames.ShadowAgreement);
            }
        }
        else if (gates.Contains(GateNames.ShadowAgreement))
        {
            throw new InvalidInputException("gates", "shadow agreement is judged only in a shadow stage: give shadowSeconds as well, or leave the gate out");
        }

        var dryRun = request.DryRunGates is null ? [] : List(request.DryRunGates, "dryRunGates", 10).Select((g, i) => g == GateNames.Delivery ? g : KnownGate(g, $"dryRunGates[{i}]")).ToList();
        var live = gates.Where(g => g != GateNames.ShadowAgreement).ToList();
        if (live.Count > 0 && stages.Where(s => s.Kind == StagePlan.Live).Any(s => s.BakeSeconds <= 0))
        {
            throw new InvalidInputException("stages", $"a stage without bake time cannot judge the quality gates ({string.Join(", ", live)}); give every stage bakeSeconds > 0, or gates: [] to judge delivery only");
        }

        var onFailure = request.OnFailure ?? FailurePolicies.Pause;
        if (onFailure is not (FailurePolicies.Pause or FailurePolicies.Rollback))
        {
            throw new InvalidInputException("onFailure", $"'{Quote(onFailure)}' is not a policy: pause (stop and wait for an operator) or rollback (send updated devices their previous version)");
        }

        var margins = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (gate, margin) in request.Margins ?? new Dictionary<string, double>())
        {
            KnownGate(gate, $"margins.{gate}");
            if (!double.IsFinite(margin) || margin < 0 || margin > 10)
            {
                throw new InvalidInputException($"margins.{gate}", "must be a number between 0 and 10 (latency 0.1 = 10 % slower tolerated)");
            }

            margins[gate] = margin;
        }

        var stratify = request.StratifyBy ?? "hw";
        if (stratify.Length > 0 && !DeviceRegistry.IsValidTag(stratify))
        {
            throw new InvalidInputException("stratifyBy", $"'{Quote(stratify)}' is not a tag key");
        }

        var rate = request.RatePerMinute ?? 1000;
        if (!double.IsFinite(rate) || rate <= 0 || rate > 10_000_000)
        {
            throw new InvalidInputException("ratePerMinute", "must be more than 0 and at most 10000000 devices per minute");
        }

        var growth = request.RateGrowthFactor ?? 1;
        if (!double.IsFinite(growth) || growth < 1 || growth > 100)
        {
            throw new InvalidInputException("rateGrowthFactor", "must be between 1 (constant rate) and 100");
        }

        if (request.RateGrowthEvery is < 1)
        {
            throw new InvalidInputException("rateGrowthEvery", "must be at least 1 succeeded device");
        }

        var maxFailure = request.MaxFailureShare ?? 0.1;
        if (!double.IsFinite(maxFailure) || maxFailure is < 0 or > 1)
        {
            throw new InvalidInputException("maxFailureShare", "must be between 0 and 1");
        }

        if (request.MinFinished is < 1 or > 1_000_000)
        {
            throw new InvalidInputException("minFinished", "must be between 1 and 1000000");
        }

        var alpha = request.Alpha ?? 0.05;
        if (!double.IsFinite(alpha) || alpha is <= 0 or >= 0.5)
        {
            throw new InvalidInputException("alpha", "must be more than 0 and below 0.5 (0.05: at most one false alarm in twenty rollouts of an unchanged model)");
        }

        if (request.MinGateDevices is < 2 or > 100_000)
        {
            throw new InvalidInputException("minGateDevices", "must be between 2 and 100000");
        }

        return new RolloutPlan
        {
            Model = model,
            Version = version,
            Selector = selector.Distinct(StringComparer.Ordinal).ToList(),
            Devices = devices.Distinct(StringComparer.Ordinal).ToList(),
            Stages = stages,
            Gates = gates,
            DryRunGates = dryRun,
            OnFailure = onFailure,
            DeadlineSeconds = Seconds(request.DeadlineSeconds, "deadlineSeconds", 1, 30 * 86400) ?? 1800,
            RatePerMinute = rate,
            RateGrowthFactor = growth,
            RateGrowthEvery = request.RateGrowthEvery ?? 100,
            ApproveEach = request.ApproveEach,
            Promote = request.Promote,
            MaxFailureShare = maxFailure,
            MinFinished = request.MinFinished ?? 3,
            Alpha = alpha,
            MinGateDevices = request.MinGateDevices ?? 5,
            Margins = margins,
            StratifyBy = stratify,
            Probation = request.Probation,
            BaseUrl = baseUrl.TrimEnd('/'),
        };
    }

    /// <summary>
    /// A device's place in a rollout: the SHA-256 of rollout id and device id, so the order is the same after every
    /// restart, on every replica, and independent of enrollment order (a stage is not all one site's devices).
    /// </summary>
    public static string OrderKey(string rolloutId, string deviceId) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(rolloutId + "/" + deviceId)));

    /// <summary>
    /// Cumulative device counts at the end of each stage for <paramref name="total"/> devices: a percentage rounded up,
    /// at least the stage's minimum, never more than the fleet, never fewer than the stage before. A shadow stage
    /// covers the first live stage's devices.
    /// </summary>
    public static IReadOnlyList<int> Targets(IReadOnlyList<StagePlan> stages, int total)
    {
        ArgumentNullException.ThrowIfNull(stages);
        var targets = new int[stages.Count];
        var previous = 0;
        for (var i = 0; i < stages.Count; i++)
        {
            var s = stages[i];
            var wanted = s.Count ?? (int)Math.Ceiling(s.Percent!.Value / 100.0 * total - 1e-9);
            var target = Math.Clamp(Math.Max(wanted, s.MinDevices), 0, total);
            if (s.Kind == StagePlan.Shadow)
            {
                targets[i] = target;
                continue;
            }

            previous = targets[i] = Math.Max(target, previous);
        }

        // The last stage takes every remaining device only if it asks for 100 %; a shadow stage mirrors the first live stage.
        for (var i = 0; i < stages.Count; i++)
        {
            if (stages[i].Kind == StagePlan.Shadow && i + 1 < stages.Count)
            {
                targets[i] = targets[i + 1];
            }
        }

        return targets;
    }

    /// <summary>Devices notified per minute once <paramref name="succeeded"/> devices succeeded.</summary>
    public static double Rate(RolloutPlan plan, int succeeded)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.RateGrowthFactor <= 1)
        {
            return plan.RatePerMinute;
        }

        var steps = succeeded / Math.Max(1, plan.RateGrowthEvery);
        return Math.Min(plan.RatePerMinute * Math.Pow(plan.RateGrowthFactor, Math.Min(steps, 60)), 10_000_000);
    }

    private static string KnownGate(string gate, string field) =>
        GateNames.Quality.Contains(gate, StringComparer.Ordinal)
            ? gate
            : throw new InvalidInputException(field, $"'{Quote(gate)}' is not a quality gate: {string.Join(", ", GateNames.Quality)} (the delivery gate always runs)");

    private static string Required(string? value, string field, string what) =>
        string.IsNullOrWhiteSpace(value) ? throw new InvalidInputException(field, $"is required: {what}") : value;

    private static List<string> List(IReadOnlyList<string?>? list, string field, int max)
    {
        if (list is null)
        {
            return [];
        }

        if (list.Count > max)
        {
            throw new InvalidInputException(field, $"at most {max} entries (got {list.Count})");
        }

        var result = new List<string>(list.Count);
        for (var i = 0; i < list.Count; i++)
        {
            result.Add(list[i] ?? throw new InvalidInputException($"{field}[{i}]", "must be a string, not null"));
        }

        return result;
    }

    private static double? Seconds(double? value, string field, double min, double max) =>
        value is { } v && (!double.IsFinite(v) || v < min || v > max)
            ? throw new InvalidInputException(field, $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)} seconds")
            : value;

    private static string Quote(string value) => value.Length > 100 ? value[..100] + "…" : value;
}
