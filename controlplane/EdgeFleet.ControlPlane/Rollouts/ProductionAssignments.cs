using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.Mqtt;

namespace EdgeFleet.ControlPlane.Rollouts;

/// <summary>
/// Devices no rollout has touched and nobody assigned by hand run the <c>production</c> version of the model their
/// <c>model=NAME</c> tag selects: a device enrolled with that tag gets it as its desired message, and every such device
/// follows when another version is promoted. A rollout or a manual assignment takes a device out of this for good
/// (until its assignment is cleared).
/// </summary>
public sealed partial class ProductionAssignments(Database database, ModelRegistry models, DesiredFactory factory, IDesiredPublisher publisher,
    Microsoft.Extensions.Options.IOptions<ControlPlaneOptions> options, Microsoft.AspNetCore.Hosting.Server.IServer server, TimeProvider time,
    ILogger<ProductionAssignments> logger)
{
    /// <summary>What <c>device_assignments.issued_by</c> says for these.</summary>
    public const string IssuedBy = "production";

    public const string ModelTagPrefix = "model=";

    /// <summary>Sends the production version to every device that should run it and does not have it as its desired model; returns how many.</summary>
    public async Task<int> ReconcileAsync(CancellationToken cancellationToken = default)
    {
        if (!publisher.Enabled)
        {
            return 0;
        }

        List<(string Device, string Model, string? IssuedBy, string? Version)> candidates;
        await using (var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            candidates = await connection.QueryAsync($"""
                SELECT d.id, t.tag, a.issued_by, a.version FROM devices d
                JOIN device_tags t ON t.device_id = d.id AND t.tag LIKE '{ModelTagPrefix}%'
                LEFT JOIN device_assignments a ON a.device_id = d.id
                WHERE d.revoked = 0
                  AND (a.device_id IS NULL OR a.issued_by = '{IssuedBy}')
                  AND NOT EXISTS (SELECT 1 FROM rollout_devices rd WHERE rd.device_id = d.id AND rd.state <> 'skipped')
                ORDER BY d.id
                """, r => (r.GetString(0), r.GetString(1)[ModelTagPrefix.Length..], r.NullableString(2), r.NullableString(3))).ConfigureAwait(false);
        }

        var production = new Dictionary<string, string?>(StringComparer.Ordinal);
        var sent = 0;
        foreach (var (device, model, _, assigned) in candidates)
        {
            if (!production.TryGetValue(model, out var version))
            {
                production[model] = version = (await models.GetAsync(model).ConfigureAwait(false))?.ProductionVersion;
            }

            if (version is null || assigned == version)
            {
                continue;
            }

            var desired = await factory.BuildAsync(model, version, DesiredModes.Live, BaseUrl()).ConfigureAwait(false);
            if (desired is null)
            {
                continue;
            }

            var payload = MessageParser.Serialize(desired);
            await using (var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false))
            {
                using var rows = new AssignmentRows(connection, null, IssuedBy, time.GetUtcNow(), onlyOverOwn: true);
                await rows.UpsertAsync(device, desired.Id, Encoding.UTF8.GetString(payload), model, version, DesiredModes.Live).ConfigureAwait(false);
            }

            try
            {
                await publisher.PublishAsync(device, payload, cancellationToken).ConfigureAwait(false);
                sent++;
            }
            catch (MqttException ex)
            {
                LogPublishFailed(logger, device, ex.Message); // stored: the next pass sends it again (the version still differs from nothing acknowledged)
                await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
                await AssignmentRows.DeleteAsync(connection, null, device, IssuedBy, desired.Id).ConfigureAwait(false);
            }
        }

        if (sent > 0)
        {
            LogSent(logger, sent);
        }

        return sent;
    }

    /// <summary>
    /// Where devices fetch artifacts when no request says it: ControlPlane:PublicUrl, else the address the control plane
    /// listens on (a wildcard address becomes this host's name).
    /// </summary>
    private string BaseUrl()
    {
        if (options.Value.PublicUrl is { } url)
        {
            return url;
        }

        var address = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://127.0.0.1";
        return address.Replace("://0.0.0.0", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal)
            .Replace("://[::]", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal)
            .Replace("://+", "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Production versions sent to {Count} devices that follow their model tag")]
    private static partial void LogSent(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not send {DeviceId} the production version of its model: {Reason}; the next pass tries again")]
    private static partial void LogPublishFailed(ILogger logger, string deviceId, string reason);
}
