using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Cli.Api;

/// <summary>A successful answer: the parsed body and the body exactly as received (what <c>--json</c> prints).</summary>
internal sealed record ApiResponse<T>(T Value, string Body);

/// <summary>
/// The control plane's REST API (<c>/api/v1</c>) as the CLI uses it. Takes an <see cref="HttpClient"/> whose
/// <see cref="HttpClient.BaseAddress"/> is the server (see <see cref="CreateHttpClient"/>), so tests can point it
/// at any server. Errors: <see cref="ControlPlaneException"/> (the server said no, with its problem details) and
/// <see cref="ControlPlaneUnreachableException"/>.
/// </summary>
internal sealed class ControlPlaneClient
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");
    private readonly HttpClient _http;
    private readonly TimeProvider _timeProvider;

    public ControlPlaneClient(HttpClient http, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (http.BaseAddress is null)
        {
            throw new ArgumentException("The HttpClient needs the control plane URL as its BaseAddress.", nameof(http));
        }

        _http = http;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>How long a request other than an upload may take before the server counts as unreachable.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public Uri Server => _http.BaseAddress!;

    /// <summary>
    /// An HttpClient for <paramref name="server"/> that sends the token on every request. No client-wide timeout:
    /// uploads take as long as they take; other requests get <see cref="RequestTimeout"/>.
    /// </summary>
    public static HttpClient CreateHttpClient(Uri server, string token)
    {
        ArgumentNullException.ThrowIfNull(server);
        var http = new HttpClient { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("edgefleet", typeof(ControlPlaneClient).Assembly.GetName().Version?.ToString(3)));
        return http;
    }

    public Task<ApiResponse<IReadOnlyList<ModelSummary>>> ListModelsAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "api/v1/models", null, ApiJsonContext.Default.IReadOnlyListModelSummary, cancellationToken);

    public Task<ApiResponse<ModelSummary>> GetModelAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/v1/models/{Segment(name)}", null, ApiJsonContext.Default.ModelSummary, cancellationToken);

    public Task<ApiResponse<ModelVersionInfo>> GetModelVersionAsync(string name, string version, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, VersionPath(name, version), null, ApiJsonContext.Default.ModelVersionInfo, cancellationToken);

    /// <summary>
    /// Uploads a model: the manifest part first (the server validates it before it accepts a large body), then the
    /// ONNX file streamed from disk. Name and version in the URL are the manifest's.
    /// </summary>
    /// <param name="manifest">The manifest as it should be registered (name/version overrides already applied).</param>
    /// <param name="modelPath">The ONNX file; its file name is sent as the part's file name.</param>
    /// <param name="progress">Receives the number of file bytes sent so far.</param>
    /// <param name="cancellationToken">Cancels the upload.</param>
    public async Task<ApiResponse<ModelVersionInfo>> PushModelAsync(
        ModelManifest manifest, string modelPath, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        using var form = new MultipartFormDataContent();
        var manifestPart = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(manifest, ApiJsonContext.Default.ModelManifest));
        manifestPart.Headers.ContentType = JsonMediaType;
        form.Add(manifestPart, "manifest");
        var modelPart = new FileUploadContent(modelPath, progress);
        modelPart.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(modelPart, "model", Path.GetFileName(modelPath));

        // 100-continue lets the server refuse (401, 409, 413) before hundreds of megabytes are sent for nothing.
        return await SendAsync(HttpMethod.Post, VersionPath(manifest.Name, manifest.Version), form, ApiJsonContext.Default.ModelVersionInfo,
            cancellationToken, upload: true).ConfigureAwait(false);
    }

    public Task<ApiResponse<ModelVersionInfo>> ChangeStageAsync(string name, string version, StageChangeRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Post, $"{VersionPath(name, version)}/stage", request, ApiJsonContext.Default.StageChangeRequest,
            ApiJsonContext.Default.ModelVersionInfo, cancellationToken);

    public Task<ApiResponse<IReadOnlyList<StageHistoryEntry>>> GetHistoryAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/v1/models/{Segment(name)}/history", null, ApiJsonContext.Default.IReadOnlyListStageHistoryEntry, cancellationToken);

    /// <param name="tag">Only devices with this tag.</param>
    /// <param name="online">Only online (true) or offline (false) devices; null: all.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<ApiResponse<IReadOnlyList<DeviceInfo>>> ListDevicesAsync(string? tag = null, bool? online = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (tag is not null)
        {
            query.Add($"tag={Uri.EscapeDataString(tag)}");
        }

        if (online is { } o)
        {
            query.Add(o ? "online=true" : "online=false");
        }

        var path = query.Count == 0 ? "api/v1/devices" : $"api/v1/devices?{string.Join('&', query)}";
        return SendAsync(HttpMethod.Get, path, null, ApiJsonContext.Default.IReadOnlyListDeviceInfo, cancellationToken);
    }

    public Task<ApiResponse<DeviceInfo>> GetDeviceAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/v1/devices/{Segment(id)}", null, ApiJsonContext.Default.DeviceInfo, cancellationToken);

    public Task<ApiResponse<DeviceInfo>> ChangeTagsAsync(string id, TagChangeRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Put, $"api/v1/devices/{Segment(id)}/tags", request, ApiJsonContext.Default.TagChangeRequest,
            ApiJsonContext.Default.DeviceInfo, cancellationToken);

    public Task<ApiResponse<DeviceInfo>> RevokeDeviceAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"api/v1/devices/{Segment(id)}/revoke", null, ApiJsonContext.Default.DeviceInfo, cancellationToken);

    public Task<ApiResponse<DesiredMessage>> AssignAsync(string id, AssignmentRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Post, $"api/v1/devices/{Segment(id)}/assignment", request, ApiJsonContext.Default.AssignmentRequest,
            ApiJsonContext.Default.DesiredMessage, cancellationToken);

    /// <summary>Clears the device's assignment (204, no body).</summary>
    public Task UnassignAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"api/v1/devices/{Segment(id)}/assignment", null, ApiJsonContext.Default.DesiredMessage, cancellationToken, noContent: true);

    /// <summary>The newest <paramref name="limit"/> update events (<c>update.*</c>, <c>shadow.*</c>) of a device, newest first.</summary>
    public Task<ApiResponse<Page<EventInfo>>> GetUpdateEventsAsync(string id, int limit, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get,
            string.Create(CultureInfo.InvariantCulture, $"api/v1/devices/{Segment(id)}/events?type=update.,shadow.&order=desc&limit={limit}&from=0001-01-01T00:00:00Z"),
            null, ApiJsonContext.Default.PageEventInfo, cancellationToken);

    public Task<ApiResponse<EnrollmentTokenInfo>> CreateEnrollmentTokenAsync(EnrollmentTokenRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Post, "api/v1/enrollment-tokens", request, ApiJsonContext.Default.EnrollmentTokenRequest,
            ApiJsonContext.Default.EnrollmentTokenInfo, cancellationToken);

    private static string VersionPath(string name, string version) => $"api/v1/models/{Segment(name)}/versions/{Segment(version)}";

    // Names and ids come from the command line: escaped, so "a/b" or "../x" cannot reach another endpoint.
    private static string Segment(string value) => Uri.EscapeDataString(value);

    private async Task<ApiResponse<T>> SendJsonAsync<TRequest, T>(
        HttpMethod method, string path, TRequest body, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, requestType));
        content.Headers.ContentType = JsonMediaType;
        return await SendAsync(method, path, content, type, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ApiResponse<T>> SendAsync<T>(
        HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken, bool upload = false, bool noContent = false)
    {
        var description = $"{method} {path}";
        using var request = new HttpRequestMessage(method, path);
        request.Content = content;
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
        request.Headers.ExpectContinue = upload ? true : null;

        // Uploads have no deadline (a slow link is not a dead server); Ctrl+C still cancels them.
        using var timeout = upload ? new CancellationTokenSource() : new CancellationTokenSource(RequestTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        HttpStatusCode status;
        string? reason;
        string body;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            status = response.StatusCode;
            reason = response.ReasonPhrase;
            body = await response.Content.ReadAsStringAsync(linked.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(ex);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ControlPlaneUnreachableException(Server,
                string.Create(CultureInfo.InvariantCulture, $"{Server} did not answer {description} within {RequestTimeout.TotalSeconds:0} s"), ex);
        }

        if ((int)status is < 200 or > 299)
        {
            throw new ControlPlaneException(description, status, reason, ApiProblem.TryParse(body));
        }

        if (noContent && status == HttpStatusCode.NoContent)
        {
            return new ApiResponse<T>(default!, body);
        }

        try
        {
            var value = JsonSerializer.Deserialize(body, type);
            return value is null
                ? throw new ControlPlaneException(description, status, reason, null, $"{description}: the server answered {(int)status} with an empty (null) body")
                : new ApiResponse<T>(value, body);
        }
        catch (JsonException ex)
        {
            var start = body.Length > 80 ? body[..80] + "…" : body;
            throw new ControlPlaneException(description, status, reason, null,
                $"{description}: the answer is not the expected JSON ({ex.Message}); is {Server} an EdgeFleet control plane? It began: {start}");
        }
    }

    private ControlPlaneUnreachableException Unreachable(HttpRequestException ex)
    {
        // The innermost message is the useful one ("Connection refused", "Name or service not known").
        var cause = ex.InnerException?.Message ?? ex.Message;
        var message = ex.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => $"cannot resolve the host of {Server}: {cause}",
            HttpRequestError.ConnectionError => $"cannot connect to {Server}: {cause}",
            HttpRequestError.SecureConnectionError => $"TLS with {Server} failed: {cause}",
            _ => $"the connection to {Server} failed: {ex.Message}{(ex.InnerException is null ? "" : $" ({cause})")}",
        };
        return new ControlPlaneUnreachableException(Server, message, ex);
    }

    public Task<ApiResponse<RolloutInfo>> CreateRolloutAsync(RolloutRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Post, "api/v1/rollouts", request, ApiJsonContext.Default.RolloutRequest, ApiJsonContext.Default.RolloutInfo, cancellationToken);

    /// <summary>Rollouts, newest first, without their per-device states.</summary>
    /// <param name="state">Only rollouts in this state; null: all.</param>
    /// <param name="limit">At most this many; null: the server's default.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<ApiResponse<IReadOnlyList<RolloutInfo>>> ListRolloutsAsync(string? state = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (state is not null)
        {
            query.Add($"state={Uri.EscapeDataString(state)}");
        }

        if (limit is { } n)
        {
            query.Add(string.Create(CultureInfo.InvariantCulture, $"limit={n}"));
        }

        var path = query.Count == 0 ? "api/v1/rollouts" : $"api/v1/rollouts?{string.Join('&', query)}";
        return SendAsync(HttpMethod.Get, path, null, ApiJsonContext.Default.IReadOnlyListRolloutInfo, cancellationToken);
    }

    /// <summary>A rollout with its stages, newest verdicts and every device's state.</summary>
    public Task<ApiResponse<RolloutInfo>> GetRolloutAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"api/v1/rollouts/{Segment(id)}", null, ApiJsonContext.Default.RolloutInfo, cancellationToken);

    /// <summary>approve, pause, resume, abort, rollback or retry; 409 when the rollout's state does not allow it.</summary>
    public Task<ApiResponse<RolloutInfo>> ActOnRolloutAsync(string id, string action, RolloutActionRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Post, $"api/v1/rollouts/{Segment(id)}/{Segment(action)}", request, ApiJsonContext.Default.RolloutActionRequest,
            ApiJsonContext.Default.RolloutInfo, cancellationToken);

    /// <summary>Which model version ran on a device from when to when, newest first.</summary>
    public Task<ApiResponse<IReadOnlyList<DeploymentInfo>>> GetDeviceHistoryAsync(string id, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get,
            limit is { } n ? string.Create(CultureInfo.InvariantCulture, $"api/v1/devices/{Segment(id)}/history?limit={n}") : $"api/v1/devices/{Segment(id)}/history",
            null, ApiJsonContext.Default.IReadOnlyListDeploymentInfo, cancellationToken);
}
