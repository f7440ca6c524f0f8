using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using EdgeFleet.Contracts.Messaging;
using Polly;
using Polly.Retry;

namespace EdgeFleet.Cli.Sim;

/// <summary>An update that is not applied, with its <c>update.rejected</c> reason (see <see cref="RejectReasons"/>).</summary>
internal sealed class UpdateRejectedException : Exception
{
    public UpdateRejectedException()
    {
        Reason = RejectReasons.Download;
    }

    public UpdateRejectedException(string message)
        : base(message)
    {
        Reason = RejectReasons.Download;
    }

    public UpdateRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = RejectReasons.Download;
    }

    public UpdateRejectedException(string reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public string Reason { get; }
}

/// <summary>A failure worth another attempt: refused or reset connection, 5xx, 408/429, a body that stops or ends early.</summary>
internal sealed class TransientDownloadException : Exception
{
    public TransientDownloadException()
    {
    }

    public TransientDownloadException(string message)
        : base(message)
    {
    }

    public TransientDownloadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>What one artifact download did.</summary>
internal readonly record struct ArtifactResult(string Sha256, long Bytes, int RangeRequests, int Cuts);

/// <summary>
/// The simulated devices' HTTP side, shared by the whole fleet (one connection pool): the manifest and signature whole,
/// the artifact streamed through a running SHA-256 without being stored (only its hash and length matter here), resumed
/// with an HTTP Range request after a cut, the way the agent's downloader does it. The device's bearer token goes only
/// to the control plane it enrolled with. Transient failures are retried with exponential backoff and jitter (Polly),
/// a bounded number of times; answers that will not change (401, 403, 404, a wrong size) are not.
/// </summary>
internal sealed class ArtifactClient : IDisposable
{
    private const int BufferSize = 64 * 1024;
    private readonly SocketsHttpHandler _handler;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline _retry;
    private readonly TimeSpan _readTimeout;
    private long _retries;

