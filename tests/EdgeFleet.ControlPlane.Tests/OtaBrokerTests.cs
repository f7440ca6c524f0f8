using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Mqtt;
using EdgeFleet.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>
/// Direct assignment end to end on the real embedded mosquitto: the device, with its own broker login, receives the
/// retained desired message, and its signature verifies over the manifest fetched with the device's HTTP token.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OtaBrokerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static MqttConnection Subscriber(int port, EnrollResponse device, string clientSuffix) =>
        new(new MqttConnectionOptions
        {
            Host = "127.0.0.1",
            Port = port,
            ClientId = device.DeviceId + clientSuffix,
            Username = device.Mqtt.Username,
            Password = device.Mqtt.Password,
            Subscriptions = [new MqttSubscription(Topics.For(device.DeviceId, Topics.Desired))],
        }, NullLogger.Instance);

    [Fact]
    public async Task Assign_PublishesRetainedDesired_ThatVerifiesOverTheManifestFetchedWithTheDeviceToken_AndUnassignOrDeleteClearsIt()
    {
        var mqttPort = FreePort.Next();
        await using var cp = new ControlPlaneFactory(null, new Dictionary<string, string?>
        {
            ["ControlPlane:Mqtt"] = "embedded",
            ["ControlPlane:MqttPort"] = mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ControlPlane:MqttBind"] = "127.0.0.1",
            ["ControlPlane:PublicUrl"] = "https://fleet.example.com:8443/",
        });
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "cls", "1.1.0");
        var enrolled = await OtaApiTests.EnrollAsync(cp, "cam-1");
        using var live = cp.Services.GetRequiredService<EdgeFleet.ControlPlane.Live.LiveEvents>().Subscribe()!;

        using var assign = await admin.PostAsJsonAsync("/api/v1/devices/cam-1/assignment",
            new AssignmentRequest { Model = "cls", Version = "1.1.0", Mode = "shadow", Probation = new ProbationOverrides { Frames = 300, Seconds = 20 } },
            ApiJsonContext.Default.AssignmentRequest);
        Assert.True(assign.StatusCode == HttpStatusCode.Accepted, await assign.Content.ReadAsStringAsync());
        var answered = (await assign.Content.ReadFromJsonAsync(ApiJsonContext.Default.DesiredMessage))!;
        Assert.Equal(("cls", "1.1.0", "shadow", 300L, 20.0), (answered.Model, answered.Version, answered.Mode, answered.Probation!.Frames, answered.Probation.Seconds));
        Assert.Equal("https://fleet.example.com:8443" + pushed.ManifestUrl, answered.ManifestUrl);
        Assert.Equal("https://fleet.example.com:8443" + pushed.ArtifactUrl, answered.ArtifactUrl);
        Assert.Equal("https://fleet.example.com:8443" + pushed.SignatureUrl, answered.SignatureUrl);
        // The dashboard hears of it (its device page shows the desired version).
        using (var heard = new CancellationTokenSource(Patience))
        {
            while (await live.Reader.ReadAsync(heard.Token) is not { Kind: EdgeFleet.ControlPlane.Live.LiveEvents.Devices } change || !change.Ids.Contains("cam-1"))
            {
            }
        }

        // Subscribing after the publish: the broker hands the device the retained message.
        await using var device = Subscriber(mqttPort, enrolled, "-probe");
        device.Start();
        using var timeout = new CancellationTokenSource(Patience);
        var received = await device.Messages.ReadAsync(timeout.Token);
        Assert.True(received.Retain, "the desired message is not retained");
        Assert.Equal(Topics.For("cam-1", Topics.Desired), received.Topic);
        Assert.True(MessageParser.TryParse<DesiredMessage>(received.Payload, out var desired, out var reason), reason);
        Assert.Equal(answered with { Probation = desired.Probation }, desired);
        Assert.Equal(answered.Probation, desired.Probation);
        Assert.Equal(pushed.Sha256, desired.Sha256);
        Assert.False(string.IsNullOrEmpty(desired.Id));

        // What the agent does: fetch the manifest with its own token, verify with the key pinned at enrollment.
        using var http = cp.Client(enrolled.HttpToken);
        var manifestBytes = await http.GetByteArrayAsync(new Uri(new Uri(desired.ManifestUrl).PathAndQuery, UriKind.Relative));
        using var pinned = ManifestSigning.ImportPublicKey(enrolled.RegistryPublicKey);
        Assert.Equal(ManifestSigning.KeyId(pinned), desired.KeyId);
        Assert.True(ManifestSigning.VerifyDetached(manifestBytes, Convert.FromBase64String(desired.Signature!), pinned, out reason), reason);
        var manifest = ManifestFile.Parse(manifestBytes, "desired manifest");
        Assert.Equal((desired.Sha256, desired.Size), (manifest.Artifact.Sha256, manifest.Artifact.Size));
        var artifact = await http.GetByteArrayAsync(new Uri(new Uri(desired.ArtifactUrl).PathAndQuery, UriKind.Relative));
        Assert.Equal(desired.Sha256, Convert.ToHexStringLower(SHA256.HashData(artifact)));
        Assert.Equal(Convert.FromBase64String(desired.Signature!),
            await http.GetByteArrayAsync(new Uri(new Uri(desired.SignatureUrl!).PathAndQuery, UriKind.Relative)));

        var view = (await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!;
        Assert.Equal((desired.Id, "cls", "1.1.0", "shadow", "admin"), (view.Desired!.Id, view.Desired.Model, view.Desired.Version, view.Desired.Mode, view.Desired.IssuedBy));
        Assert.Equal(desired, await admin.GetFromJsonAsync("/api/v1/devices/cam-1/assignment", ApiJsonContext.Default.DesiredMessage) is { } current
            ? current with { Probation = desired.Probation } : null);

        // Unassign: the retained message is cleared (an empty payload reaches the subscriber), the row goes.
        using (var delete = await admin.DeleteAsync(new Uri("/api/v1/devices/cam-1/assignment", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        var cleared = await device.Messages.ReadAsync(timeout.Token);
        Assert.Equal((Topics.For("cam-1", Topics.Desired), 0), (cleared.Topic, cleared.Payload.Length));
        Assert.Null((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Desired);
        var audit = await admin.GetFromJsonAsync("/api/v1/audit?target=device/cam-1", ApiJsonContext.Default.PageAuditEntry);
        Assert.Equal(["device.enroll", "device.assign", "device.unassign"], audit!.Items.Select(a => a.Action));

        // A new subscriber finds nothing retained: a marker published after its subscription is the first thing it gets.
        await using var late = Subscriber(mqttPort, enrolled, "-late");
        late.Start();
        await late.WaitConnectedAsync(timeout.Token);
        await using var service = cp.Services.GetRequiredService<Fleet.IMqttConnectionFactory>().Create("ota-marker");
        service.Start();
        await service.WaitConnectedAsync(timeout.Token);
        await service.PublishAsync(new MqttMessage(Topics.For("cam-1", Topics.Desired), Encoding.UTF8.GetBytes("marker"), 1), timeout.Token);
        var first = await late.Messages.ReadAsync(timeout.Token);
        Assert.Equal("marker", Encoding.UTF8.GetString(first.Payload));

        // Assigned again, then revoked and deleted: an id enrolled again later does not inherit the old assignment.
        using (var again = await admin.PostAsJsonAsync("/api/v1/devices/cam-1/assignment", new AssignmentRequest { Model = "cls", Version = "1.1.0" },
                   ApiJsonContext.Default.AssignmentRequest))
        {
            Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        }

        using (var revoke = await admin.PostAsync(new Uri("/api/v1/devices/cam-1/revoke", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        using (var delete = await admin.DeleteAsync(new Uri("/api/v1/devices/cam-1", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        var reenrolled = await OtaApiTests.EnrollAsync(cp, "cam-1");
        await using var fresh = Subscriber(mqttPort, reenrolled, "-fresh");
        fresh.Start();
        await fresh.WaitConnectedAsync(timeout.Token);
        await service.PublishAsync(new MqttMessage(Topics.For("cam-1", Topics.Desired), Encoding.UTF8.GetBytes("marker-2"), 1), timeout.Token);
        Assert.Equal("marker-2", Encoding.UTF8.GetString((await fresh.Messages.ReadAsync(timeout.Token)).Payload));
        Assert.Null((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Desired);
        Assert.Empty(cp.LoggedErrors);
    }
}

/// <summary>The README's "Verifying a model by hand" block, run as written with the real curl, openssl, sha256sum and jq.</summary>
[Trait("Category", "Integration")]
public sealed class VerifyModelByHandTests
{
    private static string ReadmeBlock()
    {
        var readme = File.ReadAllText(Repository.Path("README.md"));
        var section = readme[readme.IndexOf("## Verifying a model by hand", StringComparison.Ordinal)..];
        var start = section.IndexOf("```bash\n", StringComparison.Ordinal) + "```bash\n".Length;
        return section[start..section.IndexOf("```", start, StringComparison.Ordinal)];
    }

    private static async Task<(int Code, string Out, string Err)> BashAsync(string script, string directory, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("bash", ["-euo", "pipefail", "-c", script])
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task ReadmeCommands_VerifyTheServedManifestAndArtifact_AndOneAlteredByteFails()
    {
        await using var cp = new ControlPlaneFactory(kestrel: true);
        using var admin = cp.Client();
        var pushed = await ModelsApiTests.PushAsync(admin, "people-counter", "1.2.0");
        var deviceToken = (await OtaApiTests.EnrollAsync(cp, "cam-1")).HttpToken!;
        using var work = new TempDirectory();
        var block = ReadmeBlock();
        var environment = new Dictionary<string, string>
        {
            ["SERVER"] = admin.BaseAddress!.ToString().TrimEnd('/'),
            ["TOKEN"] = deviceToken,
            ["MODEL"] = "people-counter",
            ["VERSION"] = "1.2.0",
        };

        var (code, stdout, stderr) = await BashAsync(block, work.Path, environment);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["Verified OK", pushed.Sha256, pushed.Sha256], lines);

        // One byte of the manifest changed: openssl refuses it.
        var manifestPath = Path.Combine(work.Path, "manifest.json");
        var bytes = await File.ReadAllBytesAsync(manifestPath);
        var at = Array.IndexOf(bytes, (byte)'1');
        bytes[at] = (byte)'2';
        await File.WriteAllBytesAsync(manifestPath, bytes);
        var openssl = block.Split('\n').Single(l => l.StartsWith("openssl ", StringComparison.Ordinal));
        var (altered, alteredOut, _) = await BashAsync(openssl, work.Path, environment);
        Assert.Equal(1, altered);
        Assert.Contains("Verification failure", alteredOut, StringComparison.Ordinal);
    }
}
