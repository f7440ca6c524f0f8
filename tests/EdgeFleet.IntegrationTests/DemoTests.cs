using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// <c>./demo.sh --quick</c> as a newcomer runs it (on ports and in a directory of the test's own): the control plane,
/// 3 real agents, 200 simulated devices, v2 rolled out to everyone, v3 rolled back by the gates, and everything it
/// started gone when it exits.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class DemoTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task QuickDemo_V2ReachesEveryDevice_V3IsRolledBackByTheGates_AndNothingIsLeftRunning()
    {
        using var dir = new TempDirectory("edgefleet-demo");
        var http = FreePort.Next();
        var start = new ProcessStartInfo("bash", [Repository.Path("demo.sh"), "--quick", "--exit-when-done"])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Repository.Root,
            Environment =
            {
                ["EDGEFLEET_DEMO_NO_BUILD"] = "1", // test.sh built the tree
                ["EDGEFLEET_DEMO_DIR"] = dir.Path,
                ["EDGEFLEET_DEMO_HTTP_PORT"] = http.ToString(CultureInfo.InvariantCulture),
                ["EDGEFLEET_DEMO_MQTT_PORT"] = FreePort.Next().ToString(CultureInfo.InvariantCulture),
            },
        };
        var output = new StringBuilder();
        using var demo = new Process { StartInfo = start };
        demo.OutputDataReceived += (_, e) => Append(output, e.Data);
        demo.ErrorDataReceived += (_, e) => Append(output, e.Data);
        demo.Start();
        demo.BeginOutputReadLine();
        demo.BeginErrorReadLine();
        using (var timeout = new CancellationTokenSource(Limit))
        {
            try
            {
                await demo.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                await StopAsync(demo);
                Assert.Fail($"the demo did not end within {Limit.TotalMinutes} minutes\n{Tail(output)}");
            }
        }

        await demo.WaitForExitAsync(); // the rest of its output
        var text = Text(output);
        Assert.True(demo.ExitCode == 0, $"the demo exited with {demo.ExitCode}\n{Tail(output)}");
        var ready = ReadyLine().Match(text);
        Assert.True(ready.Success, $"no 'demo: ready.' line\n{Tail(output)}");
        Assert.Equal("203", ready.Groups["devices"].Value);
        Assert.Equal("203", ready.Groups["online"].Value);
        Assert.True(ready.Groups["v2"].Value == "203", $"{ready.Value}\n{Tail(output)}");
        Assert.Equal("succeeded", ready.Groups["v2state"].Value);
        Assert.Equal("rolled_back", ready.Groups["v3state"].Value);
        Assert.Contains($"http://127.0.0.1:{http}/", text, StringComparison.Ordinal); // the dashboard's address
        Assert.Matches(@"sign in with the operator token: efp_\S+", text);
        Assert.Matches(@"gate \w+ failed in stage 1: ", text); // why v3 went back, in the gate's words

        // Every agent, simulator and the control plane is gone: none names the demo's directory or its server.
        var left = Leftovers(dir.Path, $"127.0.0.1:{http}");
        Assert.True(left.Count == 0, "still running after the demo ended:\n" + string.Join('\n', left));
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    // Failure lines first (test.sh shows the start of a failure's message), then the end of the output.
    private static string Tail(StringBuilder output)
    {
        var lines = Text(output).Split('\n');
        var failures = lines.Where(l => l.StartsWith("demo: ", StringComparison.Ordinal)
            && (l.Contains("did not", StringComparison.Ordinal) || l.Contains("failed", StringComparison.Ordinal) || l.Contains("warning", StringComparison.Ordinal)));
        return string.Join('\n', failures.Concat(["--- the demo's last lines:"]).Concat(lines.TakeLast(40)));
    }

    // SIGTERM first: the demo's trap stops what it started; then the whole tree, in case it could not.
    private static async Task StopAsync(Process demo)
    {
        using (var term = Process.Start("kill", ["-TERM", demo.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync();
        }

        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await demo.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
            demo.Kill(entireProcessTree: true);
        }
    }

    private static List<string> Leftovers(params string[] marks)
    {
        var left = new List<string>();
        foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue; // gone meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            if (marks.Any(m => cmdline.Contains(m, StringComparison.Ordinal)))
            {
                left.Add($"{Path.GetFileName(proc)}: {cmdline}");
            }
        }

        return left;
    }

    [GeneratedRegex(@"demo: ready\. (?<devices>\d+) devices, (?<online>\d+) online, (?<v2>\d+) on \S+ 2\.0\.0\. Rollouts: 2\.0\.0 (?<v2state>\w+), 3\.0\.0 (?<v3state>\w+)\.")]
    private static partial Regex ReadyLine();
}
