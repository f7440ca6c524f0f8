using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using Polly;
using Polly.Retry;

namespace EdgeFleet.Cli.Sim;

/// <summary>
/// Enrolls simulated devices the way the agent does (anonymous <c>POST /api/v1/enroll</c> with the enrollment token and
/// the wanted device id), a bounded number at once; with an API token, it then sets the extra tags through
/// <c>PUT /api/v1/devices/{id}/tags</c>. Transient failures (connection errors, 5xx, 429) are retried with jitter; a
/// refusal is not.
/// </summary>
internal sealed class Enroller : IDisposable
{
    private readonly SimulatorOptions _options;
    private readonly HttpClient _http;
    private readonly HttpClient? _api;
    private readonly ResiliencePipeline _retry;

    public Enroller(SimulatorOptions options)
    {
        _options = options;

        // Its own connections, closed when enrollment is over: downloads start on fresh ones.
        _http = new HttpClient { BaseAddress = Normalized(options.Server), Timeout = TimeSpan.FromSeconds(60) };
        _api = options.ApiToken is { } token && options.Tags.Count > 0 ? ControlPlaneClient.CreateHttpClient(Normalized(options.Server), token) : null;
        _retry = new ResiliencePipelineBuilder { TimeProvider = options.Time }.AddRetry(new RetryStrategyOptions
        {
            Name = "sim-enroll",
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TransientDownloadException),
            MaxRetryAttempts = 4,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromSeconds(0.5),
            MaxDelay = TimeSpan.FromSeconds(8),
        }).Build();
    }

    public static Uri Normalized(Uri server) => server.AbsolutePath.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/");

    public async Task<(SimDeviceState Device, string RegistryPublicKey)> EnrollAsync(string deviceId, CancellationToken cancellationToken)
    {
        var enrolled = await _retry.ExecuteAsync(async ct => await PostAsync(deviceId, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        var tags = enrolled.Tags?.ToList() ?? [];
        if (_api is not null)
        {
            var client = new ControlPlaneClient(_api);
            try
            {
                var tagged = await client.ChangeTagsAsync(deviceId, new TagChangeRequest { Add = _options.Tags }, cancellationToken).ConfigureAwait(false);
                tags = tagged.Value.Tags?.ToList() ?? tags;
            }
            catch (ControlPlaneException ex)
            {
                var why = ex.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                    ? "the API token was refused or may not tag devices (it needs the operator role)"
                    : ex.Problem?.Detail ?? ex.Message;
                throw new SimulatorException($"enrolled {deviceId}, but tagging it failed: {why}", ex);
            }
            catch (ControlPlaneUnreachableException ex)
            {
                throw new SimulatorException($"enrolled {deviceId}, but tagging it failed: {ex.Message}", ex) { Unreachable = true };
            }
        }

        foreach (var tag in _options.Tags)
        {
            if (!tags.Contains(tag, StringComparer.Ordinal))
            {
                tags.Add(tag);
            }
        }

        var device = new SimDeviceState
        {
            Id = enrolled.DeviceId,
            MqttHost = enrolled.Mqtt.Host,
            MqttPort = enrolled.Mqtt.Port,
            MqttTls = enrolled.Mqtt.Tls,
            MqttUsername = enrolled.Mqtt.Username,
            MqttPassword = enrolled.Mqtt.Password,
            HttpToken = enrolled.HttpToken,
            Tags = tags,
            EnrolledAt = _options.Time.GetUtcNow(),
            Model = _options.ModelName,
            ModelVersion = _options.ModelVersion,
        };
        return (device, enrolled.RegistryPublicKey);
    }

    public void Dispose()
    {
        _http.Dispose();
        _api?.Dispose();
    }

    private async Task<EnrollResponse> PostAsync(string deviceId, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.PostAsJsonAsync(new Uri("api/v1/enroll", UriKind.Relative), new EnrollRequest
            {
                Token = _options.EnrollToken ?? "",
                DeviceId = deviceId,
                AgentVersion = FleetSimulator.AgentVersion,
            }, ApiJsonContext.Default.EnrollRequest, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            throw new SimulatorException($"cannot reach the control plane at {_options.Server}: {ex.InnerException?.Message ?? ex.Message}", ex) { Unreachable = true };
        }
        catch (HttpRequestException ex)
        {
            throw new TransientDownloadException($"enrolling {deviceId}: {ex.Message}", ex);
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadException($"enrolling {deviceId}: no answer within 60 s", ex);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status >= 500 || status == 429)
            {
                throw new TransientDownloadException($"enrolling {deviceId}: the control plane answered {status}");
            }

            if (response.StatusCode == HttpStatusCode.Conflict)
            {
                throw new SimulatorException($"device {deviceId} is already enrolled on {_options.Server}, but not in the state file; " +
                    "pass the state file of the run that enrolled it (--state), another --id-prefix, or delete those devices on the control plane");
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new SimulatorException($"enrollment of {deviceId} refused ({status}): {ApiProblem.TryParse(body)?.Detail ?? body}");
            }

            try
            {
                return JsonSerializer.Deserialize(body, ApiJsonContext.Default.EnrollResponse)
                    ?? throw new SimulatorException($"the control plane answered the enrollment of {deviceId} with null");
            }
            catch (JsonException ex)
            {
                throw new SimulatorException($"the control plane's answer to the enrollment of {deviceId} is not an enrollment response: {ex.Message}", ex);
            }
        }
    }
}
