using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// Over-the-air updates with the real agent, the real control plane (registry and downloads) and a real mosquitto:
/// each assignment, good or bad, ends with the device running a good model and one event saying what happened.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OtaDeviceTests : IClassFixture<OtaFixture>
{
    private readonly OtaFixture _f;

    public OtaDeviceTests(OtaFixture fixture)
    {
        _f = fixture;
    }

    private static string Id(string name) => $"ota-{name}-{Guid.NewGuid():N}"[..30];

    [Fact]
    public async Task GoodModel_IsDownloadedVerifiedActivatedAndCommitted_AndStillRunsAfterARestart()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("good"));
        var desired = await _f.DesiredAsync("ota-cls", "1.1.0");

        await device.PublishDesiredAsync(desired);
        var committed = await device.WaitForEventAsync(UpdateEvents.Committed, desired.Id);

        Assert.Equal(
            [UpdateEvents.Received, UpdateEvents.Downloading, UpdateEvents.Verified, UpdateEvents.Activated, UpdateEvents.Committed],
            device.UpdateEvents(desired.Id!).Select(e => e.Type).Distinct());
        Assert.True(long.Parse(committed.Data!["frames"], System.Globalization.CultureInfo.InvariantCulture) >= 40);
        await device.WaitForRunningAsync("ota-cls", "1.1.0");
        var (code, status, _) = device.Status();
        Assert.Equal(0, code);
        Assert.Contains("model:     ota-cls 1.1.0", status, StringComparison.Ordinal);
        Assert.Contains("committed", status, StringComparison.Ordinal);
        var installed = Path.Combine(device.State.Path, "models", "ota-cls", "1.1.0", "ota-cls.onnx");
        Assert.True(File.Exists(installed));
        Assert.True(File.Exists(installed[..^".onnx".Length] + ".manifest.json.sig"));

        // Restarted, it comes back on the committed model and does not redo the retained assignment.
        device.Agent!.Signal(15);
        Assert.True(device.Agent.WaitForExit(TimeSpan.FromSeconds(30)), device.Agent.Stderr);
        var before = device.UpdateEvents(desired.Id!).Count;
        var statuses = device.Recorder.Payloads("/status").Count;
        device.StartAgent();
        await device.WaitForRunningAsync("ota-cls", "1.1.0", skipStatuses: statuses);
        Assert.Contains("input 64x64 (committed)", device.Agent.Stderr + device.Agent.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, device.UpdateEvents(desired.Id!).Count);
    }

    [Fact]
    public async Task ModelThatOutputsNaN_IsRolledBackOnNonFinite_AndWithItsSelfTestIsRejectedBeforeServing()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("nan"));
        var noSelfTest = await _f.DesiredAsync("ota-cls", "6.6.6-nan");
        var withSelfTest = await _f.DesiredAsync("ota-cls", "6.6.7-nan");

        await device.PublishDesiredAsync(withSelfTest);
        var rejected = await device.WaitForEventAsync(UpdateEvents.Rejected, withSelfTest.Id);
        var statuses = device.Recorder.Payloads("/status").Count;
        await device.PublishDesiredAsync(noSelfTest);
        var rolledBack = await device.WaitForEventAsync(UpdateEvents.RolledBack, noSelfTest.Id);

        Assert.Equal(RejectReasons.SelfTest, rejected.Data!["reason"]);
        Assert.Contains("is NaN", rejected.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(device.UpdateEvents(withSelfTest.Id!), e => e.Type == UpdateEvents.Activated);
        Assert.Equal("nonfinite", rolledBack.Data!["criterion"]);
        Assert.Equal("1", rolledBack.Data["nonFiniteShare"]);
        await device.WaitForRunningAsync("sample-classifier", "1.0.0", skipStatuses: statuses); // the status after the swap back
        Assert.DoesNotContain(device.UpdateEvents(noSelfTest.Id!), e => e.Type == UpdateEvents.Committed);
        Assert.Contains("rolled back", device.Status().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ModelTenTimesSlower_IsRolledBackOnLatency()
    {
        // Measured here with `edgefleet-agent bench --threads 1`: the live model 0.46 ms of CPU per frame, the slow
        // variant 3.25 ms (its extra compute is ten times the base's convolutions; fixed costs make it ~7×).
        await using var device = await OtaDevice.StartAsync(_f, Id("slow"), model: OtaFixture.Base8);
        // Its own weights give it another confidence too: that criterion is switched off here so latency alone decides,
        // and the probation is long enough that load on the machine cannot let it pass on a lucky window.
        var desired = await _f.DesiredAsync("ota-cls", "7.0.0-slow", new ProbationOverrides { Frames = 300, Seconds = 10, MaxLatencyRatio = 2, MaxConfidenceDrop = 1 });

        await device.PublishDesiredAsync(desired);
        var rolledBack = await device.WaitForEventAsync(UpdateEvents.RolledBack, desired.Id);

        Assert.Equal("latency", rolledBack.Data!["criterion"]);
        Assert.True(double.Parse(rolledBack.Data["latencyRatio"], System.Globalization.CultureInfo.InvariantCulture) > 2, rolledBack.Message);
        Assert.Equal("2", rolledBack.Data["maxLatencyRatio"]);
    }

    [Fact]
    public async Task SignatureByAnotherKey_Unsigned_AndNotJson_AreRejectedAndTheModelKept()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("sig"));
        var good = await _f.DesiredAsync("ota-cls", "1.1.0");
        using var other = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var manifest = await _f.Admin.GetByteArrayAsync(new Uri(good.ManifestUrl));
        var forged = good with { Id = "forged", Signature = Convert.ToBase64String(ManifestSigning.SignDetached(manifest, other)), SignatureUrl = null };
        var unsigned = good with { Id = "unsigned", Signature = null, SignatureUrl = null };

        await device.PublishDesiredAsync(forged);
        var e1 = await device.WaitForEventAsync(UpdateEvents.Rejected, "forged");
        await device.PublishDesiredAsync(unsigned);
        var e2 = await device.WaitForEventAsync(UpdateEvents.Rejected, "unsigned");
        await device.PublishDesiredAsync(Encoding.UTF8.GetBytes("{\"model\": \"ota-cls\", \"version\": "));
        var e3 = await device.Recorder.WaitForAsync("/events", p => p.Contains("not valid", StringComparison.Ordinal), TimeSpan.FromSeconds(60));

        Assert.Equal(RejectReasons.Signature, e1.Data!["reason"]);
        Assert.Equal(RejectReasons.Signature, e2.Data!["reason"]);
        Assert.Contains("not signed", e2.Message, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"download\"", e3, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(device.State.Path, "models", "ota-cls", "1.1.0")));
        Assert.False(device.Agent!.HasExited);
        await device.WaitForRunningAsync("sample-classifier", "1.0.0");
    }

    [Fact]
    public async Task VersionThatDoesNotExist_IsRejectedWithDownload()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("404"));
        var good = await _f.DesiredAsync("ota-cls", "1.1.0");
        var missing = good with
        {
            Id = "missing",
            Version = "9.9.9",
            ManifestUrl = good.ManifestUrl.Replace("1.1.0", "9.9.9", StringComparison.Ordinal),
            ArtifactUrl = good.ArtifactUrl.Replace("1.1.0", "9.9.9", StringComparison.Ordinal),
        };

        await device.PublishDesiredAsync(missing);
        var rejected = await device.WaitForEventAsync(UpdateEvents.Rejected, "missing");

        Assert.Equal(RejectReasons.Download, rejected.Data!["reason"]);
        Assert.Contains("404", rejected.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NotEnoughDisk_IsRejectedBeforeDownloading()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("disk"), new Dictionary<string, string> { ["DiskHeadroomBytes"] = (1L << 40).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var desired = await _f.DesiredAsync("ota-cls", "1.1.0");

        await device.PublishDesiredAsync(desired);
        var rejected = await device.WaitForEventAsync(UpdateEvents.Rejected, desired.Id);

        Assert.Equal(RejectReasons.Disk, rejected.Data!["reason"]);
        Assert.Contains("DiskHeadroomBytes", rejected.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(device.UpdateEvents(desired.Id!), e => e.Type == UpdateEvents.Downloading && e.Data!["bytes"] != "0");
    }

    [Fact]
    public async Task DownloadCutAtHalf_ResumesAndTheControlPlaneServesOnlyTheRest()
    {
        await using var proxy = new CuttingProxy(_f.Cp.Url.Port);
        await using var device = await OtaDevice.StartAsync(_f, Id("cut"), server: proxy.Url);
        var desired = await _f.DesiredAsync("ota-cls", "3.0.0", server: proxy.Url);
        var servedBefore = await BytesServedAsync("3.0.0");
        proxy.CutNextAfter(desired.Size / 2, reset: false); // the agent gets exactly half (minus the response headers)

        await device.PublishDesiredAsync(desired);
        await device.WaitForEventAsync(UpdateEvents.Verified, desired.Id);

        Assert.True(proxy.Faulted.IsCompleted);
        // The control plane's log of each artifact request: the resumed one asked for the rest only and was sent exactly that.
        // (Its byte counter also counts what the first request had written into socket buffers before the cut.)
        var requests = System.Text.RegularExpressions.Regex.Matches(_f.Cp.Output,
                @"Artifact ota-cls 3\.0\.0 for device:" + device.Id + @": Range (?<range>\S+), status (?<status>\d+), (?<bytes>\d+) bytes sent")
            .Select(m => (Range: m.Groups["range"].Value, Status: m.Groups["status"].Value, Bytes: long.Parse(m.Groups["bytes"].Value, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        Assert.True(requests.Count == 2, string.Join(" | ", requests) + " " + _f.Cp.Output[^Math.Min(2000, _f.Cp.Output.Length)..]);
        Assert.Equal(("(none)", "200"), (requests[0].Range, requests[0].Status));
        var resumedFrom = long.Parse(requests[1].Range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("206", requests[1].Status);
        Assert.InRange(resumedFrom, (desired.Size / 2) - (64 * 1024), desired.Size / 2);
        Assert.Equal(desired.Size - resumedFrom, requests[1].Bytes);
        Assert.True(await BytesServedAsync("3.0.0") - servedBefore >= desired.Size);
        Assert.Contains("\"bytes\":\"", string.Join("", device.Recorder.Payloads("/events")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shadow_ReportsAgreementBesideTheLiveModel_NeverActivates_AndStopsWhenCleared()
    {
        await using var device = await OtaDevice.StartAsync(_f, Id("shadow"), new Dictionary<string, string> { ["Shadow"] = "{ \"ReportSeconds\": 1, \"SampleShare\": 0.5 }" });
        var same = (await _f.DesiredAsync("ota-cls", "1.1.0")) with { Mode = DesiredModes.Shadow }; // the live model's weights under another version
        var statuses = device.Recorder.Payloads("/status").Count;

        await device.PublishDesiredAsync(same);
        var payload = await device.Recorder.WaitForAsync("/events", p => p.Contains(UpdateEvents.ShadowReport, StringComparison.Ordinal)
            && !p.Contains("\"framesCompared\":\"0\"", StringComparison.Ordinal), TimeSpan.FromSeconds(90), () => device.Agent!.Stderr);
        var report = MessageParser.TryParse<EventMessage>(Encoding.UTF8.GetBytes(payload), out var e, out _) ? e! : throw new InvalidOperationException(payload);

        Assert.Equal("1", report.Data!["top1Agreement"]);
        Assert.Equal("sample-classifier", report.Data["liveModel"]);
        Assert.Equal("shadow", report.Data["mode"]);
        Assert.DoesNotContain(device.UpdateEvents(same.Id!), u => u.Type is UpdateEvents.Activated or UpdateEvents.Committed);
        Assert.DoesNotContain(device.Recorder.Payloads("/status").Skip(statuses), p => p.Contains("\"version\":\"1.1.0\"", StringComparison.Ordinal));
        Assert.Contains("shadow", device.Status().Stdout, StringComparison.Ordinal);

        await device.PublishDesiredAsync([]); // cleared: the shadow stops with a final report
        await device.Recorder.WaitForAsync("/events", p => p.Contains(UpdateEvents.ShadowReport, StringComparison.Ordinal)
            && p.Contains("\"final\":\"true\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => device.Agent!.Stderr);
        Assert.False(device.Agent!.HasExited);
    }

    /// <summary>
    /// Models the registry refuses at push (not ONNX; an input that does not match the manifest) never reach a device
    /// from it; these are signed with the registry's own key (read from its data directory, as a compromised or buggy
    /// registry could) and served from elsewhere, to show the device's own checks.
    /// </summary>
    [Theory]
    [InlineData("not-onnx", RejectReasons.Load)]
    [InlineData("bad-shape", RejectReasons.Incompatible)]
    [InlineData("wrong-hash", RejectReasons.Sha256)]
    [InlineData("truncated", RejectReasons.Size)]
    [InlineData("altered", RejectReasons.Signature)]
    public async Task SignedButBrokenModel_IsRejectedByTheDevicesOwnChecks(string kind, string reason)
    {
        await using var device = await OtaDevice.StartAsync(_f, Id(kind));
        await using var server = new StaticHttpServer();
        byte[] artifact;
        ModelManifest manifest;
        if (kind is "not-onnx" or "wrong-hash" or "truncated" or "altered")
        {
            artifact = System.Security.Cryptography.RandomNumberGenerator.GetBytes(50_000);
            manifest = ManifestFile.Load(ManifestFile.PathFor(TestModels.Get(OtaFixture.Good)));
        }
        else
        {
            var path = TestModels.Get(OtaFixture.Good with { Fault = EdgeFleet.ModelFormat.SampleFault.BadShape });
            artifact = await File.ReadAllBytesAsync(path);
            manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        }

        var version = $"8.0.0-{kind}";
        var (sha, size) = (Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(artifact)), (long)artifact.Length);
        if (kind is "wrong-hash" or "truncated" or "altered")
        {
            // The manifest is right about the good model; the file served is not that file.
            artifact = await File.ReadAllBytesAsync(TestModels.Get(OtaFixture.Good));
            (sha, size) = (Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(artifact)), artifact.Length);
            manifest = ManifestFile.Load(ManifestFile.PathFor(TestModels.Get(OtaFixture.Good)));
            artifact = kind switch
            {
                "wrong-hash" => [.. artifact[..^1], (byte)(artifact[^1] ^ 0xff)],
                "truncated" => artifact[..(artifact.Length / 2)],
                _ => artifact,
            };
        }
        var manifestBytes = ManifestFile.Serialize(manifest with { Name = "ota-cls", Version = version, Artifact = manifest.Artifact with { Sha256 = sha, Size = size } });
        using var key = System.Security.Cryptography.ECDsa.Create();
        key.ImportFromPem(await File.ReadAllTextAsync(Path.Combine(_f.Cp.DataDirectory, "keys", "registry-signing.pem")));
        var signature = Convert.ToBase64String(ManifestSigning.SignDetached(manifestBytes, key));
        if (kind == "altered")
        {
            // Signed, then one byte changed on the way (a label's letter): the manifest is no longer what was signed.
            var at = Array.IndexOf(manifestBytes, (byte)'"', manifestBytes.Length / 2) + 1;
            manifestBytes = [.. manifestBytes];
            manifestBytes[at] = manifestBytes[at] == (byte)'x' ? (byte)'y' : (byte)'x';
        }

        var desired = new DesiredMessage
        {
            Id = kind,
            Model = "ota-cls",
            Version = version,
            ManifestUrl = server.Add("m/manifest", manifestBytes),
            ArtifactUrl = server.Add("m/artifact", artifact),
            Signature = signature,
            Sha256 = sha,
            Size = size,
        };

        await device.PublishDesiredAsync(desired);
        var rejected = await device.WaitForEventAsync(UpdateEvents.Rejected, kind);

        Assert.Equal(reason, rejected.Data!["reason"]);
        // The signature held; the file did not (hash, size) or the model did not (load, input).
        Assert.Equal(kind is "wrong-hash" or "truncated" or "altered" ? 0 : 1, device.UpdateEvents(kind).Count(e => e.Type == UpdateEvents.Verified));
        Assert.False(device.Agent!.HasExited);
        Assert.DoesNotContain(device.UpdateEvents(kind), e => e.Type == UpdateEvents.Activated);
    }

    [Fact]
    public async Task ControlPlaneGoneMidDownload_TheDownloadWaitsResumesAndCompletes()
    {
        await using var proxy = new CuttingProxy(_f.Cp.Url.Port);
        await using var device = await OtaDevice.StartAsync(_f, Id("cpgone"),
            new Dictionary<string, string> { ["DownloadAttempts"] = "60", ["MaxRetryDelaySeconds"] = "1" }, server: proxy.Url);
        var desired = await _f.DesiredAsync("ota-cls", "3.0.0", server: proxy.Url);
        proxy.HoldAfter(desired.Size / 3); // the download is a third done, whatever the machine's speed, when the control plane dies

        await device.PublishDesiredAsync(desired);
        await proxy.Faulted.WaitAsync(TimeSpan.FromSeconds(90));
        await _f.Cp.KillAsync();
        proxy.Release(cut: true); // its connections die with it; every attempt until the restart is refused
        await _f.Cp.RestartAsync();
        var verified = await device.WaitForEventAsync(UpdateEvents.Verified, desired.Id);

        Assert.Equal(desired.Sha256, verified.Data!["sha256"]);
        Assert.Contains("Download attempt", device.Agent!.Stderr + device.Agent.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(device.UpdateEvents(desired.Id!), e => e.Type == UpdateEvents.Rejected);
    }

    [Fact]
    public async Task BrokerGoneMidDownload_TheUpdateGoesOnAndItsEventsArriveWhenTheBrokerIsBack()
    {
        await using var proxy = new CuttingProxy(_f.Cp.Url.Port) { BytesPerSecond = 2_000_000 };
        // A broker of its own that keeps sessions across a restart, so the recorder misses nothing queued for it.
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoBrokerOptions { Persistence = true });
        await using var device = await OtaDevice.StartAsync(_f, Id("brokergone"), server: proxy.Url, broker: broker);
        var desired = await _f.DesiredAsync("ota-cls", "3.0.0", server: proxy.Url);

        await device.PublishDesiredAsync(desired);
        await device.WaitForEventAsync(UpdateEvents.Downloading, desired.Id);
        await broker.StopAsync();
        var store = new EdgeFleet.Agent.Ota.OtaStateStore(device.State.Path, TimeProvider.System);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (store.Load(out _).Job is not { Phase: EdgeFleet.Agent.Ota.OtaPhase.Probation or EdgeFleet.Agent.Ota.OtaPhase.RolledBack or EdgeFleet.Agent.Ota.OtaPhase.Committed })
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), device.Agent!.Stderr);
            await Task.Delay(100);
        }

        await broker.StartAsync();
        var verified = await device.WaitForEventAsync(UpdateEvents.Verified, desired.Id); // kept in the outbox meanwhile

        Assert.Equal(desired.Sha256, verified.Data!["sha256"]);
        // At-least-once delivery may repeat a message; the agent produced it once (one seq).
        Assert.Single(device.UpdateEvents(desired.Id!).Where(e => e.Type == UpdateEvents.Verified).Select(e => e.Seq).Distinct());
    }

    private async Task<double> BytesServedAsync(string version)
    {
        var metrics = await _f.Admin.GetStringAsync(new Uri("metrics", UriKind.Relative));
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("edgefleet_artifact_bytes_served_total{", StringComparison.Ordinal)
            && l.Contains("model=\"ota-cls\"", StringComparison.Ordinal) && l.Contains($"version=\"{version}\"", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task KillNineAtTwentyMoments_EveryRestartRunsAVerifiedModelWithAConsistentStateAndNoOrphanCapture()
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        await using var device = await OtaDevice.StartAsync(_f, Id("kill"));
        string[] versions = ["3.0.0", "2.0.0", "1.1.0"];
        string[] moments = [UpdateEvents.Received, UpdateEvents.Downloading, UpdateEvents.Verified, UpdateEvents.Activated, "probation"];
        var report = new List<string>();
        for (var round = 0; round < 20; round++)
        {
            var version = versions[round % versions.Length];
            var installed = Directory.Exists(Path.Combine(device.State.Path, "models", "ota-cls", version));
            var moment = moments[round % moments.Length];
            if (installed && moment == UpdateEvents.Downloading)
            {
                moment = UpdateEvents.Verified; // a version already on disk is verified again, not downloaded
            }

            var desired = await _f.DesiredAsync("ota-cls", version, new ProbationOverrides { Frames = 40, Seconds = 2, MaxLatencyRatio = 20 });
            var children = device.Agent!.Children();
            Assert.NotEmpty(children);
            await device.PublishDesiredAsync(desired);
            await device.WaitForEventAsync(moment == "probation" ? UpdateEvents.Activated : moment, desired.Id);
            await Task.Delay(random.Next(0, moment == "probation" ? 1500 : 60)); // a random point after that moment
            device.Agent.Signal(9);
            Assert.True(device.Agent.WaitForExit(TimeSpan.FromSeconds(30)));
            foreach (var child in children)
            {
                await WaitGoneAsync(child, $"round {round} (seed {seed}): capture process {child} outlived the killed agent");
            }

            var store = new EdgeFleet.Agent.Ota.OtaStateStore(device.State.Path, TimeProvider.System);
            var state = store.Load(out var problem);
            Assert.True(problem is null, $"round {round} (seed {seed}): {problem}");
            Assert.False(File.Exists(store.Path + ".corrupt"));

            // It must come back on the committed model (never on one that was on probation), or the configured one.
            var statuses = device.Recorder.Payloads("/status").Count;
            device.StartAgent();
            var (name, ver) = state.Current is { } c ? (c.Name, c.Version) : ("sample-classifier", "1.0.0");
            // What it started on is in its log; its first status may already name the next model when an interrupted
            // assignment resumed (self-test, swap) before the connection to the broker was up on a loaded machine.
            await device.WaitForStartedOnAsync(name, ver, skipStatuses: statuses);
            await device.WaitForRunningAsync(name, ver, skipStatuses: statuses, orAnyModel: true); // connected and capturing before the next round
            if (state.Job is { Phase: EdgeFleet.Agent.Ota.OtaPhase.Probation } interrupted)
            {
                var undone = await device.WaitForEventAsync(UpdateEvents.RolledBack, interrupted.Desired.Id);
                Assert.Equal("restart", undone.Data!["criterion"]);
            }

            Assert.Null(store.Load(out problem).LastFailure is { Reason: "load" } f ? f.Message : null);
            Assert.Null(problem);
            report.Add($"{round}: killed after {moment} of {version} in phase {state.Job?.Phase}, came back on {name} {ver}");
        }

        Assert.False(device.Agent!.HasExited, string.Join("; ", report));
    }

    private static async Task WaitGoneAsync(int pid, string message)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (AgentProcess.IsAlive(pid) && IsNotZombie(pid))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), message);
            await Task.Delay(50);
        }
    }

    private static bool IsNotZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
