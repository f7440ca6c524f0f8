using System.Globalization;
using System.Security.Cryptography;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// Password-file entries in mosquitto 2.0's own format, <c>username:$7$101$&lt;salt&gt;$&lt;hash&gt;</c>: PBKDF2-HMAC-SHA512
/// over the UTF-8 password, standard base64 with padding. This is what <c>mosquitto_passwd</c> 2.0.11 writes, so the
/// control plane needs neither that tool nor a device's clear password once it has been hashed.
/// </summary>
internal static class MosquittoPasswordHasher
{
    /// <summary>
    /// mosquitto_passwd's default. The broker reads the count from each line, so raising it later needs no broker
    /// change; it stays low because every CONNECT pays for it, and device passwords are random, not memorable.
    /// </summary>
    public const int DefaultIterations = 101;

    // The broker drops (with a log line) any entry whose salt is not exactly 12 bytes or whose hash is not 64.
    private const int SaltLength = 12;
    private const int HashLength = 64;
    private const string Pbkdf2Sha512 = "7";

    /// <summary>A password-file line for <paramref name="username"/> with a fresh random salt.</summary>
    public static string HashLine(string username, string password)
    {
        BrokerCredential.ValidateUsername(username);
        return $"{username}:{Hash(password)}";
    }

    /// <summary>A credential whose password line is hashed from <paramref name="password"/> (which is not kept).</summary>
    public static BrokerCredential CreateCredential(string username, string password) => new(username, HashLine(username, password));

    /// <summary>The part after <c>username:</c>, with a fresh random salt.</summary>
    public static string Hash(string password) => Hash(password, RandomNumberGenerator.GetBytes(SaltLength), DefaultIterations);

    /// <summary>The part after <c>username:</c> for a given salt (tests compare it with mosquitto_passwd's output).</summary>
    public static string Hash(string password, ReadOnlySpan<byte> salt, int iterations)
    {
        ValidatePassword(password);
        if (salt.Length != SaltLength)
        {
            throw new ArgumentException($"the salt must be {SaltLength} bytes (mosquitto rejects other lengths)", nameof(salt));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA512, HashLength);
        return string.Create(CultureInfo.InvariantCulture,
            $"${Pbkdf2Sha512}${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }

    /// <summary>Whether <paramref name="password"/> matches a hash or a whole <c>username:hash</c> line.</summary>
    public static bool Verify(string hashOrLine, string password)
    {
        ArgumentNullException.ThrowIfNull(hashOrLine);
        ArgumentNullException.ThrowIfNull(password);
        var colon = hashOrLine.IndexOf(':', StringComparison.Ordinal);
        var hash = colon >= 0 ? hashOrLine.AsSpan(colon + 1) : hashOrLine.AsSpan();
        if (!TryParse(hash, out var iterations, out var salt, out var expected) || password.Length == 0 || password.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA512, HashLength);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    /// <summary>Parses <c>$7$iterations$salt$hash</c> with the lengths the broker accepts.</summary>
    public static bool TryParse(ReadOnlySpan<char> hash, out int iterations, out byte[] salt, out byte[] key)
    {
        iterations = 0;
        salt = [];
        key = [];
        Span<Range> parts = stackalloc Range[6];
        if (hash.Split(parts, '$') != 5 || hash[parts[0]].Length != 0 || !hash[parts[1]].SequenceEqual(Pbkdf2Sha512)
            || !int.TryParse(hash[parts[2]], NumberStyles.None, CultureInfo.InvariantCulture, out iterations) || iterations < 1)
        {
            return false;
        }

        salt = new byte[SaltLength + 3];
        key = new byte[HashLength + 3];
        if (!Convert.TryFromBase64Chars(hash[parts[3]], salt, out var saltLength) || saltLength != SaltLength
            || !Convert.TryFromBase64Chars(hash[parts[4]], key, out var keyLength) || keyLength != HashLength)
        {
            return false;
        }

        salt = salt[..SaltLength];
        key = key[..HashLength];
        return true;
    }

    private static void ValidatePassword(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        // The broker treats an empty password as none (refused) and reads the client's password as a C string.
        if (password.Length == 0 || password.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("an MQTT password must be non-empty and contain no NUL character", nameof(password));
        }
    }
}
