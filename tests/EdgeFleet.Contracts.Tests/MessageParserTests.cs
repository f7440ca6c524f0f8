using System.Text;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Contracts.Tests;

[Trait("Category", "Unit")]
public sealed class MessageParserTests
{
    private static readonly DateTimeOffset Ts = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Telemetry_RoundTrips()
    {
        var message = new TelemetryMessage
        {
            DeviceId = "cam-01",
            Ts = Ts,
            Seq = 42,
            LatencyMs = new LatencyMs(1, 2, 3),
            Frames = new FrameCounters(10, 9, 1),
            Outbox = new OutboxHealth(1, 100, 0, 0),
        };

        var bytes = MessageParser.Serialize(message);
        var json = Encoding.UTF8.GetString(bytes);

        Assert.Contains("\"schema\":\"ef.telemetry/1\"", json, StringComparison.Ordinal);
        Assert.Contains("\"seq\":42", json, StringComparison.Ordinal);
        Assert.True(MessageParser.TryParse<TelemetryMessage>(bytes, out var parsed, out var reason), reason);
        Assert.Equal(message.Frames, parsed.Frames);
        Assert.Equal(Ts, parsed.Ts);
    }

    [Fact]
    public void TryParse_OptionalFieldsLeftOut_KeepTheirDefaults()
    {
        // Source-generated System.Text.Json used to replace an init-only property's initializer with null when the
        // JSON left it out, so an event without "level" reached the database with a NULL level.
        var ev = """{"schema":"ef.event/1","deviceId":"cam-01","ts":"2026-01-01T00:00:00Z","seq":3,"type":"camera.failed"}"""u8.ToArray();
        var telemetry = """{"schema":"ef.telemetry/1","deviceId":"cam-01","ts":"2026-01-01T00:00:00Z","seq":4,"latencyMs":{"p50":1,"p95":1,"p99":1},"frames":{"captured":1,"inferred":1,"dropped":0}}"""u8.ToArray();

        Assert.True(MessageParser.TryParse<EventMessage>(ev, out var parsedEvent, out var reason), reason);
        Assert.Equal("info", parsedEvent.Level);
        Assert.True(MessageParser.TryParse<TelemetryMessage>(telemetry, out var parsedTelemetry, out reason), reason);
        Assert.NotNull(parsedTelemetry.StagesMs);
        Assert.Empty(parsedTelemetry.StagesMs);
    }

    [Theory]
    [InlineData("", "empty payload")]
    [InlineData("null", "JSON null")]
    [InlineData("{oops", "not valid JSON")]
    [InlineData("[1,2]", "not valid JSON")]
    [InlineData("""{"schema":"ef.telemetry/2","deviceId":"a","ts":"2026-01-01T00:00:00Z","seq":1,"latencyMs":{"p50":1,"p95":1,"p99":1},"frames":{"captured":1,"inferred":1,"dropped":0}}""", "schema 'ef.telemetry/2'")]
    [InlineData("""{"schema":"ef.telemetry/1","deviceId":"Bad Id","ts":"2026-01-01T00:00:00Z","seq":1,"latencyMs":{"p50":1,"p95":1,"p99":1},"frames":{"captured":1,"inferred":1,"dropped":0}}""", "deviceId")]
    [InlineData("""{"schema":"ef.telemetry/1","deviceId":"a","ts":"2026-01-01T00:00:00Z","seq":0,"latencyMs":{"p50":1,"p95":1,"p99":1},"frames":{"captured":1,"inferred":1,"dropped":0}}""", "seq")]
    [InlineData("""{"schema":"ef.telemetry/1","deviceId":"a","seq":3,"latencyMs":{"p50":1,"p95":1,"p99":1},"frames":{"captured":1,"inferred":1,"dropped":0}}""", "not valid JSON")]
    public void Telemetry_Malformed_IsRejectedWithAReason(string payload, string expected)
    {
        Assert.False(MessageParser.TryParse<TelemetryMessage>(Encoding.UTF8.GetBytes(payload), out var parsed, out var reason));
        Assert.Null(parsed);
        Assert.Contains(expected, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Oversized_IsRejectedBeforeParsing()
    {
        var payload = new byte[MessageParser.MaxPayloadBytes + 1];

        Assert.False(MessageParser.TryParse<CommandMessage>(payload, out _, out var reason));
        Assert.Contains("exceeds", reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"schema":"ef.cmd/1","id":"1","command":"snapshot"}""", true, null)]
    [InlineData("""{"schema":"ef.cmd/1","id":"1","command":"rm -rf"}""", false, "unknown command")]
    [InlineData("""{"schema":"ef.cmd/1","command":"snapshot"}""", false, "not valid JSON")]
    public void Command_Validation(string payload, bool valid, string? expected)
    {
        Assert.Equal(valid, MessageParser.TryParse<CommandMessage>(Encoding.UTF8.GetBytes(payload), out _, out var reason));
        if (expected is not null)
        {
            Assert.Contains(expected, reason, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("""{"schema":"ef.desired/1","model":"det","version":"1.2.0","artifactUrl":"https://cp/a","sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","size":10,"manifestUrl":"https://cp/m"}""", true, null)]
    [InlineData("""{"schema":"ef.desired/1","model":"../x","version":"1.2.0","artifactUrl":"https://cp/a","sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","size":10,"manifestUrl":"https://cp/m"}""", false, "model")]
    [InlineData("""{"schema":"ef.desired/1","model":"det","version":"latest","artifactUrl":"https://cp/a","sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","size":10,"manifestUrl":"https://cp/m"}""", false, "version")]
    [InlineData("""{"schema":"ef.desired/1","model":"det","version":"1.2.0","artifactUrl":"file:///etc/passwd","sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","size":10,"manifestUrl":"https://cp/m"}""", false, "http")]
    [InlineData("""{"schema":"ef.desired/1","model":"det","version":"1.2.0","artifactUrl":"https://cp/a","sha256":"zz","size":10,"manifestUrl":"https://cp/m"}""", false, "sha256")]
    public void Desired_Validation(string payload, bool valid, string? expected)
    {
        Assert.Equal(valid, MessageParser.TryParse<DesiredMessage>(Encoding.UTF8.GetBytes(payload), out _, out var reason));
        if (expected is not null)
        {
            Assert.Contains(expected, reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Topics_ParseAndBuild()
    {
        Assert.Equal("ef/v1/cam-01/telemetry", Topics.For("cam-01", Topics.Telemetry));
        Assert.True(Topics.TryParse("ef/v1/cam-01/telemetry", out var id, out var kind));
        Assert.Equal(("cam-01", "telemetry"), (id, kind));
        Assert.False(Topics.TryParse("ef/v1/CAM/telemetry", out _, out _));
        Assert.False(Topics.TryParse("ef/v1/cam-01/a/b", out _, out _));
        Assert.Equal("$share/cp/ef/v1/+/drift", Topics.Shared("cp", Topics.Drift));
    }

    [Fact]
    public void Drift_NonFiniteStatistics_Serialize()
    {
        var message = new DriftMessage
        {
            DeviceId = "cam-01",
            Ts = Ts,
            Seq = 3,
            ReferenceId = "p",
            Window = new DriftWindow(10, Ts, Ts),
            Features = [new FeatureDrift { Name = "x", N = new SampleSizes(1, 1), Ks = new TestResult(double.NaN, double.NaN) }],
        };

        var bytes = MessageParser.Serialize(message);

        Assert.True(MessageParser.TryParse<DriftMessage>(bytes, out var parsed, out _));
        Assert.True(double.IsNaN(parsed.Features[0].Ks!.PValue));
    }
}
