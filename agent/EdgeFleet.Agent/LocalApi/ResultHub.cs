using System.Threading.Channels;
using EdgeFleet.Agent.Capture;
using EdgeFleet.Agent.LocalApi.V1;
using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>A frame as the model saw it (RGB, interleaved, model-input size) and its result.</summary>
public sealed record FrameSnapshot(byte[] Pixels, int Width, int Height, Result Result);

/// <summary>
/// Fans inference results out to local API subscribers and takes snapshots, on the inference thread without ever
/// waiting: each subscriber has a bounded channel that drops its oldest result when full (counted per subscriber),
/// and with no subscriber and no snapshot pending a frame costs two volatile reads.
/// </summary>
public sealed class ResultHub : IResultSink, IFrameObserver
{
    private readonly Lock _lock = new();
    private readonly int _capacity;
    private readonly TimeProvider _time;
    private volatile Subscriber[] _subscribers = [];
    private volatile PendingSnapshot? _snapshot;
    private PendingSnapshot? _filled;

    public ResultHub(int capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _time = time;
    }

    public int SubscriberCount => _subscribers.Length;

    /// <summary>A new subscriber; dispose it to leave.</summary>
    public Subscriber Subscribe()
    {
        var s = new Subscriber(this, _capacity);
        lock (_lock)
        {
            _subscribers = [.. _subscribers, s];
        }

        return s;
    }

    private void Remove(Subscriber s)
    {
        lock (_lock)
        {
            _subscribers = [.. _subscribers.Where(x => x != s)];
        }
    }

    /// <summary>The next frame the model sees, with its result; null when none arrives in time.</summary>
    public async Task<FrameSnapshot?> SnapshotAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        PendingSnapshot pending;
        lock (_lock)
        {
            pending = _snapshot ??= new PendingSnapshot();
        }

        try
        {
            return await pending.Done.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (_lock)
            {
                if (_snapshot == pending)
                {
                    _snapshot = null;
                }
            }

            return null;
        }
    }

    public void OnFrame(Frame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (_snapshot is { } pending)
        {
            pending.Pixels = (byte[])frame.Data.Clone();
            pending.Width = frame.Width;
            pending.Height = frame.Height;
            _filled = pending;
        }
    }

    public void OnResult(InferenceResult result, LoadedModel model)
    {
        var subscribers = _subscribers;
        var filled = _filled;
        if (subscribers.Length == 0 && filled is null)
        {
            return;
        }

        var message = ToMessage(result, model, _time.GetUtcNow().ToUnixTimeMilliseconds());
        foreach (var s in subscribers)
        {
            s.Offer(message);
        }

        if (filled is not null)
        {
            _filled = null;
            lock (_lock)
            {
                if (_snapshot == filled)
                {
                    _snapshot = null;
                }
            }

            filled.Done.TrySetResult(new FrameSnapshot(filled.Pixels!, filled.Width, filled.Height, message));
        }
    }

    private static Result ToMessage(InferenceResult r, LoadedModel model, long unixMs)
    {
        var labels = model.Manifest.Labels;
        string Label(int id) => id >= 0 && id < labels.Count ? labels[id] : "";
        var m = new Result
        {
            Frame = r.FrameSequence,
            TimestampUnixMs = unixMs,
            Model = model.Manifest.Name,
            ModelVersion = model.Manifest.Version,
            NonFinite = r.NonFinite,
        };
        for (var i = 0; i < r.TopCount; i++)
        {
            m.Classes.Add(new ClassScore { ClassId = r.TopClassIds[i], Label = Label(r.TopClassIds[i]), Score = r.TopScores[i] });
        }

        foreach (var d in r.Detections)
        {
            m.Detections.Add(new Box { ClassId = d.ClassId, Label = Label(d.ClassId), Score = d.Score, X1 = d.X1, Y1 = d.Y1, X2 = d.X2, Y2 = d.Y2 });
        }

        return m;
    }

    internal sealed class PendingSnapshot
    {
        public TaskCompletionSource<FrameSnapshot> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public byte[]? Pixels { get; set; }

        public int Width { get; set; }

        public int Height { get; set; }
    }

    /// <summary>One <c>Results</c> stream: a bounded queue that forgets its oldest result rather than wait.</summary>
    public sealed class Subscriber : IDisposable
    {
        private readonly ResultHub _hub;
        private readonly Channel<Result> _channel;
        private long _dropped;

        internal Subscriber(ResultHub hub, int capacity)
        {
            _hub = hub;
            _channel = Channel.CreateBounded<Result>(new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = true,
            }, _ => Interlocked.Increment(ref _dropped));
        }

        /// <summary>Results lost because this subscriber read too slowly.</summary>
        public long Dropped => Interlocked.Read(ref _dropped);

        public ChannelReader<Result> Reader => _channel.Reader;

        internal void Offer(Result message) => _channel.Writer.TryWrite(message);

        public void Dispose()
        {
            _hub.Remove(this);
            _channel.Writer.TryComplete();
        }
    }
}
