using System.Diagnostics;
using System.Text.Json;
using EdgeFleet.Agent.LocalApi;
using EdgeFleet.Agent.LocalApi.V1;
using EdgeFleet.Testing;
using Grpc.Core;
using Grpc.Net.Client;

namespace EdgeFleet.IntegrationTests;

/// <summary>The agent's local API over its real Unix socket, against the real agent on ffmpeg's test pattern.</summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LocalApiTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static (string Config, string Socket) Agent(TempDirectory dir, string source = "testsrc://160x120@30", string extra = "", string? socket = null)
    {
        socket ??= dir.File("agent.sock");
        var path = dir.File("agent.json");
        File.WriteAllText(path, $$"""
            { "Agent": {
              "DeviceId": "api-01",
              "StateDirectory": "{{dir.Path}}",
              "Source": { "Uri": "{{source}}", "RestartDelaySeconds": 0.1, "MaxRestartDelaySeconds": 0.5 },
              "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
              "Inference": { "IntraOpThreads": 1 },
              "LocalApi": { "Socket": "{{socket}}", "SubscriberBuffer": 4, "SnapshotTimeoutSeconds": 2 }{{extra}}
            } }
            """);
        return (path, socket);
    }

    private static async Task Until(Func<bool> condition, string what, AgentProcess agent)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Timeout, $"timed out waiting until {what}; stderr: {agent.Stderr}");
            if (agent.HasExited)
            {
                Assert.Fail($"the agent exited ({agent.ExitCode}) before {what}: {agent.Stderr}");
            }

            await Task.Delay(50);
        }
    }

    private static async Task<AgentLocal.AgentLocalClient> Connect(GrpcChannel channel, string socket, AgentProcess agent)
    {
        await Until(() => agent.Stderr.Contains("Local API listening", StringComparison.Ordinal), "the local API listens", agent);
        Assert.True(LocalApiClient.IsListening(socket));
        return LocalApiClient.Client(channel);
    }

    private static async Task<StatusReply> StatusUntil(AgentLocal.AgentLocalClient client, Func<StatusReply, bool> condition, string what, AgentProcess agent)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var s = await client.StatusAsync(new StatusRequest());
            if (condition(s))
            {
                return s;
            }

            Assert.True(sw.Elapsed < Timeout, $"timed out waiting until {what}; last status {s}; stderr: {agent.Stderr}");
            Assert.False(agent.HasExited, $"the agent exited: {agent.Stderr}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Status_RunningAgent_NamesModelAndCountersGrow()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);

        var first = await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);
        var later = await StatusUntil(client, s => s.Pipeline.Inferred > first.Pipeline.Inferred + 10, "the counters grow", agent);

        Assert.Equal("api-01", later.DeviceId);
        Assert.Equal("sample-classifier", later.Model.Name);
        Assert.Equal("classification", later.Model.Task);
        Assert.Equal(64, later.Model.InputWidth);
        Assert.True(later.Pipeline.Captured >= later.Pipeline.Inferred);
        Assert.True(later.Camera.Connected);
        Assert.Equal("none", later.Ota.State);
        Assert.Equal(Path.GetFullPath(dir.Path), later.StateDirectory);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
    }

    [Fact]
    public async Task Results_Stream_FrameNumbersIncrease()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        using var cts = new CancellationTokenSource(Timeout);
        using var call = client.Results(new ResultsRequest(), cancellationToken: cts.Token);
        var frames = new List<long>();
        await foreach (var r in call.ResponseStream.ReadAllAsync(cts.Token))
        {
            Assert.Equal("sample-classifier", r.Model);
            Assert.NotEmpty(r.Classes);
            Assert.True(r.TimestampUnixMs > 0);
            frames.Add(r.Frame);
            if (frames.Count == 20)
            {
                break;
            }
        }

        Assert.Equal(frames.Order(), frames);
        Assert.Equal(frames.Count, frames.Distinct().Count());
    }

    [Fact]
    public async Task Results_SubscriberThatReadsNothing_LosesOldestAndPipelineKeepsInferring()
    {
        using var dir = new TempDirectory();
        // As fast as inference goes, so the HTTP/2 window and the subscriber's 4 slots fill quickly.
        var (config, socket) = Agent(dir, "testsrc://160x120@30?realtime=false");
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        using var cts = new CancellationTokenSource(Timeout * 2);
        using var call = client.Results(new ResultsRequest(), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        var start = await client.StatusAsync(new StatusRequest());
        Assert.Equal(1, start.ResultsSubscribers);

        // The subscriber reads nothing meanwhile; the pipeline must not wait for it.
        var after = await StatusUntil(client, s => s.Pipeline.Inferred > start.Pipeline.Inferred + 3000, "inference goes on", agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > after.Pipeline.Inferred + 100, "inference still goes on", agent);

        long dropped = 0;
        var last = call.ResponseStream.Current.Frame;
        while (dropped == 0 && await call.ResponseStream.MoveNext(cts.Token))
        {
            var r = call.ResponseStream.Current;
            Assert.True(r.Frame > last, $"frame {r.Frame} after {last}");
            last = r.Frame;
            dropped = r.Dropped;
        }

        Assert.True(dropped > 0, "the slow subscriber lost nothing");
    }

    [Fact]
    public async Task Snapshot_RunningAgent_ReturnsJpegOfTheModelInput()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        var reply = await client.SnapshotAsync(new SnapshotRequest());

        var jpeg = reply.Jpeg.ToByteArray();
        Assert.Equal([0xFF, 0xD8], jpeg[..2]);
        Assert.Equal([0xFF, 0xD9], jpeg[^2..]);
        Assert.Equal((64, 64), (reply.Width, reply.Height));
        Assert.Equal("sample-classifier", reply.Result.Model);
        Assert.True(reply.Result.Frame > 0);
        var file = dir.File("snap.jpg");
        await File.WriteAllBytesAsync(file, jpeg);
        Assert.Equal("mjpeg,64,64", Probe(file));
    }

    [Fact]
    public async Task SnapshotAndResults_NoFrameYet_AnswerUnavailableAndFailedPreconditionAndAgentRunsOn()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir, "v4l2:///dev/video-missing");
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);

        var snapshot = await Assert.ThrowsAsync<RpcException>(async () => await client.SnapshotAsync(new SnapshotRequest()));
        Assert.Equal(StatusCode.Unavailable, snapshot.StatusCode);
        Assert.Contains("no frame reached the model", snapshot.Status.Detail, StringComparison.Ordinal);

        using var call = client.Results(new ResultsRequest());
        var results = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.FailedPrecondition, results.StatusCode);
        Assert.Contains("no frame has been inferred yet", results.Status.Detail, StringComparison.Ordinal);

        var status = await client.StatusAsync(new StatusRequest());
        Assert.False(status.Camera.Connected);
        Assert.Equal(0, status.Pipeline.Inferred);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task Run_StaleSocketFile_IsReplaced()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        // What a killed agent leaves: a file at the socket path nobody listens on (.NET removes a socket file it
        // bound itself when it closes it, so a plain file stands in; Kestrel refuses to bind over either).
        await File.WriteAllBytesAsync(socket, []);

        Assert.True(File.Exists(socket));
        Assert.False(LocalApiClient.IsListening(socket));

        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);

        Assert.Contains("removed the stale socket", agent.Stderr, StringComparison.Ordinal);
        Assert.Equal("api-01", (await client.StatusAsync(new StatusRequest())).DeviceId);
    }

    [Fact]
    public async Task Run_SocketDirectoryNotWritable_SaysSoAndRunsWithoutLocalApi()
    {
        using var dir = new TempDirectory();
        var (config, _) = Agent(dir, socket: "/proc/edgefleet-none/agent.sock");
        using var agent = AgentProcess.Start(null, "run", "--config", config);

        await Until(() => agent.Stderr.Contains("Local API disabled: cannot create the socket /proc/edgefleet-none/agent.sock", StringComparison.Ordinal),
            "the agent says the local API is off", agent);
        await Until(() => agent.Stderr.Contains("Model sample-classifier", StringComparison.Ordinal), "the model is served", agent);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task Metrics_PortSet_ServesTheAgentMetricsOnLoopback()
    {
        using var dir = new TempDirectory();
        var port = FreePort.Next();
        var (config, socket) = Agent(dir, extra: $$""", "Metrics": { "Port": {{port}} }""");
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));

        foreach (var name in new[]
                 {
                     "edgefleet_agent_frames_captured_total", "edgefleet_agent_frames_inferred_total", "edgefleet_agent_frames_dropped_total",
                     "edgefleet_agent_errors_total", "edgefleet_agent_fps", "edgefleet_agent_latency_p95_seconds", "edgefleet_agent_source_restarts_total",
                     "edgefleet_agent_source_connected",
                 })
        {
            Assert.Contains($"\n{name}", text, StringComparison.Ordinal);
        }

        Assert.Contains("model=\"sample-classifier\"", text, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", Listening(agent.Id), StringComparison.Ordinal);
        var (lint, complaints) = await Promtool.CheckMetricsAsync(text);
        Assert.True(lint == 0 && complaints.Length == 0, $"promtool check metrics exited {lint}:\n{complaints}\n--- exposition ---\n{text}");
    }

    [Fact]
    public async Task Metrics_NoPort_NothingListens()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        Assert.Equal("", Listening(agent.Id));
    }

    [Fact]
    public async Task ResultsCommand_FollowJson_PrintsOneJsonObjectPerLine()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using var agent = AgentProcess.Start(null, "run", "--config", config);
        using var channel = LocalApiClient.Open(socket);
        var client = await Connect(channel, socket, agent);
        await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

        using var follow = AgentProcess.Start(null, "results", "--follow", "--json", "--socket", socket);
        await Until(() => follow.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 5, "five results are printed", follow);
        follow.Signal(15);
        Assert.True(follow.WaitForExit(TimeSpan.FromSeconds(30)));

        var lines = follow.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        long previous = 0;
        foreach (var line in lines[..5])
        {
            using var doc = JsonDocument.Parse(line);
            var frame = long.Parse(doc.RootElement.GetProperty("frame").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(frame > previous);
            previous = frame;
            Assert.Equal("sample-classifier", doc.RootElement.GetProperty("model").GetString());
            Assert.True(doc.RootElement.GetProperty("classes").GetArrayLength() > 0);
        }
    }

    [Fact]
    public async Task StatusAndSnapshotCommands_RunningAgent_UseTheSocket_AndStatusFallsBackWithoutIt()
    {
        using var dir = new TempDirectory();
        var (config, socket) = Agent(dir);
        using (var agent = AgentProcess.Start(null, "run", "--config", config))
        {
            using var channel = LocalApiClient.Open(socket);
            var client = await Connect(channel, socket, agent);
            await StatusUntil(client, s => s.Pipeline.Inferred > 0, "frames are inferred", agent);

            var (code, stdout, stderr) = AgentProcess.Run(Timeout, null, "status", "--config", config);
            Assert.True(code == 0, stderr);
            Assert.Contains("model:     sample-classifier", stdout, StringComparison.Ordinal);
            Assert.Contains("live over the local API", stdout, StringComparison.Ordinal);
            Assert.Contains("inferred ", stdout, StringComparison.Ordinal);

            var jpeg = dir.File("cli.jpg");
            (code, stdout, stderr) = AgentProcess.Run(Timeout, null, "snapshot", "--out", jpeg, "--config", config);
            Assert.True(code == 0, stderr);
            Assert.Equal("mjpeg,64,64", Probe(jpeg));
        }

        var (c, o, e) = AgentProcess.Run(Timeout, null, "status", "--config", config);
        Assert.Equal(0, c);
        Assert.Contains("no agent answers on", e, StringComparison.Ordinal);
        Assert.Contains("model:", o, StringComparison.Ordinal);
    }

    /// <summary>codec,width,height of the first video stream, as ffprobe decodes it.</summary>
    private static string Probe(string file)
    {
        var psi = new ProcessStartInfo("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", file])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"ffprobe failed: {error}");
        return output.Trim();
    }

    /// <summary>The TCP sockets the process listens on (ss), empty when none.</summary>
    private static string Listening(int pid)
    {
        var psi = new ProcessStartInfo("ss", ["-ltnpH"]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return string.Join('\n', output.Split('\n').Where(l => l.Contains($"pid={pid},", StringComparison.Ordinal)));
    }
}
