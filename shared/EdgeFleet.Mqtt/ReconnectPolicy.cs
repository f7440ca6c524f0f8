using Polly;
using Polly.Retry;

namespace EdgeFleet.Mqtt;

/// <summary>
/// When <see cref="MqttConnection"/> tries again after a failed connect: Polly's retry with exponential backoff and
/// decorrelated jitter, from <see cref="MqttConnectionOptions.ReconnectDelay"/> up to
/// <see cref="MqttConnectionOptions.MaxReconnectDelay"/>, for as long as the connection is wanted. The jitter is the
/// point: when a broker restarts, every device of a fleet sees the loss at the same moment, and without it they would
/// all come back in the same instants, again and again.
/// </summary>
internal static class ReconnectPolicy
{
    /// <param name="options">The delays.</param>
    /// <param name="time">The clock the delays wait on.</param>
    /// <param name="stopping">True once the connection is being disposed: a cancellation then ends the retries.</param>
    /// <param name="onRetry">Called before each delay (tests read the chosen delay from it).</param>
    /// <param name="randomizer">Uniform in [0, 1): the jitter (a seeded one in tests); null: Polly's own.</param>
    public static ResiliencePipeline Create(MqttConnectionOptions options, TimeProvider time, Func<bool> stopping,
        Func<OnRetryArguments<object>, ValueTask>? onRetry = null, Func<double>? randomizer = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(stopping);
        var retry = new RetryStrategyOptions
        {
            Name = "mqtt-reconnect",
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && !(ex is OperationCanceledException && stopping())),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = Positive(options.ReconnectDelay),
            MaxDelay = Positive(options.MaxReconnectDelay < options.ReconnectDelay ? options.ReconnectDelay : options.MaxReconnectDelay),
            OnRetry = onRetry,
        };
        if (randomizer is not null)
        {
            retry.Randomizer = randomizer;
        }

        return new ResiliencePipelineBuilder { TimeProvider = time }.AddRetry(retry).Build();
    }

    private static TimeSpan Positive(TimeSpan value) => value > TimeSpan.Zero ? value : TimeSpan.FromMilliseconds(1);
}
