using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>How device credentials reach the broker: hashing for its password file, and a resync after changes.</summary>
public interface IBrokerAccess
{
    /// <summary>The stored form of a device password (what the broker's password file holds).</summary>
    string HashPassword(string username, string password);

    /// <summary>Rewrites the broker's credentials from the database and makes it reload them.</summary>
    Task SyncAsync(CancellationToken cancellationToken = default);
}

/// <summary>Enrollment tokens, enrollment, devices, tags and revocation.</summary>
public sealed partial class DeviceRegistry(Database database, IBrokerAccess broker, AuditLog audit, TimeProvider time, Live.LiveEvents? live = null)
{
    public const string EnrollmentPrefix = "efe_";
    public const string DevicePasswordPrefix = "efd_";

    /// <summary>Prefix of a device's HTTP bearer token (what the authentication handler looks up among devices).</summary>
    public const string HttpTokenPrefix = "efh_";

    private const string DeviceColumns = """
        d.id, d.enrolled_at, d.revoked, d.online, d.last_seen, d.agent_version, d.model_name, d.model_version,
        d.health, d.drift_severity, d.received,
        CASE WHEN d.first_seq IS NULL THEN 0 ELSE d.max_seq - d.first_seq + 1 - d.received END, d.invalid,
        a.assignment_id, a.model, a.version, a.mode, a.issued_at, a.issued_by,
        o.state, o.model, o.version, o.mode, o.reason, o.ts
        """;

    private const string DeviceFrom = "devices d LEFT JOIN device_assignments a ON a.device_id = d.id LEFT JOIN device_ota o ON o.device_id = d.id";

    public static bool IsValidDeviceId(string? id) => Topics.IsValidDeviceId(id);

    public static bool IsValidTag(string tag) => TagRegex().IsMatch(tag);

