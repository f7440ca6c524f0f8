using System.Security.Cryptography;

namespace EdgeFleet.Contracts.Models;

/// <summary>
/// ES256 signatures over a manifest: ECDSA P-256 with SHA-256 (IEEE P1363 encoding) over the canonical bytes, which
/// are the manifest serialised by <see cref="ManifestFile.Serialize"/> with <see cref="ModelManifest.Signature"/>
/// removed. A verifier parses the manifest, re-serialises it the same way and checks; a field this version does not
/// know is dropped by the parse and so makes the signature fail, never pass.
/// </summary>
public static class ManifestSigning
{
    /// <summary>The bytes that are signed.</summary>
    public static byte[] CanonicalBytes(ModelManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return ManifestFile.Serialize(manifest with { Signature = null });
    }

    /// <summary>Key id: the first 16 hex characters of the SHA-256 of the public key's SubjectPublicKeyInfo.</summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16];
    }

    /// <summary>Returns the manifest with a fresh signature by <paramref name="key"/>.</summary>
    public static ModelManifest Sign(ModelManifest manifest, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var signature = key.SignData(CanonicalBytes(manifest), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return manifest with { Signature = new ManifestSignature { KeyId = KeyId(key), Value = Convert.ToBase64String(signature) } };
    }

    /// <summary>Whether the manifest carries a valid ES256 signature by the key whose public part is <paramref name="publicKey"/>.</summary>
    public static bool Verify(ModelManifest manifest, ECDsa publicKey, out string reason)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(publicKey);
        if (manifest.Signature is not { } s)
        {
            reason = "the manifest is not signed";
            return false;
        }

        if (s.Algorithm != "ES256")
        {
            reason = $"signature algorithm '{s.Algorithm}' is not supported (ES256 expected)";
            return false;
        }

        if (s.KeyId != KeyId(publicKey))
        {
            reason = $"signed by key {s.KeyId}, but the pinned registry key is {KeyId(publicKey)}";
            return false;
        }

        byte[] value;
        try
        {
            value = Convert.FromBase64String(s.Value);
        }
        catch (FormatException)
        {
            reason = "the signature is not base64";
            return false;
        }

        if (!publicKey.VerifyData(CanonicalBytes(manifest), value, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
        {
            reason = "the signature does not match the manifest (it was changed after signing, or signed by another key)";
            return false;
        }

        reason = "";
        return true;
    }
}
