using System.Globalization;

namespace EdgeFleet.Agent.Capture;

/// <summary>CPU time of another process, read from /proc/PID/stat (utime + stime).</summary>
public static class ProcessCpu
{
    /// <summary>USER_HZ: the unit of /proc times, fixed at 100 by the Linux user-space ABI.</summary>
    private const double TicksPerSecond = 100;

    public static TimeSpan? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may contain spaces: fields restart after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds((utime + stime) / TicksPerSecond);
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
