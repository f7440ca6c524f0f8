using System.Security.Cryptography;

namespace EdgeFleet.ControlPlane.Registry;

/// <summary>
/// Model files stored by content: <c>DIR/artifacts/sha256/ab/abcdef….onnx</c>. Uploads stream into a temporary
/// file while their SHA-256 is computed, never held in memory, and are moved into place only once complete, so a
/// half-written file is never served and the same file pushed twice is stored once.
/// </summary>
public sealed class ArtifactStore
{
    private readonly string _root;
    private readonly string _incoming;

    public ArtifactStore(string dataDirectory)
    {
        _root = Path.Combine(dataDirectory, "artifacts", "sha256");
        _incoming = Path.Combine(dataDirectory, "artifacts", "incoming");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_incoming);
    }

    public sealed class TooLargeException(long limit) : Exception($"the upload is larger than the {limit} bytes allowed")
    {
        public long Limit { get; } = limit;
    }

    /// <summary>The upload itself could not be read (truncated, malformed, too large for the server): the sender's fault, not the store's.</summary>
    public sealed class SourceReadException(Exception inner) : Exception($"the upload could not be read: {inner.Message}", inner);

    /// <summary>An upload that has been written and hashed but not yet stored.</summary>
    public sealed class Staged : IDisposable
    {
        internal Staged(string path, string sha256, long size)
        {
            TempPath = path;
            Sha256 = sha256;
            Size = size;
        }

        public string TempPath { get; }

        public string Sha256 { get; }

        public long Size { get; }

        public void Dispose()
        {
            try
            {
                File.Delete(TempPath);
            }
            catch (IOException)
            {
                // moved into the store already, or the cleaner gets it
            }
        }
    }

    /// <summary>Copies <paramref name="source"/> to a temporary file, hashing it; throws <see cref="TooLargeException"/> past the limit.</summary>
    public async Task<Staged> StageAsync(Stream source, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        var temp = Path.Combine(_incoming, $"{Guid.NewGuid():N}.part");
        long size = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await ReadSourceAsync(source, buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    size += read;
                    if (size > maxBytes)
                    {
                        throw new TooLargeException(maxBytes);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            return new Staged(temp, Convert.ToHexStringLower(hash.GetHashAndReset()), size);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static async Task<int> ReadSourceAsync(Stream source, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            throw new SourceReadException(ex);
        }
    }

    /// <summary>Moves a staged upload into the store (a no-op if the same content is already there).</summary>
    public string Commit(Staged staged)
    {
        ArgumentNullException.ThrowIfNull(staged);
        var path = PathOf(staged.Sha256);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
        {
            File.Move(staged.TempPath, path);
        }

        return path;
    }

    /// <summary>Path of the stored file with this hash (which must be 64 hex characters: no traversal possible).</summary>
    public string PathOf(string sha256)
    {
        if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
        {
            throw new ArgumentException($"'{sha256}' is not a lowercase hex SHA-256", nameof(sha256));
        }

        return Path.Combine(_root, sha256[..2], sha256 + ".onnx");
    }
}
