using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
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

        var (exitCode, output) = await PromtoolAsync(text);
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
        await using var prometheus = await PrometheusServer.StartAsync(admin.BaseAddress!, ControlPlaneFactory.AdminToken);

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

    private static async Task<(int ExitCode, string Output)> PromtoolAsync(string exposition)
    {
        var start = new ProcessStartInfo("promtool", ["check", "metrics"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start; install Debian's prometheus package (deploy/bootstrap.sh)");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return (process.ExitCode, ((await stdout) + (await stderr)).Trim());
    }

    /// <summary>
    /// A real Prometheus (Debian's binary) on a free loopback port with a temporary configuration and storage,
    /// scraping one target every second with a bearer token; killed and deleted on dispose.
    /// </summary>
    private sealed class PrometheusServer : IAsyncDisposable
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
        private readonly TempDirectory _directory;
        private readonly Process _process;
        private readonly StringBuilder _log = new();
        private readonly HttpClient _http;

        private PrometheusServer(TempDirectory directory, Process process, Uri url)
        {
            _directory = directory;
            _process = process;
            _http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) };
            process.OutputDataReceived += (_, e) => Append(e.Data);
            process.ErrorDataReceived += (_, e) => Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public static Task<PrometheusServer> StartAsync(Uri target, string token)
        {
            var directory = new TempDirectory("edgefleet-prometheus");
            try
            {
                var port = FreePort.Next();
                File.WriteAllText(Path.Combine(directory.Path, "prometheus.yml"), $"""
                    global:
                      scrape_interval: 1s
                      scrape_timeout: 1s
                    scrape_configs:
                      - job_name: edgefleet
                        metrics_path: /metrics
                        authorization:
                          type: Bearer
                          credentials: {token}
                        static_configs:
                          - targets: ['{target.Authority}']
                    """);
                var start = new ProcessStartInfo("prometheus",
                [
                    $"--config.file={Path.Combine(directory.Path, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(directory.Path, "data")}",
                    $"--web.listen-address=127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--log.level=warn",
                ])
                {
                    RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory.Path,
                };
                var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start; install Debian's prometheus package (deploy/bootstrap.sh)");
                return Task.FromResult(new PrometheusServer(directory, process, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/")));
            }
            catch
            {
                directory.Dispose();
                throw;
            }
        }

        /// <summary>Polls the query API until the query's single series satisfies <paramref name="done"/>; its value.</summary>
        public async Task<double> QueryUntilAsync(string query, Func<double, bool> done)
        {
            var deadline = Stopwatch.StartNew();
            string last = "(no answer yet)";
            while (deadline.Elapsed < Timeout)
            {
                Assert.False(_process.HasExited, $"prometheus exited with {(_process.HasExited ? _process.ExitCode : 0)}:\n{Log}");
                try
                {
                    last = await _http.GetStringAsync(new Uri($"api/v1/query?query={Uri.EscapeDataString(query)}", UriKind.Relative));
                    using var answer = JsonDocument.Parse(last);
                    if (answer.RootElement.GetProperty("data").GetProperty("result") is { ValueKind: JsonValueKind.Array } result && result.GetArrayLength() == 1
                        && double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture) is var value && done(value))
                    {
                        return value;
                    }
                }
                catch (HttpRequestException ex)
                {
                    last = ex.Message; // not listening yet
                }

                await Task.Delay(TimeSpan.FromMilliseconds(250)); // poll interval, not a wait for something to be ready
            }

            using var targets = await _http.GetAsync(new Uri("api/v1/targets", UriKind.Relative));
            throw new TimeoutException($"'{query}' not answered within {Timeout.TotalSeconds} s; last answer: {last}\ntargets: {await targets.Content.ReadAsStringAsync()}\nlog:\n{Log}");
        }

        private string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
            _directory.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(line);
                }
            }
        }
    }
}
