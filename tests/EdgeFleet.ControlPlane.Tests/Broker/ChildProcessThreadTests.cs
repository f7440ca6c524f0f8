using System.Diagnostics;
using EdgeFleet.ControlPlane.Broker;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>What keeps mosquitto from outliving the control plane: the parent-death signal of its spawning thread.</summary>
[Trait("Category", "Integration")]
public sealed class ChildProcessThreadTests
{
    [Fact]
    public async Task Dispose_ChildStartedUnderPdeathsig_ChildIsKilled()
    {
        var spawner = new ChildProcessThread("test-spawner");
        using var child = await spawner.RunAsync(() => Process.Start("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", "sleep", "300"]));
        // setpriv sets the signal, then execs: once the process is "sleep", the signal is armed.
        await BrokerTestHost.Until(() => File.ReadAllText($"/proc/{child.Id}/comm").Trim() == "sleep", "setpriv execs sleep");

        spawner.Dispose(); // the thread ends, as it would with the control plane

        await child.WaitForExitAsync().WaitAsync(BrokerTestHost.Patience);
        Assert.Equal(137, child.ExitCode); // 128 + SIGKILL
    }

    [Fact]
    public async Task RunAsync_StartThrows_FaultsTheTask()
    {
        using var spawner = new ChildProcessThread("test-spawner");

        await Assert.ThrowsAsync<System.ComponentModel.Win32Exception>(() =>
            spawner.RunAsync(() => Process.Start("/nonexistent/program")));
    }
}
