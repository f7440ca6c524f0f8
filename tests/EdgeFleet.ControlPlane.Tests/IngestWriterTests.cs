using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.ControlPlane.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeFleet.ControlPlane.Tests;

/// <summary>The ingestion store on a real database: de-duplication by (device, seq), gap accounting, rollups, retention.</summary>
public abstract class IngestWriterTests
{
    protected abstract Task<ControlPlaneFactory> CreateAsync();

    private static Incoming Telemetry(string device, long seq, DateTimeOffset ts, double fps = 30) =>
        new(Topics.Telemetry, device, seq, ts, new TelemetryMessage
        {
            DeviceId = device, Ts = ts, Seq = seq, Fps = fps, LatencyMs = new LatencyMs(10, 20, 30), Frames = new FrameCounters(10, 9, 1), Errors = 1,
            System = new SystemHealth { CpuPercent = 50, MemUsedBytes = 1000, TemperatureC = 40 },
        }, [], ts);

    private static async Task EnrollAsync(ControlPlaneFactory cp, params string[] ids)
    {
        using var admin = cp.Client();
        using var created = await admin.PostAsJsonAsync("/api/v1/enrollment-tokens", new EnrollmentTokenRequest(), ApiJsonContext.Default.EnrollmentTokenRequest);
        var token = (await created.Content.ReadFromJsonAsync(ApiJsonContext.Default.EnrollmentTokenInfo))!.Token!;
        foreach (var id in ids)
        {
            using var r = await admin.PostAsJsonAsync("/api/v1/enroll", new EnrollRequest { Token = token, DeviceId = id }, ApiJsonContext.Default.EnrollRequest);
            r.EnsureSuccessStatusCode();
        }
    }

