using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- --filter '*'
// Every benchmark class has a baseline measured in the same run; read the Ratio column, not the absolute times.
BenchmarkSwitcher.FromAssembly(typeof(EdgeFleet.Benchmarks.PreprocessBenchmarks).Assembly).Run(args);
