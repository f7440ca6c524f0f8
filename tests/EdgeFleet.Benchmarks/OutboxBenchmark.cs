using System.Diagnostics;
using System.Globalization;
using System.Text;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// Store-and-forward throughput against a real mosquitto on a free loopback port:
/// enqueue rates (one transaction per message, and batches), and the replay of a backlog built while the broker was
/// away, compared with the same number of QoS 1 publishes sent straight through the client (the baseline, measured in
/// the same run). <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- outbox [--messages N] [--size B]</c>
/// </summary>
internal static class OutboxBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var messages = BenchmarkArgs.Positive(args, "--messages", 10_000);
        var size = BenchmarkArgs.Positive(args, "--size", 800); // a telemetry message is about 800 bytes
        var payload = Encoding.UTF8.GetBytes(new string('x', size));
        using var dir = new TempDirectory();
        await using var broker = await MosquittoBroker.StartAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"outbox benchmark: {messages} messages of {size} bytes, mosquitto on port {broker.Port}"));

        foreach (var full in new[] { true, false })
        {
            using var outbox = new Outbox(dir.File($"enqueue-{full}.db"), new OutboxLimits { SynchronousFull = full }, TimeProvider.System);
            var single = Math.Min(messages, 2000);
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < single; i++)
            {
                outbox.Enqueue("ef/v1/bench/telemetry", _ => payload);
            }

            var singleRate = single / sw.Elapsed.TotalSeconds;
            sw.Restart();
            var batch = Enumerable.Repeat<(string, Func<long, byte[]>)>(("ef/v1/bench/telemetry", _ => payload), 100).ToList();
            for (var i = 0; i < messages / 100; i++)
            {
                outbox.EnqueueMany(batch);
            }

            var batchRate = messages / 100 * 100 / sw.Elapsed.TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"enqueue (synchronous={(full ? "FULL" : "NORMAL")}): one per transaction {singleRate:F0} msg/s, batches of 100 {batchRate:F0} msg/s"));
        }

        // Baseline: QoS 1 publishes straight through the client with the publisher's window of 256 in flight.
        double baselineRate;
        await using (var direct = new MqttConnection(new MqttConnectionOptions { Host = broker.Host, Port = broker.Port, ClientId = "bench-direct", MaxInflight = 256 }, NullLogger.Instance))
        {
            direct.Start();
            await direct.WaitConnectedAsync().WaitAsync(TimeSpan.FromSeconds(20));
            using var window = new SemaphoreSlim(256);
            var sw = Stopwatch.StartNew();
            var tasks = new List<Task>(messages);
            for (var i = 0; i < messages; i++)
            {
                await window.WaitAsync();
                tasks.Add(direct.PublishAsync(new MqttMessage("ef/v1/bench/telemetry", payload, 1)).ContinueWith(_ => window.Release(), TaskScheduler.Default));
            }

            await Task.WhenAll(tasks);
            baselineRate = messages / sw.Elapsed.TotalSeconds;
        }

        // Replay: the backlog is written while the broker is down, then the broker comes back.
        using var backlog = new Outbox(dir.File("replay.db"), new OutboxLimits(), TimeProvider.System);
        await broker.StopAsync();
        var rows = Enumerable.Repeat<(string, Func<long, byte[]>)>(("ef/v1/bench/telemetry", _ => payload), messages).ToList();
        backlog.EnqueueMany(rows);
        await using var client = new MqttConnection(new MqttConnectionOptions
        {
            Host = broker.Host,
            Port = broker.Port,
            ClientId = "bench-outbox",
            MaxInflight = 256,
            ReconnectDelay = TimeSpan.FromMilliseconds(200),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
        }, NullLogger.Instance);
        using var publisher = new OutboxPublisher(backlog, client, TimeProvider.System, NullLogger.Instance);
        client.Start();
        using var stop = new CancellationTokenSource();
        var run = publisher.RunAsync(stop.Token);
        await broker.StartAsync();
        await client.WaitConnectedAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var replay = Stopwatch.StartNew();
        while (backlog.Stats.Pending > 0)
        {
            if (replay.Elapsed > TimeSpan.FromMinutes(5))
            {
                Console.Error.WriteLine($"replay did not finish: {backlog.Stats.Pending} still pending");
                return 1;
            }

            await Task.Delay(5);
        }

        var replayRate = messages / replay.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await run;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"replay of {messages} after the outage: {replay.Elapsed.TotalSeconds:F2} s, {replayRate:F0} msg/s; direct QoS 1 publishing (baseline) {baselineRate:F0} msg/s; ratio {replayRate / baselineRate:F2}"));
        return 0;
    }
}