    public ArtifactClient(SimulatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _readTimeout = options.ReadTimeout;
        _handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = options.DownloadConcurrency * 2,
            AutomaticDecompression = DecompressionMethods.None,

            // A response abandoned mid-body closes its connection instead of being read to the end: a cut is a cut.
            MaxResponseDrainSize = 0,
        };
        _http = new HttpClient(_handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };
        _retry = new ResiliencePipelineBuilder { TimeProvider = options.Time }.AddRetry(new RetryStrategyOptions
        {
            Name = "sim-download",
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TransientDownloadException),
            MaxRetryAttempts = Math.Max(0, options.DownloadAttempts - 1),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.DownloadRetryDelay,
            MaxDelay = TimeSpan.FromSeconds(Math.Max(options.DownloadRetryDelay.TotalSeconds, 10)),
            OnRetry = _ =>
            {
                Interlocked.Increment(ref _retries);
                return ValueTask.CompletedTask;
            },
        }).Build();
        Attempts = options.DownloadAttempts;
    }

    /// <summary>Attempts per document before giving up.</summary>
    public int Attempts { get; }

    /// <summary>Retries after transient failures, fleet-wide.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>GETs a small document whole; null when the server answers 404 and it is <paramref name="optional"/>.</summary>
    public Task<byte[]?> GetSmallAsync(Credentials device, string url, long maxBytes, bool optional, string what, CancellationToken cancellationToken) =>
        RunAsync(async ct =>
        {
            using var request = Request(device, url);
            using var response = await SendAsync(request, what, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound && optional)
            {
                return null;
            }

            Check(response, what);
            if (response.Content.Headers.ContentLength > maxBytes)
            {
                throw new UpdateRejectedException(RejectReasons.Download, $"the {what} is {response.Content.Headers.ContentLength} bytes, more than the {maxBytes} allowed");
            }

            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            var chunk = new byte[Math.Min(BufferSize, maxBytes + 1)];
            while (true)
            {
                var read = await ReadAsync(body, chunk, what, ct).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                if (buffer.Length + read > maxBytes)
                {
                    throw new UpdateRejectedException(RejectReasons.Download, $"the {what} is more than the {maxBytes} bytes allowed");
                }

                buffer.Write(chunk, 0, read);
            }

            if (response.Content.Headers.ContentLength is { } length && length != buffer.Length)
            {
                throw new TransientDownloadException($"the {what} ended after {buffer.Length} of {length} bytes");
            }

            return buffer.ToArray();
        }, cancellationToken);

    /// <summary>
    /// Streams the artifact through SHA-256 and returns its hash and length once exactly <paramref name="size"/> bytes
    /// arrived. <paramref name="cutAt"/>: byte offsets (ascending) at which the device loses its connection on purpose
    /// (flaky): the response is dropped, <paramref name="onCut"/> runs (the device reconnects), and the download resumes
    /// with a Range request from the bytes it has.
    /// </summary>
    public async Task<ArtifactResult> DownloadArtifactAsync(Credentials device, string url, long size, IReadOnlyList<long> cutAt, Action<long> progress,
        Func<CancellationToken, Task> onCut, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cutAt);
        ArgumentNullException.ThrowIfNull(progress);
        ArgumentNullException.ThrowIfNull(onCut);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var state = new DownloadState();
        var buffer = new byte[BufferSize];
        while (true)
        {
            var cut = await RunAsync(async ct =>
            {
                var nextCut = state.Cuts < cutAt.Count ? cutAt[state.Cuts] : long.MaxValue;
                return await DownloadOnceAsync(device, url, size, hash, state, buffer, nextCut, progress, ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            if (!cut)
            {
                break;
            }

            state.Cuts++;
            await onCut(cancellationToken).ConfigureAwait(false);
        }

        return new ArtifactResult(Convert.ToHexStringLower(hash.GetHashAndReset()), state.Received, state.RangeRequests, state.Cuts);
    }

    /// <summary>One request from what has arrived; true when it stopped at a planned cut.</summary>
    private async Task<bool> DownloadOnceAsync(Credentials device, string url, long size, IncrementalHash hash, DownloadState state, byte[] buffer, long cutAt,
        Action<long> progress, CancellationToken ct)
    {
        if (state.Received == size)
        {
            return false;
        }

        using var request = Request(device, url);
        if (state.Received > 0)
        {
            request.Headers.Range = new RangeHeaderValue(state.Received, null);
            state.RangeRequests++;
        }

        using var response = await SendAsync(request, "artifact", ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            Restart(hash, state);
            throw new TransientDownloadException("the server refused to resume (416); starting again from zero");
        }

        Check(response, "artifact");
        long? total;
        if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange is { } range)
        {
            total = range.Length;
            if ((range.From ?? 0) != state.Received)
            {
                Restart(hash, state);
                throw new TransientDownloadException($"the server resumed at byte {range.From}, not {state.Received}; starting again from zero");
            }
        }
        else
        {
            // A whole answer to a Range request (or to none): hash it from the start.
            Restart(hash, state);
            total = response.Content.Headers.ContentLength;
        }

        if (total is { } t && t != size)
        {
            throw new UpdateRejectedException(RejectReasons.Size, $"the server's artifact is {t} bytes, the signed manifest says {size}; it is not the file that was signed");
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        while (true)
        {
            var want = (int)Math.Min(buffer.Length, Math.Max(1, cutAt - state.Received));
            var read = await ReadAsync(body, buffer.AsMemory(0, want), "artifact", ct).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            if (state.Received + read > size)
            {
                throw new UpdateRejectedException(RejectReasons.Size, $"the server sent more than the {size} bytes the signed manifest says");
            }

            hash.AppendData(buffer, 0, read);
            state.Received += read;
            progress(state.Received);
            if (state.Received >= cutAt && state.Received < size)
            {
                return true; // disposing the response mid-body closes the connection (no drain)
            }
        }

        if (state.Received < size)
        {
            throw new TransientDownloadException($"the artifact download ended after {state.Received} of {size} bytes");
        }

        return false;
    }

    public void Dispose()
    {
        _http.Dispose();
        _handler.Dispose();
    }

    private static void Restart(IncrementalHash hash, DownloadState state)
    {
        hash.GetHashAndReset();
        state.Received = 0;
    }

    private async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        try
        {
            return await _retry.ExecuteAsync(async ct => await action(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (TransientDownloadException ex)
        {
            throw new UpdateRejectedException(RejectReasons.Download, $"download failed after {Attempts} attempts: {ex.Message}", ex);
        }
    }

    private static HttpRequestMessage Request(Credentials device, string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UpdateRejectedException(RejectReasons.Download, $"'{url}' is not an http(s) URL");
        }

        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (device.HttpToken is not null
            && Uri.Compare(uri, device.Server, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", device.HttpToken);
        }

        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string what, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_readTimeout);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadException($"no answer for the {what} from {request.RequestUri!.GetLeftPart(UriPartial.Authority)} within {_readTimeout.TotalSeconds:0} s");
        }
        catch (HttpRequestException ex)
        {
            throw new TransientDownloadException($"{what} from {request.RequestUri!.GetLeftPart(UriPartial.Authority)}: {ex.Message}", ex);
        }
    }

    private Task<int> ReadAsync(Stream body, byte[] buffer, string what, CancellationToken ct) => ReadAsync(body, buffer.AsMemory(), what, ct);

    private async Task<int> ReadAsync(Stream body, Memory<byte> buffer, string what, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_readTimeout);
        try
        {
            return await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadException($"the {what} download stalled: no byte for {_readTimeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new TransientDownloadException($"the {what} download was cut: {ex.Message}", ex);
        }
    }

    private static void Check(HttpResponseMessage response, string what)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var url = response.RequestMessage?.RequestUri?.ToString() ?? "";
        if (status >= 500 || status is 408 or 429)
        {
            throw new TransientDownloadException($"the control plane answered {status} for the {what} ({url})");
        }

        var hint = status switch
        {
            401 => "; the device's HTTP token was not accepted (revoked? delete the state file to enroll again)",
            403 => "; the device's HTTP token may not read it",
            404 => "; the model version does not exist on the control plane",
            _ => "",
        };
        throw new UpdateRejectedException(RejectReasons.Download, $"the control plane answered {status} for the {what} ({url}){hint}");
    }

    private sealed class DownloadState
    {
        public long Received;
        public int RangeRequests;
        public int Cuts;
    }
}

/// <summary>What a device sends with its downloads: its bearer token, only ever to the control plane it enrolled with.</summary>
internal sealed record Credentials(Uri Server, string? HttpToken);
