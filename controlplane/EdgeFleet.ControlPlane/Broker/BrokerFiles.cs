using System.Globalization;
using System.Net;
using System.Text;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// The embedded broker's files under <c>DataDirectory/mqtt/</c>: <c>mosquitto.conf</c>, <c>passwd</c> and <c>acl</c>,
/// each replaced atomically (a reload or restart never reads a half-written file) and readable by the owner only
/// (the password file holds hashes, which can still be attacked offline).
/// </summary>
internal sealed class BrokerFiles
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const string Header = "# Written by the EdgeFleet control plane; edits are overwritten.";

    private readonly BrokerOptions _options;

    public BrokerFiles(BrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Directory = Path.Combine(Path.GetFullPath(options.DataDirectory), "mqtt");
        if (Directory.AsSpan().ContainsAny('\n', '\r'))
        {
            throw new ArgumentException("the broker's data directory may not contain a line break (mosquitto.conf is line-based)", nameof(options));
        }
    }

    public string Directory { get; }

    public string ConfigPath => Path.Combine(Directory, "mosquitto.conf");

    public string PasswordPath => Path.Combine(Directory, "passwd");

    public string AclPath => Path.Combine(Directory, "acl");

    public string LogPath => Path.Combine(Directory, "mosquitto.log");

    /// <summary>The running mosquitto's pid, so that the next start can wait for one a crashed control plane left saving.</summary>
    public string PidPath => Path.Combine(Directory, "mosquitto.pid");

    public string PersistenceDirectory => Path.Combine(Directory, "data");

    /// <summary>Writes the configuration, the password file and the ACL.</summary>
    public void WriteAll(IEnumerable<BrokerCredential> credentials)
    {
        CreateDirectories();
        WriteCredentials(credentials);
        WriteAtomically(ConfigPath, RenderConfig(Environment.IsPrivilegedProcess));
    }

    /// <summary>Rewrites the password file and the ACL (what a SIGHUP makes mosquitto read again).</summary>
    public void WriteCredentials(IEnumerable<BrokerCredential> credentials)
    {
        var passwd = RenderPasswd(credentials);
        CreateDirectories();
        WriteAtomically(AclPath, RenderAcl());
        WriteAtomically(PasswordPath, passwd);
    }

    public void WritePid(int pid) => WriteAtomically(PidPath, pid.ToString(CultureInfo.InvariantCulture) + "\n");

    /// <summary>Moves a log that has grown past <paramref name="maxBytes"/> to <c>mosquitto.log.1</c> (mosquitto appends forever).</summary>
    public void RotateLog(long maxBytes)
    {
        var log = new FileInfo(LogPath);
        if (log.Exists && log.Length > maxBytes)
        {
            File.Move(LogPath, LogPath + ".1", overwrite: true);
        }
    }

    public string RenderConfig(bool runningAsRoot)
    {
        var c = new StringBuilder();
        c.AppendLine(Header);
        if (runningAsRoot)
        {
            // Started as root, mosquitto would switch to user "mosquitto", who cannot read these owner-only files;
            // the switch would also clear the parent-death signal that stops it outliving the control plane.
            c.AppendLine("user root");
        }

        var bind = IPAddress.Parse(_options.BindAddress);
        c.AppendLine(CultureInfo.InvariantCulture, $"listener {_options.Port} {bind}");
        c.AppendLine("allow_anonymous false");
        c.AppendLine(CultureInfo.InvariantCulture, $"password_file {PasswordPath}");
        c.AppendLine(CultureInfo.InvariantCulture, $"acl_file {AclPath}");
        c.AppendLine("persistence true");
        c.AppendLine(CultureInfo.InvariantCulture, $"persistence_location {PersistenceDirectory}/"); // mosquitto appends the file name as is
        c.AppendLine(CultureInfo.InvariantCulture, $"autosave_interval {_options.AutosaveIntervalSeconds}");
        c.AppendLine("# mosquitto's default of 1000 silently drops QoS 1 messages queued for an offline or slow client.");
        c.AppendLine(CultureInfo.InvariantCulture, $"max_queued_messages {_options.MaxQueuedMessages}");
        c.AppendLine(CultureInfo.InvariantCulture, $"max_inflight_messages {_options.MaxInflightMessages}");
        c.AppendLine(CultureInfo.InvariantCulture, $"log_dest file {LogPath}");
        c.AppendLine("log_type error");
        c.AppendLine("log_type warning");
        c.AppendLine("log_type notice");
        c.AppendLine("# information: the control plane waits for \"running\" (signal handlers installed) and \"Reloading config.\".");
        c.AppendLine("log_type information");
        c.AppendLine("log_timestamp_format %Y-%m-%dT%H:%M:%S%z");
        return c.ToString();
    }

    /// <summary>One line per login, sorted; anyone not listed (a revoked device) cannot log in.</summary>
    public static string RenderPasswd(IEnumerable<BrokerCredential> credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        var byName = new SortedDictionary<string, BrokerCredential>(StringComparer.Ordinal);
        foreach (var credential in credentials)
        {
            ArgumentNullException.ThrowIfNull(credential);
            credential.Validate();
            if (!byName.TryAdd(credential.Username, credential))
            {
                throw new ArgumentException($"broker user '{credential.Username}' is listed twice", nameof(credentials));
            }
        }

        var c = new StringBuilder();
        c.Append(Header).Append('\n');
        foreach (var credential in byName.Values)
        {
            c.Append(credential.PasswordLine).Append('\n');
        }

        return c.ToString();
    }

    /// <summary>
    /// The ACL. Devices get one set of <c>%u</c> patterns rather than a block per device: the rule "a device touches
    /// only ef/v1/{its id}/…" is stated once, the file does not grow with the fleet, and it cannot fall out of step
    /// with the password file: enrolment and revocation change only <c>passwd</c>. This relies on username = device
    /// id, which the device-id rule keeps free of '/', '+' and '#' (mosquitto also refuses pattern access to any
    /// username or client id containing '+' or '#').
    /// </summary>
    public string RenderAcl()
    {
        var c = new StringBuilder();
        c.Append(Header).Append('\n');
        c.Append("# Devices (username = device id): publish their reports, read what the control plane sends them.\n");
        foreach (var kind in new[] { Topics.Status, Topics.Telemetry, Topics.Drift, Topics.Events, Topics.Results })
        {
            c.Append(CultureInfo.InvariantCulture, $"pattern write {Topics.Root}/%u/{kind}\n");
        }

        foreach (var kind in new[] { Topics.Desired, Topics.Command })
        {
            c.Append(CultureInfo.InvariantCulture, $"pattern read {Topics.Root}/%u/{kind}\n");
        }

        c.Append("# The control plane. Its shared subscriptions ($share/cp/ef/v1/+/...) need no rule of their own:\n");
        c.Append("# mosquitto 2.0 checks read access against each delivered message's topic, not the $share filter.\n");
        c.Append(CultureInfo.InvariantCulture, $"user {_options.ServiceUsername}\n");
        c.Append(CultureInfo.InvariantCulture, $"topic readwrite {Topics.Root}/#\n");
        return c.ToString();
    }

    private void CreateDirectories()
    {
        foreach (var dir in new[] { Directory, PersistenceDirectory })
        {
            if (OperatingSystem.IsWindows())
            {
                System.IO.Directory.CreateDirectory(dir);
                continue;
            }

            System.IO.Directory.CreateDirectory(dir, OwnerOnlyDirectory);
            File.SetUnixFileMode(dir, OwnerOnlyDirectory); // it may have existed with a wider mode
        }
    }

    /// <summary>Write a temporary file (owner-only from its creation), flush it to disk, then rename it over the old one.</summary>
    private static void WriteAtomically(string path, string content)
    {
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFile;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }

            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, OwnerOnlyFile); // the umask could only have narrowed it; be exact anyway
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
