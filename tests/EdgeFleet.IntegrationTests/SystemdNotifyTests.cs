using System.Diagnostics;
using System.Globalization;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The real agent process against a real notify socket (NOTIFY_SOCKET, WATCHDOG_USEC as systemd sets them for
/// Type=notify with WatchdogSec=): READY=1 waits for the first inferred frame, WATCHDOG=1 follows inference.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SystemdNotifyTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    // ffmpeg's own stall detection would restart a frozen ffmpeg; here the pipeline must stay stuck.
    private static string Config(TempDirectory dir, string ffmpeg = "ffmpeg")
    {
        var path = dir.File("agent.json");
        File.WriteAllText(path, $$"""
            { "Agent": {
              "DeviceId": "it-systemd",
              "StateDirectory": "{{dir.Path}}",
              "Source": { "Uri": "testsrc://160x120@30", "StallTimeoutSeconds": 3600, "FfmpegPath": "{{ffmpeg}}" },
              "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
              "Inference": { "IntraOpThreads": 1 }
            } }
            """);
        return path;
    }

    private static AgentProcess StartAgent(NotifySocket notify, string config) => AgentProcess.Start(new Dictionary<string, string>
    {
        ["NOTIFY_SOCKET"] = notify.Path,
        ["WATCHDOG_USEC"] = ((long)Interval.TotalMicroseconds).ToString(CultureInfo.InvariantCulture),
    }, ["WATCHDOG_PID"], "run", "--config", config);

    private static async Task Until(Func<bool> condition, string what, AgentProcess agent)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Generous, $"timed out waiting until {what}; stderr: {agent.Stderr}");
            Assert.False(agent.HasExited, $"the agent exited before {what}: {agent.Stderr}");
            await Task.Delay(50);
        }
    }

    private static void Kill(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    [Fact]
    public async Task Run_NotifySocket_ReadyOnlyAfterTheFirstInferredFrameThenWatchdogPingsAndStopping()
    {
        using var dir = new TempDirectory();
        // The "ffmpeg" is a script that waits on a FIFO before it execs the real one: the host, the model and the
        // capture process are all up, but no frame can arrive until the test opens the gate.
        var gate = dir.File("gate");
        using (var mkfifo = Process.Start("mkfifo", [gate]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var wrapper = dir.File("gated-ffmpeg");
        File.WriteAllText(wrapper, $"#!/bin/sh\nread -r _ < '{gate}'\nexec ffmpeg \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        using var notify = new NotifySocket(dir.Path);
        using var agent = StartAgent(notify, Config(dir, wrapper));

        await Until(() => agent.Stderr.Contains("started pid", StringComparison.Ordinal), "the capture process is started", agent);
        var starting = new List<NotifySocket.Message>();
        // Three watchdog intervals with the pipeline up but no frame: neither READY=1 nor a ping.
        Assert.Null(await notify.WaitForAsync("READY=1", Interval * 3, starting));
        Assert.False(agent.HasExited, agent.Stderr);
        Assert.Contains(starting, m => m.HasPrefix("STATUS=starting"));
        Assert.DoesNotContain(starting, m => m.Has("WATCHDOG=1"));

        await File.WriteAllTextAsync(gate, "go\n").WaitAsync(Generous);
        var afterGate = new List<NotifySocket.Message>();
        Assert.NotNull(await notify.WaitForAsync("READY=1", Generous, afterGate));
        Assert.DoesNotContain(afterGate, m => m.Has("WATCHDOG=1"));

        var running = new List<NotifySocket.Message>();
        for (var i = 0; i < 3; i++)
        {
            Assert.NotNull(await notify.WaitForAsync("WATCHDOG=1", Interval * 5, running));
        }

        Assert.Contains(running, m => m.HasPrefix("STATUS=inferring ") && m.Text.Contains("fps, model ", StringComparison.Ordinal));

        agent.Signal(15);
        Assert.NotNull(await notify.WaitForAsync("STOPPING=1", Generous));
        Assert.True(agent.WaitForExit(Generous), "the agent did not stop on SIGTERM");
        Assert.Equal(0, agent.ExitCode);
    }

    [Fact]
    public async Task Run_CaptureFrozenWhileTheAgentLives_WatchdogPingsStopAndResumeWithFrames()
    {
        using var dir = new TempDirectory();
        using var notify = new NotifySocket(dir.Path);
        using var agent = StartAgent(notify, Config(dir));
        Assert.NotNull(await notify.WaitForAsync("READY=1", Generous));
        Assert.NotNull(await notify.WaitForAsync("WATCHDOG=1", Interval * 5));
        await Until(() => agent.Children().Count == 1, "ffmpeg runs", agent);
        var ffmpeg = agent.Children()[0];

        Kill("STOP", ffmpeg);
        try
        {
            // Pings may continue for up to an interval (frames already captured, the stall window): wait for a silence
            // of three intervals, which systemd (WatchdogSec = one interval) would answer with a restart.
            var stoppedAt = notify.Elapsed;
            var lastPing = stoppedAt;
            var seen = new List<NotifySocket.Message>();
            while (await notify.NextAsync(lastPing + (Interval * 3) - notify.Elapsed) is { } message)
            {
                seen.Add(message);
                if (message.Has("WATCHDOG=1"))
                {
                    lastPing = message.At;
                    Assert.True(lastPing - stoppedAt < Generous, "WATCHDOG=1 kept coming with the capture frozen");
                }
            }

            Assert.False(agent.HasExited, $"the agent exited: {agent.Stderr}");
            Assert.True(AgentProcess.IsAlive(ffmpeg), "the frozen ffmpeg was replaced");
            Assert.Contains(seen, m => m.HasPrefix("STATUS=stalled: no frame inferred"));
        }
        finally
        {
            Kill("CONT", ffmpeg);
        }

        Assert.NotNull(await notify.WaitForAsync("WATCHDOG=1", Generous));
    }
}