    [Fact]
    public async Task Status_ALastWillOlderThanTheOnlineStatus_MarksTheDeviceOffline_AnOlderRetainedReplayDoesNot()
    {
        await using var cp = await CreateAsync();
        await EnrollAsync(cp, "cam-1");
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        var connectedAt = TimeProvider.System.GetUtcNow().AddMinutes(-1);
        static Incoming Status(bool online, DateTimeOffset ts, bool retained) =>
            new(Topics.Status, "cam-1", 0, ts, new StatusMessage { DeviceId = "cam-1", Ts = ts, Online = online, Model = online ? new ModelRef("m", "1.0.0") : null },
                [], ts, Retained: retained);
        var empty = new Dictionary<string, long>();
        using var admin = cp.Client();

        // The agent's Will is built when it connects, so it carries a time before the online status it sends next.
        await writer.WriteAsync([Status(true, connectedAt.AddMilliseconds(50), retained: false)], empty, default);
        await writer.WriteAsync([Status(false, connectedAt, retained: false)], empty, default);
        Assert.False((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Online);

        // An online status from before that, replayed from the retained store (a control plane restarting), changes nothing.
        await writer.WriteAsync([Status(true, connectedAt.AddSeconds(-30), retained: true)], empty, default);
        Assert.False((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Online);

        await writer.WriteAsync([Status(true, connectedAt.AddSeconds(5), retained: false)], empty, default);
        Assert.True((await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo))!.Online);
    }

    [Fact]
    public async Task Write_AfterCommit_AnnouncesTheDevicesToLiveSubscribers()
    {
        await using var cp = await CreateAsync();
        await EnrollAsync(cp, "cam-1", "cam-2");
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        using var subscription = cp.Services.GetRequiredService<EdgeFleet.ControlPlane.Live.LiveEvents>().Subscribe()!;
        var t0 = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

        await writer.WriteAsync([Telemetry("cam-1", 1, t0), Telemetry("cam-2", 1, t0), Telemetry("cam-1", 2, t0.AddSeconds(1))], new Dictionary<string, long>(), default);

        Assert.True(subscription.Reader.TryRead(out var change));
        Assert.Equal(EdgeFleet.ControlPlane.Live.LiveEvents.Devices, change!.Kind);
        Assert.Equal(["cam-1", "cam-2"], change.Ids);
        Assert.False(subscription.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Write_DuplicatesAreStoredOnce_GapsAreCountedAsLost_AndFilledGapsAreNot()
    {
        await using var cp = await CreateAsync();
        await EnrollAsync(cp, "cam-1");
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        var metrics = cp.Services.GetRequiredService<IngestMetrics>();
        var t0 = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
        var empty = new Dictionary<string, long>();

        await writer.WriteAsync([Telemetry("cam-1", 1, t0), Telemetry("cam-1", 2, t0.AddSeconds(1)), Telemetry("cam-1", 2, t0.AddSeconds(1))], empty, default);
        await writer.WriteAsync([Telemetry("cam-1", 2, t0.AddSeconds(1)), Telemetry("cam-1", 5, t0.AddSeconds(5))], new Dictionary<string, long> { ["cam-1"] = 2 }, default);

        using var admin = cp.Client();
        var device = await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal((3L, 2L, 2L), (device!.MessagesReceived, device.MessagesLost, device.MessagesInvalid)); // 1, 2, 5 stored; 3 and 4 missing
        Assert.Equal(2, metrics.Duplicates);

        await writer.WriteAsync([Telemetry("cam-1", 4, t0.AddSeconds(4)), Telemetry("cam-1", 3, t0.AddSeconds(3))], empty, default); // late, after a replay
        device = await admin.GetFromJsonAsync("/api/v1/devices/cam-1", ApiJsonContext.Default.DeviceInfo);
        Assert.Equal((5L, 0L), (device!.MessagesReceived, device.MessagesLost));
        Assert.Equal(30, device.Health!.Fps);

        var rollup = await admin.GetFromJsonAsync($"/api/v1/devices/cam-1/telemetry?resolution=1m&from={t0.AddMinutes(-1):O}&to={t0.AddMinutes(1):O}".Replace("+", "%2B", StringComparison.Ordinal),
            ApiJsonContext.Default.PageTelemetryPoint);
        var minute = Assert.Single(rollup!.Items);
        Assert.Equal((5, 45L, 5L, 30.0), (minute.Samples, minute.FramesInferred!.Value, minute.Errors!.Value, minute.Fps!.Value));
    }

    [Fact]
    public async Task Retention_DeletesOnlyRawRowsPastTheWindow()
    {
        await using var cp = await CreateAsync();
        await EnrollAsync(cp, "cam-1");
        var writer = cp.Services.GetRequiredService<IngestWriter>();
        var now = TimeProvider.System.GetUtcNow();
        await writer.WriteAsync([Telemetry("cam-1", 1, now.AddDays(-30)), Telemetry("cam-1", 2, now.AddMinutes(-5))], new Dictionary<string, long>(), default);

        var deleted = await cp.Services.GetRequiredService<RetentionService>().RunOnceAsync();

        Assert.Equal(1, deleted);
        var db = cp.Services.GetRequiredService<Database>();
        await using var connection = await db.OpenAsync();
        Assert.Equal(2L, Convert.ToInt64(await connection.ScalarAsync("SELECT COUNT(*) FROM telemetry_1m"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2L, Convert.ToInt64(await connection.ScalarAsync("SELECT seq FROM telemetry"), System.Globalization.CultureInfo.InvariantCulture));
    }
}

[Trait("Category", "Integration")]
public sealed class IngestWriterSqliteTests : IngestWriterTests
{
    protected override Task<ControlPlaneFactory> CreateAsync() => Task.FromResult(new ControlPlaneFactory());
}

[Trait("Category", "Integration")]
[Collection(PostgresCollection.Name)]
public sealed class IngestWriterPostgresTests(PostgresFixture postgres) : IngestWriterTests
{
    protected override async Task<ControlPlaneFactory> CreateAsync() => new(await postgres.Server.CreateDatabaseAsync());
}
