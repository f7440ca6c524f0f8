using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using EdgeFleet.Contracts.Messaging;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace EdgeFleet.Agent.Ota;

/// <summary>Download progress: artifact bytes on disk and the total.</summary>
public readonly record struct DownloadProgress(long Bytes, long Total);

/// <summary>
/// Fetches what an assignment names from the control plane: the manifest (exact bytes), its detached signature, the
/// optional drift profile and the artifact. The artifact is streamed to a <c>.part</c> file with a running SHA-256; a
/// cut connection resumes with an HTTP Range request from what is on disk (<c>If-Range</c> on the registry's ETag, so a
/// changed file restarts from zero). Transient failures (connection refused or reset, 5xx, 408/429, a response that
/// stops sending) are retried with exponential backoff and jitter, a bounded number of times; answers that will not
/// change (401, 403, 404, a wrong size) are not. The device's bearer token is only ever sent to the control plane it
/// enrolled with.
/// </summary>
public sealed partial class UpdateDownloader
{
    private const int BufferSize = 81920;
    private readonly HttpClient _http;
    private readonly OtaOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Uri? _server;
    private readonly string? _token;
    private readonly ResiliencePipeline _retry;

    /// <param name="server">The control plane the device enrolled with: only requests to its origin carry the token.</param>
    /// <param name="token">The device's HTTP bearer token.</param>
    public UpdateDownloader(HttpClient http, OtaOptions options, Uri? server, string? token, TimeProvider time, ILogger logger,
        Func<double>? randomizer = null)
    {
        _http = http;
        _options = options;
        _server = server;
        _token = token;
        _time = time;
        _logger = logger;
        var retry = new RetryStrategyOptions
        {
            Name = "ota-download",
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TransientDownloadException),
            MaxRetryAttempts = Math.Max(0, options.DownloadAttempts - 1),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromSeconds(options.RetryDelaySeconds),
            MaxDelay = TimeSpan.FromSeconds(Math.Max(options.RetryDelaySeconds, options.MaxRetryDelaySeconds)),
            OnRetry = args =>
            {
                Retries++;
                LogRetry(_logger, args.AttemptNumber + 1, args.RetryDelay.TotalSeconds, args.Outcome.Exception?.Message ?? "");
                return ValueTask.CompletedTask;
            },
        };
        if (randomizer is not null)
        {
            retry.Randomizer = randomizer;
        }

