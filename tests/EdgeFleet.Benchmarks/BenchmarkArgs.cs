using System.Globalization;

namespace EdgeFleet.Benchmarks;

/// <summary>The few <c>--name value</c> options of the non-BenchmarkDotNet modes (outbox, ingest).</summary>
internal static class BenchmarkArgs
{
    public static string? Value(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>A positive integer option, or <paramref name="fallback"/> when absent or not a positive integer.</summary>
    public static int Positive(string[] args, string name, int fallback) =>
        Value(args, name) is { } v && int.TryParse(v, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : fallback;
}
