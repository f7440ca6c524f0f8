using System.Diagnostics.Metrics;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;
using Prometheus;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// Exports the <see cref="IngestMetrics"/> instruments through prometheus-net, plus its process and .NET
/// collectors (<c>process_*</c>, <c>dotnet_*</c>), in a registry of this host's own (nothing else in the process
/// leaks in, and two hosts in one test process stay apart).
/// <para>
/// Why not prometheus-net's own MeterAdapter: in 8.2.1 it publishes a .NET <c>Counter</c> as a Prometheus
/// <em>gauge</em> (so a name ending in <c>_total</c> fails <c>promtool check metrics</c>, and without it rate()
/// loses counter semantics), adds no unit suffix, names every metric after its meter, and drops series not
/// updated for 5 minutes. So a listener maps each instrument to the matching prometheus-net collector instead:
/// Counter → counter <c>name_total</c>, Histogram → histogram with the instrument's advised buckets,
/// ObservableGauge → gauge; names are the instrument's with dots as underscores and the base unit appended
/// (<c>s</c> → <c>_seconds</c>, <c>By</c> → <c>_bytes</c>; <c>{message}</c>-style annotations add nothing), as
/// OpenTelemetry's Prometheus naming does. The text itself is prometheus-net's.
/// </para>
/// </summary>
public sealed partial class PrometheusExport : IDisposable
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly MeterListener _listener = new();
    private readonly IngestMetrics _metrics;
    private readonly Database _database;
    private readonly ILogger<PrometheusExport> _logger;
    private readonly FleetExport _fleet;

    public PrometheusExport(IngestMetrics metrics, Database database, ILogger<PrometheusExport> logger)
    {
        _metrics = metrics ?? throw new ArgumentNullException(nameof(metrics));
        _database = database;
        _logger = logger;
        DotNetStats.Register(_registry);
        var factory = Metrics.WithCustomRegistry(_registry);
        _fleet = new FleetExport(factory);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == metrics.Meter)
            {
                listener.EnableMeasurementEvents(instrument, new Series(factory, instrument));
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((Series)state!).Record(value, tags));
        _listener.Start();
        metrics.InitializeSeries();

        // Before each scrape: the fleet-wide numbers from the database, then the observable gauges read them.
        _registry.AddBeforeCollectCallback(async cancellationToken =>
        {
            await RefreshFleetAsync(cancellationToken).ConfigureAwait(false);
            _listener.RecordObservableInstruments();
        });
    }

    public CollectorRegistry Registry => _registry;

    public void Dispose() => _listener.Dispose();

    /// <summary>The Prometheus name of an instrument (see the class comment).</summary>
    internal static string NameOf(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_').Replace('-', '_');
        var unit = instrument.Unit switch
        {
            "s" => "_seconds",
            "By" => "_bytes",
            "1" => "_ratio",
            _ => "",
        };
        if (unit.Length > 0 && !name.EndsWith(unit, StringComparison.Ordinal))
        {
            name += unit;
        }

        return instrument is Counter<long> or Counter<double> or ObservableCounter<long> or ObservableCounter<double> ? name + "_total" : name;
    }

    private async Task RefreshFleetAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _database.OpenAsync(cancellationToken).ConfigureAwait(false);
            var counts = await connection.QueryAsync("""
                SELECT COALESCE(SUM(CASE WHEN online = 1 AND revoked = 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN revoked = 0 THEN 1 ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN first_seq IS NULL THEN 0 ELSE max_seq - first_seq + 1 - received END), 0),
                       COALESCE(SUM(CASE WHEN revoked = 0 THEN 0 ELSE 1 END), 0)
                FROM devices
                """, r => (Online: r.Long(0), Enrolled: r.Long(1), Lost: r.Long(2), Revoked: r.Long(3))).ConfigureAwait(false);
            _metrics.SetFleet(counts[0].Online, counts[0].Enrolled, counts[0].Lost, counts[0].Revoked);
            await _fleet.RefreshAsync(connection).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            // The ingestion and HTTP metrics are still worth a scrape; the fleet and per-device series keep their last values.
            LogFleetFailed(_logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Metrics: could not read the fleet counts from the database; the device gauges keep their last values")]
    private static partial void LogFleetFailed(ILogger logger, Exception exception);

    /// <summary>
    /// One instrument's collector, created at its first measurement: prometheus-net needs the label names up
    /// front, and an instrument only shows its tags when it records (ours always record the same tags).
    /// </summary>
    private sealed class Series(MetricFactory factory, Instrument instrument)
    {
        private readonly Lock _lock = new();
        private string[] _keys = [];
        private Collector? _collector;

        public void Record<T>(T value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
            where T : struct
        {
            var collector = _collector ?? Create(tags);
            var number = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
            var keys = _keys;
            var values = keys.Length == 0 ? [] : new string[keys.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                values[i] = "";
                foreach (var tag in tags)
                {
                    if (tag.Key == keys[i])
                    {
                        values[i] = Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                    }
                }
            }

            switch (collector)
            {
                case Counter counter when instrument is Counter<long> or Counter<double>:
                    counter.WithLabels(values).Inc(number);
                    break;
                case Counter counter:
                    counter.WithLabels(values).IncTo(number);
                    break;
                case Histogram histogram:
                    histogram.WithLabels(values).Observe(number);
                    break;
                case Gauge gauge:
                    gauge.WithLabels(values).Set(number);
                    break;
            }
        }

        private Collector Create(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var keys = new string[tags.Length];
            for (var i = 0; i < tags.Length; i++)
            {
                keys[i] = tags[i].Key;
            }

            Array.Sort(keys, StringComparer.Ordinal);
            lock (_lock)
            {
                if (_collector is not null)
                {
                    return _collector;
                }

                var name = NameOf(instrument);
                var help = instrument.Description ?? instrument.Name;
                var labels = keys.Select(k => k.Replace('.', '_')).ToArray();
                _keys = keys;
                _collector = instrument switch
                {
                    Counter<long> or Counter<double> or ObservableCounter<long> or ObservableCounter<double> => factory.CreateCounter(name, help, labels),
                    Histogram<double> h => factory.CreateHistogram(name, help, labels,
                        new HistogramConfiguration { Buckets = h.Advice?.HistogramBucketBoundaries?.ToArray() ?? Histogram.ExponentialBuckets(0.001, 2, 16) }),
                    _ => factory.CreateGauge(name, help, labels),
                };
                return _collector;
            }
        }
    }
}

/// <summary>GET /metrics: the Prometheus exposition (text 0.0.4, or OpenMetrics when asked), for any API token.</summary>
public static class MetricsApi
{
    public static IEndpointRouteBuilder MapPrometheusMetrics(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var export = app.ServiceProvider.GetRequiredService<PrometheusExport>();
        app.MapMetrics(settings => settings.Registry = export.Registry).RequireAuthorization(Policies.Viewer).ExcludeFromDescription();
        return app;
    }
}
