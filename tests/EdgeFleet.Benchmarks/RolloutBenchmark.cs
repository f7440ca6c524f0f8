using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// How fast a staged rollout reaches a whole fleet: the real control plane process (engine, embedded mosquitto,
/// SQLite; rollout tick 100 ms) and N protocol-true simulated devices (<see cref="FleetSimulator"/>: their own broker
/// logins, retained <c>desired</c>, manifest/signature/artifact downloads over HTTP, signature and SHA-256 checks,
/// <c>update.*</c> events; probation 0, telemetry every 60 s). One rollout with one 100 % stage, bake 0, no quality
/// gates and an unlimited rate is timed from <c>POST /api/v1/rollouts</c> until the API reports every device
/// <c>succeeded</c> (and the simulator counts N committed). Enrollment and connection are timed apart.
/// The baseline, measured in the same run once the control plane is gone, is the broker alone: the control plane's own
/// broker (<see cref="EmbeddedBroker"/>, so the same mosquitto, configuration, ACL and logins) delivering N retained
/// QoS 1 desired messages to N device connections, each of which answers with one QoS 1 event that a service
/// subscriber receives. The ratio is rollout devices/min ÷ baseline device round trips/min.
/// <c>dotnet run -c Release --project tests/EdgeFleet.Benchmarks -- rollout [--devices 1000,10000] [--json]</c>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static partial class RolloutBenchmark
{
    private const string Model = "bench-cls";
    private const string NewVersion = "1.1.0";
    private const double Goal = 10_000;
    private const int ConnectConcurrency = 64;
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        var sizes = (BenchmarkArgs.Value(args, "--devices") ?? "1000,10000")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, C, out var n) && n > 0 ? n : throw new ArgumentException($"--devices: '{s}' is not a positive number"))
            .ToList();
        var json = args.Contains("--json");
        var minutes = BenchmarkArgs.Positive(args, "--timeout-minutes", 40);
        var log = Console.Error;
        var results = new List<SizeResult>();
        var failures = new List<string>();
        foreach (var n in sizes)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(minutes));
            try
            {
                var rollout = await RolloutAsync(n, log, timeout.Token);
                await log.WriteLineAsync(string.Create(C, $"[{n}] baseline: broker alone, {n} desired out and {n} events back"));
                var baseline = await BaselineAsync(n, rollout.Sample, log, timeout.Token);
                var result = new SizeResult(rollout, baseline);
                results.Add(result);
                await log.WriteLineAsync(string.Create(C,
                    $"[{n}] {result.Rollout.DevicesPerMinute:N0} devices/min; baseline {baseline.RoundTripsPerMinute:N0} round trips/min; ratio {result.Ratio:F3}"));
            }
            catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or InvalidOperationException or SimulatorException or HttpRequestException
                or MqttException or BrokerStartException)
            {
                var why = $"{n} devices: {ex.GetType().Name}: {ex.Message}";
                failures.Add(why);
                await log.WriteLineAsync($"[{n}] FAILED: {why}");
            }
        }

        if (json)
        {
            Console.WriteLine(Json(results, failures));
        }
        else
        {
            Print(results, failures);
        }

        return failures.Count == 0 ? 0 : 1;
    }

    private static async Task<RolloutResult> RolloutAsync(int n, TextWriter log, CancellationToken ct)
    {
        await log.WriteLineAsync(string.Create(C, $"[{n}] control plane (embedded mosquitto, SQLite, rollout tick 100 ms)"));
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            EmbeddedMqtt = true,
            Environment = new Dictionary<string, string>
            {
                ["ControlPlane__RolloutTickMilliseconds"] = "100",

                // Timestamps on every log line (UTC, as the API's): where the time goes, from the transitions and publishes it logs.
                ["Logging__Console__FormatterOptions__TimestampFormat"] = "yyyy-MM-dd'T'HH:mm:ss.fff ",
                ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
            },
        });
        using var admin = cp.CreateClient(cp.AdminToken);
        await RegistryUploads.PushAsync(admin, Model, "1.0.0", TestModels.SmallClassifier);
        var pushed = await RegistryUploads.PushAsync(admin, Model, NewVersion, TestModels.SmallClassifier);
        var token = await cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = ["fleet=bench"], MaxUses = n });

        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var sim = new FleetSimulator(new SimulatorOptions
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
            DownloadConcurrency = 64,
            DownloadRetryDelay = TimeSpan.FromSeconds(0.1),
            ConnectConcurrency = ConnectConcurrency,
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            Seed = 17,
            Logger = loggers.CreateLogger("sim"),
        });
        try
        {
            var clock = Stopwatch.StartNew();
            await log.WriteLineAsync(string.Create(C, $"[{n}] enrolling {n} simulated devices"));
            await sim.StartAsync(ct);
            var enroll = clock.Elapsed.TotalSeconds;
            await log.WriteLineAsync(string.Create(C, $"[{n}] enrolled in {enroll:F1} s; connecting"));
            await WithProgressAsync(sim.WaitAllConnectedAsync(ct), () => $"{sim.Connected} of {n} connected", log, n, ct);
            var connect = clock.Elapsed.TotalSeconds - enroll;
            await log.WriteLineAsync(string.Create(C, $"[{n}] all connected in {connect:F1} s; waiting until the control plane sees them online"));
            var settle = Stopwatch.StartNew();
            await WaitOnlineAsync(admin, n, ct);
            var settled = settle.Elapsed.TotalSeconds;

            var cpPid = ControlPlanePid(cp.DataDirectory);
            var brokerPid = BrokerPid(cp.DataDirectory);
            var cpu0 = (Cp: CpuSeconds(cpPid), Broker: CpuSeconds(brokerPid), Self: SelfCpuSeconds());
            var propagation = Stopwatch.StartNew();
            var firstDelivered = TimeWhen(sim.WaitUntilAsync(s => Delivered(s) > 0, ct), propagation);
            var firstCommitted = TimeWhen(sim.WaitForOtaAsync(NewVersion, SimOtaState.Committed, 1, ct), propagation);
            var half = TimeWhen(sim.WaitForOtaAsync(NewVersion, SimOtaState.Committed, (n + 1) / 2, ct), propagation);
            var ninety = TimeWhen(sim.WaitForOtaAsync(NewVersion, SimOtaState.Committed, (int)Math.Ceiling(n * 0.9), ct), propagation);
            var all = TimeWhen(sim.WaitForOtaAsync(NewVersion, SimOtaState.Committed, n, ct), propagation);

            await log.WriteLineAsync(string.Create(C, $"[{n}] POST /api/v1/rollouts (one stage 100 %, bake 0, gates [], 10,000,000/min)"));
            using var response = await admin.PostAsJsonAsync("api/v1/rollouts", new RolloutRequest
            {
                Model = Model,
                Version = NewVersion,
                Selector = ["fleet=bench"],
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
            var posted = propagation.Elapsed.TotalSeconds;
            if (created.DeviceCount != n)
            {
                throw new InvalidOperationException($"the rollout selected {created.DeviceCount} devices, not {n}");
            }

            await WithProgressAsync(all, () => $"{sim.CountOta(NewVersion, SimOtaState.Committed)} of {n} committed, {Delivered(sim)} received the desired message",
                log, n, ct);

            // The API can only report every device succeeded after each committed, so it is asked from then on (often,
            // and without the device list): asking before would load the control plane with what it is measured on.
            RolloutInfo info;
            while (true)
            {
                info = (await admin.GetFromJsonAsync($"api/v1/rollouts?limit=1", ApiJsonContext.Default.IReadOnlyListRolloutInfo, ct))!.Single();
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
            var cpu1 = (Cp: CpuSeconds(cpPid), Broker: CpuSeconds(brokerPid), Self: SelfCpuSeconds());
            if (info.State != RolloutStates.Succeeded || info.Counts.GetValueOrDefault(RolloutDeviceStates.Succeeded) != n)
            {
                throw new InvalidOperationException($"the rollout ended {info.State} ({info.Reason}) with {string.Join(", ", info.Counts.Select(c => $"{c.Key}={c.Value}"))}");
            }

            var summary = sim.Summary();
            var sample = await admin.GetFromJsonAsync($"api/v1/devices/{sim.Options.DeviceId(0)}/assignment", ApiJsonContext.Default.DesiredMessage, ct)
                ?? throw new InvalidOperationException("no assignment on the first device");
            var profile = Profile(cp.Output, created.Id, created.CreatedAt);
            await log.WriteLineAsync(string.Create(C,
                $"[{n}] every device succeeded (API) after {apiSeconds:F2} s; stopping the simulator and the control plane"));
            return new RolloutResult
            {
                Devices = n,
                EnrollSeconds = enroll,
                ConnectSeconds = connect,
                SettleSeconds = settled,
                PostSeconds = posted,
                FirstDeliveredSeconds = await firstDelivered,
                FirstCommittedSeconds = await firstCommitted,
                HalfCommittedSeconds = await half,
                NinetyCommittedSeconds = await ninety,
                AllCommittedSeconds = await all,
                ApiSucceededSeconds = apiSeconds,
                ServerSeconds = info.FinishedAt is { } finished ? (finished - info.CreatedAt).TotalSeconds : null,
                Profile = profile,
                ControlPlaneCpuSeconds = cpu1.Cp - cpu0.Cp,
                BrokerCpuSeconds = cpu1.Broker - cpu0.Broker,
                SimulatorCpuSeconds = cpu1.Self - cpu0.Self,
                SimulatorPeakWorkingSetBytes = summary.PeakWorkingSetBytes,
                Downloads = summary.Downloads,
                ArtifactBytes = pushed.Size,
                Sample = sample,
                ControlPlaneErrors = Errors(cp.Output),
            };
        }
        finally
        {
            await sim.DisposeAsync();
        }
    }

    /// <summary>Devices that received the new version's desired message (whatever they did with it since).</summary>
    private static int Delivered(FleetSimulator sim) => Enum.GetValues<SimOtaState>().Where(s => s != SimOtaState.None).Sum(s => sim.CountOta(NewVersion, s));

    private static async Task<double> TimeWhen(Task condition, Stopwatch clock)
    {
        await condition.ConfigureAwait(false);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Awaits <paramref name="task"/>, printing progress every 10 s; fails when nothing moved for 5 minutes.</summary>
    private static async Task WithProgressAsync(Task task, Func<string> progress, TextWriter log, int n, CancellationToken ct)
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
            await log.WriteLineAsync($"[{n}]   {now}");
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
            var online = (await admin.GetFromJsonAsync("api/v1/devices?online=true", ApiJsonContext.Default.IReadOnlyListDeviceInfo, ct))!.Count;
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
    /// The broker alone: <see cref="EmbeddedBroker"/> (what the control plane runs, same files and limits) with N device
    /// logins; N connections configured like the simulated devices, each subscribed to its <c>desired</c>; one service
    /// connection publishes N retained QoS 1 desired messages (the rollout's own, with a fresh id each) and each device
    /// answers the first one it gets with one QoS 1 event; a service subscriber on <c>ef/v1/+/events</c> counts them.
    /// Timed from the first publish to the N-th event received.
    /// </summary>
    private static async Task<BaselineResult> BaselineAsync(int n, DesiredMessage sample, TextWriter log, CancellationToken ct)
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
        var publisher = new MqttConnection(broker.ServiceClientOptions("bench-desired") with { ReceiveBuffer = 10_000, MaxInflight = 1000 }, NullLogger.Instance);
        var collector = new MqttConnection(broker.ServiceClientOptions("bench-ingest") with
        {
            ReceiveBuffer = 10_000,
            MaxInflight = 1000,
            ReceiveMaximum = 10_000, // as ingestion announces
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
            await log.WriteLineAsync(string.Create(C, $"[{n}] baseline: {n} device connections up in {connect:F1} s"));

            var stamp = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds().ToString(C);
            var desired = ids.Select(id => MessageParser.Serialize(sample with { Id = $"{sample.RolloutId}-{id}-{stamp}" })).ToList();
            var events = ids.Select((id, i) => MessageParser.Serialize(CommittedEvent(id, sample, $"{sample.RolloutId}-{id}-{stamp}"))).ToList();
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
            return new BaselineResult(n, connect, Volatile.Read(ref deliveredAt), seconds, desired[0].Length, events[0].Length,
                cpu1.Broker - cpu0.Broker, cpu1.Self - cpu0.Self);
        }
        finally
        {
            await publisher.DisposeAsync();
            await collector.DisposeAsync();
            await Task.WhenAll(devices.Select(d => d.DisposeAsync().AsTask()));
        }
    }

    /// <summary>The event a simulated device sends when it commits (about the size the simulator's is).</summary>
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

    /// <summary>What the control plane's log says about the rollout: when it published the first and last desired message, when it ended.</summary>
    private static LogProfile Profile(string output, string rolloutId, DateTimeOffset createdAt)
    {
        DateTimeOffset? first = null, last = null, ended = null;
        var publishes = 0;
        foreach (var line in output.Split('\n'))
        {
            var m = LogLine().Match(line);
            if (!m.Success || !DateTimeOffset.TryParseExact(m.Groups["ts"].Value, "yyyy-MM-dd'T'HH:mm:ss.fff", C, DateTimeStyles.AssumeUniversal, out var ts))
            {
                continue;
            }

            var message = m.Groups["message"].Value;
            if (message.StartsWith("Published the retained desired message of bench-", StringComparison.Ordinal) && ts >= createdAt.AddSeconds(-1))
            {
                publishes++;
                first ??= ts;
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
            catch (IOException)
            {
                // gone meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                // not ours
            }
        }

        return null;
    }

    private static int? BrokerPid(string dataDirectory) =>
        File.Exists(Path.Combine(dataDirectory, "mqtt", "mosquitto.pid"))
        && int.TryParse(File.ReadAllText(Path.Combine(dataDirectory, "mqtt", "mosquitto.pid")).Trim(), C, out var pid) ? pid : null;

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
            return (long.Parse(fields[11], C) + long.Parse(fields[12], C)) / 100.0; // utime, stime in clock ticks (USER_HZ 100)
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

    private static void Print(List<SizeResult> results, List<string> failures)
    {
        Console.WriteLine("Rollout propagation: one rollout, one stage of 100 %, bake 0, no quality gates (delivery only), rate 10,000,000/min,");
        Console.WriteLine("to N simulated devices (edgefleet sim: own broker logins, HTTP downloads, signature + SHA-256 checks, probation 0,");
        Console.WriteLine("telemetry every 60 s), real control plane process (engine tick 100 ms, embedded mosquitto, SQLite), 2-core machine.");
        Console.WriteLine("Times in seconds from POST /api/v1/rollouts; committed = the simulator's count; 'API' = GET reports every device succeeded.");
        Console.WriteLine();
        Console.WriteLine("| devices | enroll s | connect s | first desired | first committed | 50 % | 90 % | 100 % committed | API all succeeded | devices/min | baseline round trips/min (msg/min) | ratio |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
        {
            var o = r.Rollout;
            var b = r.Baseline;
            Console.WriteLine(string.Create(C,
                $"| {o.Devices:N0} | {o.EnrollSeconds:F1} | {o.ConnectSeconds:F1} | {o.FirstDeliveredSeconds:F2} | {o.FirstCommittedSeconds:F2} | {o.HalfCommittedSeconds:F2} | {o.NinetyCommittedSeconds:F2} | {o.AllCommittedSeconds:F2} | {o.ApiSucceededSeconds:F2} | **{o.DevicesPerMinute:N0}** | {b.RoundTripsPerMinute:N0} ({b.MessagesPerMinute:N0}) | **{r.Ratio:F3}** |"));
        }

        Console.WriteLine();
        foreach (var r in results)
        {
            var o = r.Rollout;
            var p = o.Profile;
            Console.WriteLine(string.Create(C,
                $"{o.Devices:N0} devices: server side created → succeeded {o.ServerSeconds:F2} s; control-plane log: {p.Publishes} desired messages published from {p.FirstPublish:F2} to {p.LastPublish:F2} s, rollout succeeded at {p.Ended:F2} s; " +
                $"CPU during propagation: control plane {o.ControlPlaneCpuSeconds:F1} s, mosquitto {o.BrokerCpuSeconds:F1} s, simulator + benchmark {o.SimulatorCpuSeconds:F1} s (of {o.ApiSucceededSeconds * Environment.ProcessorCount:F1} s on {Environment.ProcessorCount} cores); " +
                $"{o.Downloads:N0} artifact downloads of {o.ArtifactBytes / 1024.0:F0} KiB; simulator peak working set {o.SimulatorPeakWorkingSetBytes / 1048576.0:F0} MiB; control plane logged {o.ControlPlaneErrors} errors"));
            var b = r.Baseline;
            Console.WriteLine(string.Create(C,
                $"{b.Devices:N0} devices baseline: {b.Devices:N0} desired delivered in {b.DeliveredSeconds:F2} s, {b.Devices:N0} events back by {b.Seconds:F2} s ({b.DesiredBytes} B desired, {b.EventBytes} B event); CPU mosquitto {b.BrokerCpuSeconds:F1} s, clients {b.ClientCpuSeconds:F1} s; connections up in {b.ConnectSeconds:F1} s"));
        }

        Console.WriteLine();
        Console.WriteLine("Baseline: the broker alone, in the same run after the control plane stopped: the control plane's own EmbeddedBroker (same mosquitto,");
        Console.WriteLine("mosquitto.conf, ACL and logins) with N device connections configured like the simulated ones, each subscribed to ef/v1/{id}/desired;");
        Console.WriteLine("a service connection publishes N retained QoS 1 desired messages (the rollout's own payload), each device answers with one QoS 1");
        Console.WriteLine("update.committed event, a service subscriber on ef/v1/+/events receives them; first publish → N-th event. No control plane, HTTP or");
        Console.WriteLine("database. Ratio = rollout devices/min ÷ baseline device round trips/min (msg/min counts desired + event).");
        foreach (var f in failures)
        {
            Console.WriteLine($"FAILED: {f}");
        }

        Console.WriteLine(GoalLine(results));
    }

    private static string GoalLine(List<SizeResult> results)
    {
        var parts = results.Select(r => string.Create(C, $"{r.Rollout.Devices:N0} devices {r.Rollout.DevicesPerMinute:N0}/min {(r.Rollout.DevicesPerMinute >= Goal ? "met" : "NOT met")}"));
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
            w.WriteString("baseline", "broker alone (the control plane's EmbeddedBroker configuration): N retained QoS 1 desired messages to N device connections, one QoS 1 event back from each; round trips/min = N / minutes, messages/min = 2N / minutes");
            w.WriteStartArray("runs");
            foreach (var r in results)
            {
                var o = r.Rollout;
                var b = r.Baseline;
                w.WriteStartObject();
                w.WriteNumber("devices", o.Devices);
                w.WriteNumber("enrollSeconds", Math.Round(o.EnrollSeconds, 3));
                w.WriteNumber("connectSeconds", Math.Round(o.ConnectSeconds, 3));
                w.WriteNumber("settleSeconds", Math.Round(o.SettleSeconds, 3));
                w.WriteNumber("postSeconds", Math.Round(o.PostSeconds, 3));
                w.WriteNumber("firstDesiredSeconds", Math.Round(o.FirstDeliveredSeconds, 3));
                w.WriteNumber("firstCommittedSeconds", Math.Round(o.FirstCommittedSeconds, 3));
                w.WriteNumber("halfCommittedSeconds", Math.Round(o.HalfCommittedSeconds, 3));
                w.WriteNumber("ninetyCommittedSeconds", Math.Round(o.NinetyCommittedSeconds, 3));
                w.WriteNumber("allCommittedSeconds", Math.Round(o.AllCommittedSeconds, 3));
                w.WriteNumber("apiAllSucceededSeconds", Math.Round(o.ApiSucceededSeconds, 3));
                Nullable(w, "serverCreatedToSucceededSeconds", o.ServerSeconds);
                w.WriteNumber("devicesPerMinute", Math.Round(o.DevicesPerMinute, 1));
                w.WriteNumber("publishedDesired", o.Profile.Publishes);
                Nullable(w, "firstPublishSeconds", o.Profile.FirstPublish);
                Nullable(w, "lastPublishSeconds", o.Profile.LastPublish);
                w.WriteNumber("controlPlaneCpuSeconds", Math.Round(o.ControlPlaneCpuSeconds, 2));
                w.WriteNumber("brokerCpuSeconds", Math.Round(o.BrokerCpuSeconds, 2));
                w.WriteNumber("simulatorCpuSeconds", Math.Round(o.SimulatorCpuSeconds, 2));
                w.WriteNumber("simulatorPeakWorkingSetBytes", o.SimulatorPeakWorkingSetBytes);
                w.WriteNumber("controlPlaneErrors", o.ControlPlaneErrors);
                w.WriteNumber("baselineDeliveredSeconds", Math.Round(b.DeliveredSeconds, 3));
                w.WriteNumber("baselineSeconds", Math.Round(b.Seconds, 3));
                w.WriteNumber("baselineRoundTripsPerMinute", Math.Round(b.RoundTripsPerMinute, 1));
                w.WriteNumber("baselineMessagesPerMinute", Math.Round(b.MessagesPerMinute, 1));
                w.WriteNumber("baselineBrokerCpuSeconds", Math.Round(b.BrokerCpuSeconds, 2));
                w.WriteNumber("ratio", Math.Round(r.Ratio, 4));
                w.WriteBoolean("goalMet", o.DevicesPerMinute >= Goal);
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

    private sealed record LogProfile(int Publishes, double? FirstPublish, double? LastPublish, double? Ended);

    private sealed record RolloutResult
    {
        public int Devices { get; init; }

        public double EnrollSeconds { get; init; }

        public double ConnectSeconds { get; init; }

        public double SettleSeconds { get; init; }

        public double PostSeconds { get; init; }

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

        public long SimulatorPeakWorkingSetBytes { get; init; }

        public long Downloads { get; init; }

        public long ArtifactBytes { get; init; }

        public required DesiredMessage Sample { get; init; }

        public int ControlPlaneErrors { get; init; }
    }

    private sealed record BaselineResult(int Devices, double ConnectSeconds, double DeliveredSeconds, double Seconds, int DesiredBytes, int EventBytes,
        double BrokerCpuSeconds, double ClientCpuSeconds)
    {
        public double RoundTripsPerMinute => Devices / (Seconds / 60);

        public double MessagesPerMinute => 2 * Devices / (Seconds / 60);
    }

    private sealed record SizeResult(RolloutResult Rollout, BaselineResult Baseline)
    {
        public double Ratio => Rollout.DevicesPerMinute / Baseline.RoundTripsPerMinute;
    }
}
