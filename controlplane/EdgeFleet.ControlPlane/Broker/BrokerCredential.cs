using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// A broker login: the username (a device id, or the control plane's service user) and its password-file line
/// <c>username:$7$…</c> from <see cref="MosquittoPasswordHasher"/>. Only the hash is ever stored.
/// </summary>
public sealed record BrokerCredential(string Username, string PasswordLine)
{
    /// <summary>
    /// Usernames follow the device-id rule (<c>[a-z0-9][a-z0-9-]{0,62}</c>). That rule also keeps out everything
    /// that would break the files: ':' ends the username in the password file, a leading '#' makes the line a
    /// comment, and '/', '+' or '#' in a username would widen the <c>%u</c> ACL patterns to other devices' topics.
    /// </summary>
    public static void ValidateUsername(string username)
    {
        if (!Topics.IsValidDeviceId(username))
        {
            throw new ArgumentException(
                $"invalid broker username '{username}': use 1–63 of a-z, 0-9 and '-', starting with a letter or digit", nameof(username));
        }
    }

    /// <summary>Throws unless the username is valid and the line is a mosquitto PBKDF2 entry for that username.</summary>
    public void Validate()
    {
        ValidateUsername(Username);
        if (PasswordLine is null || !PasswordLine.StartsWith(Username + ":", StringComparison.Ordinal))
        {
            throw new ArgumentException($"the password line of broker user '{Username}' does not start with '{Username}:'", nameof(PasswordLine));
        }

        if (!MosquittoPasswordHasher.TryParse(PasswordLine.AsSpan(Username.Length + 1), out _, out _, out _))
        {
            throw new ArgumentException(
                $"the password line of broker user '{Username}' is not a mosquitto 2.0 PBKDF2-SHA512 entry ($7$iterations$salt$hash)", nameof(PasswordLine));
        }
    }
}
