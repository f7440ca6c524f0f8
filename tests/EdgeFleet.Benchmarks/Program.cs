using BenchmarkDotNet.Running;
using EdgeFleet.Benchmarks;

// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- --filter '*'
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- outbox [--messages N] [--size BYTES]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- swapcost [--swaps N] [--frames N]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- ingest [--devices N] [--messages M] [--db sqlite|postgres|both]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- otaswap [--rounds 5]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- sim [--devices 10000] [--steady 30] [--telemetry 5]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- rollout [--devices 1000,10000] [--json]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- dashboard [--devices 1000] [--loads 10] [--updates 20]
// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- screenshots --server URL --token TOKEN [--out docs/screenshots]
// Every benchmark has a baseline measured in the same run; read the ratio, not the absolute times.
if (args.Length > 0 && args[0] == "outbox")
{
    return await OutboxBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "swapcost")
{
    return await SwapCostBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "otaswap" && OperatingSystem.IsLinux())
{
    return await OtaSwapBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "sim" && OperatingSystem.IsLinux())
{
    return await SimBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "ingest" && OperatingSystem.IsLinux())
{
    return await IngestBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "rollout" && OperatingSystem.IsLinux())
{
    return await RolloutBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "dashboard" && OperatingSystem.IsLinux())
{
    return await DashboardBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "screenshots" && OperatingSystem.IsLinux())
{
    return await DashboardScreenshots.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(PreprocessBenchmarks).Assembly).Run(args);
return 0;