        _retry = new ResiliencePipelineBuilder { TimeProvider = time }.AddRetry(retry).Build();
    }

    /// <summary>Retries that happened (all downloads of this instance).</summary>
    public int Retries { get; private set; }

    /// <summary>GETs a small document (manifest, signature, profile) whole; null when the server answers 404 and <paramref name="optional"/>.</summary>
    public async Task<byte[]?> GetSmallAsync(string url, long maxBytes, bool optional, string what, CancellationToken cancellationToken)
    {
        return await RunAsync(async ct =>
        {
            using var request = Request(url);
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
            var chunk = new byte[BufferSize];
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
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads the artifact to <paramref name="partPath"/>, resuming from what is there, and returns once it has
    /// exactly <paramref name="size"/> bytes whose SHA-256 is <paramref name="sha256"/>.
    /// </summary>
    /// <exception cref="UpdateRejectedException">reason size, sha256 or download (after the retries).</exception>
    public async Task DownloadArtifactAsync(string url, string partPath, long size, string sha256, Action<DownloadProgress> progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var lastProgress = long.MinValue;
        void Report(long bytes, bool force)
        {
            var now = _time.GetTimestamp();
            if (force || lastProgress == long.MinValue || _time.GetElapsedTime(lastProgress, now) >= TimeSpan.FromSeconds(1))
            {
                lastProgress = now;
                progress(new DownloadProgress(bytes, size));
            }
        }

        await RunAsync(async ct =>
        {
            await DownloadOnceAsync(url, partPath, size, Report, ct).ConfigureAwait(false);
            return 0;
        }, cancellationToken).ConfigureAwait(false);

        var actual = await HashFileAsync(partPath, cancellationToken).ConfigureAwait(false);
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(partPath); // the next attempt must not resume from bytes that are wrong
            throw new UpdateRejectedException(RejectReasons.Sha256,
                $"the artifact's SHA-256 is {actual}, the signed manifest says {sha256.ToLowerInvariant()}; the file on the server is not the one that was signed");
        }

        Report(size, force: true);
    }

    private async Task DownloadOnceAsync(string url, string partPath, long size, Action<long, bool> report, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(partPath)!);
        long existing = File.Exists(partPath) ? new FileInfo(partPath).Length : 0;
        if (existing > size)
        {
            File.Delete(partPath);
            existing = 0;
        }

        if (existing == size)
        {
            return; // complete from an earlier run; the hash decides
        }

        using var request = Request(url);
        if (existing > 0)
        {
            request.Headers.Range = new RangeHeaderValue(existing, null);
        }

        using var response = await SendAsync(request, "artifact", ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            File.Delete(partPath);
            throw new TransientDownloadException("the server refused to resume (416); starting again from zero");
        }

        Check(response, "artifact");
        long offset;
        long? total;
        if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange is { } range)
        {
            offset = range.From ?? 0;
            total = range.Length;
            if (offset != existing)
            {
                File.Delete(partPath);
                throw new TransientDownloadException($"the server resumed at byte {offset}, not {existing}; starting again from zero");
            }
        }
        else
        {
            offset = 0;
            total = response.Content.Headers.ContentLength;
        }

        if (total is { } t && t != size)
        {
            throw new UpdateRejectedException(RejectReasons.Size,
                $"the server's artifact is {t} bytes, the signed manifest says {size}; it is not the file that was signed");
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using var file = new FileStream(partPath, new FileStreamOptions
        {
            Mode = offset == 0 ? FileMode.Create : FileMode.Append,
            Access = FileAccess.Write,
            BufferSize = 0,
        });
        var written = offset;
        var buffer = new byte[BufferSize];
        try
        {
            while (true)
            {
                var read = await ReadAsync(body, buffer, "artifact", ct).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                if (written + read > size)
                {
                    throw new UpdateRejectedException(RejectReasons.Size, $"the server sent more than the {size} bytes the signed manifest says");
                }

                await file.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                written += read;
                report(written, false);
            }
        }
        finally
        {
            await file.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }

        if (written < size)
        {
            throw new TransientDownloadException($"the artifact download ended after {written} of {size} bytes");
        }
    }

    private async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        try
        {
            return await _retry.ExecuteAsync(async ct => await action(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (TransientDownloadException ex)
        {
            throw new UpdateRejectedException(RejectReasons.Download, $"download failed after {_options.DownloadAttempts} attempts: {ex.Message}", ex);
        }
    }

    private HttpRequestMessage Request(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UpdateRejectedException(RejectReasons.Download, $"'{url}' is not an http(s) URL");
        }

        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (_token is not null && _server is not null && Uri.Compare(uri, _server, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }

        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string what, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(_options.ReadTimeoutSeconds));
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadException($"no answer for the {what} from {request.RequestUri!.GetLeftPart(UriPartial.Authority)} within {_options.ReadTimeoutSeconds} s");
        }
        catch (HttpRequestException ex)
        {
            throw new TransientDownloadException($"{what} from {request.RequestUri!.GetLeftPart(UriPartial.Authority)}: {ex.Message}");
        }
    }

    private async Task<int> ReadAsync(Stream body, byte[] buffer, string what, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(_options.ReadTimeoutSeconds));
        try
        {
            return await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadException($"the {what} download stalled: no byte for {_options.ReadTimeoutSeconds} s");
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            throw new TransientDownloadException($"the {what} download was cut: {ex.Message}");
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
            401 => "; the device's HTTP token was not accepted (revoked? enroll again)",
            403 => "; the device's HTTP token may not read it",
            404 => "; the model version does not exist on the control plane",
            _ => "",
        };
        throw new UpdateRejectedException(RejectReasons.Download, $"the control plane answered {status} for the {what} ({url}){hint}");
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Download attempt {Attempt} in {Delay:0.0} s: {Reason}")]
    private static partial void LogRetry(ILogger logger, int attempt, double delay, string reason);
}

/// <summary>A download failure worth retrying.</summary>
internal sealed class TransientDownloadException : Exception
{
    public TransientDownloadException(string message)
        : base(message)
    {
    }

    public TransientDownloadException()
    {
    }

    public TransientDownloadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
