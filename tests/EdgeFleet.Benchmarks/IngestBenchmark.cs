using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// Telemetry ingestion through the real broker: N simulated devices (enrolled through the API, each with its own
/// broker login) publish M telemetry messages each at QoS 1 as fast as the broker takes them; the control plane
/// (embedded mosquitto, SQLite or PostgreSQL) stores them. Reported: messages per second until the last row is
/// committed, the ingest lag (device timestamp → commit) p50/p99, and the baseline measured in the same run — the rate
/// at which <c>mosquitto_sub</c> alone receives the same stream from the same publishers on a plain mosquitto.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- ingest [--devices N] [--messages M] [--db sqlite|postgres|both]</c>
/// <para>
/// <c>ingest --kill [--devices N] [--messages M] [--kill-at 0.5]</c> instead runs the real control plane process, lets
/// simulated devices (real outboxes) publish into it, kills it with -9 once that share of the messages is acknowledged
/// by the broker, restarts it on the same data directory and ports, and counts what was stored: lost and duplicated
/// (device, seq).
/// </para>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class IngestBenchmark
{
    private static int BatchSize { get; set; }

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--kill"))
        {
            return await KillAsync(args);
        }

        var devices = BenchmarkArgs.Positive(args, "--devices", 50);
        BatchSize = BenchmarkArgs.Positive(args, "--batch", 0);
        var perDevice = BenchmarkArgs.Positive(args, "--messages", 2000);
        var dbs = (BenchmarkArgs.Value(args, "--db") ?? "both") switch
        {
            "sqlite" => new[] { "sqlite" },
            "postgres" => ["postgres"],
            _ => ["sqlite", "postgres"],
        };
        var total = devices * perDevice;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ingestion benchmark: {devices} devices × {perDevice} telemetry messages = {total} (QoS 1)"));

        // On a shared machine the load changes from minute to minute: alternate baseline and ingestion, round by round.
        var rounds = BenchmarkArgs.Positive(args, "--rounds", 1);
        PostgresServer? postgres = null;
        var ratios = dbs.ToDictionary(db => db, _ => new List<double>());
        try
        {
            for (var round = 1; round <= rounds; round++)
            {
                foreach (var db in dbs)
                {
                    var baseline = await BaselineAsync(devices, perDevice);
                    string? connection = null;
                    if (db == "postgres")
                    {
                        postgres ??= await PostgresServer.StartAsync();
                        connection = await postgres.CreateDatabaseAsync();
                    }

                    var (rate, p50, p99) = await IngestAsync(devices, perDevice, connection);
                    ratios[db].Add(rate / baseline);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round} {db}: mosquitto_sub alone {baseline:F0} msg/s; ingested {rate:F0} msg/s, lag p50 {p50:F0} ms p99 {p99:F0} ms; ratio to mosquitto_sub {rate / baseline:F2}"));
                }
            }
        }
        finally
        {
            if (postgres is not null)
            {
                await postgres.DisposeAsync();
            }
        }

        foreach (var (db, r) in ratios)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{db}: ratio median {r.Order().ElementAt(r.Count / 2):F2} over {r.Count} rounds ({string.Join(", ", r.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})"));
        }

        return 0;
    }

    private static async Task<int> KillAsync(string[] args)
    {
        var devices = BenchmarkArgs.Positive(args, "--devices", 50);
        var perDevice = BenchmarkArgs.Positive(args, "--messages", 2000);
        var killAt = double.TryParse(BenchmarkArgs.Value(args, "--kill-at"), CultureInfo.InvariantCulture, out var k) && k is > 0 and < 1 ? k : 0.5;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kill -9 benchmark: {devices} devices × {perDevice} telemetry messages, kill at {killAt:P0} acknowledged"));
        var result = await IngestKillRun.RunAsync(devices, perDevice, killAt, Console.WriteLine, TimeSpan.FromMinutes(10));
        Console.WriteLine(result);
        return result.Lost == 0 && result.Duplicated == 0 && result.Stored == result.Expected ? 0 : 1;
    }

    private static async Task<double> BaselineAsync(int devices, int perDevice)
    {
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = false });
        var psi = new ProcessStartInfo("mosquitto_sub") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", broker.Host, "-p", broker.Port.ToString(CultureInfo.InvariantCulture), "-t", "ef/v1/+/telemetry", "-q", "1", "-i", "baseline" })
        {
            psi.ArgumentList.Add(a);
        }

        using var sub = Process.Start(psi)!;
        long lines = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var total = (long)devices * perDevice;
        Stopwatch? clock = null;
        sub.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null && Interlocked.Increment(ref lines) == total)
            {
                done.TrySetResult();
            }
        };
        sub.BeginOutputReadLine();
        var waited = Stopwatch.StartNew();
        while (!broker.Log.Contains(" baseline 1 ef/v1/+/telemetry", StringComparison.Ordinal)) // mosquitto logs the SUBSCRIBE
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("mosquitto_sub did not subscribe within 30 s");
            }

            await Task.Delay(20);
        }

        var credentials = Enumerable.Range(0, devices).Select(i => ($"sim-{i:D4}", (string?)null, (string?)null)).ToList();
        clock = Stopwatch.StartNew();
        await PublishAsync(broker.Host, broker.Port, credentials, perDevice);
        await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
        var rate = total / clock.Elapsed.TotalSeconds;
        sub.Kill();
        return rate;
    }

    private static async Task<(double Rate, double P50, double P99)> IngestAsync(int devices, int perDevice, string? database)
    {
        using var data = new TempDirectory("edgefleet-bench-cp");
        var mqttPort = FreePort.Next();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration["ControlPlane:DataDirectory"] = data.Path;
        builder.Configuration["ControlPlane:Database"] = database;
        builder.Configuration["ControlPlane:MqttPort"] = mqttPort.ToString(CultureInfo.InvariantCulture);
        builder.Configuration["ControlPlane:MqttBind"] = "127.0.0.1";
        builder.Configuration["EDGEFLEET_ADMIN_TOKEN"] = "efp_benchmark-admin-token-000000";
        if (BatchSize > 0)
        {
            builder.Configuration["ControlPlane:IngestBatchSize"] = BatchSize.ToString(CultureInfo.InvariantCulture);
        }
        builder.AddEdgeFleetControlPlane();
        await using var app = builder.Build();
        app.MapEdgeFleetControlPlane();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(address) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "efp_benchmark-admin-token-000000");

        using var created = await http.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest(), ApiJsonContext.Default.EnrollmentTokenRequest);
        var token = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
        var credentials = new List<(string, string?, string?)>();
        for (var i = 0; i < devices; i++)
        {
            using var r = await http.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = $"sim-{i:D4}" }, ApiJsonContext.Default.EnrollRequest);
            r.EnsureSuccessStatusCode();
            var enrolled = (await r.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollResponse))!;
            credentials.Add((enrolled.DeviceId, enrolled.Mqtt.Username, enrolled.Mqtt.Password));
        }

        var metrics = app.Services.GetRequiredService<IngestMetrics>();
        await WaitIngestingAsync(metrics, "127.0.0.1", mqttPort, credentials[0]);
        var before = metrics.IngestedTotal;
        var total = (long)devices * perDevice;
        var clock = Stopwatch.StartNew();
        await PublishAsync("127.0.0.1", mqttPort, credentials, perDevice);
        while (metrics.IngestedTotal - before < total)
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(10))
            {
                throw new TimeoutException($"only {metrics.IngestedTotal - before} of {total} messages ingested after 10 minutes");
            }

            await Task.Delay(5);
        }

        var rate = total / clock.Elapsed.TotalSeconds;
        var (p50, p99, _) = metrics.Lag;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {metrics.Batches} batches, {metrics.WriteTime.TotalSeconds:F1} s writing of {clock.Elapsed.TotalSeconds:F1} s, process CPU {Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F1} s"));
        await app.StopAsync();
        return (rate, p50, p99);
    }

    /// <summary>Ingestion is subscribed once a device's status reaches the database (probes until one does).</summary>
    private static async Task WaitIngestingAsync(IngestMetrics metrics, string host, int port, (string Id, string? User, string? Password) device)
    {
        var start = metrics.IngestedTotal;
        await using var probe = new MqttConnection(new MqttConnectionOptions
        {
            Host = host, Port = port, ClientId = device.Id, Username = device.User, Password = device.Password,
        }, NullLogger.Instance);
        probe.Start();
        await probe.WaitConnectedAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var waited = Stopwatch.StartNew();
        while (metrics.IngestedTotal == start)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("ingestion stored no status message within 60 s");
            }

            var status = new StatusMessage { DeviceId = device.Id, Ts = TimeProvider.System.GetUtcNow(), Online = true };
            await probe.PublishAsync(new MqttMessage(Topics.For(device.Id, Topics.Status), MessageParser.Serialize(status), 1));
            await Task.Delay(200);
        }
    }

    /// <summary>Every device publishes its messages at QoS 1 with up to 100 in flight, all devices at once.</summary>
    private static async Task PublishAsync(string host, int port, IReadOnlyList<(string Id, string? User, string? Password)> devices, int perDevice)
    {
        var clients = devices.Select(d => new MqttConnection(new MqttConnectionOptions
        {
            Host = host, Port = port, ClientId = d.Id, Username = d.User, Password = d.Password, MaxInflight = 100,
        }, NullLogger.Instance)).ToList();
        try
        {
            clients.ForEach(c => c.Start());
            await Task.WhenAll(clients.Select(c => c.WaitConnectedAsync())).WaitAsync(TimeSpan.FromSeconds(60));
            await Task.WhenAll(clients.Select((c, i) => Task.Run(async () =>
            {
                var id = devices[i].Id;
                var topic = Topics.For(id, Topics.Telemetry);
                using var window = new SemaphoreSlim(100);
                var pending = new List<Task>(perDevice);
                for (var seq = 1; seq <= perDevice; seq++)
                {
                    await window.WaitAsync();
                    var payload = MessageParser.Serialize(SimulatedFleet.Telemetry(id, seq));
                    pending.Add(c.PublishAsync(new MqttMessage(topic, payload, 1)).ContinueWith(_ => window.Release(), TaskScheduler.Default));
                }

                await Task.WhenAll(pending);
            })));
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }
    }
}
