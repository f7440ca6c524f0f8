using System.Diagnostics;
using System.Globalization;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Testing;

namespace EdgeFleet.Benchmarks;

/// <summary>What a kill -9 run found in the control plane's database.</summary>
internal sealed record IngestKillResult(
    int Devices, int PerDevice, long StoredAtKill, long Stored, long DistinctStored, long Lost, long Duplicated,
    long ReceivedCounted, long DevicesComplete, long Resent, TimeSpan Restart, TimeSpan Total)
{
    public long Expected => (long)Devices * PerDevice;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Devices} devices × {PerDevice} = {Expected}: {StoredAtKill} stored when killed, restart took {Restart.TotalSeconds:F1} s; " +
        $"afterwards {Stored} stored ({DistinctStored} distinct (device, seq)), lost {Lost}, duplicated {Duplicated}, " +
        $"devices' received counters {ReceivedCounted}, devices complete {DevicesComplete}/{Devices}; the devices sent {Resent} messages again; {Total.TotalSeconds:F1} s in all");
}

/// <summary>
/// Kill -9 of the real <c>edgefleet-controlplane</c> (embedded mosquitto, SQLite) while simulated devices publish into
/// it, then a restart on the same data directory and ports; every (device, seq) must then be stored exactly once.
/// </summary>
internal static class IngestKillRun
{
    public static async Task<IngestKillResult> RunAsync(int devices, int perDevice, double killAt, Action<string> log, TimeSpan timeout)
    {
        var total = (long)devices * perDevice;
        var clock = Stopwatch.StartNew();
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });
        var token = await cp.CreateEnrollmentTokenAsync(new EnrollmentTokenRequest { MaxUses = devices });
        var credentials = new List<(string, string?, string?)>();
        for (var i = 0; i < devices; i++)
        {
            var enrolled = await cp.EnrollAsync(token.Token!, $"sim-{i:D4}");
            credentials.Add((enrolled.DeviceId, enrolled.Mqtt.Username, enrolled.Mqtt.Password));
        }

        using var state = new TempDirectory("edgefleet-sim");
        await using var fleet = SimulatedFleet.Create("127.0.0.1", cp.MqttPort!.Value, credentials, perDevice, state.Path);
        log($"{devices} devices enrolled, {total} messages in their outboxes");
        fleet.Start();
        var db = Path.Combine(cp.DataDirectory, "edgefleet.db");
        // Mid-run: the broker has acknowledged that share to the devices, and ingestion has begun storing.
        while (fleet.Acknowledged < total * killAt || Scalar(db, "SELECT COUNT(*) FROM telemetry;") == 0)
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"only {fleet.Acknowledged} of {total} messages acknowledged by the broker after {timeout}");
            }

            await Task.Delay(20);
        }

        await cp.KillAsync();
        var storedAtKill = Scalar(db, "SELECT COUNT(*) FROM telemetry;");
        log(string.Create(CultureInfo.InvariantCulture, $"killed the control plane (-9) with {fleet.Acknowledged} acknowledged by the broker and {storedAtKill} stored"));

        var restart = Stopwatch.StartNew();
        await cp.RestartAsync();
        restart.Stop();
        log(string.Create(CultureInfo.InvariantCulture, $"restarted on the same data directory and ports in {restart.Elapsed.TotalSeconds:F1} s"));

        await fleet.WaitDrainedAsync(timeout - clock.Elapsed);
        while (Scalar(db, "SELECT COUNT(*) FROM telemetry;") < total && clock.Elapsed < timeout)
        {
            await Task.Delay(50);
        }

        var stored = Scalar(db, "SELECT COUNT(*) FROM telemetry;");
        var distinct = Scalar(db, "SELECT COUNT(*) FROM (SELECT DISTINCT device_id, seq FROM telemetry);");
        var inRange = Scalar(db, string.Create(CultureInfo.InvariantCulture,
            $"SELECT COUNT(*) FROM (SELECT DISTINCT device_id, seq FROM telemetry WHERE device_id LIKE 'sim-%' AND seq BETWEEN 1 AND {perDevice});"));
        var received = Scalar(db, "SELECT COALESCE(SUM(received), 0) FROM devices WHERE id LIKE 'sim-%';");
        var complete = Scalar(db, string.Create(CultureInfo.InvariantCulture,
            $"SELECT COUNT(*) FROM (SELECT device_id FROM telemetry GROUP BY device_id HAVING COUNT(*) = {perDevice} AND MIN(seq) = 1 AND MAX(seq) = {perDevice});"));
        if (stored != total)
        {
            log("devices: " + fleet.Describe());
            log("control plane warnings and errors: " + string.Join("\n", cp.Output.Split('\n').Where(l => l.StartsWith("warn", StringComparison.Ordinal) || l.StartsWith("fail", StringComparison.Ordinal)).TakeLast(30)));
            log("mosquitto.log: " + string.Join("\n", File.ReadLines(Path.Combine(cp.DataDirectory, "mqtt", "mosquitto.log")).Where(l => !l.Contains("sim-", StringComparison.Ordinal)).TakeLast(40)));
        }

        cp.AssertNoErrorsSince(0);
        return new IngestKillResult(devices, perDevice, storedAtKill, stored, distinct, total - inRange, stored - distinct, received, complete,
            fleet.Resent, restart.Elapsed, clock.Elapsed);
    }

    /// <summary>One number from the control plane's SQLite database, read with the sqlite3 command (it may be being written).</summary>
    private static long Scalar(string database, string sql)
    {
        var psi = new ProcessStartInfo("sqlite3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-readonly");
        psi.ArgumentList.Add("-cmd");
        psi.ArgumentList.Add(".timeout 5000");
        psi.ArgumentList.Add(database);
        psi.ArgumentList.Add(sql);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("sqlite3 did not start");
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !long.TryParse(output.Trim(), CultureInfo.InvariantCulture, out var value))
        {
            throw new InvalidOperationException($"sqlite3 {sql} failed ({p.ExitCode}): {error} {output}");
        }

        return value;
    }
}
