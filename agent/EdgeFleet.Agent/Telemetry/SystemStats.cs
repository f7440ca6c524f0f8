using System.Diagnostics;
using System.Globalization;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>
/// Host health from procfs and sysfs: CPU (whole machine and this process, over the interval between calls),
/// memory, resident set, the hottest thermal zone, and on a Jetson the GPU load. Missing files give nulls.
/// </summary>
public sealed class SystemStats
{
    private static readonly string[] GpuLoadFiles = ["/sys/devices/gpu.0/load", "/sys/devices/platform/gpu.0/load", "/sys/devices/platform/17000000.ga10b/load", "/sys/devices/platform/17000000.gv11b/load"];

    private readonly string _procRoot;
    private readonly string _sysRoot;
    private (long Busy, long Total)? _lastCpu;
    private (TimeSpan Cpu, long Ticks)? _lastProcess;

    public SystemStats(string procRoot = "/proc", string sysRoot = "/sys")
    {
        _procRoot = procRoot;
        _sysRoot = sysRoot;
    }

    public SystemHealth Read()
    {
        var (total, available) = Memory();
        return new SystemHealth
        {
            CpuPercent = Cpu(),
            ProcessCpuPercent = ProcessCpu(),
            MemTotalBytes = total,
            MemUsedBytes = total is { } t && available is { } a ? t - a : null,
            RssBytes = Rss(),
            ManagedHeapBytes = GC.GetGCMemoryInfo().HeapSizeBytes,
            GcCount = GC.CollectionCount(0),
            TemperatureC = Temperature(),
            GpuPercent = Gpu(),
        };
    }

    private double? Cpu()
    {
        var line = ReadLines(Path.Combine(_procRoot, "stat"))?.FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
        if (line is null)
        {
            return null;
        }

        var v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var idle = v[3] + (v.Length > 4 ? v[4] : 0); // idle + iowait
        var total = v.Take(Math.Min(8, v.Length)).Sum(); // user … steal (guest time is already in user)
        var previous = _lastCpu;
        _lastCpu = (total - idle, total);
        if (previous is not { } p || total <= p.Total)
        {
            return null;
        }

        return Math.Round(100.0 * (total - idle - p.Busy) / (total - p.Total), 1);
    }

    private double? ProcessCpu()
    {
        TimeSpan cpu;
        using (var self = Process.GetCurrentProcess())
        {
            cpu = self.TotalProcessorTime;
        }

        var now = Stopwatch.GetTimestamp();
        var previous = _lastProcess;
        _lastProcess = (cpu, now);
        if (previous is not { } p || now <= p.Ticks)
        {
            return null;
        }

        return Math.Round(100.0 * (cpu - p.Cpu).TotalSeconds / Stopwatch.GetElapsedTime(p.Ticks, now).TotalSeconds, 1);
    }

    /// <summary>MemAvailable from meminfo, in bytes; null where it cannot be read.</summary>
    public long? MemAvailableBytes() => Memory().Available;

    private (long? Total, long? Available) Memory()
    {
        var lines = ReadLines(Path.Combine(_procRoot, "meminfo"));
        return lines is null ? (null, null) : (Kib(lines, "MemTotal:"), Kib(lines, "MemAvailable:"));
    }

    private long? Rss()
    {
        var lines = ReadLines(Path.Combine(_procRoot, "self", "status"));
        return lines is null ? null : Kib(lines, "VmRSS:");
    }

    private double? Temperature()
    {
        var thermal = Path.Combine(_sysRoot, "class", "thermal");
        if (!Directory.Exists(thermal))
        {
            return null;
        }

        double? max = null;
        foreach (var zone in Directory.EnumerateDirectories(thermal, "thermal_zone*"))
        {
            if (ReadLong(Path.Combine(zone, "temp")) is { } milli && milli > -50_000 && milli < 200_000)
            {
                max = Math.Max(max ?? double.MinValue, milli / 1000.0);
            }
        }

        return max;
    }

    private double? Gpu()
    {
        foreach (var file in GpuLoadFiles)
        {
            var path = Path.Combine(_sysRoot, file["/sys/".Length..]);
            if (ReadLong(path) is { } load)
            {
                return load / 10.0; // per mille
            }
        }

        return null;
    }

    private static long? Kib(string[] lines, string key)
    {
        var line = lines.FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
        var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts is { Length: >= 2 } && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : null;
    }

    private static string[]? ReadLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long? ReadLong(string path)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
