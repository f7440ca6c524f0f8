using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// The files under deploy/ as an operator installs them: the systemd units pass <c>systemd-analyze verify</c>, and a
/// real mosquitto runs the production broker configuration (TLS, passwords, the ACL).
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DeployTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    internal static readonly string RepoRoot = Repository.Root;

    public static TheoryData<string> Units() =>
        new(Directory.GetFiles(Path.Combine(RepoRoot, "deploy", "systemd"), "*.service").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    /// <summary>
    /// <c>systemd-analyze verify</c> (systemd 252, no systemd needed as PID 1) loads the unit and its dependencies and
    /// reports unknown keys, bad values and an ExecStart binary that is not executable; it exits 0 even for unknown keys,
    /// so clean means no output at all. The binaries under /opt/edgefleet are not installed on a build machine, and
    /// <c>--root</c> would need a whole systemd tree under that root (sysinit.target ...), so the unit is verified as a
    /// copy whose ExecStart program is a real executable in a temp directory, arguments unchanged. That this is the only
    /// complaint about the unit as written is checked too. User= is not looked up by verify (it creates nothing).
    /// </summary>
    [Theory]
    [MemberData(nameof(Units))]
    public async Task SystemdAnalyzeVerify_Unit_IsClean(string unit)
    {
        using var dir = new TempDirectory();
        var text = await File.ReadAllTextAsync(Path.Combine(RepoRoot, "deploy", "systemd", unit));
        var execStart = Assert.Single(text.Split('\n'), l => l.StartsWith("ExecStart=", StringComparison.Ordinal));
        var program = execStart["ExecStart=".Length..].Split(' ')[0];
        Assert.StartsWith("/", program, StringComparison.Ordinal);

        var asWritten = dir.File(unit);
        await File.WriteAllTextAsync(asWritten, text);
        var (_, stdout, stderr) = await RunAsync("systemd-analyze", "verify", "--man=no", asWritten);
        if (!File.Exists(program))
        {
            Assert.Equal($"{unit}: Command {program} is not executable: No such file or directory", (stdout + stderr).Trim());
        }

        var stand = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName + "/" + Path.GetFileName(program);
        await File.WriteAllTextAsync(stand, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(stand, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var copyDir = Directory.CreateDirectory(Path.Combine(dir.Path, "unit")).FullName;
        var copy = Path.Combine(copyDir, unit);
        await File.WriteAllTextAsync(copy, text.Replace(execStart, execStart.Replace(program, stand, StringComparison.Ordinal), StringComparison.Ordinal));

        var (code, verifyOut, verifyErr) = await RunAsync("systemd-analyze", "verify", "--man=no", copy);

        Assert.True(code == 0 && verifyOut.Length == 0 && verifyErr.Length == 0, $"systemd-analyze verify {unit} (exit {code}): {verifyOut}{verifyErr}");
    }

    [Fact]
    public async Task SystemdAnalyzeVerify_UnitWithATypo_IsReported()
    {
        // What makes SystemdAnalyzeVerify_Unit_IsClean able to fail: verify exits 0 here, only its output tells.
        using var dir = new TempDirectory();
        var unit = dir.File("typo.service");
        await File.WriteAllTextAsync(unit, "[Service]\nExecStart=/bin/true\nProtectKernelTunable=yes\nDevicePolicy=shut\n");

        var (_, stdout, stderr) = await RunAsync("systemd-analyze", "verify", "--man=no", unit);

        Assert.Contains("Unknown key 'ProtectKernelTunable'", stdout + stderr, StringComparison.Ordinal);
        Assert.Contains("Failed to parse device policy, ignoring: shut", stdout + stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("install-agent.sh")]
    [InlineData("bootstrap.sh")]
    public async Task DeployScript_BashSyntaxCheck_IsClean(string script)
    {
        var (code, stdout, stderr) = await RunAsync("bash", "-n", Path.Combine(RepoRoot, "deploy", script));

        Assert.True(code == 0 && stdout.Length == 0 && stderr.Length == 0, $"bash -n {script}: {stdout}{stderr}");
    }

    [Fact]
    public async Task InstallAgentScript_WithoutTheTokenOfItsServer_RefusesBeforeTouchingAnything()
    {
        // Argument checks come before the root check, so this runs as any user and changes nothing.
        var (code, _, stderr) = await RunAsync("bash", Path.Combine(RepoRoot, "deploy", "install-agent.sh"), "--server", "https://cp.example:8080");

        Assert.Equal(2, code);
        Assert.Contains("--server and --token go together", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void MosquittoAcl_ProductionFile_HasTheRulesTheEmbeddedBrokerWrites()
    {
        static string[] Rules(string acl) => acl.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith('#')).ToArray();

        var production = File.ReadAllText(Path.Combine(RepoRoot, "deploy", "mosquitto", "edgefleet.acl"));

        Assert.Equal(Rules(new BrokerFiles(new BrokerOptions()).RenderAcl()), Rules(production));
    }

    [Fact]
    public async Task Mosquitto_ProductionConfig_TlsWithPasswordsAndTheAclKeepsDevicesToTheirOwnTopics()
    {
        using var dir = new TempDirectory();
        var (ca, cert, key) = TestCertificates.CreateServer(dir);
        var passwd = dir.File("passwd");
        await File.WriteAllTextAsync(passwd, "");
        foreach (var (user, password) in new[] { ("cam-01", "pw-01"), ("cam-02", "pw-02"), ("edgefleet-cp", "pw-cp") })
        {
            var (c, o, e) = await RunAsync("mosquitto_passwd", "-b", passwd, user, password);
            Assert.True(c == 0, $"mosquitto_passwd: {o}{e}");
        }

        File.Copy(Path.Combine(RepoRoot, "deploy", "mosquitto", "edgefleet.acl"), dir.File("acl"));
        var port = FreePort.Next();
        var config = await File.ReadAllTextAsync(Path.Combine(RepoRoot, "deploy", "mosquitto", "edgefleet.conf"));
        // The production file with only its paths, its port (and loopback) and the log destination changed.
        config = Rewrite(config, "listener 8883\n", $"listener {port} 127.0.0.1\n");
        config = Rewrite(config, "/etc/mosquitto/certs/ca.crt", ca);
        config = Rewrite(config, "/etc/mosquitto/certs/server.crt", cert);
        config = Rewrite(config, "/etc/mosquitto/certs/server.key", key);
        config = Rewrite(config, "/etc/mosquitto/edgefleet/passwd", passwd);
        config = Rewrite(config, "/etc/mosquitto/edgefleet/acl", dir.File("acl"));
        config = Rewrite(config, "persistence_location /var/lib/mosquitto/", $"persistence_location {dir.Path}/");
        config = Rewrite(config, "log_dest syslog", $"log_dest file {dir.File("mosquitto.log")}");
        // Started as root, mosquitto would switch to user "mosquitto", who cannot read the test's files.
        config = $"user {Environment.UserName}\n{config}";
        var configPath = dir.File("mosquitto.conf");
        await File.WriteAllTextAsync(configPath, config);

        using var broker = Process.Start(new ProcessStartInfo("/usr/sbin/mosquitto", ["-c", configPath])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        try
        {
            await WaitForListenerAsync(broker, port, dir.File("mosquitto.log"));
            string[] Tls(string user, string password) =>
                ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "--cafile", ca, "-V", "mqttv5", "-q", "1", "-u", user, "-P", password];

            // The service login reaches every device's topics: a retained command for each of the two devices.
            foreach (var device in new[] { "cam-01", "cam-02" })
            {
                var (c, o, e) = await RunAsync("mosquitto_pub", [.. Tls("edgefleet-cp", "pw-cp"), "-r", "-t", $"ef/v1/{device}/desired", "-m", $"for-{device}"]);
                Assert.True(c == 0 && !(o + e).Contains("failed", StringComparison.Ordinal), $"service publish: {o}{e}");
            }

            // A device publishes its own report; another device's topic is refused (MQTT 5 PUBACK "Not authorized").
            var own = await RunAsync("mosquitto_pub", [.. Tls("cam-01", "pw-01"), "-t", "ef/v1/cam-01/status", "-m", "ok"]);
            Assert.True(own.Code == 0 && !(own.Stdout + own.Stderr).Contains("Not authorized", StringComparison.Ordinal), own.Stdout + own.Stderr);
            var foreign = await RunAsync("mosquitto_pub", [.. Tls("cam-01", "pw-01"), "-t", "ef/v1/cam-02/status", "-m", "spoof"]);
            Assert.Contains("Publish 1 failed: Not authorized", foreign.Stdout + foreign.Stderr, StringComparison.Ordinal);

            // Reading: cam-01 subscribes to cam-02's commands first, then its own. Retained messages come in the order of
            // the subscriptions, so the first message it gets is cam-02's unless the ACL holds it back.
            var read = await RunAsync("mosquitto_sub", [.. Tls("cam-01", "pw-01"), "-t", "ef/v1/cam-02/desired", "-t", "ef/v1/cam-01/desired", "-v", "-C", "1", "-W", "20"]);
            Assert.Equal("ef/v1/cam-01/desired for-cam-01", read.Stdout.Trim());
            var owner = await RunAsync("mosquitto_sub", [.. Tls("cam-02", "pw-02"), "-t", "ef/v1/cam-02/desired", "-v", "-C", "1", "-W", "20"]);
            Assert.Equal("ef/v1/cam-02/desired for-cam-02", owner.Stdout.Trim());

            // No anonymous access, no wrong password, no plain text on the TLS port.
            var anonymous = await RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "--cafile", ca, "-V", "mqttv5", "-t", "ef/v1/cam-01/status", "-m", "x"]);
            Assert.Contains("Not authorized", anonymous.Stdout + anonymous.Stderr, StringComparison.Ordinal);
            var wrong = await RunAsync("mosquitto_pub", [.. Tls("cam-01", "wrong"), "-t", "ef/v1/cam-01/status", "-m", "x"]);
            Assert.Contains("Not authorized", wrong.Stdout + wrong.Stderr, StringComparison.Ordinal);
            var plain = await RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-V", "mqttv5", "-u", "cam-01", "-P", "pw-01", "-t", "ef/v1/cam-01/status", "-m", "x"]);
            Assert.NotEqual(0, plain.Code);
            Assert.False(broker.HasExited, "mosquitto exited");
        }
        finally
        {
            if (!broker.HasExited)
            {
                broker.Kill();
                await broker.WaitForExitAsync();
            }
        }
    }

    private static string Rewrite(string text, string from, string to)
    {
        Assert.Contains(from, text, StringComparison.Ordinal);
        return text.Replace(from, to, StringComparison.Ordinal);
    }

    private static async Task WaitForListenerAsync(Process broker, int port, string log)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(broker.HasExited, $"mosquitto exited: {(File.Exists(log) ? await File.ReadAllTextAsync(log) : "")}");
            Assert.True(sw.Elapsed < Timeout, "mosquitto did not listen");
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20);
            }
        }
    }

    internal static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not exit");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
