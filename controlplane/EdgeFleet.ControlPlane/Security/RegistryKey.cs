using System.Security.Cryptography;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>
/// The registry's ECDSA P-256 signing key, created on first start as <c>DIR/keys/registry-signing.pem</c> (PKCS#8,
/// mode 0600). Agents pin its public key (sent at enrollment and served at <c>GET /api/v1/registry/key</c>) and refuse
/// manifests it did not sign.
/// </summary>
public sealed class RegistryKey : IDisposable
{
    private readonly ECDsa _key;

    private RegistryKey(ECDsa key, string path)
    {
        _key = key;
        Path = path;
        KeyId = ManifestSigning.KeyId(key);
        PublicKeyPem = key.ExportSubjectPublicKeyInfoPem();
    }

    public string Path { get; }

    public string KeyId { get; }

    public string PublicKeyPem { get; }

    public static RegistryKey LoadOrCreate(string dataDirectory)
    {
        var dir = System.IO.Path.Combine(dataDirectory, "keys");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var path = System.IO.Path.Combine(dir, "registry-signing.pem");
        var key = ECDsa.Create();
        try
        {
            if (File.Exists(path))
            {
                try
                {
                    key.ImportFromPem(File.ReadAllText(path));
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidOperationException($"{path} is not a PEM private key ({ex.Message}); restore it from a backup — a new key would make every device refuse new models", ex);
                }

                if (key.KeySize != 256)
                {
                    throw new InvalidOperationException($"{path} holds a {key.KeySize}-bit key; the registry signs with ECDSA P-256");
                }
            }
            else
            {
                key.GenerateKey(ECCurve.NamedCurves.nistP256);
                var temp = path + ".tmp";
                using (var stream = new FileStream(temp, new FileStreamOptions
                {
                    Mode = FileMode.Create,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                }))
                using (var writer = new StreamWriter(stream))
                {
                    writer.Write(key.ExportPkcs8PrivateKeyPem());
                }

                File.Move(temp, path);
            }

            return new RegistryKey(key, path);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The detached ES256 signature (DER) of exactly <paramref name="bytes"/>.</summary>
    public byte[] SignDetached(ReadOnlySpan<byte> bytes) => ManifestSigning.SignDetached(bytes, _key);

    public void Dispose() => _key.Dispose();
}
