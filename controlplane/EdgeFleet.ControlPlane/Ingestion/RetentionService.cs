using EdgeFleet.ControlPlane.Telemetry;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// Deletes raw telemetry, drift reports and events older than <c>RawRetentionDays</c>, and 1-minute rollups older
/// than <c>RollupRetentionDays</c>, every 10 minutes (<see cref="TelemetryStore.PruneAsync"/>).
/// </summary>
public sealed partial class RetentionService(TelemetryStore store, IOptions<ControlPlaneOptions> options, TimeProvider time, ILogger<RetentionService> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException)
            {
                LogFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One pass; returns the rows deleted.</summary>
    public async Task<long> RunOnceAsync(CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        var raw = now.AddDays(-o.RawRetentionDays).ToUnixTimeMilliseconds();
        var rollup = now.AddDays(-o.RollupRetentionDays).ToUnixTimeMilliseconds();
        var deleted = await store.PruneAsync(raw, rollup, cancellationToken).ConfigureAwait(false);
        if (deleted > 0)
        {
            LogDeleted(logger, deleted);
        }

        return deleted;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention: deleted {Rows} rows past their retention")]
    private static partial void LogDeleted(ILogger logger, long rows);

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention pass failed; retrying at the next interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
