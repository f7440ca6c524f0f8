using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// Counters and latency windows of the control plane, rendered in Prometheus text format at <c>/metrics</c>.
/// Lock-free counters; latencies keep the last 4096 samples per series for p50/p99.
/// </summary>
public sealed class IngestMetrics
{
    private readonly ConcurrentDictionary<string, long> _ingested = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _invalid = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Route, string Method, int Status), long> _requests = new();
    private readonly ConcurrentDictionary<string, LatencyWindow> _requestLatency = new(StringComparer.Ordinal);
    private readonly LatencyWindow _lag = new();
    private long _duplicates;
    private long _received;
    private long _batches;
    private long _writeTicks;
    private long _writeErrors;
    private long _unknownDevices;

    public long Received => Interlocked.Read(ref _received);

    public long Duplicates => Interlocked.Read(ref _duplicates);

    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    public long IngestedTotal => _ingested.Values.Sum();

    public long InvalidTotal => _invalid.Values.Sum();

    public void OnReceived() => Interlocked.Increment(ref _received);

    public void OnIngested(string kind, long count) => _ingested.AddOrUpdate(kind, count, (_, v) => v + count);

    public void OnInvalid(string reason) => _invalid.AddOrUpdate(reason, 1, (_, v) => v + 1);

    public void OnDuplicates(long count) => Interlocked.Add(ref _duplicates, count);

    public void OnBatch(TimeSpan took)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _writeTicks, took.Ticks);
    }

    public long Batches => Interlocked.Read(ref _batches);

    public TimeSpan WriteTime => TimeSpan.FromTicks(Interlocked.Read(ref _writeTicks));

    public void OnWriteError() => Interlocked.Increment(ref _writeErrors);

    public void OnUnknownDevice() => Interlocked.Increment(ref _unknownDevices);

    /// <summary>Time from the device's timestamp to the commit of the row.</summary>
    public void OnLag(TimeSpan lag) => _lag.Add(lag.TotalMilliseconds);

    public (double P50, double P99, long Count) Lag => _lag.Snapshot();

    public void OnRequest(string route, string method, int status, double milliseconds)
    {
        _requests.AddOrUpdate((route, method, status), 1, (_, v) => v + 1);
        _requestLatency.GetOrAdd(route, _ => new LatencyWindow()).Add(milliseconds);
    }

    public string Render(long devicesOnline, long devicesTotal, long lost)
    {
        var sb = new StringBuilder();
        void Metric(string name, string type, string help)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        }

        void Line(string name, string labels, double value) =>
            sb.Append(name).Append(labels.Length > 0 ? "{" + labels + "}" : "").Append(' ').Append(value.ToString("G17", CultureInfo.InvariantCulture)).Append('\n');

        Metric("edgefleet_messages_received_total", "counter", "MQTT messages received from devices");
        Line("edgefleet_messages_received_total", "", Received);
        Metric("edgefleet_messages_ingested_total", "counter", "Messages stored, after de-duplication, by kind");
        foreach (var (kind, v) in _ingested.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            Line("edgefleet_messages_ingested_total", $"kind=\"{kind}\"", v);
        }

        Metric("edgefleet_messages_invalid_total", "counter", "Messages rejected by validation, by reason");
        foreach (var (reason, v) in _invalid.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            Line("edgefleet_messages_invalid_total", $"reason=\"{Escape(reason)}\"", v);
        }

        Metric("edgefleet_messages_duplicate_total", "counter", "Messages already stored (same device and seq)");
        Line("edgefleet_messages_duplicate_total", "", Duplicates);
        Metric("edgefleet_messages_lost", "gauge", "Gaps in device sequence numbers not filled (all devices)");
        Line("edgefleet_messages_lost", "", lost);
        Metric("edgefleet_messages_unknown_device_total", "counter", "Messages from devices that are not enrolled");
        Line("edgefleet_messages_unknown_device_total", "", Interlocked.Read(ref _unknownDevices));
        Metric("edgefleet_ingest_batches_total", "counter", "Database write batches");
        Line("edgefleet_ingest_batches_total", "", Interlocked.Read(ref _batches));
        Metric("edgefleet_ingest_write_seconds_total", "counter", "Time spent writing batches");
        Line("edgefleet_ingest_write_seconds_total", "", WriteTime.TotalSeconds);
        Metric("edgefleet_ingest_write_errors_total", "counter", "Batches that failed to write and were retried");
        Line("edgefleet_ingest_write_errors_total", "", WriteErrors);
        var (p50, p99, n) = Lag;
        Metric("edgefleet_ingest_lag_milliseconds", "summary", "Device timestamp to database commit, last 4096 messages");
        Line("edgefleet_ingest_lag_milliseconds", "quantile=\"0.5\"", p50);
        Line("edgefleet_ingest_lag_milliseconds", "quantile=\"0.99\"", p99);
        Line("edgefleet_ingest_lag_milliseconds_count", "", n);
        Metric("edgefleet_devices_online", "gauge", "Devices whose retained status says online");
        Line("edgefleet_devices_online", "", devicesOnline);
        Metric("edgefleet_devices", "gauge", "Enrolled devices that are not revoked");
        Line("edgefleet_devices", "", devicesTotal);
        Metric("edgefleet_http_requests_total", "counter", "HTTP requests by route, method and status");
        foreach (var ((route, method, status), v) in _requests.OrderBy(k => k.Key.Route, StringComparer.Ordinal))
        {
            Line("edgefleet_http_requests_total", $"route=\"{Escape(route)}\",method=\"{method}\",status=\"{status}\"", v);
        }

        Metric("edgefleet_http_request_duration_milliseconds", "summary", "HTTP request latency by route, last 4096 requests");
        foreach (var (route, window) in _requestLatency.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            var (rp50, rp99, count) = window.Snapshot();
            Line("edgefleet_http_request_duration_milliseconds", $"route=\"{Escape(route)}\",quantile=\"0.5\"", rp50);
            Line("edgefleet_http_request_duration_milliseconds", $"route=\"{Escape(route)}\",quantile=\"0.99\"", rp99);
            Line("edgefleet_http_request_duration_milliseconds_count", $"route=\"{Escape(route)}\"", count);
        }

        return sb.ToString();
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
        .Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>The last 4096 samples; percentiles by sorting a copy at scrape time (rare) rather than per sample.</summary>
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
