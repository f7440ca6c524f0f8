using System.Diagnostics.Metrics;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// The control plane's metrics as <see cref="System.Diagnostics.Metrics"/> instruments on the meter
/// <see cref="MeterName"/> (exported at <c>/metrics</c> by <see cref="Apis.PrometheusExport"/>, readable by any
/// other listener: dotnet-counters, OpenTelemetry). Durations are in seconds. Totals are also kept as plain
/// counters for in-process readers (benchmarks, tests).
/// </summary>
public sealed class IngestMetrics : IDisposable
{
    public const string MeterName = "EdgeFleet.ControlPlane";

    /// <summary>Every reason <see cref="OnInvalid"/> is given (IngestionService), so each series exists from the first scrape.</summary>
    public static readonly IReadOnlyList<string> InvalidReasons = ["topic", "payload", "device id mismatch", "seq"];

    private static readonly double[] LagBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
    private static readonly double[] RequestBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly Meter _meter;
    private readonly Counter<long> _receivedCounter;
    private readonly Counter<long> _ingestedCounter;
    private readonly Counter<long> _invalidCounter;
    private readonly Counter<long> _duplicatesCounter;
    private readonly Counter<long> _unknownDevicesCounter;
    private readonly Counter<long> _writeErrorsCounter;
    private readonly Counter<long> _requestsCounter;
    private readonly Counter<long> _artifactBytesCounter;
    private readonly Counter<long> _artifactRequestsCounter;
    private readonly Counter<long> _desiredPublishedCounter;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<double> _lagHistogram;
    private readonly Histogram<double> _requestDuration;
    private readonly LatencyWindow _lag = new();
    private long _duplicates;
    private long _received;
    private long _ingested;
    private long _invalid;
    private long _batches;
    private long _writeTicks;
    private long _writeErrors;
    private FleetCounts _fleet = new(0, 0, 0, 0);

    /// <summary>Instruments on a meter of the host's <paramref name="meterFactory"/> (so two hosts in one process stay apart).</summary>
    public IngestMetrics(IMeterFactory meterFactory)
        : this(meterFactory?.Create(MeterName) ?? throw new ArgumentNullException(nameof(meterFactory)))
    {
    }

    /// <summary>Instruments on a meter of their own (tests, benchmarks).</summary>
    public IngestMetrics()
        : this(new Meter(MeterName))
    {
    }

