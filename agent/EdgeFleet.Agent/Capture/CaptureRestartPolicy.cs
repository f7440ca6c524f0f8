using Polly;
using Polly.Retry;

namespace EdgeFleet.Agent.Capture;

/// <summary>How one run of a capture process ended.</summary>
public enum CaptureRunEnd
{
    /// <summary>The source is being stopped.</summary>
    Stopped,

    /// <summary>A file without <c>loop</c> reached its end: nothing to restart.</summary>
    Ended,

    /// <summary>The process exited, could not start or stalled: it is restarted.</summary>
    Failed,
}

/// <summary>One run of a capture process: how it ended, how many frames it delivered, and why it failed.</summary>
public sealed record CaptureRun(CaptureRunEnd End, long Frames, bool Stalled = false, string? Failure = null);

/// <summary>
/// When a failed capture process is started again: Polly's retry with exponential backoff and decorrelated jitter
/// (a median of <see cref="FrameSourceSettings.RestartDelay"/>, about doubling with each failure in a row, capped at
/// <see cref="FrameSourceSettings.MaxRestartDelay"/>), for as long as the source runs. The jitter matters: the cameras
/// behind one recorder, or a fleet after a power or network cut, must not all reconnect at the same instants.
/// One execution of the pipeline covers one outage: its first attempt reports the run that just ended, every further
/// attempt is a restart, and it ends when a restart delivers frames (the next failure starts a new outage, at the
/// first delay again) or when the source stops.
/// </summary>
public static class CaptureRestartPolicy
{
    /// <param name="settings">The delays.</param>
    /// <param name="onRestart">Called before each delay, with the run that ended and the delay chosen.</param>
    /// <param name="time">The clock the delays wait on.</param>
    /// <param name="randomizer">Uniform in [0, 1): the jitter (a seeded one in tests); null: Polly's own.</param>
    public static ResiliencePipeline<CaptureRun> Create(FrameSourceSettings settings, Func<OnRetryArguments<CaptureRun>, ValueTask>? onRestart,
        TimeProvider time, Func<double>? randomizer = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(time);
        var options = new RetryStrategyOptions<CaptureRun>
        {
            Name = "capture-restart",
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = settings.RestartDelay,
            MaxDelay = settings.MaxRestartDelay,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result is { End: CaptureRunEnd.Failed } run
                                                        && (args.AttemptNumber == 0 || run.Frames == 0)),
            OnRetry = onRestart,
        };
        if (randomizer is not null)
        {
            options.Randomizer = randomizer;
        }

        return new ResiliencePipelineBuilder<CaptureRun> { TimeProvider = time }.AddRetry(options).Build();
    }
}
