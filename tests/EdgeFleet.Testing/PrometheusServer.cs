using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Xunit;

namespace EdgeFleet.Testing;

/// <summary>
/// A real Prometheus (Debian's binary) on a free loopback port with a temporary configuration and storage; killed and
/// deleted on dispose. The caller writes the configuration (and any file it refers to) into <see cref="Directory"/>.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    /// <summary>How long a query or the targets may take to show what a test waits for.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private readonly TempDirectory _directory;
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http;

    private PrometheusServer(TempDirectory directory, Process process, Uri url)
    {
        _directory = directory;
        _process = process;
        Url = url;
        _http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri Url { get; }

    /// <summary>Its working directory, holding <c>prometheus.yml</c> and the storage.</summary>
    public string Directory => _directory.Path;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Scrapes one target every second with a bearer token (job <c>edgefleet</c>).</summary>
    public static PrometheusServer Start(Uri target, string token)
    {
        ArgumentNullException.ThrowIfNull(target);
        return Start(_ => $"""
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
    }

    /// <summary>Starts it with the configuration <paramref name="configuration"/> writes, given the working directory.</summary>
    public static PrometheusServer Start(Func<string, string> configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var directory = new TempDirectory("edgefleet-prometheus");
        try
        {
            var config = Path.Combine(directory.Path, "prometheus.yml");
            File.WriteAllText(config, configuration(directory.Path));
            var port = FreePort.Next().ToString(CultureInfo.InvariantCulture);
            var start = new ProcessStartInfo("prometheus",
            [
                $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(directory.Path, "data")}",
                $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            ])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory.Path,
            };
            var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start; install Debian's prometheus package (deploy/bootstrap.sh)");
            return new PrometheusServer(directory, process, new Uri($"http://127.0.0.1:{port}/"));
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
        ArgumentNullException.ThrowIfNull(done);
        var answer = await UntilAsync($"api/v1/query?query={Uri.EscapeDataString(query)}",
            root => root.GetProperty("data").GetProperty("result") is { ValueKind: JsonValueKind.Array } result && result.GetArrayLength() == 1
                && done(Value(result[0])));
        return Value(answer.GetProperty("data").GetProperty("result")[0]);

        static double Value(JsonElement series) => double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Polls a GET of the HTTP API (relative to the server) until <paramref name="done"/> accepts its JSON answer, within
    /// <see cref="Timeout"/>; the accepted answer (a copy, safe to keep).
    /// </summary>
    public async Task<JsonElement> UntilAsync(string relative, Func<JsonElement, bool> done, string? what = null)
    {
        ArgumentNullException.ThrowIfNull(done);
        var deadline = Stopwatch.StartNew();
        var last = "(no answer yet)";
        while (deadline.Elapsed < Timeout)
        {
            Assert.False(_process.HasExited, $"prometheus exited with {(_process.HasExited ? _process.ExitCode : 0)}:\n{Log}");
            try
            {
                last = await _http.GetStringAsync(new Uri(relative, UriKind.Relative));
                using var answer = JsonDocument.Parse(last);
                if (done(answer.RootElement))
                {
                    return answer.RootElement.Clone();
                }
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message; // not listening yet
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250)); // poll interval, not a wait for something to be ready
        }

        using var targets = await _http.GetAsync(new Uri("api/v1/targets", UriKind.Relative));
        throw new TimeoutException($"{what ?? relative} not answered within {Timeout.TotalSeconds} s; last answer: {last}\n" +
            $"targets: {await targets.Content.ReadAsStringAsync()}\nlog:\n{Log}");
    }

    /// <summary>One GET of the HTTP API, its JSON answer.</summary>
    public async Task<JsonElement> GetAsync(string relative)
    {
        using var answer = JsonDocument.Parse(await _http.GetStringAsync(new Uri(relative, UriKind.Relative)));
        return answer.RootElement.Clone();
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
