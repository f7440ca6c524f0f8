using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Mqtt.Tests;

/// <summary>The reconnect backoff on its own: Polly's delays with seeded jitter on a fake clock, no sleeping.</summary>
[Trait("Category", "Unit")]
public sealed class ReconnectPolicyTests
{
    private static readonly MqttConnectionOptions Options = new()
    {
        Host = "broker.invalid",
        ClientId = "cam-01",
        ReconnectDelay = TimeSpan.FromSeconds(1),
        MaxReconnectDelay = TimeSpan.FromSeconds(30),
    };

    /// <summary>The delays chosen while <paramref name="failures"/> connects in a row fail, then one succeeds.</summary>
    private static async Task<List<TimeSpan>> DelaysAsync(Func<double> jitter, int failures, MqttConnectionOptions? options = null)
    {
        options ??= Options;
        var time = new FakeTimeProvider();
        var delays = new List<TimeSpan>();
        var pipeline = ReconnectPolicy.Create(options, time, () => false, args =>
        {
            lock (delays)
            {
                delays.Add(args.RetryDelay);
            }

            return ValueTask.CompletedTask;
        }, jitter);
        var attempts = 0;
        var connect = pipeline.ExecuteAsync(_ => ++attempts <= failures
            ? throw new MqttException("connection refused")
            : ValueTask.CompletedTask).AsTask();
        while (!connect.IsCompleted)
        {
            time.Advance(options.MaxReconnectDelay); // fires the pending delay, whatever it is
            await Task.Yield();
        }

        await connect;
        Assert.Equal(failures + 1, attempts);
        lock (delays)
        {
            return [.. delays];
        }
    }

    [Fact]
    public async Task Create_SameSeed_SameDelays()
    {
        var first = new Random(7);
        var second = new Random(7);

        Assert.Equal(await DelaysAsync(first.NextDouble, 8), await DelaysAsync(second.NextDouble, 8));
    }

    [Fact]
    public async Task Create_AFleetAfterABrokerRestart_SpreadsItsRetriesAndStaysUnderTheCap()
    {
        // 200 devices that lost the broker at the same moment, each with its own randomness.
        var fleet = new List<List<TimeSpan>>();
        for (var device = 0; device < 200; device++)
        {
            fleet.Add(await DelaysAsync(new Random(1000 + device).NextDouble, failures: 10));
        }

        Assert.All(fleet, delays => Assert.All(delays, d => Assert.InRange(d, TimeSpan.Zero, Options.MaxReconnectDelay)));
        // Not in lockstep: the first retries are spread over the whole first interval, not one instant.
        var firstRetries = fleet.Select(d => d[0].TotalMilliseconds).ToList();
        Assert.True(firstRetries.Distinct().Count() > 190, "the first retries of 200 devices should almost all differ");
        Assert.True(firstRetries.Max() - firstRetries.Min() > Options.ReconnectDelay.TotalMilliseconds / 2,
            $"first retries span only {firstRetries.Min():0}–{firstRetries.Max():0} ms");
        // Backing off: the typical wait grows from attempt to attempt until the cap.
        var medians = Enumerable.Range(0, 10).Select(i => Median(fleet.Select(d => d[i].TotalMilliseconds))).ToList();
        Assert.True(medians[3] > 2 * medians[0], $"medians per attempt: {string.Join(", ", medians.Select(m => m.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.True(medians[9] > Options.MaxReconnectDelay.TotalMilliseconds / 4, $"late retries should wait near the cap; median {medians[9]:0} ms");
    }

    [Fact]
    public async Task Create_CancelledWhileStopping_DoesNotRetry()
    {
        var time = new FakeTimeProvider();
        var retries = 0;
        var pipeline = ReconnectPolicy.Create(Options, time, () => true, _ =>
        {
            retries++;
            return ValueTask.CompletedTask;
        });

        await Assert.ThrowsAsync<OperationCanceledException>(() =>
            pipeline.ExecuteAsync(_ => throw new OperationCanceledException("disposing")).AsTask());
        Assert.Equal(0, retries);
    }

    [Fact]
    public async Task Create_MaxBelowFirstDelay_UsesTheFirstDelayAsTheCap()
    {
        var options = Options with { ReconnectDelay = TimeSpan.FromSeconds(5), MaxReconnectDelay = TimeSpan.FromSeconds(1) };

        var delays = await DelaysAsync(new Random(3).NextDouble, 6, options);

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.Zero, options.ReconnectDelay));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
