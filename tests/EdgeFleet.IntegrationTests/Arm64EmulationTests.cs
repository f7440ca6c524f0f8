using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;
using Microsoft.Data.Sqlite;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The agent as an arm64 device gets it (<c>dotnet publish -r linux-arm64 --self-contained</c>), run on this x64
/// machine under qemu-user. <c>deploy/bootstrap.sh --arm64-emulation</c> (test.sh asks for it) provides
/// <c>qemu-aarch64-static</c> and the arm64 C/C++ runtime under <c>.edgefleet/</c>; qemu is called explicitly, so
/// binfmt_misc need not be registered. The agent's capture child (setpriv, ffmpeg: host x64 binaries) is exec'd by
/// the emulated agent and runs natively. On an arm64 machine the same tests run the binary directly.
/// </summary>
[Trait("Category", "Integration")]
[Collection(nameof(Arm64EmulationTests))]
public sealed class Arm64EmulationTests(Arm64Agent agent) : IClassFixture<Arm64Agent>
{
    private const ushort ElfMachineAarch64 = 183;
    private const ushort ElfMachineX8664 = 62;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public void Publish_LinuxArm64_BinaryAndNativeLibrariesAreAarch64()
    {
        Assert.Equal(ElfMachineAarch64, ElfMachine(Path.Combine(agent.PublishDirectory, "edgefleet-agent")));
        Assert.Equal(ElfMachineAarch64, ElfMachine(Path.Combine(agent.PublishDirectory, "libcoreclr.so")));
        Assert.Equal(ElfMachineAarch64, ElfMachine(Path.Combine(agent.PublishDirectory, "libe_sqlite3.so")));
        Assert.Equal(ElfMachineAarch64, ElfMachine(agent.OrtLibrary));
    }

