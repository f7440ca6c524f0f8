using System.Diagnostics;
using System.Threading.Channels;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>
/// Opt-in sampled results: at most one result per interval (or the next one after a <c>snapshot</c> command) is
/// turned into a <see cref="ResultMessage"/> for the <c>results</c> topic. Allocates only when it samples.
/// </summary>
public sealed class ResultsSampler : IResultSink
{
    private readonly string _deviceId;
    private readonly TimeProvider _time;
    private readonly long _intervalTicks;
    private readonly bool _periodic;
    private readonly Channel<ResultMessage> _channel = Channel.CreateBounded<ResultMessage>(
        new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private long _last = long.MinValue;
    private volatile bool _snapshot;

    public ResultsSampler(string deviceId, TimeSpan interval, bool periodic, TimeProvider time)
    {
        _deviceId = deviceId;
        _time = time;
        _periodic = periodic;
        _intervalTicks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
    }

    public ChannelReader<ResultMessage> Reader => _channel.Reader;

    /// <summary>Publish the next result whatever the interval.</summary>
    public void RequestSnapshot() => _snapshot = true;

    public void OnResult(InferenceResult result, LoadedModel model)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(model);
        var now = Stopwatch.GetTimestamp();
        var due = _periodic && (_last == long.MinValue || now - _last >= _intervalTicks);
        if (!due && !_snapshot)
        {
            return;
        }

        _snapshot = false;
        _last = now;
        var labels = model.Manifest.Labels;
        string? Label(int id) => id >= 0 && id < labels.Count ? labels[id] : null;
        var message = new ResultMessage
        {
            DeviceId = _deviceId,
            Ts = _time.GetUtcNow(),
            Frame = result.FrameSequence,
            Model = new ModelRef(model.Manifest.Name, model.Manifest.Version),
            Classes = result.TopCount == 0 ? null
                : Enumerable.Range(0, result.TopCount).Select(i => new ClassScore(result.TopClassIds[i], Label(result.TopClassIds[i]), result.TopScores[i])).ToList(),
            Boxes = result.TopCount > 0 ? null
                : result.Detections.ToArray().Select(d => new BoxResult(d.ClassId, Label(d.ClassId), d.Score, d.X1, d.Y1, d.X2, d.Y2)).ToList(),
        };
        _channel.Writer.TryWrite(message);
    }
}
