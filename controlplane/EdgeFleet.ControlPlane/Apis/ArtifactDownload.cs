using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.ControlPlane.Registry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// <c>GET …/artifact</c>: the ONNX file with Range, ETag and <c>X-Content-SHA256</c>, counting the bytes actually written
/// to the response body (a range, a resumed download or one the client aborted counts what left, not the file size)
/// into <c>edgefleet_artifact_bytes_served_total</c>, with one log line per request.
/// </summary>
internal static partial class ArtifactDownload
{
    public static async Task<IResult> HandleAsync(string name, string version, ModelRegistry registry, IngestMetrics metrics, ILoggerFactory loggers, HttpContext http)
    {
        Contracts.Api.ModelVersionInfo v;
        try
        {
            v = await ModelsApi.Find(registry, name, version);
        }
        catch (ApiProblem problem)
        {
            metrics.OnArtifactRequest(problem.Status);
            throw;
        }

        var path = registry.ArtifactPath(v);
        if (!File.Exists(path))
        {
            metrics.OnArtifactRequest(StatusCodes.Status500InternalServerError);
            throw new ApiProblem(StatusCodes.Status500InternalServerError, "artifact missing", $"the file of {name} {version} is missing from the artifact store ({v.Sha256})");
        }

        http.Response.Headers["X-Content-SHA256"] = v.Sha256;
        http.Response.Headers["Repr-Digest"] = $"sha-256=:{Convert.ToBase64String(Convert.FromHexString(v.Sha256))}:";
        var file = TypedResults.PhysicalFile(path, "application/octet-stream", $"{name}-{v.Version}.onnx",
            lastModified: v.CreatedAt, entityTag: new EntityTagHeaderValue($"\"{v.Sha256}\""), enableRangeProcessing: true);
        return new Counted(file, v.Name, v.Version, metrics, loggers.CreateLogger(typeof(ArtifactDownload).FullName!));
    }

    private sealed class Counted(IResult inner, string model, string version, IngestMetrics metrics, ILogger logger) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var original = httpContext.Features.Get<IHttpResponseBodyFeature>()!;
            using var counting = new CountingStream(original.Stream); // leaves the response stream open
            var feature = new StreamResponseBodyFeature(counting, original);
            httpContext.Features.Set<IHttpResponseBodyFeature>(feature);
            try
            {
                await inner.ExecuteAsync(httpContext);
                await feature.CompleteAsync();
            }
            finally
            {
                httpContext.Features.Set(original);
                var status = httpContext.Response.StatusCode;
                metrics.OnArtifactRequest(status, model, version, counting.Written);
                var range = httpContext.Request.Headers.Range.ToString();
                LogServed(logger, model, version, httpContext.User.Identity?.Name ?? "anonymous", range.Length == 0 ? "(none)" : range, status, counting.Written,
                    httpContext.RequestAborted.IsCancellationRequested);
            }
        }
    }

    /// <summary>Passes writes through and counts their bytes.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private long _written;

        public long Written => Interlocked.Read(ref _written);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Interlocked.Add(ref _written, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _written, buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Artifact {Model} {Version} for {Actor}: Range {Range}, status {Status}, {Bytes} bytes sent (aborted: {Aborted})")]
    private static partial void LogServed(ILogger logger, string model, string version, string actor, string range, int status, long bytes, bool aborted);
}
