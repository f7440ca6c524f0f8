using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// The fixed figures of one simulated device, drawn from its own generator seeded by (seed, device id): the same seed
/// gives the same fleet, and adding devices does not change the existing ones. Baseline latencies are lognormal
/// (median 8 ms, σ 0.3) times a factor of the <c>hw=</c> tag; the tail (p95, p99 over p50), confidence, CPU, memory
/// and temperature differ per device too.
/// </summary>
internal sealed class DeviceProfile
{
    /// <summary>Relative speed of known hardware tags (1 = the median device).</summary>
    private static readonly Dictionary<string, double> Hardware = new(StringComparer.OrdinalIgnoreCase)
    {
        ["jetson-nano"] = 3.5,
        ["nano"] = 3.5,
        ["rpi"] = 6,
        ["rpi4"] = 6,
        ["rpi5"] = 3,
        ["xavier"] = 1.4,
        ["xavier-nx"] = 1.6,
        ["orin"] = 0.5,
        ["orin-nano"] = 0.9,
        ["x86"] = 0.8,
        ["nuc"] = 0.8,
        ["gpu"] = 0.25,
    };

    private DeviceProfile(int seed)
    {
        Seed = seed;
    }

    /// <summary>The device's own seed, derived from the fleet seed and its id.</summary>
    public int Seed { get; }

    /// <summary>End-to-end p50 latency of the median model version on this device, ms.</summary>
    public double BaseLatencyMs { get; private init; }

    /// <summary>p95 / p50.</summary>
    public double P95Ratio { get; private init; }

    /// <summary>p99 / p95.</summary>
    public double P99Ratio { get; private init; }

    /// <summary>Mean top-1 confidence of a healthy model on this device's scene.</summary>
    public double Confidence { get; private init; }

    public double CpuPercent { get; private init; }

    public long MemTotalBytes { get; private init; }

    public double MemUsedShare { get; private init; }

    public double TemperatureC { get; private init; }

    /// <summary>Population stability index of a healthy drift report (small).</summary>
    public double BasePsi { get; private init; }

    public static DeviceProfile Create(int fleetSeed, string deviceId, IEnumerable<string> tags)
    {
        var seed = SeedOf(fleetSeed, deviceId);
        var random = new Random(seed);
        var hw = tags.Select(t => t.Split('=', 2)).Where(p => p.Length == 2 && p[0] == "hw").Select(p => p[1]).FirstOrDefault();
        var speed = hw is not null && Hardware.TryGetValue(hw, out var factor) ? factor : 1;
        return new DeviceProfile(seed)
        {
            BaseLatencyMs = 8 * speed * Math.Exp(0.3 * Normal(random)),
            P95Ratio = 1.2 + (0.25 * random.NextDouble()),
            P99Ratio = 1.1 + (0.2 * random.NextDouble()),
            Confidence = Math.Clamp(0.8 + (0.04 * Normal(random)), 0.5, 0.97),
            CpuPercent = 25 + (20 * random.NextDouble()),
            MemTotalBytes = (random.Next(3) switch { 0 => 4L, 1 => 8L, _ => 16L }) << 30,
            MemUsedShare = 0.3 + (0.3 * random.NextDouble()),
            TemperatureC = 42 + (15 * random.NextDouble()),
            BasePsi = 0.005 + (0.03 * random.NextDouble()),
        };
    }

    /// <summary>A stable seed for (fleet seed, device id): the first 4 bytes of their SHA-256.</summary>
    public static int SeedOf(int fleetSeed, string deviceId) =>
        BinaryPrimitives.ReadInt32LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes($"{fleetSeed}/{deviceId}")));

    /// <summary>A standard normal draw (Box–Muller).</summary>
    public static double Normal(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
