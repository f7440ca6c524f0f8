using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>
/// The dashboard's session cookie: the API token the user pasted at login, its expiry and a per-session CSRF value,
/// sealed with AES-256-GCM under a key kept in the data directory (<c>keys/dashboard-session.key</c>). Nothing is
/// stored server-side: every request authenticates the sealed token again, so revoking the token ends its sessions
/// and a restart keeps them. A cookie that was tampered with, sealed under another key or expired reads as none.
/// </summary>
public sealed class DashboardSessions
{
    public const string CookieName = "edgefleet_session";
    public const string CsrfHeader = "X-EdgeFleet-CSRF";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    private const byte Version = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _key;
    private readonly TimeProvider _time;

    public DashboardSessions(byte[] key, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key.Length == 32 ? key : throw new ArgumentException("the session key must be 32 bytes", nameof(key));
        _time = time ?? throw new ArgumentNullException(nameof(time));
    }

    /// <summary>What a valid cookie holds.</summary>
    public sealed record Session(string Token, string Csrf, DateTimeOffset Expires);

    /// <summary>The key in <c>{data}/keys/dashboard-session.key</c>, created (mode 0600) at first start.</summary>
    public static DashboardSessions LoadOrCreate(string dataDirectory, TimeProvider time)
    {
        var dir = Path.Combine(dataDirectory, "keys");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "dashboard-session.key");
        if (!File.Exists(path))
        {
            var temp = path + ".tmp";
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                stream.Write(RandomNumberGenerator.GetBytes(32));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: false);
        }

        var key = File.ReadAllBytes(path);
        return key.Length == 32
            ? new DashboardSessions(key, time)
            : throw new InvalidOperationException($"{path} must hold 32 bytes (it holds {key.Length}); delete it to start afresh (every dashboard session ends)");
    }

    /// <summary>A new session for <paramref name="token"/>: the cookie value and what it holds.</summary>
    public (string Cookie, Session Session) Issue(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var session = new Session(token, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), _time.GetUtcNow() + Lifetime);
        var text = Encoding.UTF8.GetBytes($"{session.Csrf}\n{session.Token}");
        var plain = new byte[8 + text.Length];
        BinaryPrimitives.WriteInt64BigEndian(plain, session.Expires.ToUnixTimeMilliseconds());
        text.CopyTo(plain, 8);
        var sealedBytes = new byte[1 + NonceSize + TagSize + plain.Length];
        sealedBytes[0] = Version;
        var nonce = sealedBytes.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagSize);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(1 + NonceSize + TagSize), sealedBytes.AsSpan(1 + NonceSize, TagSize), [Version]);
        return (Convert.ToBase64String(sealedBytes).TrimEnd('=').Replace('+', '-').Replace('/', '_'), session);
    }

    /// <summary>The session a cookie holds, or null when it is malformed, forged, sealed under another key or expired.</summary>
    public Session? Read(string? cookie)
    {
        if (string.IsNullOrEmpty(cookie) || cookie.Length > 4096)
        {
            return null;
        }

        byte[] sealedBytes;
        try
        {
            var b64 = cookie.Replace('-', '+').Replace('_', '/');
            sealedBytes = Convert.FromBase64String(b64.PadRight(b64.Length + ((4 - (b64.Length % 4)) % 4), '='));
        }
        catch (FormatException)
        {
            return null;
        }

        if (sealedBytes.Length < 1 + NonceSize + TagSize + 8 || sealedBytes[0] != Version)
        {
            return null;
        }

        var plain = new byte[sealedBytes.Length - 1 - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(_key, TagSize);
            aes.Decrypt(sealedBytes.AsSpan(1, NonceSize), sealedBytes.AsSpan(1 + NonceSize + TagSize), sealedBytes.AsSpan(1 + NonceSize, TagSize), plain, [Version]);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }

        var expires = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64BigEndian(plain));
        if (expires <= _time.GetUtcNow())
        {
            return null;
        }

        var text = Encoding.UTF8.GetString(plain, 8, plain.Length - 8);
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline <= 0 ? null : new Session(text[(newline + 1)..], text[..newline], expires);
    }

    /// <summary>Whether a state-changing request authenticated by the cookie carries the session's CSRF value.</summary>
    public static bool CsrfMatches(Session session, string? header) =>
        header is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(session.Csrf), Encoding.UTF8.GetBytes(header));
}
