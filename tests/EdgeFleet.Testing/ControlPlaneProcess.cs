using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using Xunit;

namespace EdgeFleet.Testing;

/// <summary>How <see cref="ControlPlaneProcess"/> starts the control plane.</summary>
public sealed record ControlPlaneProcessOptions
{
    /// <summary>Run the embedded mosquitto on a free loopback port (<c>--mqtt embedded</c>); default <c>--mqtt none</c>.</summary>
    public bool EmbeddedMqtt { get; init; }

    /// <summary>More environment variables, e.g. <c>ControlPlane__MaxUploadBytes</c>.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// The real <c>edgefleet-controlplane</c> as a child process (<c>dotnet edgefleet-controlplane.dll</c> from the
/// test's output folder: the test project needs a ProjectReference to controlplane/EdgeFleet.ControlPlane), with its
/// own data directory (SQLite), on a free loopback port, with a known admin token. Usable as an xunit class fixture
/// (one control plane per test class) or started by a test with <see cref="StartAsync"/>. Errors it logs are
/// collected (<see cref="LoggedErrors"/>) and fail <see cref="AssertNoErrorsSince"/> and the dispose.
/// Killed, with its data directory deleted, on dispose.
/// </summary>
public sealed class ControlPlaneProcess : IAsyncLifetime, IAsyncDisposable
{
    private const string Dll = "edgefleet-controlplane.dll";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly ControlPlaneProcessOptions _options;
    private readonly TempDirectory _data = new("edgefleet-cp");
    private readonly StringBuilder _output = new();
    private readonly List<string> _errors = [];
    private Process? _process;
    private HttpClient? _admin;
    private bool _started;
    private bool _disposed;

    /// <summary>A control plane with the default options (for <c>IClassFixture</c>); started by <see cref="InitializeAsync"/>.</summary>
    public ControlPlaneProcess()
        : this(new ControlPlaneProcessOptions())
    {
    }

    // Private: an xunit class fixture may have one public constructor; other options go through StartAsync.
    private ControlPlaneProcess(ControlPlaneProcessOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        AdminToken = $"efp_test-admin-{Guid.NewGuid():N}";
    }

    /// <summary>Base URL, ending in '/'.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>The admin token set through EDGEFLEET_ADMIN_TOKEN at first start.</summary>
    public string AdminToken { get; }

    /// <summary>Port of the embedded broker, or null with <c>--mqtt none</c>.</summary>
    public int? MqttPort { get; private set; }

    /// <summary>The control plane's <c>--data</c> directory.</summary>
    public string DataDirectory => _data.Path;

    /// <summary>Everything it printed so far, stdout and stderr interleaved.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Error and critical log entries so far.</summary>
    public IReadOnlyList<string> LoggedErrors
    {
        get
        {
            lock (_output)
            {
                return _errors.ToArray();
            }
        }
    }

    /// <summary>Starts a control plane and waits until it answers /healthz.</summary>
    public static async Task<ControlPlaneProcess> StartAsync(ControlPlaneProcessOptions? options = null)
    {
        var cp = new ControlPlaneProcess(options ?? new ControlPlaneProcessOptions());
        try
        {
            await cp.InitializeAsync().ConfigureAwait(false);
            return cp;
        }
        catch
        {
            await cp.CleanUpAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, Dll);
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException(
                $"{Dll} is not in {AppContext.BaseDirectory}: the test project needs a ProjectReference to controlplane/EdgeFleet.ControlPlane");
        }

