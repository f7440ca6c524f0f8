using System.Buffers;
using System.Net;

namespace EdgeFleet.Cli.Api;

/// <summary>
/// A file streamed from disk (models are hundreds of megabytes: never buffered in memory) that reports the bytes
/// handed to the connection, for the progress bar.
/// </summary>
internal sealed class FileUploadContent : HttpContent
{
    private const int ChunkSize = 64 * 1024;
    private readonly string _path;
    private readonly long _length;
    private readonly IProgress<long>? _progress;

    public FileUploadContent(string path, IProgress<long>? progress)
    {
        _path = path;
        _length = new FileInfo(path).Length;
        _progress = progress;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            await using var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, ChunkSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
            long sent = 0;
            int read;
            while ((read = await file.ReadAsync(buffer.AsMemory(0, ChunkSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                sent += read;
                _progress?.Report(sent);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // A known length sends Content-Length instead of chunks, so the server can refuse an oversized model (413) up front.
    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return true;
    }
}
