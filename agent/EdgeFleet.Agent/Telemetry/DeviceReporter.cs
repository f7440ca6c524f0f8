using System.Threading.Channels;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Drift;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>A durable message waiting for its sequence number: built once the outbox assigns one.</summary>
public sealed record PendingMessage(string Kind, Func<long, byte[]> Build);

/// <summary>
/// Where every part of the agent hands its durable messages (events, drift reports, telemetry). Never blocks the
/// caller (the inference and capture threads call it); the telemetry service writes what arrives to the outbox.
/// If the agent produces faster than the outbox can store — it cannot, in practice — the oldest pending message is
/// dropped and counted rather than stalling inference.
/// </summary>
public sealed class DeviceReporter
{
    private readonly Channel<PendingMessage> _channel;
    private readonly TimeProvider _time;
    private long _dropped;

    public DeviceReporter(string deviceId, TimeProvider time)
    {
        DeviceId = deviceId;
        _time = time;
        _channel = Channel.CreateBounded<PendingMessage>(new BoundedChannelOptions(10_000)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
    }

    public string DeviceId { get; }

    /// <summary>Messages lost before the outbox: its writer fell 10 000 behind, or writing failed (disk full).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void CountLost(long count) => Interlocked.Add(ref _dropped, count);

    public ChannelReader<PendingMessage> Reader => _channel.Reader;

    public void Event(string type, string level, string? message, IReadOnlyDictionary<string, string>? data = null)
    {
        var ts = _time.GetUtcNow();
        var id = DeviceId;
        _channel.Writer.TryWrite(new PendingMessage(Topics.Events, seq => MessageParser.Serialize(new EventMessage
        {
            DeviceId = id,
            Ts = ts,
            Seq = seq,
            Type = type,
            Level = level,
            Message = message,
            Data = data,
        })));
    }

    public void Drift(DriftReport report, ModelRef? model)
    {
        ArgumentNullException.ThrowIfNull(report);
        var ts = _time.GetUtcNow();
        var id = DeviceId;
        _channel.Writer.TryWrite(new PendingMessage(Topics.Drift, seq => MessageParser.Serialize(new DriftMessage
        {
            DeviceId = id,
            Ts = ts,
            Seq = seq,
            Model = model,
            ReferenceId = report.ReferenceId,
            Window = new DriftWindow(report.Frames, report.Start, report.End),
            Features = report.Features,
            Severity = report.Severity,
        })));
    }

    public void Telemetry(Func<long, TelemetryMessage> build) =>
        _channel.Writer.TryWrite(new PendingMessage(Topics.Telemetry, seq => MessageParser.Serialize(build(seq))));

    public void Complete() => _channel.Writer.TryComplete();
}
