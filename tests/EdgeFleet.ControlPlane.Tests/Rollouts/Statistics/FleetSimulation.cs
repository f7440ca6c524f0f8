using EdgeFleet.ControlPlane.Rollouts.Statistics;

namespace EdgeFleet.ControlPlane.Tests.Rollouts.Statistics;

/// <summary>
/// Seeded telemetry of one rollout stage: each device has a baseline window of ten intervals on the previous model and
/// ten intervals since the stage started; look k sees the aggregate over the first k of them, so looks are correlated as
/// they are in production. Every interval also carries a time effect common to all devices (night, scenes).
/// </summary>
internal static class FleetSimulation
{
    public const int Intervals = 10;

    /// <summary>The devices of each group as seen at look k = 1..10 (index k − 1).</summary>
    public sealed record Stage(IReadOnlyList<DeviceSample>[] Treated, IReadOnlyList<DeviceSample>[] Control);

    /// <summary>
    /// A positive level per device (baseline drawn by <paramref name="baseline"/> for a stratum scale), within-device noise
    /// ±5 % per interval, a common time effect ±<paramref name="timeEffect"/>; treated devices' level times
    /// <paramref name="treatedFactor"/> after the update.
    /// </summary>
    public static Stage Levels(Random random, int treated, int control, double treatedFactor, Func<Random, double, double> baseline,
        IReadOnlyList<(string Stratum, double Scale)> strata, double timeEffect = 0.1)
    {
        var time = Enumerable.Range(0, Intervals).Select(_ => 1 + Uniform(random, -timeEffect, timeEffect)).ToArray();
        return Generate(random, treated, control, strata, (isTreated, scale, looks) =>
        {
            var level = baseline(random, scale);
            var before = Enumerable.Range(0, Intervals).Average(_ => level * (1 + Uniform(random, -0.05, 0.05)));
            var sum = 0.0;
            for (var k = 0; k < Intervals; k++)
            {
                sum += level * time[k] * (isTreated ? treatedFactor : 1) * (1 + Uniform(random, -0.05, 0.05));
                looks[k] = (before, sum / (k + 1));
            }
        });
    }

    /// <summary>p95 latency: lognormal(σ = 0.3) around 40 ms times the stratum scale.</summary>
    public static double Latency(Random random, double scale) => scale * 40 * Math.Exp(0.3 * Gaussian(random));

    /// <summary>Mean confidence around 0.75.</summary>
    public static double Confidence(Random random, double scale) => Math.Clamp(scale * (0.75 + 0.08 * Gaussian(random)), 0.3, 0.95);

    /// <summary>
    /// Error shares of 200 frames per interval: 80 % of the devices never err, the others at a rate up to 2 %; treated
    /// devices err <paramref name="extraRate"/> more after the update. Most device values are exactly 0: many ties.
    /// </summary>
    public static Stage ErrorShares(Random random, int treated, int control, double extraRate)
    {
        const int Frames = 200;
        return Generate(random, treated, control, [("", 1.0)], (isTreated, _, looks) =>
        {
            var rate = random.NextDouble() < 0.8 ? 0 : Uniform(random, 0, 0.02);
            var beforeErrors = Enumerable.Range(0, Intervals).Sum(_ => Poisson(random, Frames * rate));
            var before = beforeErrors / (double)(Intervals * Frames);
            var errors = 0;
            for (var k = 0; k < Intervals; k++)
            {
                errors += Poisson(random, Frames * (rate + (isTreated ? extraRate : 0)));
                looks[k] = (before, errors / (double)((k + 1) * Frames));
            }
        });
    }

    /// <summary>Judges looks t = 0.1, 0.2, …, 1.0, carrying the spent alpha, until the first Fail.</summary>
    public static GateVerdict RunLooks(GateSpec spec, Stage stage)
    {
        var spent = 0.0;
        GateVerdict? verdict = null;
        for (var k = 1; k <= Intervals; k++)
        {
            verdict = QualityGate.Judge(spec, stage.Treated[k - 1], stage.Control[k - 1], k / (double)Intervals, spent);
            spent = verdict.AlphaSpent;
            if (verdict.Outcome == GateOutcome.Fail)
            {
                break;
            }
        }

        return verdict!;
    }

    private static Stage Generate(Random random, int treated, int control, IReadOnlyList<(string Stratum, double Scale)> strata,
        Action<bool, double, (double Before, double After)[]> device)
    {
        var treatedLooks = Enumerable.Range(0, Intervals).Select(_ => new List<DeviceSample>(treated)).ToArray();
        var controlLooks = Enumerable.Range(0, Intervals).Select(_ => new List<DeviceSample>(control)).ToArray();
        var looks = new (double Before, double After)[Intervals];
        for (var i = 0; i < treated + control; i++)
        {
            var isTreated = i < treated;
            var (stratum, scale) = strata[random.Next(strata.Count)];
            device(isTreated, scale, looks);
            var id = $"cam-{i:000}";
            for (var k = 0; k < Intervals; k++)
            {
                (isTreated ? treatedLooks : controlLooks)[k].Add(new DeviceSample(id, stratum, looks[k].Before, looks[k].After));
            }
        }

        return new Stage(treatedLooks.ToArray<IReadOnlyList<DeviceSample>>(), controlLooks.ToArray<IReadOnlyList<DeviceSample>>());
    }

    private static double Uniform(Random random, double low, double high) => low + (high - low) * random.NextDouble();

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static int Poisson(Random random, double mean)
    {
        var limit = Math.Exp(-mean);
        var k = 0;
        for (var p = random.NextDouble(); p > limit; p *= random.NextDouble())
        {
            k++;
        }

        return k;
    }
}