    [Fact]
    public async Task Version_UnderEmulation_PrintsTheInformationalVersion()
    {
        var (code, stdout, stderr) = await agent.RunAsync(null, Timeout, "--version");

        Assert.True(code == 0, $"exit code {code}: {stderr}");
        // The same Version as the agent this test was built against, plus the commit it was built from.
        var version = stdout.Trim();
        var expected = typeof(EdgeFleet.Agent.Commands.BenchCommand).Assembly.GetName().Version!;
        Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"{expected.Major}.{expected.Minor}.{expected.Build}"), version, StringComparison.Ordinal);
        Assert.Matches(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9a-f]{7,40})?$", version);
    }

    [Fact]
    public async Task Bench_UnderEmulation_ReportsAValidRunAsJson()
    {
        var model = TestModels.Get(TestModels.SmallClassifier);
        var manifest = ManifestFile.Load(ManifestFile.PathFor(model));

        var (code, stdout, stderr) = await agent.RunAsync(null, Timeout,
            "bench", "--model", model, "--source", "testsrc://160x120@30", "--frames", "20", "--warmup", "3", "--rounds", "2",
            "--threads", "1", "--json");

        Assert.True(code == 0, $"exit code {code}: {stderr}");
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal($"{manifest.Name}@{manifest.Version}", root.GetProperty("model").GetString());
        Assert.Equal("CPU", root.GetProperty("provider").GetString());
        Assert.Equal("passed", root.GetProperty("selfTest").GetString());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("ortVersion").GetString()));
        Assert.Equal(20, root.GetProperty("frames").GetInt32());
        Assert.Equal(2, root.GetProperty("rounds").GetInt32());
        Assert.Equal(0, root.GetProperty("framesDropped").GetInt64());
        Assert.True(root.GetProperty("pipeline").GetProperty("fps").GetDouble() > 0);
        Assert.True(root.GetProperty("ortOnly").GetProperty("fps").GetDouble() > 0);
        Assert.True(root.GetProperty("pipelineToOrtRatio").GetDouble() > 0);
        Assert.True(root.GetProperty("pipeline").GetProperty("latencyMs").GetProperty("p50").GetDouble() > 0);
        // ffmpeg delivered the frames; its CPU time was read from /proc, so it ran as a process of its own.
        Assert.Equal(JsonValueKind.Number, root.GetProperty("cpuMsPerFrame").GetProperty("capture").ValueKind);
    }

    [Fact]
    public async Task Run_UnderEmulation_OpensTheOutboxAndCapturesThroughNativeFfmpeg()
    {
        using var dir = new TempDirectory();
        var config = dir.File("agent.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "Agent": {
                "DeviceId": "arm64-01",
                "StateDirectory": "{{dir.Path}}",
                "Source": { "Uri": "testsrc://160x120@10" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
                "Inference": { "IntraOpThreads": 1 },
                "Pipeline": { "ConsoleOutput": true, "ConsoleIntervalSeconds": 0.5 }
              }
            }
            """);

        using var run = agent.Start(null, "run", "--config", config);
        await run.UntilAsync(() => run.Stdout.Contains("class-", StringComparison.Ordinal), "results are printed", Timeout);

        // The emulated agent exec'd setpriv → setsid → ffmpeg: the host's x64 ffmpeg, running natively (not under qemu).
        var capture = Assert.Single(run.Children());
        var captureExe = File.ResolveLinkTarget($"/proc/{capture}/exe", returnFinalTarget: true)?.FullName ?? "";
        Assert.Equal("ffmpeg", Path.GetFileName(captureExe));
        Assert.Equal(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? ElfMachineX8664 : ElfMachineAarch64, ElfMachine(captureExe));

        run.Signal(15);
        Assert.True(await run.WaitForExitAsync(Timeout), "the agent did not stop on SIGTERM");
        Assert.True(run.ExitCode == 0, $"exit code {run.ExitCode}: {run.Stderr}");

        // The outbox was created by the arm64 e_sqlite3 (WAL, its tables); readable by the host's SQLite.
        var outbox = dir.File("outbox.db");
        Assert.True(File.Exists(outbox), $"no outbox.db in the state directory: {run.Stderr}");
        await using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = outbox, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)";
        Assert.Equal("meta,outbox", await cmd.ExecuteScalarAsync());
    }

    /// <summary>e_machine of an ELF file: 183 aarch64, 62 x86-64.</summary>
    private static ushort ElfMachine(string path)
    {
        Assert.True(File.Exists(path), $"{path} does not exist");
        Span<byte> header = stackalloc byte[20];
        using (var file = File.OpenRead(path))
        {
            file.ReadExactly(header);
        }

        Assert.True(header[..4].SequenceEqual("\u007fELF"u8), $"{path} is not an ELF file");
        Assert.True(header[4] == 2 && header[5] == 1, $"{path} is not a 64-bit little-endian ELF file");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
    }
}

/// <summary>
/// Emulation keeps a core busy for minutes: these tests run on their own, after the assembly's parallel ones, so
/// tests that wait a fixed time for an agent (AgentTelemetryTests) do not compete with them.
/// </summary>
[CollectionDefinition(nameof(Arm64EmulationTests), DisableParallelization = true)]
public sealed class Arm64EmulationCollection;

/// <summary>
/// The linux-arm64 agent, published once per test run into <c>.edgefleet/arm64/publish</c> (its own artifacts
/// folder, so the developer's bin/obj are untouched and a second run is incremental), and a way to run it.
/// </summary>
public sealed class Arm64Agent : IAsyncLifetime
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(10);

    public Arm64Agent()
    {
        RepoRoot = Repository.Root;
        var edgefleet = Path.Combine(RepoRoot, ".edgefleet");
        PublishDirectory = Path.Combine(edgefleet, "arm64", "publish");
        Emulated = RuntimeInformation.ProcessArchitecture != Architecture.Arm64;
        Qemu = Path.Combine(edgefleet, "arm64", "qemu-aarch64-static");
        Sysroot = Path.Combine(edgefleet, "arm64-sysroot");
    }

    public string RepoRoot { get; }

    public string PublishDirectory { get; }

    /// <summary>False on an arm64 machine: the binary runs directly.</summary>
    public bool Emulated { get; }

    public string Qemu { get; }

    public string Sysroot { get; }

    /// <summary>
    /// The ONNX Runtime library the arm64 agent loads: the Microsoft.ML.OnnxRuntime package's
    /// runtimes/linux-arm64/native/libonnxruntime.so, which <c>dotnet publish -r linux-arm64</c> copies beside it.
    /// </summary>
    public string OrtLibrary => Path.Combine(PublishDirectory, "libonnxruntime.so");

    public async Task InitializeAsync()
    {
        if (Emulated)
        {
            Require(Qemu);
            Require(Path.Combine(Sysroot, "lib", "ld-linux-aarch64.so.1"));
        }

        // One publish at a time per checkout (two test runs side by side would write the same folders).
        Directory.CreateDirectory(Path.GetDirectoryName(PublishDirectory)!);
        await using var publishLock = await LockAsync(Path.Combine(Path.GetDirectoryName(PublishDirectory)!, "publish.lock"));
        var psi = Niced("dotnet");
        foreach (var arg in (string[])["publish", Path.Combine(RepoRoot, "agent", "EdgeFleet.Agent", "EdgeFleet.Agent.csproj"),
                     "-c", "Release", "-r", "linux-arm64", "--self-contained",
                     "--artifacts-path", Path.Combine(RepoRoot, ".edgefleet", "arm64", "artifacts"), "-o", PublishDirectory,
                     "--disable-build-servers", "-nologo", "-v", "quiet", "-clp:ErrorsOnly"])
        {
            psi.ArgumentList.Add(arg);
        }

        // The test host's MSBuild variables would point the child build at this run's MSBuild instance.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var publish = new ChildProcess(psi);
        if (!await publish.WaitForExitAsync(PublishTimeout))
        {
            throw new TimeoutException($"dotnet publish -r linux-arm64 did not finish within {PublishTimeout}: {publish.Stdout}{publish.Stderr}");
        }

        if (publish.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish -r linux-arm64 failed ({publish.ExitCode}): {publish.Stdout}{publish.Stderr}");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Starts the published agent (under qemu on x64) with <paramref name="args"/>.</summary>
    public ChildProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var binary = Path.Combine(PublishDirectory, "edgefleet-agent");
        var psi = Niced(Emulated ? Qemu : binary);
        if (Emulated)
        {
            psi.ArgumentList.Add("-L");
            psi.ArgumentList.Add(Sysroot);
            psi.ArgumentList.Add(binary);
        }

        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["ORT_DISABLE_TELEMETRY"] = "1";
        psi.Environment.Remove("EDGEFLEET_ORT_LIB"); // a host library set in the developer's shell would not load

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        return new ChildProcess(psi);
    }

    /// <summary>Runs the agent to completion (killed after <paramref name="timeout"/>).</summary>
    public async Task<(int Code, string Stdout, string Stderr)> RunAsync(IReadOnlyDictionary<string, string>? environment, TimeSpan timeout,
        params string[] args)
    {
        using var process = Start(environment, args);
        if (!await process.WaitForExitAsync(timeout))
        {
            throw new TimeoutException($"edgefleet-agent {string.Join(' ', args)} did not exit within {timeout}: {process.Stderr}");
        }

        return (process.ExitCode, process.Stdout, process.Stderr);
    }

    /// <summary>
    /// <paramref name="program"/> under <c>nice -n 10</c> (nice execs it: same pid): the publish and the emulated
    /// agent yield the CPU to other test projects running at the same time; nothing here measures time.
    /// </summary>
    private static ProcessStartInfo Niced(string program)
    {
        var psi = new ProcessStartInfo("nice") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-n");
        psi.ArgumentList.Add("10");
        psi.ArgumentList.Add(program);
        return psi;
    }

    private static void Require(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is missing: run deploy/bootstrap.sh --arm64-emulation (test.sh does)", path);
        }
    }

    private static async Task<FileStream> LockAsync(string path)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (deadline.Elapsed < PublishTimeout)
            {
                await Task.Delay(500); // another test run is publishing; there is nothing to await across processes
            }
        }
    }
}

/// <summary>A child process with its output captured; its whole tree is killed when disposed.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    public ChildProcess(ProcessStartInfo startInfo)
    {
        _process = Process.Start(startInfo) ?? throw new InvalidOperationException($"{startInfo.FileName} did not start");
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout => Read(_stdout);

    public string Stderr => Read(_stderr);

    public int ExitCode => _process.ExitCode;

    /// <summary>True when the process exited within <paramref name="timeout"/> (its output is then complete).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Polls <paramref name="condition"/> (the process's output) until it holds; fails on exit or timeout.</summary>
    public async Task UntilAsync(Func<bool> condition, string what, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (_process.HasExited)
            {
                Assert.Fail($"the process exited ({_process.ExitCode}) before {what}: {Stderr}");
            }

            Assert.True(sw.Elapsed < timeout, $"timed out waiting until {what}; stderr: {Stderr}");
            await Task.Delay(100);
        }
    }

    /// <summary>Sends a signal (SIGTERM = 15) with the kill command; under qemu-user it reaches the emulated program.</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Direct children (from /proc).</summary>
    public IReadOnlyList<int> Children()
    {
        var children = new List<int>();
        var tasks = $"/proc/{_process.Id}/task";
        if (!Directory.Exists(tasks))
        {
            return children;
        }

        foreach (var task in Directory.EnumerateDirectories(tasks))
        {
            try
            {
                children.AddRange(File.ReadAllText(Path.Combine(task, "children"))
                    .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c => int.Parse(c, CultureInfo.InvariantCulture)));
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return children;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already reaped
        }

        _process.Dispose();
    }

    private static string Read(StringBuilder sb)
    {
        lock (sb)
        {
            return sb.ToString();
        }
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }
}
