using System.Diagnostics;
using System.Text;

namespace EdgeFleet.Testing;

/// <summary>
/// <c>edgefleet-agent</c> run as a real child process (from the test's output folder), with its output captured.
/// Killed when disposed.
/// </summary>
public sealed class AgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private AgentProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static AgentProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        Start(environment, [], args);

    /// <summary>Starts the agent with <paramref name="unset"/> removed from the environment it inherits.</summary>
    public static AgentProcess Start(IReadOnlyDictionary<string, string>? environment, IReadOnlyCollection<string> unset, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(unset);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "edgefleet-agent.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in unset)
        {
            psi.Environment.Remove(key);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        return new AgentProcess(Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start"));
    }

    /// <summary>Runs to completion (or kills after <paramref name="timeout"/>) and returns exit code and output.</summary>
    public static (int Code, string Stdout, string Stderr) Run(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var agent = Start(environment, args);
        if (!agent._process.WaitForExit(timeout))
        {
            agent._process.Kill(entireProcessTree: true);
            throw new TimeoutException($"edgefleet-agent {string.Join(' ', args)} did not exit within {timeout}: {agent.Stderr}");
        }

        agent._process.WaitForExit();
        return (agent.ExitCode, agent.Stdout, agent.Stderr);
    }

    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return false;
        }

        _process.WaitForExit();
        return true;
    }

    /// <summary>Sends a signal (SIGTERM = 15, SIGKILL = 9) with the kill command.</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Direct children of the agent (from /proc), e.g. its ffmpeg.</summary>
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
                    .Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
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
            // never started or already reaped
        }

        _process.Dispose();
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

    /// <summary>Whether a process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid) => File.Exists($"/proc/{pid}/stat")
        && !SafeRead($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    private static string SafeRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return ") Z ";
        }
    }
}
