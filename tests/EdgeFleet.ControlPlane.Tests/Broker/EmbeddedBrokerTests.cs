using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.Mqtt;
using static EdgeFleet.ControlPlane.Tests.Broker.BrokerTestHost;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>The embedded broker with the real mosquitto 2.0: logins, files, reloads, supervision.</summary>
[Trait("Category", "Integration")]
public sealed class EmbeddedBrokerTests
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task StartAsync_GeneratedPasswordLine_RealBrokerAcceptsItsPasswordAndRefusesAWrongOne()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");

        var right = host.Device("cam-01");
        var wrong = host.Device("cam-01", password: "not-the-password");

        await right.WaitConnectedAsync().WaitAsync(Patience);
        await Until(() => wrong.State == MqttConnectionState.Refused, "the broker refuses the wrong password");
        Assert.Contains("username and password", wrong.LastError, StringComparison.Ordinal);
        Assert.Empty(host.Logger.Errors);
    }

    [Fact]
    [SupportedOSPlatform("linux")]
    public async Task StartAsync_Always_WritesOwnerOnlyFiles()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");
        var files = host.Broker.Files;

        await host.Broker.UpdateCredentialsAsync(host.Credentials("cam-01", "cam-02")).WaitAsync(Patience);

        foreach (var path in new[] { files.ConfigPath, files.PasswordPath, files.AclPath })
        {
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
        }

        Assert.Equal(OwnerReadWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(files.Directory));
        Assert.Equal(Path.Combine(host.DataDirectory, "mqtt"), files.Directory);
        Assert.Empty(Directory.GetFiles(files.Directory, "*.tmp"));
        Assert.Contains(File.ReadAllLines(files.PasswordPath), l => l.StartsWith("cam-02:$7$101$", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UpdateCredentialsAsync_NewDevice_ConnectsWithoutRestartingTheBroker()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");
        var pid = host.Broker.ProcessId;

        await host.Broker.UpdateCredentialsAsync(host.Credentials("cam-01", "cam-02")).WaitAsync(Patience);
        var added = host.Device("cam-02");

        await added.WaitConnectedAsync().WaitAsync(Patience);
        Assert.Equal(pid, host.Broker.ProcessId);
        Assert.Equal(0, host.Broker.Restarts);
        Assert.Empty(host.Logger.Errors);
    }

    /// <summary>
    /// Each update starts the moment the previous one saw "Reloading config.", while mosquitto is still reading the
    /// files: a SIGHUP then is forgotten by mosquitto 2.0.11, and the update must signal again rather than wait out its
    /// timeout with the new login not in force.
    /// </summary>
    [Fact]
    public async Task UpdateCredentialsAsync_BackToBack_EveryUpdateIsConfirmedAndItsLoginWorks()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-00");
        var fleet = host.Credentials([.. Enumerable.Range(1, 5000).Select(i => $"fleet-{i}")]).ToList(); // a reload long enough to land in
        var devices = new List<string> { "cam-00" };

        for (var i = 1; i <= 40; i++)
        {
            devices.Add($"cam-{i:00}");
            await host.Broker.UpdateCredentialsAsync([.. fleet, .. host.Credentials([.. devices])]).WaitAsync(Patience);
        }

        var last = host.Device("cam-40");
        await last.WaitConnectedAsync().WaitAsync(Patience);
        Assert.DoesNotContain(host.Logger.Entries, e => e.Message.Contains("did not log a reload", StringComparison.Ordinal));
        Assert.Equal(0, host.Broker.Restarts);
        Assert.Empty(host.Logger.Errors);
    }

    [Fact]
    public async Task UpdateCredentialsAsync_RevokedDevice_FreshConnectionIsRefused()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01", "cam-02");

        await host.Broker.UpdateCredentialsAsync(host.Credentials("cam-01")).WaitAsync(Patience);
        var revoked = host.Device("cam-02");

        await Until(() => revoked.State == MqttConnectionState.Refused, "the broker refuses the revoked device");
        Assert.Equal(0, revoked.Connects);
    }

    /// <summary>
    /// mosquitto 2.0.11 re-checks every connected client against the reloaded password file: a revoked device is
    /// disconnected at once (its socket is closed, no DISCONNECT packet) and refused when it reconnects, while
    /// the devices still listed stay connected.
    /// </summary>
    [Fact]
    public async Task UpdateCredentialsAsync_RevokedDeviceStillConnected_IsDisconnectedAndOthersStay()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01", "cam-02");
        var staying = host.Device("cam-01");
        var revoked = host.Device("cam-02");
        await staying.WaitConnectedAsync().WaitAsync(Patience);
        await revoked.WaitConnectedAsync().WaitAsync(Patience);

        await host.Broker.UpdateCredentialsAsync(host.Credentials("cam-01")).WaitAsync(Patience);

        await Until(() => revoked.State == MqttConnectionState.Refused, "the revoked device is disconnected and then refused");
        Assert.Equal(1, revoked.Connects);
        Assert.Equal(1, revoked.ConnectionLosses); // seen as a lost connection: mosquitto closes the socket without a DISCONNECT
        Assert.Contains(host.Broker.LogTail(50), l => l.EndsWith("Client cam-02 disconnected.", StringComparison.Ordinal));
        var ack = await staying.PublishAsync(new MqttMessage("ef/v1/cam-01/telemetry", new byte[] { 1 }, 1)).WaitAsync(Patience);
        Assert.True(ack.Accepted);
        Assert.True(staying.IsConnected);
        Assert.Equal(1, staying.Connects);
        Assert.Equal(0, staying.ConnectionLosses);
    }

    [Fact]
    public async Task Supervisor_MosquittoKilled_RestartsItAndClientsReconnect()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");
        var device = host.Device("cam-01");
        await device.WaitConnectedAsync().WaitAsync(Patience);
        var pid = host.Broker.ProcessId ?? throw new InvalidOperationException("no broker process");

        using (var mosquitto = Process.GetProcessById(pid))
        {
            Assert.Equal("mosquitto", mosquitto.ProcessName); // setpriv and setsid exec'd into it: the pid is the broker's
            mosquitto.Kill(); // SIGKILL
        }

        await Until(() => host.Broker.Restarts == 1 && host.Broker.IsRunning, "the supervisor restarts mosquitto");
        await Until(() => device.Connects == 2, "the device reconnects");
        Assert.NotEqual(pid, host.Broker.ProcessId);
        var ack = await device.PublishAsync(new MqttMessage("ef/v1/cam-01/telemetry", new byte[] { 1 }, 1)).WaitAsync(Patience);
        Assert.True(ack.Accepted);
        var error = Assert.Single(host.Logger.Errors);
        Assert.Contains("exited unexpectedly with code 137 (killed by signal 9)", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Supervisor_RestartedBroker_StillAcceptsUpdatedCredentials()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");
        await host.Broker.UpdateCredentialsAsync(host.Credentials("cam-02")).WaitAsync(Patience);
        var pid = host.Broker.ProcessId ?? throw new InvalidOperationException("no broker process");

        using (var mosquitto = Process.GetProcessById(pid))
        {
            mosquitto.Kill();
        }

        await Until(() => host.Broker.Restarts == 1 && host.Broker.IsRunning, "the supervisor restarts mosquitto");
        var current = host.Device("cam-02");
        var revoked = host.Device("cam-01");
        await current.WaitConnectedAsync().WaitAsync(Patience);
        await Until(() => revoked.State == MqttConnectionState.Refused, "the revoked device stays refused");
    }

    [Fact]
    public async Task StartAsync_PortInUse_ThrowsNamingThePort()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        await using var host = BrokerTestHost.Create(o => o.Port = port);

        var ex = await Assert.ThrowsAsync<BrokerStartException>(() => host.Broker.StartAsync([]));

        Assert.Contains($"port {port}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("already in use", ex.Message, StringComparison.Ordinal);
        Assert.False(host.Broker.IsRunning);
    }

    [Fact]
    public async Task StartAsync_MosquittoMissing_ThrowsWithAnInstallHint()
    {
        await using var host = BrokerTestHost.Create(o => o.MosquittoPath = "/nonexistent/mosquitto");

        var ex = await Assert.ThrowsAsync<BrokerStartException>(() => host.Broker.StartAsync([]));

        Assert.Contains("/nonexistent/mosquitto", ex.Message, StringComparison.Ordinal);
        Assert.Contains("install", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_BrokerCannotStart_ThrowsWithItsLog()
    {
        // A directory where mosquitto's log file should be: it cannot open its log (and would run on without one).
        await using var host = BrokerTestHost.Create();
        Directory.CreateDirectory(Path.Combine(host.DataDirectory, "mqtt", "mosquitto.log"));

        var ex = await Assert.ThrowsAsync<BrokerStartException>(() => host.Broker.StartAsync([]));

        Assert.Contains($"cannot write its log file {host.Broker.Files.LogPath}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Error: Unable to open log file", ex.Message, StringComparison.Ordinal); // mosquitto's own words
        Assert.Null(host.Broker.ProcessId);
    }

    [Fact]
    public async Task StopAsync_RunningBroker_EndsTheProcessAndFreesThePort()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-01");
        var pid = host.Broker.ProcessId ?? throw new InvalidOperationException("no broker process");
        using var mosquitto = Process.GetProcessById(pid);

        await host.Broker.StopAsync().WaitAsync(Patience);

        Assert.True(mosquitto.HasExited);
        Assert.False(host.Broker.IsRunning);
        Assert.Equal(0, host.Broker.Restarts);
        using var listener = new TcpListener(IPAddress.Loopback, host.Options.Port);
        listener.Start(); // the port is free again
        Assert.Contains(host.Broker.LogTail(5), l => l.Contains("terminating", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StartAsync_AfterAStop_RetainedMessagesSurvive()
    {
        await using var host = await BrokerTestHost.StartAsync("cam-a");
        var cp = host.Service();
        await cp.WaitConnectedAsync().WaitAsync(Patience);
        var retained = await cp.PublishAsync(new MqttMessage("ef/v1/cam-a/desired", "model-v3"u8.ToArray(), 1, Retain: true)).WaitAsync(Patience);
        Assert.True(retained.Accepted);
        await host.Broker.StopAsync().WaitAsync(Patience); // SIGTERM: mosquitto saves its database

        await using var second = new EmbeddedBroker(host.Options, TimeProvider.System, host.Logger);
        await second.StartAsync(host.Credentials("cam-a")).WaitAsync(Patience);
        var device = host.Device("cam-a");
        await device.SubscribeAsync("ef/v1/cam-a/desired").WaitAsync(Patience);

        var received = await NextAsync(device);
        Assert.Equal("model-v3", System.Text.Encoding.UTF8.GetString(received.Payload));
        Assert.True(File.Exists(Path.Combine(second.Files.PersistenceDirectory, "mosquitto.db")));
    }
}