    private IngestMetrics(Meter meter)
    {
        _meter = meter;
        _receivedCounter = meter.CreateCounter<long>("edgefleet.messages.received", "{message}", "MQTT messages received from devices");
        _ingestedCounter = meter.CreateCounter<long>("edgefleet.messages.ingested", "{message}", "Messages stored, after de-duplication, by kind");
        _invalidCounter = meter.CreateCounter<long>("edgefleet.messages.invalid", "{message}", "Messages refused by validation, by reason");
        _duplicatesCounter = meter.CreateCounter<long>("edgefleet.messages.duplicate", "{message}", "Messages already stored (same device and seq), not stored again");
        _unknownDevicesCounter = meter.CreateCounter<long>("edgefleet.messages.unknown_device", "{message}", "Messages from devices that are not enrolled");
        meter.CreateObservableGauge("edgefleet.messages.lost", () => _fleet.Lost, "{message}",
            "Messages known lost: gaps in device sequence numbers that never filled (all devices)");
        _batchDuration = meter.CreateHistogram("edgefleet.ingest.batch.duration", "s", "Time to write one batch of messages to the database",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LagBuckets });
        _writeErrorsCounter = meter.CreateCounter<long>("edgefleet.ingest.write_errors", "{batch}", "Batches that failed to write and were retried");
        _lagHistogram = meter.CreateHistogram("edgefleet.ingest.lag", "s", "Time from the device's timestamp to the database commit, per message",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LagBuckets });
        meter.CreateObservableGauge("edgefleet.ingest.lag.p50", () => _lag.Snapshot().P50, "s", "Median ingest lag of the last 4096 messages");
        meter.CreateObservableGauge("edgefleet.ingest.lag.p99", () => _lag.Snapshot().P99, "s", "99th percentile ingest lag of the last 4096 messages");
        meter.CreateObservableGauge("edgefleet.devices.online", () => _fleet.Online, "{device}", "Enrolled devices whose retained status says online");
        meter.CreateObservableGauge("edgefleet.devices", () => _fleet.Enrolled, "{device}", "Enrolled devices that are not revoked");
        meter.CreateObservableGauge("edgefleet.devices.revoked", () => _fleet.Revoked, "{device}", "Devices whose enrollment was revoked");
        _requestsCounter = meter.CreateCounter<long>("edgefleet.http.requests", "{request}", "HTTP requests by route, method and status");
        _requestDuration = meter.CreateHistogram("edgefleet.http.request.duration", "s", "HTTP request duration by route and method",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RequestBuckets });

        // "{byte}" rather than "By": the Prometheus name is edgefleet_artifact_bytes_served_total, without a unit suffix.
        _artifactBytesCounter = meter.CreateCounter<long>("edgefleet.artifact.bytes_served", "{byte}",
            "Bytes of model artifacts actually written to response bodies (ranges and aborted downloads count what was sent), by model and version");
        _artifactRequestsCounter = meter.CreateCounter<long>("edgefleet.artifact.requests", "{request}", "Model artifact download requests by HTTP status");
        _desiredPublishedCounter = meter.CreateCounter<long>("edgefleet.desired.published", "{message}",
            "Desired messages (assignments, rollout notifications, rollbacks, clears) the broker acknowledged");
    }

    /// <summary>The meter the instruments are on.</summary>
    public Meter Meter => _meter;

    public long Received => Interlocked.Read(ref _received);

    public long Duplicates => Interlocked.Read(ref _duplicates);

    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    public long IngestedTotal => Interlocked.Read(ref _ingested);

    public long InvalidTotal => Interlocked.Read(ref _invalid);

    public long Batches => Interlocked.Read(ref _batches);

    public TimeSpan WriteTime => TimeSpan.FromTicks(Interlocked.Read(ref _writeTicks));

    /// <summary>Lag percentiles of the last 4096 messages, milliseconds.</summary>
    public (double P50, double P99, long Count) Lag
    {
        get
        {
            var (p50, p99, count) = _lag.Snapshot();
            return (p50 * 1000, p99 * 1000, count);
        }
    }

    public void OnReceived()
    {
        Interlocked.Increment(ref _received);
        _receivedCounter.Add(1);
    }

    public void OnIngested(string kind, long count)
    {
        Interlocked.Add(ref _ingested, count);
        _ingestedCounter.Add(count, new KeyValuePair<string, object?>("kind", kind));
    }

    public void OnInvalid(string reason)
    {
        Interlocked.Increment(ref _invalid);
        _invalidCounter.Add(1, new KeyValuePair<string, object?>("reason", reason));
    }

    public void OnDuplicates(long count)
    {
        Interlocked.Add(ref _duplicates, count);
        _duplicatesCounter.Add(count);
    }

    public void OnBatch(TimeSpan took)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _writeTicks, took.Ticks);
        _batchDuration.Record(took.TotalSeconds);
    }

    public void OnWriteError()
    {
        Interlocked.Increment(ref _writeErrors);
        _writeErrorsCounter.Add(1);
    }

    public void OnUnknownDevice() => _unknownDevicesCounter.Add(1);

    public void OnDesiredPublished() => _desiredPublishedCounter.Add(1);

    /// <summary>Time from the device's timestamp to the commit of the row (a device clock ahead of ours counts as 0).</summary>
    public void OnLag(TimeSpan lag)
    {
        var seconds = Math.Max(0, lag.TotalSeconds);
        _lag.Add(seconds);
        _lagHistogram.Record(seconds);
    }

    public void OnRequest(string route, string method, int status, double milliseconds)
    {
        _requestsCounter.Add(1, new KeyValuePair<string, object?>("route", route), new KeyValuePair<string, object?>("method", method),
            new KeyValuePair<string, object?>("status", status));
        _requestDuration.Record(milliseconds / 1000, new KeyValuePair<string, object?>("route", route), new KeyValuePair<string, object?>("method", method));
    }

    /// <summary>One artifact request: its final status and the bytes of the body actually written (0 when refused).</summary>
    public void OnArtifactRequest(int status, string? model = null, string? version = null, long bytes = 0)
    {
        _artifactRequestsCounter.Add(1, new KeyValuePair<string, object?>("status", status));
        if (model is not null)
        {
            _artifactBytesCounter.Add(bytes, new KeyValuePair<string, object?>("model", model), new KeyValuePair<string, object?>("version", version));
        }
    }

    /// <summary>
    /// Records 0 on the counters whose series are known up front, so an exporter listening from now on shows them
    /// from its first scrape (an absent series and a zero one mean different things to an alert).
    /// </summary>
    public void InitializeSeries()
    {
        _receivedCounter.Add(0);
        _duplicatesCounter.Add(0);
        _unknownDevicesCounter.Add(0);
        _writeErrorsCounter.Add(0);
        _desiredPublishedCounter.Add(0);
        foreach (var reason in InvalidReasons)
        {
            _invalidCounter.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }

        foreach (var kind in new[] { Contracts.Messaging.Topics.Status, Contracts.Messaging.Topics.Telemetry, Contracts.Messaging.Topics.Drift, Contracts.Messaging.Topics.Events })
        {
            _ingestedCounter.Add(0, new KeyValuePair<string, object?>("kind", kind));
        }
    }

    /// <summary>The fleet-wide numbers the gauges report, read from the database before each export.</summary>
    public void SetFleet(long online, long enrolled, long lost, long revoked = 0) => _fleet = new FleetCounts(online, enrolled, lost, revoked);

    public void Dispose() => _meter.Dispose();

    private sealed record FleetCounts(long Online, long Enrolled, long Lost, long Revoked);

    /// <summary>The last 4096 samples; percentiles by sorting a copy at read time (rare) rather than per sample.</summary>
    private sealed class LatencyWindow
    {
        private readonly double[] _samples = new double[4096];
        private readonly Lock _lock = new();
        private long _count;

        public void Add(double value)
        {
            lock (_lock)
            {
                _samples[_count % _samples.Length] = value;
                _count++;
            }
        }

        public (double P50, double P99, long Count) Snapshot()
        {
            double[] copy;
            long count;
            lock (_lock)
            {
                count = _count;
                copy = _samples[..(int)Math.Min(count, _samples.Length)];
            }

            if (copy.Length == 0)
            {
                return (0, 0, 0);
            }

            Array.Sort(copy);
            return (copy[(int)Math.Floor(0.5 * (copy.Length - 1))], copy[(int)Math.Floor(0.99 * (copy.Length - 1))], count);
        }
    }
}
