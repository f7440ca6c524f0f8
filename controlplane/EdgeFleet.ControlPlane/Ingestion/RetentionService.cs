using EdgeFleet.ControlPlane.Storage;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Ingestion;

/// <summary>
/// Deletes raw telemetry, drift reports and events older than <c>RawRetentionDays</c>, and 1-minute rollups older
/// than <c>RollupRetentionDays</c>, every 10 minutes, device by device and in slices so that a large backlog never
/// holds a long write lock on SQLite.
/// </summary>
public sealed partial class RetentionService(Database database, IOptions<ControlPlaneOptions> options, TimeProvider time, ILogger<RetentionService> logger)
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
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var devices = await connection.QueryAsync("SELECT DISTINCT device_id FROM telemetry_1m", r => r.GetString(0)).ConfigureAwait(false);
        long deleted = 0;
        foreach (var device in devices)
        {
            cancellationToken.ThrowIfCancellationRequested();
            deleted += await connection.ExecuteAsync("DELETE FROM telemetry WHERE device_id = @d AND ts < @t", ("@d", device), ("@t", raw)).ConfigureAwait(false);
            deleted += await connection.ExecuteAsync("DELETE FROM telemetry_1m WHERE device_id = @d AND minute < @t", ("@d", device), ("@t", rollup)).ConfigureAwait(false);
        }

        deleted += await connection.ExecuteAsync("DELETE FROM drift_reports WHERE ts < @t", ("@t", raw)).ConfigureAwait(false);
        deleted += await connection.ExecuteAsync("DELETE FROM events WHERE ts < @t", ("@t", raw)).ConfigureAwait(false);
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