        // A port that was free a moment ago may be taken by the time the server binds it: then try another.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort.Next();
            MqttPort = _options.EmbeddedMqtt ? FreePort.Next() : null;
            Url = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
            Start(dll);
            _admin?.Dispose();
            _admin = CreateClient(AdminToken);
            try
            {
                await WaitHealthyAsync().ConfigureAwait(false);
                _started = true;
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await StopAsync().ConfigureAwait(false);
                lock (_output)
                {
                    _output.Clear();
                    _errors.Clear();
                }
            }
        }
    }

    /// <summary>
    /// <c>kill -9</c> of the control plane process alone (not its process tree: its embedded mosquitto gets only the
    /// parent-death signal the control plane arranged). The data directory stays, for <see cref="RestartAsync"/>.
    /// </summary>
    public async Task KillAsync()
    {
        if (_process is not { } process)
        {
            throw new InvalidOperationException("the control plane is not running");
        }

        using (var kill = Process.Start("kill", ["-9", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().ConfigureAwait(false);
        }

        // Not WaitForExitAsync: it also waits for the end of the redirected output, which a short-lived child of the
        // control plane (a `kill -HUP` to its broker) can hold open a while after the control plane itself is gone.
        var waited = Stopwatch.StartNew();
        while (!process.HasExited)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"the control plane (pid {process.Id}) did not exit within 30 s of kill -9");
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>Starts the control plane again on the same data directory, HTTP port and broker port, and waits for /healthz.</summary>
    public async Task RestartAsync()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("the control plane is still running");
        }

        Start(Path.Combine(AppContext.BaseDirectory, Dll));
        await WaitHealthyAsync().ConfigureAwait(false);
    }

    /// <summary>An HttpClient for this control plane; <paramref name="token"/> null: anonymous. The caller disposes it.</summary>
    public HttpClient CreateClient(string? token)
    {
        var client = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    /// <summary>Creates an API token with <paramref name="role"/> (POST /api/v1/tokens as admin) and returns its secret.</summary>
    public async Task<string> CreateTokenAsync(ApiRole role, string? name = null)
    {
        using var response = await Admin.PostAsJsonAsync("api/v1/tokens", new ApiTokenRequest { Name = name ?? $"test-{role}".ToLowerInvariant(), Role = role },
            ApiJsonContext.Default.ApiTokenRequest).ConfigureAwait(false);
        var created = await ReadAsync(response, HttpStatusCode.Created, ApiJsonContext.Default.ApiTokenInfo).ConfigureAwait(false);
        return created.Token ?? throw new InvalidOperationException("POST /api/v1/tokens returned no secret");
    }

    /// <summary>Creates an enrollment token (POST /api/v1/enrollment-tokens as admin).</summary>
    public async Task<EnrollmentTokenInfo> CreateEnrollmentTokenAsync(EnrollmentTokenRequest? request = null)
    {
        using var response = await Admin.PostAsJsonAsync("api/v1/enrollment-tokens", request ?? new EnrollmentTokenRequest(),
            ApiJsonContext.Default.EnrollmentTokenRequest).ConfigureAwait(false);
        return await ReadAsync(response, HttpStatusCode.Created, ApiJsonContext.Default.EnrollmentTokenInfo).ConfigureAwait(false);
    }

    /// <summary>Enrolls a device the way an agent does (anonymous POST /api/v1/enroll with the enrollment token).</summary>
    public async Task<EnrollResponse> EnrollAsync(string enrollmentToken, string deviceId)
    {
        using var anonymous = CreateClient(token: null);
        using var response = await anonymous.PostAsJsonAsync("api/v1/enroll", new EnrollRequest { Token = enrollmentToken, DeviceId = deviceId },
            ApiJsonContext.Default.EnrollRequest).ConfigureAwait(false);
        return await ReadAsync(response, HttpStatusCode.OK, ApiJsonContext.Default.EnrollResponse).ConfigureAwait(false);
    }

    /// <summary>Creates a one-use enrollment token with <paramref name="tags"/> and enrolls <paramref name="deviceId"/> with it.</summary>
    public async Task<EnrollResponse> EnrollDeviceAsync(string deviceId, params string[] tags)
    {
        var token = await CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { Tags = tags, MaxUses = 1 }).ConfigureAwait(false);
        return await EnrollAsync(token.Token!, deviceId).ConfigureAwait(false);
    }

    /// <summary>Fails if the control plane logged an error after the <paramref name="count"/>th (see <see cref="LoggedErrors"/>).</summary>
    public void AssertNoErrorsSince(int count)
    {
        var errors = LoggedErrors;
        if (errors.Count > count)
        {
            Assert.Fail($"the control plane logged errors:\n{string.Join("\n", errors.Skip(count))}");
        }
    }

    /// <inheritdoc />
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>Kills the control plane, deletes its data directory, and fails if it logged errors while it ran.</summary>
    public async ValueTask DisposeAsync()
    {
        if (await CleanUpAsync().ConfigureAwait(false) && _started)
        {
            // A failed start has already thrown with the whole output.
            AssertNoErrorsSince(0);
        }
    }

    /// <summary>Kills the process and deletes the data directory; false when that was done already.</summary>
    private async Task<bool> CleanUpAsync()
    {
        if (_disposed)
        {
            return false;
        }

        _disposed = true;
        _admin?.Dispose();
        await StopAsync().ConfigureAwait(false);
        _data.Dispose();
        return true;
    }

    private HttpClient Admin => _admin ?? throw new InvalidOperationException("the control plane has not been started");

    private void Start(string dll)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _data.Path,
        };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--data");
        psi.ArgumentList.Add(_data.Path);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(Url.AbsoluteUri.TrimEnd('/'));
        psi.ArgumentList.Add("--mqtt");
        psi.ArgumentList.Add(MqttPort is null ? "none" : "embedded");
        if (MqttPort is { } mqttPort)
        {
            psi.ArgumentList.Add("--mqtt-port");
            psi.ArgumentList.Add(mqttPort.ToString(CultureInfo.InvariantCulture));
        }

        // Nothing from the environment the tests run in: no saved settings, no other admin token.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("EDGEFLEET_", StringComparison.Ordinal)
            || k.StartsWith("ControlPlane__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["EDGEFLEET_ADMIN_TOKEN"] = AdminToken;
        psi.Environment["ControlPlane__MqttBind"] = "127.0.0.1";
        psi.Environment["ControlPlane__MqttPublicHost"] = "127.0.0.1";

        // ASP.NET Core keeps its data-protection keys under $HOME; this one's stay in its data directory.
        psi.Environment["HOME"] = _data.Path;

        // One line per log entry, so errors can be picked out; framework chatter below warnings left out.
        psi.Environment["Logging__Console__FormatterName"] = "simple";
        psi.Environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        psi.Environment["Logging__Console__FormatterOptions__ColorBehavior"] = "Disabled";
        psi.Environment["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning";
        foreach (var (key, value) in _options.Environment)
        {
            psi.Environment[key] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process?.Dispose();
        _process = process;
    }

    private async Task WaitHealthyAsync()
    {
        var process = _process!;
        var waited = Stopwatch.StartNew();
        using var probe = CreateClient(token: null);
        probe.Timeout = TimeSpan.FromSeconds(5);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"edgefleet-controlplane exited with {process.ExitCode} before answering /healthz:\n{Output}");
            }

            try
            {
                using var response = await probe.GetAsync(new Uri("healthz", UriKind.Relative)).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException)
            {
                // listening, but not answering yet
            }

            if (waited.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"edgefleet-controlplane did not answer {Url}healthz within {StartTimeout.TotalSeconds} s:\n{Output}");
            }

            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    private async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // already reaped
        }
        catch (OperationCanceledException)
        {
            // did not die in time; nothing more to do from here
        }

        _process.Dispose();
        _process = null;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            if (line.StartsWith("fail: ", StringComparison.Ordinal) || line.StartsWith("crit: ", StringComparison.Ordinal))
            {
                _errors.Add(line);
            }
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, HttpStatusCode expected, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (response.StatusCode != expected)
        {
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {(int)response.StatusCode}, expected {(int)expected}: {body}");
        }

        return System.Text.Json.JsonSerializer.Deserialize(body, type) ?? throw new InvalidOperationException($"empty answer from {response.RequestMessage?.RequestUri}");
    }
}
