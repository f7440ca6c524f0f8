using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>
/// Direct assignments: the model version one device should run, stored (one current row per device in
/// <c>device_assignments</c>), audited, and published as the device's retained <c>desired</c> message.
/// </summary>
public sealed partial class Assignments(Database database, DesiredFactory desiredFactory, AuditLog audit, IDesiredPublisher publisher, IOptions<ControlPlaneOptions> options,
    ILogger<Assignments> logger, Live.LiveEvents? live = null)
{
    /// <summary>
    /// Checks the request (400 naming the field, 404 for an unknown model version, 409 for a revoked device or without a
    /// broker), stores the assignment and publishes it; the stored JSON is exactly the published payload.
    /// </summary>
    public async Task<DesiredMessage> AssignAsync(DeviceInfo device, AssignmentRequest? request, string actor, string requestBaseUrl)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (request is null)
        {
            throw new InvalidInputException("body", "is required: {\"model\": NAME, \"version\": VERSION, \"mode\": \"live\"|\"shadow\", \"probation\": {…}}");
        }

        var model = Input.Required(request.Model, "model", "the name of a registered model");
        ModelRegistry.ValidateName(model, "model");
        var version = Input.Required(request.Version, "version", "a version of that model");
        ModelRegistry.ValidateVersion(version, "version");
        var mode = request.Mode ?? DesiredModes.Live;
        if (mode is not (DesiredModes.Live or DesiredModes.Shadow))
        {
            throw new InvalidInputException("mode", $"'{Input.Quote(mode)}' is not a mode: live (replace the running model) or shadow (run beside it)");
        }

        if (request.Probation is { } probation)
        {
            ValidateProbation(probation);
        }

        var desired = await desiredFactory.BuildAsync(model, version, mode, options.Value.PublicUrl ?? requestBaseUrl, request.Probation).ConfigureAwait(false)
            ?? throw new NotFoundException($"model {model} version {version}");
        if (device.Revoked)
        {
            throw new ConflictException($"device {device.Id} is revoked; it can no longer download or be assigned anything");
        }

        if (!publisher.Enabled)
        {
            throw new ConflictException("the control plane runs without MQTT (--mqtt none), so it cannot send devices their assignment; start it with --mqtt embedded or --mqtt mqtt://host:port");
        }

        var now = desired.IssuedAt!.Value;
        var payload = MessageParser.Serialize(desired);
        if (!MessageParser.TryParse<DesiredMessage>(payload, out _, out var invalid))
        {
            // A base URL that is not http(s), for instance: the device would refuse it, so say so now.
            throw new InvalidInputException("body", $"the desired message would be invalid: {invalid}");
        }

        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        await using (var tx = await connection.BeginTransactionAsync().ConfigureAwait(false))
        {
            using (var rows = new AssignmentRows(connection, tx, actor, now))
            {
                await rows.UpsertAsync(device.Id, desired.Id, Encoding.UTF8.GetString(payload), model, version, mode).ConfigureAwait(false);
            }

            await audit.WriteAsync(connection, tx, actor, "device.assign", $"device/{device.Id}",
                $"{model} {version} mode={mode} id={desired.Id}" + (request.Probation is null ? "" : " probation")).ConfigureAwait(false);
            await tx.CommitAsync().ConfigureAwait(false);
        }

        await PublishAsync(device.Id, payload).ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Devices, [device.Id]); // the dashboard's device page shows the desired version
        return desired;
    }

    /// <summary>Removes the device's assignment and clears its retained <c>desired</c> (the device keeps what it runs).</summary>
    public async Task ClearAsync(DeviceInfo device, string actor)
    {
        ArgumentNullException.ThrowIfNull(device);
        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        await using (var tx = await connection.BeginTransactionAsync().ConfigureAwait(false))
        {
            if (await AssignmentRows.DeleteAsync(connection, tx, device.Id).ConfigureAwait(false) == 0)
            {
                throw new NotFoundException($"an assignment of device {device.Id}");
            }

            if (!publisher.Enabled)
            {
                throw new ConflictException("the control plane runs without MQTT (--mqtt none), so it cannot clear the device's assignment");
            }

            await audit.WriteAsync(connection, tx, actor, "device.unassign", $"device/{device.Id}").ConfigureAwait(false);
            await tx.CommitAsync().ConfigureAwait(false);
        }

        await PublishAsync(device.Id, []).ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Devices, [device.Id]);
    }

    /// <summary>The current assignment of a device, exactly as published; null when it has none.</summary>
    public async Task<DesiredMessage?> GetAsync(string deviceId)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.ScalarAsync("SELECT desired FROM device_assignments WHERE device_id = @d", ("@d", deviceId)).ConfigureAwait(false) is string json
            && MessageParser.TryParse<DesiredMessage>(Encoding.UTF8.GetBytes(json), out var desired, out _)
            ? desired
            : null;
    }

    /// <summary>
    /// After a device is deleted: clears its retained <c>desired</c>, so a device enrolled later under the same id does
    /// not find the old assignment. Best effort: a broker that is away only gets a warning in the log.
    /// </summary>
    public async Task ForgetRetainedAsync(string deviceId)
    {
        if (!publisher.Enabled)
        {
            return;
        }

        try
        {
            await publisher.PublishAsync(deviceId, []).ConfigureAwait(false);
        }
        catch (MqttException ex)
        {
            LogForgetFailed(logger, deviceId, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not clear the retained desired message of the deleted device {DeviceId}: {Reason}")]
    private static partial void LogForgetFailed(ILogger logger, string deviceId, string reason);

    private async Task PublishAsync(string deviceId, byte[] payload)
    {
        try
        {
            await publisher.PublishAsync(deviceId, payload).ConfigureAwait(false);
        }
        catch (MqttException ex)
        {
            throw new UnavailableException(
                $"the change is stored but the MQTT broker did not take it ({ex.Message}); send the same request again once the broker is reachable", "broker unavailable");
        }
    }

    internal static void ValidateProbation(ProbationOverrides p)
    {
        static void Share(double? v, string field)
        {
            if (v is { } x && !(x >= 0 && x <= 1))
            {
                throw new InvalidInputException($"probation.{field}", "must be a number between 0 and 1");
            }
        }

        if (p.Frames is < 0)
        {
            throw new InvalidInputException("probation.frames", "must not be negative");
        }

        if (p.Seconds is { } s && !(s >= 0 && s <= 7 * 86400))
        {
            throw new InvalidInputException("probation.seconds", "must be between 0 and 604800 (a week)");
        }

        Share(p.MaxErrorShare, "maxErrorShare");
        Share(p.MaxNonFiniteShare, "maxNonFiniteShare");
        Share(p.MaxConfidenceDrop, "maxConfidenceDrop");
        if (p.MaxLatencyRatio is { } r && !(r > 0 && double.IsFinite(r)))
        {
            throw new InvalidInputException("probation.maxLatencyRatio", "must be a positive number");
        }

        if (p.MaxDriftSeverity is { } d && d is not ("none" or "warn" or "alert"))
        {
            throw new InvalidInputException("probation.maxDriftSeverity", $"'{Input.Quote(d)}' is not none, warn or alert");
        }
    }
}
