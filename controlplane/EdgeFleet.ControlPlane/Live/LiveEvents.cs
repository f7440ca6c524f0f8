using System.Collections.Concurrent;
using System.Threading.Channels;

namespace EdgeFleet.ControlPlane.Live;

/// <summary>A change a live client should fetch again: <c>devices</c>, <c>rollouts</c> or <c>models</c>, with the ids (device ids, rollout ids, model names) that changed.</summary>
public sealed record LiveChange(string Kind, IReadOnlyList<string> Ids);

/// <summary>
/// Fans changes out to live subscribers (the dashboard's server-sent events). Publishing never blocks and never
/// fails: each subscriber has a bounded queue, and one that is full is dropped (its queue completes; the client
/// reconnects and fetches everything afresh). Ingestion, the device registry, the model registry and the rollout
/// store publish after they commit.
/// </summary>
public sealed class LiveEvents
{
    public const string Devices = "devices";
    public const string Rollouts = "rollouts";
    public const string Models = "models";

    private readonly ConcurrentDictionary<long, Subscription> _subscribers = new();
    private long _next;
    private long _dropped;

    public LiveEvents(int capacity = 256, int maxSubscribers = 1000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSubscribers, 1);
        Capacity = capacity;
        MaxSubscribers = maxSubscribers;
    }

    /// <summary>Changes a subscriber may have queued before it counts as too slow.</summary>
    public int Capacity { get; }

    public int MaxSubscribers { get; }

    public int Subscribers => _subscribers.Count;

    /// <summary>Subscribers dropped so far because their queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>A new subscription, or null when <see cref="MaxSubscribers"/> are connected already.</summary>
    public Subscription? Subscribe()
    {
        if (_subscribers.Count >= MaxSubscribers)
        {
            return null;
        }

        var subscription = new Subscription(this, Interlocked.Increment(ref _next), Capacity);
        _subscribers[subscription.Id] = subscription;
        return subscription;
    }

    public void Publish(string kind, IReadOnlyList<string> ids)
    {
        if (ids.Count == 0 || _subscribers.IsEmpty)
        {
            return;
        }

        var change = new LiveChange(kind, ids);
        foreach (var subscription in _subscribers.Values)
        {
            if (!subscription.Writer.TryWrite(change) && _subscribers.TryRemove(subscription.Id, out _))
            {
                Interlocked.Increment(ref _dropped);
                subscription.Writer.TryComplete(new SlowSubscriberException());
            }
        }
    }

    private void Remove(long id) => _subscribers.TryRemove(id, out _);

    /// <summary>One subscriber's queue; dispose to unsubscribe.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly LiveEvents _owner;
        private readonly Channel<LiveChange> _channel;

        internal Subscription(LiveEvents owner, long id, int capacity)
        {
            _owner = owner;
            Id = id;
            _channel = Channel.CreateBounded<LiveChange>(new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of silently dropping a change
                SingleReader = true,
            });
        }

        public long Id { get; }

        public ChannelReader<LiveChange> Reader => _channel.Reader;

        internal ChannelWriter<LiveChange> Writer => _channel.Writer;

        public void Dispose()
        {
            _owner.Remove(Id);
            _channel.Writer.TryComplete();
        }
    }
}

/// <summary>A live subscriber fell behind by a full queue and was dropped.</summary>
public sealed class SlowSubscriberException : Exception
{
    public SlowSubscriberException()
        : base("the live client fell behind and was dropped")
    {
    }

    public SlowSubscriberException(string message)
        : base(message)
    {
    }

    public SlowSubscriberException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
