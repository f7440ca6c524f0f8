using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>The agent binary against a real mosquitto broker: telemetry, Last Will, outages, crashes, bad messages.</summary>
[Trait("Category", "Integration")]
public sealed class AgentTelemetryTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static string Config(TempDirectory dir, MosquittoBroker broker, string deviceId, string extra = "") 
    {
        var path = dir.File("agent.json");
        File.WriteAllText(path, $$"""
            {
              "Agent": {
                "DeviceId": "{{deviceId}}",
                "StateDirectory": "{{dir.File("state")}}",
                "Source": { "Uri": "testsrc://160x120@15" },
                "Model": { "Path": "{{TestModels.Get(TestModels.SmallClassifier)}}" },
                "Inference": { "IntraOpThreads": 1 },
                "Mqtt": { "Host": "{{broker.Host}}", "Port": {{broker.Port}}, "KeepAliveSeconds": 5, "MaxReconnectDelaySeconds": 2 },
                "Telemetry": { "IntervalSeconds": 0.5, "Outbox": { "SynchronousFull": false } },
                "Drift": { "WindowFrames": 60 }{{extra}}
              }
            }
            """);
        return path;
    }

    private static IEnumerable<long> Seqs(TopicRecorder recorder, string deviceId) =>
        recorder.Messages
            .Where(m => m.Topic.StartsWith($"ef/v1/{deviceId}/", StringComparison.Ordinal)
                && (m.Topic.EndsWith("/telemetry", StringComparison.Ordinal) || m.Topic.EndsWith("/events", StringComparison.Ordinal)
                    || m.Topic.EndsWith("/drift", StringComparison.Ordinal)))
            .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64());

    private static async Task Until(Func<bool> condition, string what, AgentProcess? agent = null)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > Patience)
            {
                Assert.Fail($"timed out waiting until {what}; agent stderr: {agent?.Stderr}");
            }

            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Telemetry_ArrivesWithTheContractsFieldsAndStatusIsRetained()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/#");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "tele-01"));

        await recorder.WaitForAsync("/telemetry", p => JsonDocument.Parse(p).RootElement.GetProperty("frames").GetProperty("inferred").GetInt64() > 5, Patience, () => "agent stderr: " + agent.Stderr);
        var raw = recorder.Payloads("/telemetry").Last();
        Assert.True(MessageParser.TryParse<TelemetryMessage>(Encoding.UTF8.GetBytes(raw), out var t, out var reason), reason);
        Assert.Equal(("tele-01", Schemas.Telemetry), (t.DeviceId, t.Schema));
        Assert.True(t.Seq > 0);
        Assert.True(t.Fps > 0);
        Assert.True(t.LatencyMs.P50 > 0 && t.LatencyMs.P99 >= t.LatencyMs.P50);
        Assert.Contains("inference", t.StagesMs.Keys);
        Assert.True(t.Frames.Captured >= t.Frames.Inferred);
        Assert.Equal("sample-classifier", t.Model!.Name);
        Assert.True(t.System!.MemTotalBytes > 0 && t.System.RssBytes > 0);
        Assert.NotNull(t.Outbox);
        Assert.Equal("running", t.Source!.State);

        var status = await recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);
        Assert.True(MessageParser.TryParse<StatusMessage>(Encoding.UTF8.GetBytes(status), out var s, out _));
        Assert.Equal("sample-classifier", s.Model!.Name);

        // A late subscriber sees the retained status at once.
        using var late = await TopicRecorder.StartAsync(broker, "ef/v1/tele-01/status");
        await late.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), TimeSpan.FromSeconds(10));

        var seqs = Seqs(recorder, "tele-01").ToList();
        Assert.Equal(seqs.Order(), seqs); // in order
        Assert.Contains(recorder.Payloads("/events"), p => p.Contains("\"type\":\"model.loaded\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task KilledAgent_IsMarkedOfflineByItsLastWill()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/+/status");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "lwt-01"));
        await recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);

        agent.Signal(9);

        var will = await recorder.WaitForAsync("/status", p => p.Contains("\"online\":false", StringComparison.Ordinal), TimeSpan.FromSeconds(20), () => "agent stderr: " + agent.Stderr);
        Assert.Contains("\"deviceId\":\"lwt-01\"", will, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StoppedAgent_SaysOfflineItself()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/+/status");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "stop-01"));
        await recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);

        agent.Signal(15);

        Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(30)));
        await recorder.WaitForAsync("/status", p => p.Contains("\"online\":false", StringComparison.Ordinal), TimeSpan.FromSeconds(10), () => "agent stderr: " + agent.Stderr);
    }

    [Fact]
    public async Task BrokerDownFor30Seconds_EverySeqArrivesAfterwards()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/#");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "outage-01"));
        await Until(() => Seqs(recorder, "outage-01").Count() >= 5, "telemetry flows", agent);

        await broker.StopAsync();
        var lastBefore = Seqs(recorder, "outage-01").Max();
        await Task.Delay(TimeSpan.FromSeconds(30));
        await broker.StartAsync();

        // ~60 telemetry messages were produced during the outage; all must arrive.
        await Until(() => Seqs(recorder, "outage-01").Max() >= lastBefore + 60, "the outage's messages arrive", agent);
        var seqs = Seqs(recorder, "outage-01").ToList();
        var distinct = seqs.Distinct().Order().ToList();
        var missing = Enumerable.Range(1, (int)distinct[^1]).Select(i => (long)i).Except(distinct).ToList();
        Assert.True(missing.Count == 0, $"missing seqs: {string.Join(",", missing.Take(20))}");
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task AgentKilledWhileOffline_ReplaysItsOutboxAfterRestart()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/#");
        using var dir = new TempDirectory();
        var config = Config(dir, broker, "crash-01");
        await broker.StopAsync();

        long producedOffline;
        using (var first = AgentProcess.Start(null, "run", "--config", config))
        {
            await Until(() => Outbox(dir) >= 5, "telemetry piles up in the outbox, none delivered", first);
            first.Signal(9);
            Assert.True(first.WaitForExit(TimeSpan.FromSeconds(10)));
            producedOffline = Outbox(dir);
        }

        Assert.True(producedOffline >= 5, $"only {producedOffline} rows in the outbox");
        await broker.StartAsync();
        using var second = AgentProcess.Start(null, "run", "--config", config);

        await Until(() => Seqs(recorder, "crash-01").Distinct().Count() >= producedOffline + 5, "old and new messages arrive", second);
        var seqs = Seqs(recorder, "crash-01").Distinct().Order().ToList();
        Assert.Equal(1, seqs[0]);
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs); // no gap: the crash lost nothing, seq kept growing
    }

    [Fact]
    public async Task MalformedCommandsAndAssignments_AreRejectedAndTheAgentCarriesOn()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/#");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "bad-01"));
        await recorder.WaitForAsync("/status", p => p.Contains("\"online\":true", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);

        Publish(broker, "ef/v1/bad-01/cmd", "{not json");
        Publish(broker, "ef/v1/bad-01/cmd", """{"schema":"ef.cmd/9","id":"1","command":"snapshot"}""");
        Publish(broker, "ef/v1/bad-01/cmd", """{"schema":"ef.cmd/1","id":"2","command":"format-disk"}""");
        Publish(broker, "ef/v1/bad-01/desired", """{"schema":"ef.desired/1","model":"../../etc","version":"1.0.0","artifactUrl":"http://x/a","sha256":"00","size":1,"manifestUrl":"http://x/m"}""");
        Publish(broker, "ef/v1/bad-01/cmd", new string('x', 300_000));
        Publish(broker, "ef/v1/bad-01/cmd", """{"schema":"ef.cmd/1","id":"ok-1","command":"snapshot"}""");

        await recorder.WaitForAsync("/events", p => p.Contains("\"type\":\"cmd.done\"", StringComparison.Ordinal) && p.Contains("ok-1", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);
        await recorder.WaitForAsync("/results", p => p.Contains("\"classes\"", StringComparison.Ordinal), Patience, () => "agent stderr: " + agent.Stderr);
        await recorder.WaitForAsync("/telemetry", p => JsonDocument.Parse(p).RootElement.GetProperty("rejectedMessages").GetInt64() == 5, Patience, () => "agent stderr: " + agent.Stderr);
        Assert.Contains(recorder.Payloads("/events"), p => p.Contains("\"type\":\"message.rejected\"", StringComparison.Ordinal));
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task RebaselineCommand_MakesTheNextWindowTheBaseline()
    {
        await using var broker = await MosquittoBroker.StartAsync();
        using var recorder = await TopicRecorder.StartAsync(broker, "ef/v1/#");
        using var dir = new TempDirectory();
        using var agent = AgentProcess.Start(null, "run", "--config", Config(dir, broker, "drift-01"));
        await recorder.WaitForAsync("/drift", _ => true, Patience); // baseline window, then a first report

        Publish(broker, "ef/v1/drift-01/cmd", """{"schema":"ef.cmd/1","id":"rb","command":"drift.rebaseline"}""");

        await Until(() => recorder.Payloads("/events").Count(p => p.Contains("\"type\":\"drift.baseline\"", StringComparison.Ordinal)) >= 2,
            "a second baseline", agent);
        var report = recorder.Payloads("/drift").Last();
        Assert.True(MessageParser.TryParse<DriftMessage>(Encoding.UTF8.GetBytes(report), out var drift, out var reason), reason);
        Assert.Equal(60, drift.Window.Frames);
        Assert.Contains(drift.Features, f => f.Name == "luma_mean");
    }

    private static void Publish(MosquittoBroker broker, string topic, string payload)
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, payload);
        using var p = Process.Start("mosquitto_pub", ["-h", broker.Host, "-p", broker.Port.ToString(CultureInfo.InvariantCulture), "-t", topic, "-q", "1", "-f", path]);
        p.WaitForExit();
        File.Delete(path);
    }

    /// <summary>Rows in the agent's outbox (0 while it does not exist yet or is locked).</summary>
    private static long Outbox(TempDirectory dir)
    {
        if (!File.Exists(dir.File("state/outbox.db")))
        {
            return 0;
        }

        using var p = Process.Start(new ProcessStartInfo("sqlite3", ["-readonly", "-cmd", ".timeout 2000", dir.File("state/outbox.db"), "SELECT COUNT(*) FROM outbox;"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return long.TryParse(output.Trim(), CultureInfo.InvariantCulture, out var n) ? n : 0;
    }
}