    public async Task<EnrollmentTokenInfo> CreateEnrollmentTokenAsync(EnrollmentTokenRequest request, string actor)
    {
        ArgumentNullException.ThrowIfNull(request);
        var requestedTags = ValidateTags(request.Tags, "tags");
        var hours = request.ExpiresInHours ?? 24;
        if (!double.IsFinite(hours) || hours is <= 0 or > 24 * 365)
        {
            throw new InvalidInputException("expiresInHours", "must be more than 0 and at most 8760 (a year)");
        }

        if (request.MaxUses is < 1)
        {
            throw new InvalidInputException("maxUses", "must be at least 1");
        }

        Input.Text(request.Description, "description", 500);

        var token = Secrets.NewToken(EnrollmentPrefix);
        var now = time.GetUtcNow();
        var info = new EnrollmentTokenInfo
        {
            Id = Secrets.NewId(),
            Token = token,
            Tags = requestedTags.Distinct(StringComparer.Ordinal).ToList(),
            ExpiresAt = now.AddHours(hours),
            MaxUses = request.MaxUses,
            Description = request.Description,
            CreatedBy = actor,
            CreatedAt = now,
        };
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(tx, """
            INSERT INTO enrollment_tokens(id, hash, tags, expires_at, max_uses, description, created_by, created_at)
            VALUES (@id, @hash, @tags, @exp, @max, @desc, @by, @at)
            """,
            ("@id", info.Id), ("@hash", Secrets.Hash(token)), ("@tags", string.Join('\n', info.Tags)), ("@exp", info.ExpiresAt.ToUnixTimeMilliseconds()),
            ("@max", info.MaxUses), ("@desc", info.Description), ("@by", actor), ("@at", now.ToUnixTimeMilliseconds())).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, actor, "enrollment.create", $"enrollment/{info.Id}",
            $"tags={string.Join(',', info.Tags)} expires={info.ExpiresAt:O} maxUses={info.MaxUses}").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        return info;
    }

    public async Task<IReadOnlyList<EnrollmentTokenInfo>> ListEnrollmentTokensAsync()
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync(
            "SELECT id, tags, expires_at, max_uses, uses, description, created_by, created_at FROM enrollment_tokens WHERE revoked = 0 ORDER BY created_at",
            r => new EnrollmentTokenInfo
            {
                Id = r.GetString(0), Tags = SplitTags(r.GetString(1)), ExpiresAt = r.Time(2), MaxUses = (int?)r.NullableLong(3), Uses = (int)r.Long(4),
                Description = r.NullableString(5), CreatedBy = r.NullableString(6), CreatedAt = r.Time(7),
            }).ConfigureAwait(false);
    }

    public async Task<bool> RevokeEnrollmentTokenAsync(string id, string actor)
    {
        if (!Secrets.IsValidId(id))
        {
            throw new InvalidInputException("id", $"'{Input.Quote(id)}' is not an enrollment token id (16 hex digits, as listed by GET /api/v1/enrollment-tokens)");
        }

        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var changed = await connection.ExecuteAsync(tx, "UPDATE enrollment_tokens SET revoked = 1 WHERE id = @id AND revoked = 0", ("@id", id)).ConfigureAwait(false);
        if (changed > 0)
        {
            await audit.WriteAsync(connection, tx, actor, "enrollment.revoke", $"enrollment/{id}").ConfigureAwait(false);
        }

        await tx.CommitAsync().ConfigureAwait(false);
        return changed > 0;
    }

    /// <summary>
    /// Exchanges an enrollment token for a device identity and its own broker credentials. The password is
    /// returned once and stored only in the broker's hashed form.
    /// </summary>
    public async Task<(string DeviceId, string Password, string HttpToken, IReadOnlyList<string> Tags)> EnrollAsync(EnrollRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        Input.Required(request.Token, "token", "the enrollment token an operator created (edgefleet enroll create)");
        if (request.Token.Length > 200)
        {
            throw new CredentialRefusedException("enrollment refused", "the enrollment token is not valid");
        }

        if (request.DeviceId is not null && !IsValidDeviceId(request.DeviceId))
        {
            throw new InvalidInputException("deviceId", $"'{Input.Quote(request.DeviceId)}' is not a valid device id (1–63 of a-z 0-9 -, starting with a letter or digit)");
        }

        Input.Text(request.AgentVersion, "agentVersion", 100);

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var deviceId = request.DeviceId ?? $"dev-{Secrets.NewId()}";
        var password = Secrets.NewToken(DevicePasswordPrefix);
        var httpToken = Secrets.NewToken(HttpTokenPrefix);
        IReadOnlyList<string> tags;
        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        await using (var tx = await connection.BeginTransactionAsync().ConfigureAwait(false))
        {
            var token = await connection.QuerySingleAsync(
                "SELECT id, tags, expires_at, max_uses, uses, revoked FROM enrollment_tokens WHERE hash = @h",
                r => new { Id = r.GetString(0), Tags = r.GetString(1), Expires = r.Long(2), Max = r.NullableLong(3), Uses = r.Long(4), Revoked = r.Bool(5) },
                ("@h", Secrets.Hash(request.Token.Trim()))).ConfigureAwait(false);
            var refusal = token switch
            {
                null => "the enrollment token is not valid",
                { Revoked: true } => "the enrollment token was revoked",
                _ when token.Expires <= now => "the enrollment token has expired; ask an operator for a new one (edgefleet enroll create)",
                _ when token.Max is { } max && token.Uses >= max => "the enrollment token has been used as many times as it allows",
                _ => null,
            };
            if (refusal is not null)
            {
                throw new CredentialRefusedException("enrollment refused", refusal);
            }

            // The use count is claimed in the same statement that checks it, so two devices racing for the last use
            // cannot both get it.
            if (await connection.ExecuteAsync(tx, "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = @id AND (max_uses IS NULL OR uses < max_uses)",
                    ("@id", token!.Id)).ConfigureAwait(false) == 0)
            {
                throw new CredentialRefusedException("enrollment refused", "the enrollment token has been used as many times as it allows");
            }

            var inserted = await connection.ExecuteAsync(tx, """
                INSERT INTO devices(id, mqtt_password_hash, http_token_hash, enrolled_at, enrollment_token_id) VALUES (@id, @hash, @http, @at, @token)
                ON CONFLICT(id) DO NOTHING
                """, ("@id", deviceId), ("@hash", broker.HashPassword(deviceId, password)), ("@http", Secrets.Hash(httpToken)), ("@at", now),
                ("@token", token.Id)).ConfigureAwait(false);
            if (inserted == 0)
            {
                throw new ConflictException($"device {deviceId} is already enrolled; to enroll it again, an admin must first delete it (edgefleet devices revoke {deviceId}, then DELETE /api/v1/devices/{deviceId})");
            }

            tags = SplitTags(token.Tags);
            foreach (var tag in tags)
            {
                await connection.ExecuteAsync(tx, "INSERT INTO device_tags(device_id, tag) VALUES (@d, @t) ON CONFLICT DO NOTHING", ("@d", deviceId), ("@t", tag)).ConfigureAwait(false);
            }

            await audit.WriteAsync(connection, tx, $"enrollment:{token.Id}", "device.enroll", $"device/{deviceId}",
                $"agentVersion={request.AgentVersion} tags={string.Join(',', tags)}").ConfigureAwait(false);
            await tx.CommitAsync().ConfigureAwait(false);
        }

        live?.Publish(Live.LiveEvents.Devices, [deviceId]);
        await broker.SyncAsync().ConfigureAwait(false);
        return (deviceId, password, httpToken, tags);
    }

    /// <summary>The device whose HTTP token this is, if it is enrolled and not revoked.</summary>
    public async Task<string?> AuthenticateHttpTokenAsync(string token)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.ScalarAsync("SELECT id FROM devices WHERE http_token_hash = @h AND revoked = 0", ("@h", Secrets.Hash(token))).ConfigureAwait(false) as string;
    }

    /// <summary>Most device ids one list request may name (<c>?ids=</c>).</summary>
    public const int MaxListIds = 500;

    /// <summary>
    /// The devices matching every filter given, by id. <paramref name="ids"/> (comma-separated) restricts the list to
    /// those devices: the dashboard asks for the devices a live change named, not the whole fleet again.
    /// </summary>
    public async Task<IReadOnlyList<DeviceInfo>> ListAsync(string? tag, string? group, bool? online, string? ids = null)
    {
        var only = ids is null ? null : ids.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();
        if (only is { Count: > MaxListIds })
        {
            throw new InvalidInputException("ids", $"{only.Count} device ids: at most {MaxListIds} per request");
        }

        if (only?.FirstOrDefault(i => !IsValidDeviceId(i)) is { } bad)
        {
            throw new InvalidInputException("ids", $"'{Input.Quote(bad)}' is not a valid device id");
        }

        if (tag is not null && !IsValidTag(tag))
        {
            throw new InvalidInputException("tag", $"'{Input.Quote(tag)}' is not a valid tag (key or key=value)");
        }

        if (group is not null && !IsValidTag($"group={group}"))
        {
            throw new InvalidInputException("group", $"'{Input.Quote(group)}' is not a valid group name (1–128 of letters, digits and . _ : / -)");
        }

        var filter = group is null ? tag : $"group={group}";
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var where = """
            WHERE (CAST(@tag AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM device_tags f WHERE f.device_id = d.id AND f.tag = @tag))
              AND (CAST(@online AS INTEGER) IS NULL OR d.online = @online)
            """;
        List<(string, object?)> parameters = [("@tag", filter), ("@online", online is null ? null : online.Value ? 1 : 0)];
        if (only is not null)
        {
            if (only.Count == 0)
            {
                return [];
            }

            var named = only.Select((id, i) => ($"@id{i.ToString(CultureInfo.InvariantCulture)}", (object?)id)).ToList();
            where += " AND d.id IN (" + string.Join(", ", named.Select(p => p.Item1)) + ")";
            parameters.AddRange(named);
        }

        var devices = await connection.QueryAsync($"SELECT {DeviceColumns} FROM {DeviceFrom} {where} ORDER BY d.id", ReadDevice, [.. parameters]).ConfigureAwait(false);

        // Only the tags of the devices listed, not of the whole fleet.
        var tags = (await connection.QueryAsync($"SELECT t.device_id, t.tag FROM device_tags t JOIN devices d ON d.id = t.device_id {where} ORDER BY t.tag",
                r => (Device: r.GetString(0), Tag: r.GetString(1)), [.. parameters]).ConfigureAwait(false))
            .ToLookup(t => t.Device, t => t.Tag, StringComparer.Ordinal);
        return devices.Select(d => d with { Tags = tags[d.Id].ToList() }).ToList();
    }

    public async Task<DeviceInfo?> GetAsync(string id)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await GetAsync(connection, id).ConfigureAwait(false);
    }

    public async Task<DeviceInfo> ChangeTagsAsync(string id, TagChangeRequest change, string actor)
    {
        ArgumentNullException.ThrowIfNull(change);
        var add = ValidateTags(change.Add, "add");
        var remove = ValidateTags(change.Remove, "remove");
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (await connection.ScalarAsync("SELECT 1 FROM devices WHERE id = @id", ("@id", id)).ConfigureAwait(false) is null)
        {
            throw new NotFoundException($"device {id}");
        }

        foreach (var tag in remove)
        {
            await connection.ExecuteAsync(tx, "DELETE FROM device_tags WHERE device_id = @d AND tag = @t", ("@d", id), ("@t", tag)).ConfigureAwait(false);
        }

        foreach (var tag in add)
        {
            await connection.ExecuteAsync(tx, "INSERT INTO device_tags(device_id, tag) VALUES (@d, @t) ON CONFLICT DO NOTHING", ("@d", id), ("@t", tag)).ConfigureAwait(false);
        }

        await audit.WriteAsync(connection, tx, actor, "device.tags", $"device/{id}", $"add={string.Join(',', add)} remove={string.Join(',', remove)}").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Devices, [id]);
        return (await GetAsync(connection, id).ConfigureAwait(false))!;
    }

    /// <summary>Revokes a device: its credentials leave the broker's password file, which is reloaded at once.</summary>
    public async Task<DeviceInfo> RevokeAsync(string id, string actor, string? reason)
    {
        Input.Text(reason, "reason", 1000);
        await using (var connection = await database.OpenAsync().ConfigureAwait(false))
        await using (var tx = await connection.BeginTransactionAsync().ConfigureAwait(false))
        {
            var revoked = await connection.ScalarAsync("SELECT revoked FROM devices WHERE id = @id", ("@id", id)).ConfigureAwait(false)
                ?? throw new NotFoundException($"device {id}");
            if (Convert.ToInt64(revoked, System.Globalization.CultureInfo.InvariantCulture) != 0)
            {
                throw new ConflictException($"device {id} is already revoked");
            }

            await connection.ExecuteAsync(tx, "UPDATE devices SET revoked = 1, revoked_at = @t, online = 0 WHERE id = @id",
                ("@t", time.GetUtcNow().ToUnixTimeMilliseconds()), ("@id", id)).ConfigureAwait(false);
            await audit.WriteAsync(connection, tx, actor, "device.revoke", $"device/{id}", reason).ConfigureAwait(false);
            await tx.CommitAsync().ConfigureAwait(false);
        }

        live?.Publish(Live.LiveEvents.Devices, [id]);

        await broker.SyncAsync().ConfigureAwait(false);
        return (await GetAsync(id).ConfigureAwait(false))!;
    }

    /// <summary>Deletes a revoked device and its tags (its telemetry history stays), so the id can enroll again.</summary>
    public async Task DeleteAsync(string id, string actor)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var revoked = await connection.ScalarAsync("SELECT revoked FROM devices WHERE id = @id", ("@id", id)).ConfigureAwait(false)
            ?? throw new NotFoundException($"device {id}");
        if (Convert.ToInt64(revoked, System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            throw new ConflictException($"device {id} is not revoked; revoke it first");
        }

        await connection.ExecuteAsync(tx, "DELETE FROM device_tags WHERE device_id = @id", ("@id", id)).ConfigureAwait(false);
        await AssignmentRows.DeleteAsync(connection, tx, id).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "DELETE FROM device_ota WHERE device_id = @id", ("@id", id)).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "DELETE FROM devices WHERE id = @id", ("@id", id)).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, actor, "device.delete", $"device/{id}").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Devices, [id]);
    }

    private static async Task<DeviceInfo?> GetAsync(DbConnection connection, string id)
    {
        var device = await connection.QuerySingleAsync($"SELECT {DeviceColumns} FROM {DeviceFrom} WHERE d.id = @id", ReadDevice, ("@id", id)).ConfigureAwait(false);
        if (device is null)
        {
            return null;
        }

        var tags = await connection.QueryAsync("SELECT tag FROM device_tags WHERE device_id = @id ORDER BY tag", r => r.GetString(0), ("@id", id)).ConfigureAwait(false);
        return device with { Tags = tags };
    }

    private static DeviceInfo ReadDevice(DbDataReader r)
    {
        var health = r.NullableString(8) is { } json ? JsonSerializer.Deserialize(json, ApiJsonContext.Default.DeviceHealth) : null;
        var modelName = r.NullableString(6);
        var modelVersion = r.NullableString(7);
        return new DeviceInfo
        {
            Id = r.GetString(0),
            EnrolledAt = r.Time(1),
            Revoked = r.Bool(2),
            Online = r.Bool(3),
            LastSeen = r.NullableTime(4),
            AgentVersion = r.NullableString(5),
            Model = modelName is null ? null : new ModelRefInfo(modelName, modelVersion ?? ""),
            Health = health is null ? null : health with { DriftSeverity = r.NullableString(9) ?? health.DriftSeverity },
            MessagesReceived = r.Long(10),
            MessagesLost = r.Long(11),
            MessagesInvalid = r.Long(12),
            Desired = r.IsDBNull(13) ? null : new DeviceDesiredInfo
            {
                Id = r.GetString(13), Model = r.GetString(14), Version = r.GetString(15), Mode = r.GetString(16), IssuedAt = r.Time(17), IssuedBy = r.NullableString(18),
            },
            Ota = r.IsDBNull(19) ? null : new DeviceOtaState
            {
                State = r.GetString(19), Model = r.NullableString(20), Version = r.NullableString(21), Mode = r.NullableString(22), Reason = r.NullableString(23),
                At = r.Time(24),
            },
        };
    }

    private static IReadOnlyList<string> ValidateTags(IReadOnlyList<string?>? tags, string field)
    {
        var checkedTags = Input.List(tags, field, "tag (key or key=value)", 100);
        foreach (var tag in checkedTags)
        {
            if (!IsValidTag(tag))
            {
                throw new InvalidInputException(field, $"'{Input.Quote(tag)}' is not a valid tag (key or key=value; key: a-z 0-9 . _ -, value: letters, digits and . _ : / -)");
            }
        }

        return checkedTags;
    }

    private static List<string> SplitTags(string tags) => tags.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}(=[A-Za-z0-9._:/-]{1,128})?$")]
    private static partial Regex TagRegex();
}
