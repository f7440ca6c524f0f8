using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// How fast a rollout reaches a whole fleet: the real control plane process (engine with a 100 ms tick, embedded
/// mosquitto, SQLite, fresh data directory) and N protocol-true simulated devices (<see cref="FleetSimulator"/>: own
/// broker logins, retained <c>desired</c>, manifest and artifact downloads over HTTP, signature and SHA-256 checks,
/// <c>update.*</c> events; probation 0, telemetry every 60 s). A rollout with one 100 % stage, bake 0, no quality
/// gates and a rate of 10,000,000/min is timed from <c>POST /api/v1/rollouts</c> until the API reports every device
/// <c>succeeded</c> (and the simulator counts N committed); <c>--rounds R</c> repeats it on the same fleet with the
/// next version. Enrollment and connection are timed apart and are not part of it.
/// <para>
/// The baseline, in the same run once the control plane has stopped, is the broker alone: the control plane's own
/// <see cref="EmbeddedBroker"/> (same mosquitto, mosquitto.conf, ACL and login scheme) delivering N retained QoS 1
/// desired messages (the rollout's own payload) to N device connections configured like the simulated ones, each
/// answering with one QoS 1 event that a service subscriber receives; the median of at least 3 rounds. The ratio is
/// rollout devices/min ÷ baseline device round trips/min.
/// </para>
/// <para>
/// Every device is enrolled through the API (<c>--enroll api</c>, the default; each enrollment waits for the broker to
/// reload its logins, concurrent ones share a reload) and the time is reported apart. <c>--enroll seeded</c> enrolls all
/// but the last <c>--api-enroll</c> (100) with the control plane's own <see cref="DeviceRegistry"/> on its database (the
/// same statements without a reload each) and hands them to the simulator as its state file, for quicker runs.
/// </para>
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- rollout [--devices 1000,10000] [--rounds 1] [--json]
/// [--enroll api|seeded] [--api-enroll 100] [--download-concurrency 256] [--cp-log DIR] [--cp-env KEY=VALUE]…</c>
/// (<c>--cp-log</c> keeps the control plane's and mosquitto's logs and a 100 ms timeline of each round).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static partial class RolloutBenchmark
{
    private const string Model = "bench-cls";
    private const string Tag = "fleet=bench";
    private const double Goal = 10_000;
    private const int ConnectConcurrency = 64;
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;
    private static readonly TextWriter Log = Console.Error;

    public static async Task<int> RunAsync(string[] args)
    {
        var o = RunOptions.Parse(args);
        if (o.MinThreads > 0)
        {
            ThreadPool.GetMinThreads(out _, out var io);
            ThreadPool.SetMinThreads(o.MinThreads, io);
        }

        var results = new List<SizeResult>();
        var failures = new List<string>();
        foreach (var n in o.Sizes)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(o.TimeoutMinutes));
            try
            {
                var fleet = await FleetAsync(o, n, timeout.Token);
                var rounds = Math.Max(3, o.Rounds);
                await Say(n, $"baseline: the broker alone, {rounds} rounds of {n} desired messages out and {n} events back");
                var baseline = await BaselineAsync(n, fleet.Sample, rounds, timeout.Token);
                var result = new SizeResult(fleet, baseline);
                results.Add(result);
                await Say(n, $"{result.DevicesPerMinute:N0} devices/min (median of {fleet.Rounds.Count}); baseline {baseline.RoundTripsPerMinute:N0} round trips/min; ratio {result.Ratio:F3}");
            }
            catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or InvalidOperationException or SimulatorException or HttpRequestException
                or MqttException or BrokerStartException or IOException)
            {
                var why = $"{n} devices: {ex.GetType().Name}: {ex.Message}";
                failures.Add(why);
                await Say(n, $"FAILED: {why}");
            }
        }

        if (o.Json)
        {
            Console.WriteLine(Json(results, failures));
        }
        else
        {
            Print(results, failures);
        }

        return failures.Count == 0 ? 0 : 1;
    }

    private static Task Say(int n, string line) => Log.WriteLineAsync(string.Create(C, $"[{n}] {line}"));

    /// <summary>A control plane and a simulated fleet of <paramref name="n"/>, and the rollouts timed on it.</summary>
    private static async Task<FleetResult> FleetAsync(RunOptions o, int n, CancellationToken ct)
    {
        await Say(n, "control plane (embedded mosquitto, SQLite, rollout tick 100 ms)");
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ControlPlane__RolloutTickMilliseconds"] = "100",

            // Timestamps (UTC, as the API's) on every log line: where the time goes, from what it logs.
            ["Logging__Console__FormatterOptions__TimestampFormat"] = "yyyy-MM-dd'T'HH:mm:ss.fff ",
            ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
        };
        foreach (var (key, value) in o.Environment)
        {
            environment[key] = value;
        }

        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true, Environment = environment });
        try
        {
            return await FleetAsync(o, cp, n, ct);
        }
        finally
        {
            if (o.LogDirectory is { } dir)
            {
                Directory.CreateDirectory(dir);
                await File.WriteAllTextAsync(Path.Combine(dir, $"controlplane-{n.ToString(C)}.log"), cp.Output, CancellationToken.None);
                var brokerLog = Path.Combine(cp.DataDirectory, "mqtt", "mosquitto.log");
                if (File.Exists(brokerLog))
                {
                    File.Copy(brokerLog, Path.Combine(dir, $"mosquitto-{n.ToString(C)}.log"), overwrite: true);
                }
            }
        }
    }

    private static async Task<FleetResult> FleetAsync(RunOptions o, ControlPlaneProcess cp, int n, CancellationToken ct)
    {
        using var admin = cp.CreateClient(cp.AdminToken);
        await RegistryUploads.PushAsync(admin, Model, "1.0.0", TestModels.SmallClassifier);
        var artifactBytes = 0L;
        for (var round = 1; round <= o.Rounds; round++)
        {
            artifactBytes = (await RegistryUploads.PushAsync(admin, Model, Version(round), TestModels.SmallClassifier)).Size;
        }

        var token = await cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = [Tag], MaxUses = n });
        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(s => s.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
            .AddConsole(s => s.LogToStandardErrorThreshold = LogLevel.Trace));
        using var state = new TempDirectory("edgefleet-bench-sim");
        var options = new SimulatorOptions
        {
            Server = cp.Url,
            EnrollToken = token.Token,
            Devices = n,
            IdPrefix = "bench",
            ModelName = Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(60),
            DriftEvery = 1000, // no drift reports within the run
            Probation = TimeSpan.Zero,
            DownloadConcurrency = o.DownloadConcurrency,
            DownloadRetryDelay = TimeSpan.FromSeconds(0.1),
            ConnectConcurrency = ConnectConcurrency,
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            Seed = 17,
            StateFile = state.File("sim-state.json"),
            Logger = loggers.CreateLogger("sim"),
        };

        var seeded = o.Enroll switch
        {
            "seeded" => Math.Max(0, n - o.ApiEnroll),
            _ => 0,
        };
        var seedSeconds = 0.0;
        if (seeded > 0)
        {
            await Say(n, $"enrolling {seeded} devices with the control plane's DeviceRegistry on its database (no broker reload each)");
            var seedClock = Stopwatch.StartNew();
            await SeedAsync(cp, token.Token!, seeded, options, ct);
            seedSeconds = seedClock.Elapsed.TotalSeconds;
        }

        var sim = new FleetSimulator(options);
        try
        {
            await Say(n, $"enrolling {n - seeded} simulated devices through the API");
            var clock = Stopwatch.StartNew();
            await sim.StartAsync(ct);
            var enroll = clock.Elapsed.TotalSeconds;
            await Say(n, $"enrolled in {enroll:F1} s; connecting");
            var kicks = await ConnectAllAsync(cp, sim, ct);
            var connect = clock.Elapsed.TotalSeconds - enroll;
            await Say(n, $"all connected in {connect:F1} s");
            var settle = Stopwatch.StartNew();
            await WaitOnlineAsync(admin, n, ct);
            var settled = settle.Elapsed.TotalSeconds;

            var rounds = new List<RoundResult>();
            for (var round = 1; round <= o.Rounds; round++)
            {
                rounds.Add(await RoundAsync(o, cp, admin, sim, n, round, ct));
                await Task.Delay(TimeSpan.FromSeconds(3), ct); // the last events and status messages drain before the next
            }

            var summary = sim.Summary();
            var sample = await admin.GetFromJsonAsync($"api/v1/devices/{options.DeviceId(0)}/assignment", ApiJsonContext.Default.DesiredMessage, ct)
                ?? throw new InvalidOperationException("no assignment on the first device");
            await Say(n, "stopping the simulator and the control plane");
            return new FleetResult
            {
                Devices = n,
                Seeded = seeded,
                SeedSeconds = seedSeconds,
                EnrollSeconds = enroll,
                ReloadKicks = kicks,
                ConnectSeconds = connect,
                SettleSeconds = settled,
                Rounds = rounds,
                SimulatorPeakWorkingSetBytes = summary.PeakWorkingSetBytes,
                Downloads = summary.Downloads,
                ArtifactBytes = artifactBytes,
                ControlPlaneErrors = Errors(cp.Output),
                Sample = sample,
            };
        }
        finally
        {
            await sim.DisposeAsync();
        }
    }

    private static string Version(int round) => string.Create(C, $"1.{round}.0");

    /// <summary>One rollout to the whole fleet, timed; the simulator's milestones are awaited as they happen (not polled).</summary>
    private static async Task<RoundResult> RoundAsync(RunOptions o, ControlPlaneProcess cp, HttpClient admin, FleetSimulator sim, int n, int round, CancellationToken ct)
    {
        var version = Version(round);
        var cpPid = ControlPlanePid(cp.DataDirectory);
        var brokerPid = BrokerPid(cp.DataDirectory);
        var load = LoadAverage();
        var propagation = Stopwatch.StartNew();
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = SampleAsync(sim, version, cpPid, brokerPid, propagation, sampling.Token);
        var firstDelivered = TimeWhen(sim.WaitUntilAsync(s => Delivered(s, version) > 0, ct), propagation);
        var firstCommitted = TimeWhen(sim.WaitForOtaAsync(version, SimOtaState.Committed, 1, ct), propagation);
        var half = TimeWhen(sim.WaitForOtaAsync(version, SimOtaState.Committed, (n + 1) / 2, ct), propagation);
        var ninety = TimeWhen(sim.WaitForOtaAsync(version, SimOtaState.Committed, (int)Math.Ceiling(n * 0.9), ct), propagation);
        var all = sim.WaitForOtaAsync(version, SimOtaState.Committed, n, ct);
        var allAt = TimeWhen(all, propagation);

        await Say(n, $"round {round}: POST /api/v1/rollouts {Model} {version} (one stage 100 %, bake 0, gates [], 10,000,000/min)");
        using var response = await admin.PostAsJsonAsync("api/v1/rollouts", new RolloutRequest
        {
            Model = Model,
            Version = version,
            Selector = [Tag],
            Stages = [new RolloutStageRequest { Percent = 100, BakeSeconds = 0 }],
            Gates = [],
            RatePerMinute = 10_000_000,
            DeadlineSeconds = 3600,
            Reason = "rollout benchmark",
        }, ApiJsonContext.Default.RolloutRequest, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"POST /api/v1/rollouts: {(int)response.StatusCode} {body}");
        }

        var created = JsonSerializer.Deserialize(body, ApiJsonContext.Default.RolloutInfo)!;
        if (created.DeviceCount != n)
        {
            throw new InvalidOperationException($"the rollout selected {created.DeviceCount} devices, not {n}");
        }

        await WithProgressAsync(all, () => $"{sim.CountOta(version, SimOtaState.Committed)} of {n} committed, {Delivered(sim, version)} received the desired message", n, ct);

        // The API can only report every device succeeded after each has committed, so it is asked from then on, often and
        // without the device list: asking before would load the control plane with what it is measured on.
        RolloutInfo info;
        while (true)
        {
            info = (await admin.GetFromJsonAsync("api/v1/rollouts?limit=1", ApiJsonContext.Default.IReadOnlyListRolloutInfo, ct))!.Single();
            if (info.Id != created.Id)
            {
                throw new InvalidOperationException($"the newest rollout is {info.Id}, not {created.Id}");
            }

            if (!RolloutStates.IsActive(info.State))
            {
                break;
            }

            await Task.Delay(50, ct);
        }

        var apiSeconds = propagation.Elapsed.TotalSeconds;
        await sampling.CancelAsync();
        var samples = await sampler;
        if (info.State != RolloutStates.Succeeded || info.Counts.GetValueOrDefault(RolloutDeviceStates.Succeeded) != n)
        {
            throw new InvalidOperationException($"the rollout ended {info.State} ({info.Reason}) with {string.Join(", ", info.Counts.Select(c => $"{c.Key}={c.Value}"))}");
        }

        if (o.LogDirectory is { } dir)
        {
            Directory.CreateDirectory(dir);
            await File.WriteAllLinesAsync(Path.Combine(dir, $"timeline-{n.ToString(C)}-round{round.ToString(C)}.csv"),
                ["seconds,delivered,committed,cpCpu,brokerCpu,selfCpu,poolThreads,poolQueue,gcPauseSeconds", .. samples.Select(s => s.Csv())], CancellationToken.None);
        }

        var result = new RoundResult
        {
            Round = round,
            Version = version,
            FirstDeliveredSeconds = await firstDelivered,
            FirstCommittedSeconds = await firstCommitted,
            HalfCommittedSeconds = await half,
            NinetyCommittedSeconds = await ninety,
            AllCommittedSeconds = await allAt,
            ApiSucceededSeconds = apiSeconds,
            Devices = n,
            ServerSeconds = info.FinishedAt is { } finished ? (finished - info.CreatedAt).TotalSeconds : null,
            Profile = Profile(cp.Output, created.Id, created.CreatedAt, info.FinishedAt),
            ControlPlaneCpuSeconds = samples[^1].CpCpu - samples[0].CpCpu,
            BrokerCpuSeconds = samples[^1].BrokerCpu - samples[0].BrokerCpu,
            SimulatorCpuSeconds = samples[^1].SelfCpu - samples[0].SelfCpu,
            PoolQueueMax = samples.Max(s => s.PoolQueue),
            PoolThreadsMax = samples.Max(s => s.PoolThreads),
            GcPauseSeconds = samples[^1].GcPause - samples[0].GcPause,
            LoadBefore = load,
            LoadAfter = LoadAverage(),
        };
        await Say(n, $"round {round}: every device succeeded (API) after {apiSeconds:F2} s: {result.DevicesPerMinute:N0} devices/min");
        return result;
    }

    /// <summary>Devices that received <paramref name="version"/>'s desired message (whatever they did with it since).</summary>
    private static int Delivered(FleetSimulator sim, string version) =>
        Enum.GetValues<SimOtaState>().Where(s => s != SimOtaState.None).Sum(s => sim.CountOta(version, s));

    private static async Task<double> TimeWhen(Task condition, Stopwatch clock)
    {
        await condition.ConfigureAwait(false);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Awaits <paramref name="task"/>, printing progress every 10 s; fails when nothing moved for 5 minutes.</summary>
    private static async Task WithProgressAsync(Task task, Func<string> progress, int n, CancellationToken ct)
    {
        var last = "";
        var lastChange = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(10), ct));
            if (task.IsCompleted)
            {
                break;
            }

            var now = progress();
            await Say(n, "  " + now);
            if (now != last)
            {
                last = now;
                lastChange.Restart();
            }
            else if (lastChange.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException($"no progress for 5 minutes: {now}");
            }
        }

        await task;
    }

    private static async Task WaitOnlineAsync(HttpClient admin, int n, CancellationToken ct)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var online = (await admin.GetFromJsonAsync("api/v1/devices?online=true", ApiJsonContext.Default.IReadOnlyListDeviceInfo, ct))!.Count(d => !d.Id.StartsWith("bench-kick-", StringComparison.Ordinal));
            if (online >= n)
            {
                return;
            }

            if (waited.Elapsed > TimeSpan.FromMinutes(3))
            {
                throw new TimeoutException($"only {online} of {n} devices online on the control plane after 3 minutes");
            }

            await Task.Delay(500, ct);
        }
    }

    /// <summary>
    /// Waits until every device is connected. A device whose login mosquitto has not loaded (the reload signal of its
    /// enrollment lost, see the README) stays refused until the next reload: then one more enrollment, of a device in
    /// no rollout, makes the control plane rewrite the logins and signal the broker again. Returns how many it took.
    /// </summary>
    private static async Task<int> ConnectAllAsync(ControlPlaneProcess cp, FleetSimulator sim, CancellationToken ct)
    {
        var connected = sim.WaitAllConnectedAsync(ct);
        var kicks = 0;
        var lastCount = -1;
        var still = Stopwatch.StartNew();
        while (!connected.IsCompleted)
        {
            await Task.WhenAny(connected, Task.Delay(TimeSpan.FromSeconds(10), ct));
            if (connected.IsCompleted)
            {
                break;
            }

            var now = sim.Connected;
            await Say(sim.DeviceCount, $"  {now} of {sim.ExpectedConnected} connected");
            if (now != lastCount)
            {
                lastCount = now;
                still.Restart();
            }
            else if (kicks >= 10)
            {
                throw new TimeoutException($"{sim.ExpectedConnected - now} devices still not connected after {kicks} extra reloads");
            }
            else if (still.Elapsed >= TimeSpan.FromSeconds(20))
            {
                kicks++;
                await Say(sim.DeviceCount, $"  no progress for 20 s: enrolling bench-kick-{kicks} (no tags) so that the broker reloads its logins");
                await cp.EnrollDeviceAsync($"bench-kick-{kicks.ToString(C)}");
                still.Restart();
            }
        }

        await connected;
        return kicks;
    }

    /// <summary>
    /// Enrolls devices 1…<paramref name="count"/> of the simulated fleet with the control plane's own
    /// <see cref="DeviceRegistry"/> on its database (the statements of <c>POST /api/v1/enroll</c>) but without the broker
    /// reload each API enrollment waits for, and writes the simulator's state file for them (camelCase, version 1).
    /// </summary>
    private static async Task SeedAsync(ControlPlaneProcess cp, string token, int count, SimulatorOptions options, CancellationToken ct)
    {
        string pem;
        using (var anonymous = cp.CreateClient(token: null))
        {
            pem = await anonymous.GetStringAsync(new Uri("api/v1/registry/key", UriKind.Relative), ct);
        }

        var devices = new JsonArray();
        await using (var database = Database.Open(null, cp.DataDirectory))
        {
            var registry = new DeviceRegistry(database, new NoReloadBroker(), new AuditLog(database, TimeProvider.System), TimeProvider.System);
            for (var i = 0; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var (id, password, httpToken, tags) = await registry.EnrollAsync(new EnrollRequest
                {
                    Token = token,
                    DeviceId = options.DeviceId(i),
                    AgentVersion = FleetSimulator.AgentVersion,
                });
                devices.Add(new JsonObject
                {
                    ["id"] = id,
                    ["mqttHost"] = "127.0.0.1",
                    ["mqttPort"] = cp.MqttPort,
                    ["mqttTls"] = false,
                    ["mqttUsername"] = id,
                    ["mqttPassword"] = password,
                    ["httpToken"] = httpToken,
                    ["tags"] = new JsonArray([.. tags.Select(t => (JsonNode?)t)]),
                    ["enrolledAt"] = TimeProvider.System.GetUtcNow(),
                    ["seq"] = 0,
                    ["model"] = options.ModelName,
                    ["modelVersion"] = options.ModelVersion,
                    ["settled"] = new JsonArray(),
                });
            }
        }

        var document = new JsonObject { ["version"] = 1, ["server"] = cp.Url.AbsoluteUri, ["registryPublicKey"] = pem, ["devices"] = devices };
        await File.WriteAllTextAsync(options.StateFile!, document.ToJsonString(), ct);
        File.SetUnixFileMode(options.StateFile!, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>Hashes as the control plane's broker host does; the API enrollments that follow make the broker reload.</summary>
    private sealed class NoReloadBroker : IBrokerAccess
    {
        public string HashPassword(string username, string password) => MosquittoPasswordHasher.HashLine(username, password);

        public Task SyncAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;
    }

    /// <summary>Every 100 ms of a round: progress, CPU of each process, and the benchmark process's thread pool and GC.</summary>
    private static async Task<List<Sample>> SampleAsync(FleetSimulator sim, string version, int? cpPid, int? brokerPid, Stopwatch clock, CancellationToken ct)
    {
        var samples = new List<Sample>();
        while (true)
        {
            samples.Add(new Sample(clock.Elapsed.TotalSeconds, Delivered(sim, version), sim.CountOta(version, SimOtaState.Committed), CpuSeconds(cpPid),
                CpuSeconds(brokerPid), SelfCpuSeconds(), ThreadPool.ThreadCount, ThreadPool.PendingWorkItemCount, GC.GetTotalPauseDuration().TotalSeconds));
            try
            {
                await Task.Delay(100, ct);
            }
            catch (OperationCanceledException)
            {
                samples.Add(samples[^1] with
                {
                    Seconds = clock.Elapsed.TotalSeconds,
                    CpCpu = CpuSeconds(cpPid),
                    BrokerCpu = CpuSeconds(brokerPid),
                    SelfCpu = SelfCpuSeconds(),
                    GcPause = GC.GetTotalPauseDuration().TotalSeconds,
                });
                return samples;
            }
        }
    }

    /// <summary>
    /// The broker alone: <see cref="EmbeddedBroker"/> (what the control plane runs: its files, limits and ACL) with N
    /// device logins; N connections configured like the simulated devices, each subscribed to its <c>desired</c>; a
    /// service connection publishes N retained QoS 1 desired messages (the rollout's own, a fresh id each) and each device
    /// answers with one QoS 1 <c>update.committed</c> event; a service subscriber on <c>ef/v1/+/events</c> counts them.
    /// A round is timed from the first publish to the N-th event received.
    /// </summary>
    private static async Task<BaselineResult> BaselineAsync(int n, DesiredMessage sample, int rounds, CancellationToken ct)
    {
        using var data = new TempDirectory("edgefleet-bench-broker");
        var ids = Enumerable.Range(1, n).Select(i => $"base-{i.ToString("D5", C)}").ToList();
        var passwords = ids.ToDictionary(id => id, _ => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), StringComparer.Ordinal);
        await using var broker = new EmbeddedBroker(new BrokerOptions { DataDirectory = data.Path, Port = FreePort.Next(), BindAddress = "127.0.0.1" },
            TimeProvider.System, NullLogger.Instance);
        await broker.StartAsync(ids.Select(id => MosquittoPasswordHasher.CreateCredential(id, passwords[id])).ToList(), ct);

        var devices = ids.Select(id => new MqttConnection(new MqttConnectionOptions
        {
            Host = broker.Host,
            Port = broker.Port,
            ClientId = id,
            Username = id,
            Password = passwords[id],
            KeepAliveSeconds = 60,
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            Subscriptions = [new MqttSubscription(Topics.For(id, Topics.Desired))],
            SocketBufferBytes = 8192, // as the simulated devices
            ReceiveBuffer = 16,
            MaxInflight = 16,
        }, NullLogger.Instance)).ToList();

        // As the control plane's own connections (BrokerHost.Create; ingestion announces a receive maximum of 10,000).
        var publisher = new MqttConnection(broker.ServiceClientOptions("bench-desired") with { ReceiveBuffer = 10_000, MaxInflight = 1000 }, NullLogger.Instance);
        var collector = new MqttConnection(broker.ServiceClientOptions("bench-ingest") with
        {
            ReceiveBuffer = 10_000,
            MaxInflight = 1000,
            ReceiveMaximum = 10_000,
            Subscriptions = [new MqttSubscription(Topics.For("+", Topics.Events))],
        }, NullLogger.Instance);
        try
        {
            var connectClock = Stopwatch.StartNew();
            publisher.Start();
            collector.Start();
            using (var gate = new SemaphoreSlim(ConnectConcurrency, ConnectConcurrency))
            {
                var waits = new List<Task>(n);
                foreach (var d in devices)
                {
                    await gate.WaitAsync(ct);
                    d.Start();
                    waits.Add(d.WaitConnectedAsync(ct).ContinueWith(_ => gate.Release(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default));
                }

                await Task.WhenAll(waits).WaitAsync(TimeSpan.FromMinutes(10), ct);
            }

            await Task.WhenAll(publisher.WaitConnectedAsync(ct), collector.WaitConnectedAsync(ct));
            var connect = connectClock.Elapsed.TotalSeconds;
            await Say(n, $"baseline: {n} device connections up in {connect:F1} s");

            var results = new List<BaselineRound>();
            var desiredBytes = 0;
            var eventBytes = 0;
            for (var round = 1; round <= rounds; round++)
            {
                var stamp = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds().ToString(C);
                var desired = ids.Select(id => MessageParser.Serialize(sample with { Id = $"{sample.RolloutId}-{id}-{stamp}" })).ToList();
                var events = ids.Select(id => MessageParser.Serialize(CommittedEvent(id, sample, $"{sample.RolloutId}-{id}-{stamp}"))).ToList();
                (desiredBytes, eventBytes) = (desired[0].Length, events[0].Length);
                var clock = new Stopwatch();
                var deliveredCount = 0;
                var deliveredAt = 0.0;
                var answered = devices.Select((d, i) => Task.Run(async () =>
                {
                    await d.Messages.ReadAsync(ct);
                    if (Interlocked.Increment(ref deliveredCount) == n)
                    {
                        Volatile.Write(ref deliveredAt, clock.Elapsed.TotalSeconds);
                    }

                    var result = await d.PublishAsync(new MqttMessage(Topics.For(ids[i], Topics.Events), events[i], Qos: 1), ct);
                    if (!result.Accepted)
                    {
                        throw new MqttException($"the broker refused {ids[i]}'s event (0x{result.ReasonCode:x2})");
                    }
                }, ct)).ToList();
                var collected = Task.Run(async () =>
                {
                    for (var received = 0; received < n; received++)
                    {
                        await collector.Messages.ReadAsync(ct);
                    }
                }, ct);

                var cpu0 = (Broker: CpuSeconds(broker.ProcessId), Self: SelfCpuSeconds());
                clock.Start();
                var published = ids.Select((id, i) => publisher.PublishAsync(new MqttMessage(Topics.For(id, Topics.Desired), desired[i], Qos: 1, Retain: true), ct)).ToList();
                await collected.WaitAsync(TimeSpan.FromMinutes(10), ct);
                var seconds = clock.Elapsed.TotalSeconds;
                var cpu1 = (Broker: CpuSeconds(broker.ProcessId), Self: SelfCpuSeconds());
                foreach (var p in await Task.WhenAll(published))
                {
                    if (!p.Accepted)
                    {
                        throw new MqttException($"the broker refused a desired message (0x{p.ReasonCode:x2})");
                    }
                }

                await Task.WhenAll(answered);
                results.Add(new BaselineRound(Volatile.Read(ref deliveredAt), seconds, cpu1.Broker - cpu0.Broker, cpu1.Self - cpu0.Self));
                await Task.Delay(500, ct);
            }

            return new BaselineResult(n, connect, results, desiredBytes, eventBytes);
        }
        finally
        {
            await publisher.DisposeAsync();
            await collector.DisposeAsync();
            await Task.WhenAll(devices.Select(d => d.DisposeAsync().AsTask()));
        }
    }

    /// <summary>The event a simulated device sends when it commits (about the size of the simulator's).</summary>
    private static EventMessage CommittedEvent(string id, DesiredMessage desired, string desiredId) => new()
    {
        DeviceId = id,
        Ts = TimeProvider.System.GetUtcNow(),
        Seq = 1,
        Type = UpdateEvents.Committed,
        Message = $"{desired.Model} {desired.Version} committed: 0 frames in 0 s: every criterion held",
        Data = new Dictionary<string, string>
        {
            ["desiredId"] = desiredId,
            ["model"] = desired.Model,
            ["version"] = desired.Version,
            ["mode"] = desired.Mode,
            ["rolloutId"] = desired.RolloutId ?? "",
            ["frames"] = "0",
            ["seconds"] = "0",
            ["errorShare"] = "0",
            ["nonFiniteShare"] = "0",
            ["p95InferenceMs"] = "12.5",
            ["previousP95InferenceMs"] = "12.5",
            ["meanConfidence"] = "0.81",
            ["previousMeanConfidence"] = "0.81",
            ["drift"] = "no window",
        },
    };

    /// <summary>From the control plane's log: when it published the round's first and last desired message, and when the rollout ended.</summary>
    private static LogProfile Profile(string output, string rolloutId, DateTimeOffset createdAt, DateTimeOffset? finishedAt)
    {
        DateTimeOffset? first = null, last = null, ended = null;
        var publishes = 0;
        var until = (finishedAt ?? DateTimeOffset.MaxValue.AddDays(-1)).AddSeconds(1);
        foreach (var line in output.Split('\n'))
        {
            var m = LogLine().Match(line);
            if (!m.Success || !DateTimeOffset.TryParseExact(m.Groups["ts"].Value, "yyyy-MM-dd'T'HH:mm:ss.fff", C, DateTimeStyles.AssumeUniversal, out var ts))
            {
                continue;
            }

            var message = m.Groups["message"].Value;
            var batch = PublishedLine().Match(message);
            if (batch.Success && batch.Groups["id"].Value == rolloutId && ts >= createdAt.AddSeconds(-1) && ts <= until)
            {
                // One line per batch, logged when the batch is done: it began "ms" earlier.
                publishes += int.Parse(batch.Groups["n"].Value, C);
                first ??= ts.AddMilliseconds(-long.Parse(batch.Groups["ms"].Value, C));
                last = ts;
            }
            else if (message.StartsWith($"Rollout {rolloutId}: running → ", StringComparison.Ordinal))
            {
                ended = ts;
            }
        }

        double? Since(DateTimeOffset? t) => t is { } v ? (v - createdAt).TotalSeconds : null;
        return new LogProfile(publishes, Since(first), Since(last), Since(ended));
    }

    private static int Errors(string output) => output.Split('\n').Count(l => LogLine().Match(l) is { Success: true } m && m.Groups["level"].Value is "fail" or "crit");

    [GeneratedRegex(@"^(?<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (?<level>[a-z]{4}): \S+\[\d+\] (?<message>.*?)\r?$")]
    private static partial Regex LogLine();

    [GeneratedRegex(@"^Rollout (?<id>\S+): published (?<n>\d+) of \d+ desired messages in (?<ms>\d+) ms")]
    private static partial Regex PublishedLine();

    /// <summary>The control plane's process id: the <c>dotnet edgefleet-controlplane.dll --data DIR</c> one.</summary>
    private static int? ControlPlanePid(string dataDirectory)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), C, out var pid))
            {
                continue;
            }

            try
            {
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (args.Any(a => a.EndsWith("edgefleet-controlplane.dll", StringComparison.Ordinal)) && args.Contains(dataDirectory))
                {
                    return pid;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not ours
            }
        }

        return null;
    }

    private static int? BrokerPid(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "mqtt", "mosquitto.pid");
        return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), C, out var pid) ? pid : null;
    }

    /// <summary>User + system CPU seconds of a process from /proc (0 when it is not there).</summary>
    private static double CpuSeconds(int? pid)
    {
        try
        {
            if (pid is not { } p)
            {
                return 0;
            }

            var stat = File.ReadAllText($"/proc/{p.ToString(C)}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], C) + long.Parse(fields[12], C)) / 100.0; // utime + stime, in USER_HZ (100) ticks
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static double SelfCpuSeconds()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>The 1-minute load average: other tenants of the machine show here.</summary>
    private static double LoadAverage() =>
        double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0], NumberStyles.Float, C, out var load) ? load : double.NaN;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static void Print(List<SizeResult> results, List<string> failures)
    {
        Console.WriteLine("Rollout propagation: one rollout, one stage of 100 %, bake 0, no quality gates (delivery only), 10,000,000/min, to N simulated");
        Console.WriteLine("devices (own broker logins, HTTP downloads, signature + SHA-256 checks, probation 0, telemetry every 60 s); real control plane");
        Console.WriteLine($"process (engine tick 100 ms, embedded mosquitto, SQLite); everything on this {Environment.ProcessorCount}-core machine. Seconds from POST /api/v1/rollouts;");
        Console.WriteLine("committed = the simulator's count; API = GET /api/v1/rollouts reports the rollout succeeded, every device succeeded.");
        Console.WriteLine();
        Console.WriteLine("| devices | round | first desired | first committed | 50 % | 90 % | 100 % committed | API all succeeded | devices/min | load avg before → after |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var r in results)
        {
            foreach (var x in r.Fleet.Rounds)
            {
                Console.WriteLine(string.Create(C,
                    $"| {r.Fleet.Devices:N0} | {x.Round} | {x.FirstDeliveredSeconds:F2} | {x.FirstCommittedSeconds:F2} | {x.HalfCommittedSeconds:F2} | {x.NinetyCommittedSeconds:F2} | {x.AllCommittedSeconds:F2} | {x.ApiSucceededSeconds:F2} | {x.DevicesPerMinute:N0} | {x.LoadBefore:F1} → {x.LoadAfter:F1} |"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| devices | enrollment | connect s | rollout devices/min (median) | baseline round trips/min (msg/min), median | ratio |");
        Console.WriteLine("| ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
        {
            var f = r.Fleet;
            var b = r.Baseline;
            Console.WriteLine(string.Create(C,
                $"| {f.Devices:N0} | {Enrollment(f)} | {f.ConnectSeconds:F1} | **{r.DevicesPerMinute:N0}** | {b.RoundTripsPerMinute:N0} ({b.MessagesPerMinute:N0}) | **{r.Ratio:F3}** |"));
        }

        Console.WriteLine();
        foreach (var r in results)
        {
            var f = r.Fleet;
            foreach (var x in f.Rounds)
            {
                var p = x.Profile;
                Console.WriteLine(string.Create(C,
                    $"{f.Devices:N0} devices, round {x.Round}: server created → succeeded {x.ServerSeconds:F2} s; {p.Publishes:N0} desired messages published {p.FirstPublish:F2}–{p.LastPublish:F2} s; " +
                    $"CPU s: control plane {x.ControlPlaneCpuSeconds:F1}, mosquitto {x.BrokerCpuSeconds:F1}, simulator {x.SimulatorCpuSeconds:F1} (of {x.ApiSucceededSeconds * Environment.ProcessorCount:F1} on {Environment.ProcessorCount} cores); " +
                    $"simulator thread pool ≤ {x.PoolThreadsMax} threads / {x.PoolQueueMax:N0} queued, GC pauses {x.GcPauseSeconds:F2} s"));
            }

            Console.WriteLine(string.Create(C,
                $"{f.Devices:N0} devices: {f.Downloads:N0} artifact downloads of {f.ArtifactBytes / 1024.0:F0} KiB; simulator peak working set {f.SimulatorPeakWorkingSetBytes / 1048576.0:F0} MiB; control plane logged {f.ControlPlaneErrors} errors; extra enrollments to make mosquitto load every login: {f.ReloadKicks}"));
            var b = r.Baseline;
            var rounds = string.Join("; ", b.Rounds.Select(x =>
                string.Create(C, $"delivered {x.DeliveredSeconds:F2} s, events back {x.Seconds:F2} s (CPU mosquitto {x.BrokerCpuSeconds:F1}, clients {x.ClientCpuSeconds:F1})")));
            Console.WriteLine(string.Create(C, $"{b.Devices:N0} devices baseline ({b.DesiredBytes} B desired, {b.EventBytes} B event): {rounds}"));
        }

        Console.WriteLine();
        Console.WriteLine("Baseline: the broker alone, in the same run after the control plane stopped: the control plane's own EmbeddedBroker (same mosquitto,");
        Console.WriteLine("mosquitto.conf, ACL, login scheme) with N device connections configured like the simulated ones, each subscribed to ef/v1/{id}/desired;");
        Console.WriteLine("a service connection publishes N retained QoS 1 desired messages (the rollout's own payload), each device answers with one QoS 1");
        Console.WriteLine("update.committed event, a service subscriber on ef/v1/+/events receives them: first publish → N-th event, median of ≥ 3 rounds. No");
        Console.WriteLine("control plane, HTTP, downloads or database. Ratio = rollout devices/min ÷ baseline round trips/min (msg/min counts desired + event).");
        Console.WriteLine("Enrollment (through the API unless --enroll seeded; each enrollment waits for a broker reload, concurrent ones share one) is timed");
        Console.WriteLine("apart and is not part of the propagation time.");
        foreach (var f in failures)
        {
            Console.WriteLine($"FAILED: {f}");
        }

        Console.WriteLine(GoalLine(results));
    }

    private static string Enrollment(FleetResult f) => f.Seeded == 0
        ? string.Create(C, $"API {f.EnrollSeconds:F1} s ({f.ApiEnrollsPerSecond:F1}/s)")
        : string.Create(C, $"{f.Seeded:N0} seeded in {f.SeedSeconds:F1} s + {f.Devices - f.Seeded:N0} by API in {f.EnrollSeconds:F1} s ({f.ApiEnrollsPerSecond:F1}/s)");

    private static string GoalLine(List<SizeResult> results)
    {
        var parts = results.Select(r => string.Create(C, $"{r.Fleet.Devices:N0} devices {r.DevicesPerMinute:N0}/min {(r.DevicesPerMinute >= Goal ? "met" : "NOT met")}"));
        return $"goal: ≥ 10,000 devices/min on this {Environment.ProcessorCount}-core machine (AWS IoT Jobs' documented maximum notification rate is 1,000/min): " +
            (results.Count == 0 ? "nothing measured" : string.Join("; ", parts));
    }

    private static string Json(List<SizeResult> results, List<string> failures)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("benchmark", "rollout");
            w.WriteNumber("processors", Environment.ProcessorCount);
            w.WriteNumber("goalDevicesPerMinute", Goal);
            w.WriteString("baseline", "broker alone (the control plane's EmbeddedBroker): N retained QoS 1 desired messages to N device connections, one QoS 1 event back from each; round trips/min = N / minutes, messages/min = 2N / minutes; median of >= 3 rounds");
            w.WriteStartArray("sizes");
            foreach (var r in results)
            {
                var f = r.Fleet;
                var b = r.Baseline;
                w.WriteStartObject();
                w.WriteNumber("devices", f.Devices);
                w.WriteNumber("seededDevices", f.Seeded);
                w.WriteNumber("seedSeconds", Math.Round(f.SeedSeconds, 3));
                w.WriteNumber("apiEnrolledDevices", f.Devices - f.Seeded);
                w.WriteNumber("apiEnrollSeconds", Math.Round(f.EnrollSeconds, 3));
                w.WriteNumber("apiEnrollsPerSecond", Math.Round(f.ApiEnrollsPerSecond, 2));
                w.WriteNumber("reloadKicks", f.ReloadKicks);
                w.WriteNumber("connectSeconds", Math.Round(f.ConnectSeconds, 3));
                w.WriteNumber("settleSeconds", Math.Round(f.SettleSeconds, 3));
                w.WriteNumber("devicesPerMinute", Math.Round(r.DevicesPerMinute, 1));
                w.WriteNumber("baselineRoundTripsPerMinute", Math.Round(b.RoundTripsPerMinute, 1));
                w.WriteNumber("baselineMessagesPerMinute", Math.Round(b.MessagesPerMinute, 1));
                w.WriteNumber("ratio", Math.Round(r.Ratio, 4));
                w.WriteBoolean("goalMet", r.DevicesPerMinute >= Goal);
                w.WriteNumber("simulatorPeakWorkingSetBytes", f.SimulatorPeakWorkingSetBytes);
                w.WriteNumber("controlPlaneErrors", f.ControlPlaneErrors);
                w.WriteStartArray("rounds");
                foreach (var x in f.Rounds)
                {
                    w.WriteStartObject();
                    w.WriteNumber("round", x.Round);
                    w.WriteString("version", x.Version);
                    w.WriteNumber("firstDesiredSeconds", Math.Round(x.FirstDeliveredSeconds, 3));
                    w.WriteNumber("firstCommittedSeconds", Math.Round(x.FirstCommittedSeconds, 3));
                    w.WriteNumber("halfCommittedSeconds", Math.Round(x.HalfCommittedSeconds, 3));
                    w.WriteNumber("ninetyCommittedSeconds", Math.Round(x.NinetyCommittedSeconds, 3));
                    w.WriteNumber("allCommittedSeconds", Math.Round(x.AllCommittedSeconds, 3));
                    w.WriteNumber("apiAllSucceededSeconds", Math.Round(x.ApiSucceededSeconds, 3));
                    Nullable(w, "serverCreatedToSucceededSeconds", x.ServerSeconds);
                    w.WriteNumber("devicesPerMinute", Math.Round(x.DevicesPerMinute, 1));
                    w.WriteNumber("publishedDesired", x.Profile.Publishes);
                    Nullable(w, "firstPublishSeconds", x.Profile.FirstPublish);
                    Nullable(w, "lastPublishSeconds", x.Profile.LastPublish);
                    w.WriteNumber("controlPlaneCpuSeconds", Math.Round(x.ControlPlaneCpuSeconds, 2));
                    w.WriteNumber("brokerCpuSeconds", Math.Round(x.BrokerCpuSeconds, 2));
                    w.WriteNumber("simulatorCpuSeconds", Math.Round(x.SimulatorCpuSeconds, 2));
                    w.WriteNumber("simulatorPoolThreadsMax", x.PoolThreadsMax);
                    w.WriteNumber("simulatorPoolQueueMax", x.PoolQueueMax);
                    w.WriteNumber("simulatorGcPauseSeconds", Math.Round(x.GcPauseSeconds, 3));
                    w.WriteNumber("loadAverageBefore", x.LoadBefore);
                    w.WriteNumber("loadAverageAfter", x.LoadAfter);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteStartArray("baselineRounds");
                foreach (var x in b.Rounds)
                {
                    w.WriteStartObject();
                    w.WriteNumber("deliveredSeconds", Math.Round(x.DeliveredSeconds, 3));
                    w.WriteNumber("seconds", Math.Round(x.Seconds, 3));
                    w.WriteNumber("brokerCpuSeconds", Math.Round(x.BrokerCpuSeconds, 2));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("failures");
            foreach (var f in failures)
            {
                w.WriteStringValue(f);
            }

            w.WriteEndArray();
            w.WriteString("goal", GoalLine(results));
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Nullable(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, Math.Round(v, 3));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private sealed record RunOptions
    {
        public required IReadOnlyList<int> Sizes { get; init; }

        public bool Json { get; init; }

        public int Rounds { get; init; } = 1;

        /// <summary>api (every device through the API) or seeded (all but <see cref="ApiEnroll"/> on the database directly).</summary>
        public string Enroll { get; init; } = "api";

        public int ApiEnroll { get; init; } = 100;

        public int DownloadConcurrency { get; init; } = 256;

        public int MinThreads { get; init; }

        public int TimeoutMinutes { get; init; } = 40;

        public string? LogDirectory { get; init; }

        /// <summary>More environment of the control plane (<c>--cp-env KEY=VALUE</c>), e.g. for profiling.</summary>
        public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

        public static RunOptions Parse(string[] args) => new()
        {
            Sizes = (BenchmarkArgs.Value(args, "--devices") ?? "1000,10000")
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.TryParse(s, C, out var n) && n > 0 ? n : throw new ArgumentException($"--devices: '{s}' is not a positive number"))
                .ToList(),
            Json = args.Contains("--json"),
            Rounds = BenchmarkArgs.Positive(args, "--rounds", 1),
            Enroll = BenchmarkArgs.Value(args, "--enroll") switch
            {
                null or "api" => "api",
                "seeded" => "seeded",
                var other => throw new ArgumentException($"--enroll: '{other}' is not api or seeded"),
            },
            ApiEnroll = BenchmarkArgs.Positive(args, "--api-enroll", 100),
            DownloadConcurrency = BenchmarkArgs.Positive(args, "--download-concurrency", 256),
            MinThreads = BenchmarkArgs.Positive(args, "--min-threads", 0),
            TimeoutMinutes = BenchmarkArgs.Positive(args, "--timeout-minutes", 40),
            LogDirectory = BenchmarkArgs.Value(args, "--cp-log"),
            Environment = args.Select((a, i) => (a, i)).Where(x => x.a == "--cp-env" && x.i + 1 < args.Length)
                .Select(x => args[x.i + 1].Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal),
        };
    }

    private sealed record Sample(double Seconds, int Delivered, int Committed, double CpCpu, double BrokerCpu, double SelfCpu, int PoolThreads, long PoolQueue,
        double GcPause)
    {
        public string Csv() => string.Create(CultureInfo.InvariantCulture,
            $"{Seconds:F2},{Delivered},{Committed},{CpCpu:F2},{BrokerCpu:F2},{SelfCpu:F2},{PoolThreads},{PoolQueue},{GcPause:F3}");
    }

    private sealed record LogProfile(int Publishes, double? FirstPublish, double? LastPublish, double? Ended);

    private sealed record RoundResult
    {
        public int Round { get; init; }

        public required string Version { get; init; }

        public int Devices { get; init; }

        public double FirstDeliveredSeconds { get; init; }

        public double FirstCommittedSeconds { get; init; }

        public double HalfCommittedSeconds { get; init; }

        public double NinetyCommittedSeconds { get; init; }

        public double AllCommittedSeconds { get; init; }

        public double ApiSucceededSeconds { get; init; }

        public double? ServerSeconds { get; init; }

        public double DevicesPerMinute => Devices / (ApiSucceededSeconds / 60);

        public required LogProfile Profile { get; init; }

        public double ControlPlaneCpuSeconds { get; init; }

        public double BrokerCpuSeconds { get; init; }

        public double SimulatorCpuSeconds { get; init; }

        public long PoolQueueMax { get; init; }

        public int PoolThreadsMax { get; init; }

        public double GcPauseSeconds { get; init; }

        public double LoadBefore { get; init; }

        public double LoadAfter { get; init; }
    }

    private sealed record FleetResult
    {
        public int Devices { get; init; }

        /// <summary>Devices enrolled with the registry code on the database rather than through the API.</summary>
        public int Seeded { get; init; }

        public double SeedSeconds { get; init; }

        /// <summary>Enrollment of the other devices, through the API.</summary>
        public double EnrollSeconds { get; init; }

        public double ApiEnrollsPerSecond => EnrollSeconds > 0 ? (Devices - Seeded) / EnrollSeconds : 0;

        /// <summary>Extra enrollments it took to make mosquitto load every login.</summary>
        public int ReloadKicks { get; init; }

        public double ConnectSeconds { get; init; }

        public double SettleSeconds { get; init; }

        public required IReadOnlyList<RoundResult> Rounds { get; init; }

        public long SimulatorPeakWorkingSetBytes { get; init; }

        public long Downloads { get; init; }

        public long ArtifactBytes { get; init; }

        public int ControlPlaneErrors { get; init; }

        public required DesiredMessage Sample { get; init; }
    }

    private sealed record BaselineRound(double DeliveredSeconds, double Seconds, double BrokerCpuSeconds, double ClientCpuSeconds);

    private sealed record BaselineResult(int Devices, double ConnectSeconds, IReadOnlyList<BaselineRound> Rounds, int DesiredBytes, int EventBytes)
    {
        public double Seconds => Median(Rounds.Select(r => r.Seconds));

        public double RoundTripsPerMinute => Devices / (Seconds / 60);

        public double MessagesPerMinute => 2 * Devices / (Seconds / 60);
    }

    private sealed record SizeResult(FleetResult Fleet, BaselineResult Baseline)
    {
        public double DevicesPerMinute => Median(Fleet.Rounds.Select(r => r.DevicesPerMinute));

        public double Ratio => DevicesPerMinute / Baseline.RoundTripsPerMinute;
    }
}
