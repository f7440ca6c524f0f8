using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Cli.Sim;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;
using YamlDotNet.RepresentationModel;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// <c>deploy/grafana/edgefleet.json</c> and <c>deploy/prometheus/prometheus.yml</c> against a running system: the real
/// control plane (embedded mosquitto, SQLite) with a real agent on a test-pattern camera (its <c>/metrics</c> on) and
/// a simulated device (real enrollment and MQTT; it reports a temperature, which this VM has no thermal zone for), a
/// rollout in progress, and Debian's <c>prometheus</c> running the shipped scrape configuration with only its targets,
/// credentials file and intervals rewritten. Every panel query of the dashboard must return series.
/// </summary>
#pragma warning disable IDISP006, IDISP003 // xunit calls InitializeAsync once and DisposeAsync at the end
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class GrafanaDashboardTests : IAsyncLifetime
{
    private const string Model = "gf-cls";
    private const string Agent = "cam-gf-1";
    private const string Tag = "fleet=grafana";
    internal const string DatasourceRef = "${datasource}";

    /// <summary>What Grafana would put in place of its built-in variables on a short range with 1 s scrapes.</summary>
    private static readonly Dictionary<string, string> BuiltIns = new(StringComparer.Ordinal)
    {
        ["$__rate_interval"] = "10s", ["$__interval"] = "2s", ["$__range"] = "1m", ["${__rate_interval}"] = "10s", ["${__interval}"] = "2s", ["${__range}"] = "1m",
    };

    internal static readonly string Deploy = Path.Combine(DeployTests.RepoRoot, "deploy");
    private readonly CancellationTokenSource _patience = new(TimeSpan.FromMinutes(4));
    private readonly TempDirectory _state = new("edgefleet-grafana");
    private ControlPlaneProcess _cp = null!;
    private HttpClient _admin = null!;
    private AgentProcess _agent = null!;
    private FleetSimulator _sim = null!;
    private string _simDevice = null!;
    private int _agentMetricsPort;

    public async Task InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions
        {
            EmbeddedMqtt = true,
            Environment = new Dictionary<string, string> { ["ControlPlane__RolloutTickMilliseconds"] = "200" },
        });
        _admin = _cp.CreateClient(_cp.AdminToken);
        foreach (var version in new[] { "1.0.0", "1.1.0" })
        {
            await RegistryUploads.PushAsync(_admin, Model, version, OtaFixture.Good);
        }

        var token = await _cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = [Tag], MaxUses = 2 });
        var (code, _, stderr) = AgentProcess.Run(TimeSpan.FromSeconds(60), null, "enroll", "--server", _cp.Url.ToString(), "--token", token.Token!,
            "--device-id", Agent, "--state-dir", _state.Path);
        Assert.True(code == 0, stderr);
        var model = await RegistryUploads.DownloadAsync(_admin, Model, "1.0.0", _state.Path);
        _agentMetricsPort = FreePort.Next();
        await File.WriteAllTextAsync(_state.File("agent.json"), $$"""
            { "Agent": { "StateDirectory": "{{_state.Path}}", "Source": { "Uri": "testsrc://160x120@15" },
              "Model": { "Path": "{{model}}" }, "Inference": { "IntraOpThreads": 1 },
              "Telemetry": { "IntervalSeconds": 1, "Outbox": { "SynchronousFull": false } }, "Drift": { "WindowFrames": 30 },
              "Ota": { "RetryDelaySeconds": 0.1, "MaxRetryDelaySeconds": 0.5 },
              "Metrics": { "Port": {{_agentMetricsPort}} } } }
            """);
        _agent = AgentProcess.Start(null, "run", "--config", _state.File("agent.json"));

        var options = new SimulatorOptions
        {
            Server = _cp.Url,
            EnrollToken = token.Token,
            Devices = 1,
            IdPrefix = "gf",
            ModelName = Model,
            ModelVersion = "1.0.0",
            TelemetryInterval = TimeSpan.FromSeconds(1),
            DriftEvery = 1,
            Probation = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            Seed = 12,
        };
        _simDevice = options.DeviceId(0);
        _sim = new FleetSimulator(options);
        await _sim.StartAsync(_patience.Token);
        await _sim.WaitAllConnectedAsync(_patience.Token);
    }

    public async Task DisposeAsync()
    {
        _agent?.Dispose();
        if (_sim is not null)
        {
            await _sim.DisposeAsync();
        }

        _admin?.Dispose();
        if (_cp is not null)
        {
            await _cp.DisposeAsync();
        }

        _state.Dispose();
        _patience.Dispose();
    }

    [Fact]
    public async Task ShippedPrometheusConfig_ScrapingTheRunningSystem_AnswersEveryDashboardQueryWithSeries()
    {
        var rollout = await StartRolloutAsync();
        var shipped = Path.Combine(Deploy, "prometheus", "prometheus.yml");
        var (syntax, syntaxOut, syntaxErr) = await DeployTests.RunAsync("promtool", "check", "config", "--syntax-only", shipped);
        Assert.True(syntax == 0, $"promtool check config --syntax-only {shipped}: {syntaxOut}{syntaxErr}");
        var viewer = await _cp.CreateTokenAsync(ApiRole.Viewer, "prometheus");

        await using var prometheus = PrometheusServer.Start(directory => Derive(shipped, directory, viewer));
        var (check, checkOut, checkErr) = await DeployTests.RunAsync("promtool", "check", "config", Path.Combine(prometheus.Directory, "prometheus.yml"));
        Assert.True(check == 0, $"promtool check config of the derived configuration: {checkOut}{checkErr}\n{await File.ReadAllTextAsync(Path.Combine(prometheus.Directory, "prometheus.yml"))}");

        await prometheus.UntilAsync("api/v1/targets?state=active", root =>
        {
            var targets = root.GetProperty("data").GetProperty("activeTargets").EnumerateArray().ToList();
            return targets.Select(t => t.GetProperty("labels").GetProperty("job").GetString()).Order(StringComparer.Ordinal)
                    .SequenceEqual(["edgefleet-agents", "edgefleet-controlplane"])
                && targets.All(t => t.GetProperty("health").GetString() == "up");
        }, "both jobs' targets up");
        await prometheus.UntilAsync($"api/v1/label/device/values?match[]={Uri.EscapeDataString("edgefleet_device_online")}",
            root => root.GetProperty("data").EnumerateArray().Select(v => v.GetString()).ToHashSet().IsSupersetOf([Agent, _simDevice]),
            "the $device variable's label_values listing both devices");

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Deploy, "grafana", "edgefleet.json")));
        var queries = Panels(json.RootElement).Where(p => p.Panel.TryGetProperty("targets", out _))
            .SelectMany(p => p.Panel.GetProperty("targets").EnumerateArray().Select(t => (Title: p.Panel.GetProperty("title").GetString()!, Expr: t.GetProperty("expr").GetString()!)))
            .ToList();
        Assert.True(queries.Count >= 30, $"{queries.Count} queries");
        foreach (var (title, expr) in queries)
        {
            var query = Substitute(expr, $"{Agent}|{_simDevice}");
            await prometheus.UntilAsync($"api/v1/query?query={Uri.EscapeDataString(query)}",
                root => root.GetProperty("status").GetString() == "success" && root.GetProperty("data").GetProperty("result").GetArrayLength() > 0,
                $"panel '{title}': {query}");
        }

        // The real agent's figures, not only the simulated device's, reach the per-device panels.
        foreach (var metric in new[] { "edgefleet_device_fps", "edgefleet_device_latency_p95_seconds", "edgefleet_device_frames_dropped_total", "edgefleet_agent_latency_p95_seconds" })
        {
            await prometheus.QueryUntilAsync($"count({metric}{{device=\"{Agent}\"}}) > 0", v => v > 0);
        }

        var stored = await _admin.GetFromJsonAsync($"api/v1/rollouts/{rollout.Id}", ApiJsonContext.Default.RolloutInfo, _patience.Token);
        Assert.True(RolloutStates.IsActive(stored!.State), stored.State);
        Assert.False(_agent.HasExited, _agent.Stderr);
    }

    /// <summary>
    /// The shipped configuration with only what differs on this machine rewritten: intervals (1 s, for a quick test),
    /// the control plane's target and token file, the agents' file_sd path with a targets file made from the shipped
    /// example. Any other job would be scraped nowhere, so the test refuses it rather than ignore it.
    /// </summary>
    private string Derive(string shipped, string directory, string token)
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(shipped))
        {
            yaml.Load(reader);
        }

        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var global = (YamlMappingNode)root["global"];
        foreach (var key in new[] { "scrape_interval", "scrape_timeout", "evaluation_interval" })
        {
            global.Children[new YamlScalarNode(key)] = new YamlScalarNode("1s");
        }

        var tokenFile = Path.Combine(directory, "edgefleet-token");
        File.WriteAllText(tokenFile, token);
        var agents = Path.Combine(directory, "agents");
        Directory.CreateDirectory(agents);
        foreach (YamlMappingNode job in (YamlSequenceNode)root["scrape_configs"])
        {
            var name = ((YamlScalarNode)job["job_name"]).Value;
            switch (name)
            {
                case "edgefleet-controlplane":
                    ((YamlMappingNode)job["authorization"]).Children[new YamlScalarNode("credentials_file")] = new YamlScalarNode(tokenFile);
                    foreach (YamlMappingNode group in (YamlSequenceNode)job["static_configs"])
                    {
                        group.Children[new YamlScalarNode("targets")] = new YamlSequenceNode(new YamlScalarNode(_cp.Url.Authority));
                    }

                    break;
                case "edgefleet-agents":
                    foreach (YamlMappingNode sd in (YamlSequenceNode)job["file_sd_configs"])
                    {
                        sd.Children[new YamlScalarNode("files")] = new YamlSequenceNode(new YamlScalarNode(Path.Combine(agents, "*.yml")));
                    }

                    File.WriteAllText(Path.Combine(agents, "test.yml"), AgentTargets());
                    break;
                default:
                    Assert.Fail($"job {name} in {shipped} is not known to this test: add it to Derive (and the dashboard)");
                    break;
            }
        }

        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        yaml.Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    /// <summary>The shipped example targets file with the real agent's metrics address and device id.</summary>
    private string AgentTargets()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(Deploy, "prometheus", "edgefleet-agents.example.yml")))
        {
            yaml.Load(reader);
        }

        var group = (YamlMappingNode)((YamlSequenceNode)yaml.Documents[0].RootNode).Children.Single();
        group.Children[new YamlScalarNode("targets")] = new YamlSequenceNode(new YamlScalarNode($"127.0.0.1:{_agentMetricsPort.ToString(CultureInfo.InvariantCulture)}"));
        ((YamlMappingNode)group["labels"]).Children[new YamlScalarNode("device")] = new YamlScalarNode(Agent);
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        yaml.Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    /// <summary>
    /// The expression as Grafana sends it: built-in intervals, and $device as a multi-value selection (Grafana joins the
    /// chosen values into a regex alternation).
    /// </summary>
    private static string Substitute(string expr, string device)
    {
        var query = BuiltIns.Aggregate(expr, (q, kv) => q.Replace(kv.Key, kv.Value, StringComparison.Ordinal))
            .Replace("${device}", device, StringComparison.Ordinal).Replace("$device", device, StringComparison.Ordinal);
        Assert.False(query.Contains('$', StringComparison.Ordinal), $"a variable this test does not substitute: {expr}");
        return query;
    }

    /// <summary>Every panel with the title of the row it sits under (rows included, nested row panels too).</summary>
    internal static IEnumerable<(JsonElement Panel, string? Row)> Panels(JsonElement dashboard)
    {
        string? row = null;
        foreach (var panel in dashboard.GetProperty("panels").EnumerateArray())
        {
            if (panel.GetProperty("type").GetString() == "row")
            {
                row = panel.GetProperty("title").GetString();
                yield return (panel, row);
                if (panel.TryGetProperty("panels", out var nested))
                {
                    foreach (var inner in nested.EnumerateArray())
                    {
                        yield return (inner, row);
                    }
                }

                continue;
            }

            yield return (panel, row);
        }
    }

    /// <summary>
    /// A rollout that stays active: the first stage (one device) bakes briefly so its gates give verdicts, the second
    /// bakes for 10 minutes.
    /// </summary>
    private async Task<RolloutInfo> StartRolloutAsync()
    {
        using var response = await _admin.PostAsJsonAsync("api/v1/rollouts", new RolloutRequest
        {
            Model = Model,
            Version = "1.1.0",
            Selector = [Tag],
            Stages = [new RolloutStageRequest { Count = 1, BakeSeconds = 2 }, new RolloutStageRequest { Percent = 100, BakeSeconds = 600 }],
            Probation = OtaFixture.Quick,
            RatePerMinute = 1000,
        }, ApiJsonContext.Default.RolloutRequest, _patience.Token);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_patience.Token));
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.RolloutInfo, _patience.Token))!;
    }
}

