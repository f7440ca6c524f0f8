using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Storage;

namespace EdgeFleet.ControlPlane.Security;

/// <summary>API tokens: stored as SHA-256 hashes with a name and a role; shown once when created.</summary>
public sealed class ApiTokens(Database database, AuditLog audit, TimeProvider time)
{
    public const string Prefix = "efp_";

    public sealed record Principal(string Id, string Name, ApiRole Role);

    /// <summary>
    /// On first start (no token yet) creates the admin token: the value of <paramref name="fromEnvironment"/> if
    /// given (automation), else a new random one, which is returned so it can be printed once.
    /// </summary>
    public async Task<string?> EnsureAdminAsync(string? fromEnvironment)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var count = Convert.ToInt64(await connection.ScalarAsync("SELECT COUNT(*) FROM api_tokens").ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        if (count > 0)
        {
            return null;
        }

        var token = string.IsNullOrWhiteSpace(fromEnvironment) ? Secrets.NewToken(Prefix) : fromEnvironment.Trim();
        if (token.Length < 16)
        {
            throw new InvalidOperationException("EDGEFLEET_ADMIN_TOKEN must be at least 16 characters long");
        }

        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "INSERT INTO api_tokens(id, name, role, hash, created_at) VALUES (@id, 'admin', @role, @hash, @at)",
            ("@id", Secrets.NewId()), ("@role", nameof(ApiRole.Admin)), ("@hash", Secrets.Hash(token)), ("@at", time.GetUtcNow().ToUnixTimeMilliseconds())).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, "system", "token.create", "token/admin", "first start").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        return token;
    }

    public async Task<Principal?> AuthenticateAsync(string token)
    {
        var hash = Secrets.Hash(token);
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var principal = await connection.QuerySingleAsync("SELECT id, name, role FROM api_tokens WHERE hash = @h AND revoked = 0",
            r => new Principal(r.GetString(0), r.GetString(1), Enum.Parse<ApiRole>(r.GetString(2))), ("@h", hash)).ConfigureAwait(false);
        if (principal is not null)
        {
            // Last use at minute resolution: one write per token per minute, not per request.
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            await connection.ExecuteAsync("UPDATE api_tokens SET last_used_at = @now WHERE id = @id AND (last_used_at IS NULL OR last_used_at < @stale)",
                ("@now", now), ("@id", principal.Id), ("@stale", now - 60_000)).ConfigureAwait(false);
        }

        return principal;
    }

    public async Task<ApiTokenInfo> CreateAsync(string? name, ApiRole role, string actor)
    {
        name = Input.Text(Input.Required(name, "name", "a name for the token, shown in the audit log"), "name", 100)!.Trim();
        if (!Enum.IsDefined(role))
        {
            throw new InvalidInputException("role", "must be one of \"viewer\", \"operator\", \"admin\"");
        }

        var token = Secrets.NewToken(Prefix);
        var id = Secrets.NewId();
        var now = time.GetUtcNow();
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "INSERT INTO api_tokens(id, name, role, hash, created_at) VALUES (@id, @name, @role, @hash, @at)",
            ("@id", id), ("@name", name), ("@role", role.ToString()), ("@hash", Secrets.Hash(token)), ("@at", now.ToUnixTimeMilliseconds())).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, actor, "token.create", $"token/{id}", $"name={name} role={role}").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        return new ApiTokenInfo { Id = id, Name = name, Role = role, Token = token, CreatedAt = now };
    }

    public async Task<IReadOnlyList<ApiTokenInfo>> ListAsync()
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("SELECT id, name, role, created_at, last_used_at, revoked FROM api_tokens ORDER BY created_at",
            r => new ApiTokenInfo
            {
                Id = r.GetString(0), Name = r.GetString(1), Role = Enum.Parse<ApiRole>(r.GetString(2)), CreatedAt = r.Time(3),
                LastUsedAt = r.NullableTime(4), Revoked = r.Bool(5),
            }).ConfigureAwait(false);
    }

    public async Task<bool> RevokeAsync(string id, string actor)
    {
        if (!Secrets.IsValidId(id))
        {
            throw new InvalidInputException("id", $"'{Input.Quote(id)}' is not a token id (16 hex digits, as listed by GET /api/v1/tokens)");
        }

        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var changed = await connection.ExecuteAsync(tx, "UPDATE api_tokens SET revoked = 1 WHERE id = @id AND revoked = 0", ("@id", id)).ConfigureAwait(false);
        if (changed > 0)
        {
            await audit.WriteAsync(connection, tx, actor, "token.revoke", $"token/{id}").ConfigureAwait(false);
        }

        await tx.CommitAsync().ConfigureAwait(false);
        return changed > 0;
    }
}
