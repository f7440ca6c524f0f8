using System.Security.Cryptography;
using System.Text;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>Random secrets and their stored form. Tokens are 256-bit random values; only their SHA-256 is stored.</summary>
public static class Secrets
{
    /// <summary>A new secret: <paramref name="prefix"/> + 43 base64url characters (256 bits).</summary>
    public static string NewToken(string prefix) => prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    /// <summary>A short random id for rows that are not secret.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>Whether <paramref name="id"/> has the form of <see cref="NewId"/> (so no other text reaches a query).</summary>
    public static bool IsValidId(string? id) => id is { Length: 16 } && id.All(char.IsAsciiHexDigitLower);

    /// <summary>
    /// Hash of a high-entropy token (SHA-256, hex). No salt or stretching needed: the token is 256 random bits, not
    /// a password, and a fixed hash makes the lookup by hash possible.
    /// </summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
