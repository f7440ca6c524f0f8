using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.RegularExpressions;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// <c>/metrics</c> of the real control plane (Kestrel, SQLite) after real traffic: HTTP requests, and messages
/// through the ingestion writer (stored, duplicated, with a gap); linted by Debian's <c>promtool</c> and scraped by a
/// real Prometheus server.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class MetricsTests
{
    private static readonly DateTimeOffset T0 = TimeProvider.System.GetUtcNow().AddSeconds(-2);

    [Fact]
    public async Task Metrics_AfterTraffic_PassPromtoolAndReportTheFamilies()
    {
        await using var cp = new ControlPlaneFactory(kestrel: true);
        using var admin = cp.Client();
        await GenerateTrafficAsync(cp, admin);

        var text = await admin.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0 && output.Length == 0, $"promtool check metrics exited {exitCode}:\n{output}\n--- exposition ---\n{text}");
        var samples = Parse(text);
        Assert.Equal(7, samples["edgefleet_messages_received_total"]);
        Assert.Equal(3, samples["edgefleet_messages_ingested_total{kind=\"telemetry\"}"]); // 1, 2, 5
        Assert.Equal(1, samples["edgefleet_messages_ingested_total{kind=\"status\"}"]);
        Assert.Equal(1, samples["edgefleet_messages_duplicate_total"]);
        Assert.Equal(1, samples["edgefleet_messages_invalid_total{reason=\"payload\"}"]);
        Assert.Equal(2, samples["edgefleet_messages_lost"]); // seq 1, 2, 5: 3 and 4 missing
        Assert.Equal((1, 1), (samples["edgefleet_devices"], samples["edgefleet_devices_online"]));
        Assert.Equal(3, samples["edgefleet_ingest_lag_seconds_count"]); // every stored message
        Assert.InRange(samples["edgefleet_ingest_lag_seconds_sum"], 3 * 1.0, 3 * 3600.0); // each is seconds, not milliseconds
        Assert.InRange(samples["edgefleet_ingest_lag_p99_seconds"], 1.0, 3600);
        Assert.Equal(2, samples["edgefleet_ingest_batch_duration_seconds_count"]);
        Assert.Equal(0, samples["edgefleet_ingest_write_errors_total"]);
        Assert.Equal(3, samples["edgefleet_http_requests_total{method=\"GET\",route=\"/api/v1/models/\",status=\"200\"}"]);
        Assert.Equal(1, samples["edgefleet_http_requests_total{method=\"GET\",route=\"/api/v1/devices/{id}\",status=\"404\"}"]);
        Assert.Equal(1, samples["edgefleet_http_requests_total{method=\"POST\",route=\"/api/v1/enrollment-tokens/\",status=\"400\"}"]);
        Assert.Equal(3, samples["edgefleet_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/models/\"}"]);
        Assert.Equal(3, samples["edgefleet_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/models/\",le=\"+Inf\"}"]);
        Assert.Equal((0, 0), (samples["edgefleet_devices_revoked"], samples["edgefleet_messages_invalid_total{reason=\"topic\"}"]));
        Assert.Equal(0, samples["edgefleet_desired_published_total"]);
        // Per device, from its newest telemetry (seq 5) and status; latency in seconds; no host figures were reported.
        Assert.Equal(1, samples["edgefleet_device_online{device=\"cam-1\"}"]);
        Assert.Equal(1, samples["edgefleet_device_info{device=\"cam-1\",model=\"\",version=\"\",agent_version=\"test\"}"]);
        Assert.Equal(30, samples["edgefleet_device_fps{device=\"cam-1\"}"]);
        Assert.Equal(0.02, samples["edgefleet_device_latency_p95_seconds{device=\"cam-1\"}"], 6);
        Assert.Equal((9, 1, 0), (samples["edgefleet_device_frames_inferred_total{device=\"cam-1\"}"], samples["edgefleet_device_frames_dropped_total{device=\"cam-1\"}"],
            samples["edgefleet_device_errors_total{device=\"cam-1\"}"]));
        Assert.DoesNotContain("edgefleet_device_temperature_celsius{", text, StringComparison.Ordinal);
        Assert.Equal(0, samples["edgefleet_rollouts{state=\"running\"}"]);
        Assert.Contains("# TYPE edgefleet_device_frames_dropped_total counter", text, StringComparison.Ordinal);
        Assert.True(samples["process_cpu_seconds_total"] > 0);
        Assert.True(samples["process_working_set_bytes"] > 0);
        Assert.Contains("# TYPE edgefleet_messages_received_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE edgefleet_ingest_lag_seconds histogram", text, StringComparison.Ordinal);
        Assert.DoesNotContain("millisecond", text, StringComparison.Ordinal);
        Assert.Empty(cp.LoggedErrors);
    }

    [Fact]
    public async Task Metrics_ScrapedByPrometheus_WithTheBearerToken_SeriesAppearInItsApi()
    {
        await using var cp = new ControlPlaneFactory(kestrel: true);
        using var admin = cp.Client();
        await GenerateTrafficAsync(cp, admin);
        await using var prometheus = PrometheusServer.Start(admin.BaseAddress!, ControlPlaneFactory.AdminToken);

        var up = await prometheus.QueryUntilAsync("up{job=\"edgefleet\"}", v => v == 1);
        var ingested = await prometheus.QueryUntilAsync("edgefleet_messages_ingested_total{kind=\"telemetry\"}", v => v == 3);
        var online = await prometheus.QueryUntilAsync("edgefleet_devices_online", v => v == 1);

        Assert.Equal((1.0, 3.0, 1.0), (up, ingested, online));
    }

    /// <summary>
    /// Requests (ok, 404, 400) and messages: a status, telemetry 1, 2, 2 (a duplicate) and 5 (a gap of two), one
    /// invalid; received counts every message that arrived.
    /// </summary>
    private static async Task GenerateTrafficAsync(ControlPlaneFactory cp, HttpClient admin)
    {
        using (var created = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest(), ApiJsonContext.Default.EnrollmentTokenRequest))
        {
            var token = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
            using var enrolled = await admin.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = "cam-1" }, ApiJsonContext.Default.EnrollRequest);
            enrolled.EnsureSuccessStatusCode();
        }

        for (var i = 0; i < 3; i++)
        {
            using var ok = await admin.GetAsync(new Uri("/api/v1/models", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var missing = await admin.GetAsync(new Uri("/api/v1/devices/cam-404", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var bad = await admin.PostAsync(new Uri("/api/v1/enrollment-tokens", UriKind.Relative), new StringContent("""{"tags":[null]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        var metrics = cp.Services.GetRequiredService<IngestMetrics>();
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        var status = new StatusMessage { DeviceId = "cam-1", Ts = T0, Online = true, AgentVersion = "test" };
        Incoming[] first = [new(Topics.Status, "cam-1", 0, T0, status, [], T0), Telemetry(1), Telemetry(2), Telemetry(2)];
        Incoming[] second = [Telemetry(5)];
        for (var i = 0; i < first.Length + second.Length + 2; i++)
        {
            metrics.OnReceived(); // what the MQTT subscription does for each message, valid or not
        }

        metrics.OnInvalid("payload");
        await writer.WriteAsync(first, new Dictionary<string, long>(), default);
        await writer.WriteAsync(second, new Dictionary<string, long> { ["cam-1"] = 1 }, default);
    }

    private static Incoming Telemetry(long seq) =>
        new(Topics.Telemetry, "cam-1", seq, T0, new TelemetryMessage
        {
            DeviceId = "cam-1", Ts = T0, Seq = seq, Fps = 30, LatencyMs = new LatencyMs(10, 20, 30), Frames = new FrameCounters(10, 9, 1), Errors = 0,
        }, [], T0);

    /// <summary>Samples of an exposition: <c>name{labels}</c> → value.</summary>
    private static Dictionary<string, double> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#'))
            .Select(l => SampleRegex().Match(l))
            .ToDictionary(m => m.Groups["series"].Value, m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture), StringComparer.Ordinal);

    [GeneratedRegex("""^(?<series>[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?) (?<value>\S+)$""")]
    private static partial Regex SampleRegex();
}