#pragma warning restore IDISP006, IDISP003

/// <summary>The dashboard file on its own: what Grafana needs to import it and what the queries rely on.</summary>
[Trait("Category", "Unit")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class GrafanaDashboardJsonTests
{
    [Fact]
    public void Dashboard_IsAnImportableDashboard_WithADatasourceVariableEveryPanelUses()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(GrafanaDashboardTests.Deploy, "grafana", "edgefleet.json")));
        var root = json.RootElement;
        Assert.True(root.GetProperty("schemaVersion").GetInt32() >= 39, "schemaVersion of a current Grafana (11 or later)");
        Assert.False(string.IsNullOrEmpty(root.GetProperty("uid").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));
        Assert.False(root.TryGetProperty("id", out var id) && id.ValueKind != JsonValueKind.Null, "an exported id would clash on import");

        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().ToDictionary(v => v.GetProperty("name").GetString()!, StringComparer.Ordinal);
        var datasource = variables["datasource"];
        Assert.Equal(("datasource", "prometheus"), (datasource.GetProperty("type").GetString(), datasource.GetProperty("query").GetString()));
        var device = variables["device"];
        Assert.Equal("query", device.GetProperty("type").GetString());
        Assert.Equal(GrafanaDashboardTests.DatasourceRef, device.GetProperty("datasource").GetProperty("uid").GetString());
        Assert.StartsWith("label_values(", device.GetProperty("definition").GetString(), StringComparison.Ordinal);

        var panels = GrafanaDashboardTests.Panels(root).ToList();
        var ids = panels.Select(p => p.Panel.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(["Fleet overview", "Ingestion", "Rollouts", "Per device ($device)"],
            panels.Where(p => p.Panel.GetProperty("type").GetString() == "row").Select(p => p.Panel.GetProperty("title").GetString()));
        foreach (var (panel, row) in panels.Where(p => p.Panel.GetProperty("type").GetString() != "row"))
        {
            var title = panel.GetProperty("title").GetString();
            var grid = panel.GetProperty("gridPos");
            Assert.True(grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32() <= 24, $"panel '{title}' is wider than the grid");
            Assert.True(panel.GetProperty("datasource").GetProperty("uid").GetString() == GrafanaDashboardTests.DatasourceRef, $"panel '{title}' does not use {GrafanaDashboardTests.DatasourceRef}");
            var targets = panel.GetProperty("targets").EnumerateArray().ToList();
            Assert.True(targets.Count > 0, $"panel '{title}' has no query");
            Assert.Equal(targets.Count, targets.Select(t => t.GetProperty("refId").GetString()).Distinct().Count());
            foreach (var target in targets)
            {
                var expr = target.GetProperty("expr").GetString();
                Assert.True(target.GetProperty("datasource").GetProperty("uid").GetString() == GrafanaDashboardTests.DatasourceRef, $"panel '{title}' query {expr} does not use {GrafanaDashboardTests.DatasourceRef}");
                Assert.False(string.IsNullOrWhiteSpace(expr), $"panel '{title}' has an empty query");
                Assert.True(row != "Per device ($device)" || expr!.Contains("$device", StringComparison.Ordinal), $"per-device panel '{title}' ignores $device: {expr}");
            }
        }
    }
}
