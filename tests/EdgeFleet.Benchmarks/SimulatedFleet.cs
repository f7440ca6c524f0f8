using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// Devices that behave like the agent where it matters for delivery: each has its own broker login, a real SQLite
/// outbox filled with numbered telemetry messages and the agent's <see cref="OutboxPublisher"/>, which deletes a row
/// only after the broker's PUBACK and sends again what a lost connection left unacknowledged. Used by the
/// <c>ingest --kill</c> benchmark and the kill -9 integration test (linked into the control plane's tests).
/// </summary>
internal sealed class SimulatedFleet : IAsyncDisposable
{
    private readonly List<Device> _devices = [];
    private readonly CancellationTokenSource _stop = new();

    private SimulatedFleet()
    {
    }

    public int Count => _devices.Count;

    /// <summary>Rows still in the outboxes (not acknowledged by the broker).</summary>
    public long Pending => _devices.Sum(d => d.Outbox.Stats.Pending);

    /// <summary>Messages the broker acknowledged.</summary>
    public long Acknowledged => _devices.Sum(d => d.Publisher.Published);

    /// <summary>Rows sent again after a failed publish or a missing PUBACK.</summary>
    public long Resent => _devices.Sum(d => d.Publisher.Resent);

    public long Reconnects => _devices.Sum(d => Math.Max(0, d.Connection.Connects - 1));

    public string Describe() => string.Join("; ", _devices.Select(d =>
        $"{d.Connection.ClientId}: connects {d.Connection.Connects}, losses {d.Connection.ConnectionLosses}, acked {d.Publisher.Published}, resent {d.Publisher.Resent}, pending {d.Outbox.Stats.Pending}"));

    /// <summary>Creates the devices with <paramref name="perDevice"/> telemetry messages (seq 1..perDevice) each in their outbox.</summary>
    public static SimulatedFleet Create(string host, int port, IReadOnlyList<(string Id, string? User, string? Password)> devices, int perDevice, string stateDirectory)
    {
        var fleet = new SimulatedFleet();
        try
        {
            foreach (var (id, user, password) in devices)
            {
                fleet._devices.Add(new Device(host, port, id, user, password, perDevice, stateDirectory));
            }

            return fleet;
        }
        catch
        {
            fleet.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    public void Start()
    {
        foreach (var device in _devices)
        {
            device.Start(_stop.Token);
        }
    }

    /// <summary>Waits until every outbox is empty (everything acknowledged by the broker).</summary>
    public async Task WaitDrainedAsync(TimeSpan timeout)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (Pending > 0)
        {
            if (TimeProvider.System.GetElapsedTime(started) > timeout)
            {
                throw new TimeoutException($"{Pending} messages still in the devices' outboxes after {timeout}: " + string.Join("; ", _devices
                    .Where(d => d.Outbox.Stats.Pending > 0)
                    .Select(d => $"{d.Connection.ClientId} {d.Connection.State} ({d.Connection.LastError}) connects {d.Connection.Connects}, " +
                        $"{d.Outbox.Stats.Pending} pending, {d.Publisher.InFlight} in flight, {d.Connection.PendingPublishes} awaiting PUBACK, resent {d.Publisher.Resent}")));
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var device in _devices)
        {
            await device.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    /// <summary>A realistic telemetry message (~800 bytes), stamped now so the ingest lag is publish → commit.</summary>
    public static TelemetryMessage Telemetry(string deviceId, long seq) => new()
    {
        DeviceId = deviceId,
        Ts = TimeProvider.System.GetUtcNow(),
        Seq = seq,
        IntervalSeconds = 10,
        Model = new ModelRef("sample-classifier", "1.0.0"),
        Fps = 29.8,
        LatencyMs = new LatencyMs(12.1, 14.9, 17.3),
        StagesMs = new Dictionary<string, LatencyMs> { ["preprocess"] = new(0.2, 0.3, 0.4), ["inference"] = new(11.2, 13.9, 16.0), ["postprocess"] = new(0.02, 0.03, 0.05) },
        Frames = new FrameCounters(300 * seq, 298 * seq, 2 * seq),
        Errors = 0,
        System = new SystemHealth { CpuPercent = 41.5, ProcessCpuPercent = 63.0, MemUsedBytes = 2_100_000_000, MemTotalBytes = 8_000_000_000, RssBytes = 180_000_000, TemperatureC = 51.2 },
        Outbox = new OutboxHealth(0, 0, 0, 0),
        Source = new SourceHealth("running", 0, 0, null),
    };

    private sealed class Device : IAsyncDisposable
    {
        private Task? _run;

        public Device(string host, int port, string id, string? user, string? password, int perDevice, string stateDirectory)
        {
            Outbox = new Outbox(Path.Combine(stateDirectory, $"{id}.outbox.db"), new OutboxLimits { SynchronousFull = false }, TimeProvider.System);
            var topic = Topics.For(id, Topics.Telemetry);
            for (var done = 0; done < perDevice; done += 500)
            {
                Outbox.EnqueueMany([.. Enumerable.Range(0, Math.Min(500, perDevice - done))
                    .Select(_ => (topic, (Func<long, byte[]>)(seq => MessageParser.Serialize(Telemetry(id, seq)))))]);
            }

            Connection = new MqttConnection(new MqttConnectionOptions
            {
                Host = host,
                Port = port,
                ClientId = id,
                Username = user,
                Password = password,
                MaxInflight = 100,
                ReconnectDelay = TimeSpan.FromMilliseconds(200),
                MaxReconnectDelay = TimeSpan.FromSeconds(2),
                KeepAliveSeconds = 10,
            }, NullLogger.Instance);
            Publisher = new OutboxPublisher(Outbox, Connection, TimeProvider.System, NullLogger.Instance, window: 100);
        }

        public Outbox Outbox { get; }

        public MqttConnection Connection { get; }

        public OutboxPublisher Publisher { get; }

        public void Start(CancellationToken stop)
        {
            Connection.Start();
            _run = Task.Run(() => Publisher.RunAsync(stop), CancellationToken.None);
        }

        public async ValueTask DisposeAsync()
        {
            if (_run is not null)
            {
                await _run.ConfigureAwait(false);
            }

            await Connection.DisposeAsync().ConfigureAwait(false);
            Publisher.Dispose();
            Outbox.Dispose();
        }
    }
}
