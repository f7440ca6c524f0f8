using System.Security.Cryptography;

namespace EdgeFleet.Contracts.Models;

/// <summary>
/// Detached ES256 signatures over the exact manifest bytes the registry serves (DESIGN.md §5): ECDSA P-256 with
/// SHA-256, DER-encoded (RFC 3279), the encoding <c>openssl dgst -sha256 -sign/-verify</c> writes and reads. Nothing is
/// re-serialised before verifying, so any verifier — the agent, <c>openssl</c>, another language — checks the same
/// bytes that were signed; a changed byte, even whitespace, fails.
/// </summary>
public static class ManifestSigning
{
    /// <summary>The signature algorithm name carried beside signatures.</summary>
    public const string Algorithm = "ES256";

    /// <summary>Key id: the first 16 hex characters of the SHA-256 of the public key's SubjectPublicKeyInfo.</summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16];
    }

    /// <summary>Signs <paramref name="manifestBytes"/>; returns the DER signature (what <c>NAME.manifest.json.sig</c> holds).</summary>
    public static byte[] SignDetached(ReadOnlySpan<byte> manifestBytes, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.SignData(manifestBytes, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary>
    /// Whether <paramref name="signature"/> (DER, or the 64-byte IEEE P1363 form) is a valid ES256 signature of
    /// <paramref name="manifestBytes"/> by <paramref name="publicKey"/>.
    /// </summary>
    public static bool VerifyDetached(ReadOnlySpan<byte> manifestBytes, ReadOnlySpan<byte> signature, ECDsa publicKey, out string reason)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        if (signature.IsEmpty)
        {
            reason = "the manifest is not signed (the signature is empty)";
            return false;
        }

        var format = signature.Length == 64 ? DSASignatureFormat.IeeeP1363FixedFieldConcatenation : DSASignatureFormat.Rfc3279DerSequence;
        bool valid;
        try
        {
            valid = publicKey.VerifyData(manifestBytes, signature, HashAlgorithmName.SHA256, format);
        }
        catch (CryptographicException)
        {
            valid = false;
        }

        reason = valid ? "" : "the signature does not match the manifest (it was changed after signing, or signed by another key)";
        return valid;
    }

    /// <summary>Imports a PEM public key (SubjectPublicKeyInfo); throws <see cref="ArgumentException"/> when it is not one.</summary>
    public static ECDsa ImportPublicKey(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256)
            {
                throw new ArgumentException($"the registry key is a {key.KeySize}-bit key; ES256 needs P-256", nameof(pem));
            }

            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }
}
