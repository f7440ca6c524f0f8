using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>
/// The broker logins of the devices that are not revoked, as stored (hashed). The broker host reads them from here,
/// so it needs neither the device registry nor a service locator (the registry in turn asks the broker to resync).
/// </summary>
public sealed class DeviceCredentials(Database database)
{
    public async Task<IReadOnlyList<BrokerCredential>> ActiveAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        return await connection.QueryAsync("SELECT id, mqtt_password_hash FROM devices WHERE revoked = 0 ORDER BY id",
            r => new BrokerCredential(r.GetString(0), r.GetString(1))).ConfigureAwait(false);
    }
}
