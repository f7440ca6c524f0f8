using System.Net;
using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.Testing;

namespace EdgeFleet.IntegrationTests;

/// <summary>
/// What an operator does: the real control plane with its embedded mosquitto, a real agent enrolled the normal way
/// (its broker login and HTTP token from enrollment), a model assigned through the API, and the device's OTA state
/// read back from the API as the CLI shows it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OtaAssignEndToEndTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static async Task<T> UntilAsync<T>(Func<Task<T?>> probe, string what, Func<string> context)
        where T : class
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(sw.Elapsed < Patience, $"timed out waiting until {what}; {context()}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task AssignThroughTheApi_TheEnrolledAgentCommits_AndTheDeviceShowsItsOtaState()
    {
        await using var cp = await ControlPlaneProcess.StartAsync(new ControlPlaneProcessOptions { EmbeddedMqtt = true });
        using var admin = cp.CreateClient(cp.AdminToken);
        await RegistryUploads.PushAsync(admin, "ota-cls", "1.1.0", OtaFixture.Good);
        using var state = new TempDirectory("edgefleet-assign");
        var token = await cp.CreateEnrollmentTokenAsync();
        var (code, _, stderr) = AgentProcess.Run(TimeSpan.FromSeconds(60), null, "enroll", "--server", cp.Url.ToString(), "--token", token.Token!,
            "--device-id", "cam-ota", "--state-dir", state.Path);
        Assert.True(code == 0, stderr);
        await File.WriteAllTextAsync(state.File("agent.json"), $$"""
            { "Agent": { "StateDirectory": "{{state.Path}}", "Source": { "Uri": "testsrc://160x120@30" },
              "Model": { "Path": "{{TestModels.Get(OtaFixture.Good)}}" }, "Inference": { "IntraOpThreads": 1 },
              "Telemetry": { "IntervalSeconds": 1, "Outbox": { "SynchronousFull": false } },
              "Ota": { "RetryDelaySeconds": 0.1, "MaxRetryDelaySeconds": 0.5 } } }
            """);
        using var agent = AgentProcess.Start(null, "run", "--config", state.File("agent.json"));
        await UntilAsync(async () => await admin.GetFromJsonAsync("api/v1/devices/cam-ota", ApiJsonContext.Default.DeviceInfo) is { Online: true } d ? d : null,
            "the agent is online", () => agent.Stderr);

        using var assign = await admin.PostAsJsonAsync("api/v1/devices/cam-ota/assignment", new AssignmentRequest
        {
            Model = "ota-cls",
            Version = "1.1.0",
            Probation = OtaFixture.Quick,
        }, ApiJsonContext.Default.AssignmentRequest);
        Assert.True(assign.StatusCode == HttpStatusCode.Accepted, await assign.Content.ReadAsStringAsync());
        var device = await UntilAsync(async () => await admin.GetFromJsonAsync("api/v1/devices/cam-ota", ApiJsonContext.Default.DeviceInfo)
                is { Ota.State: "committed", Model.Version: "1.1.0" } d ? d : null,
            "the device reports the assignment committed and runs it", () => agent.Stderr);

        Assert.Equal(("ota-cls", "1.1.0"), (device.Ota!.Model, device.Ota.Version));
        Assert.Equal("1.1.0", device.Desired!.Version);
        var events = await admin.GetFromJsonAsync("api/v1/devices/cam-ota/events?type=update.", ApiJsonContext.Default.PageEventInfo);
        var types = events!.Items.Select(e => e.Type).ToHashSet();
        Assert.Superset(new HashSet<string> { UpdateEvents.Received, UpdateEvents.Downloading, UpdateEvents.Verified, UpdateEvents.Activated, UpdateEvents.Committed }, types);
        Assert.Empty(cp.LoggedErrors);
    }
}
