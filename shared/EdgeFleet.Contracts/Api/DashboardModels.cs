namespace EdgeFleet.Contracts.Api;

/// <summary>Body of <c>POST /api/v1/session</c>: the API token a dashboard user pasted, exchanged for a session cookie.</summary>
public sealed record LoginRequest
{
    /// <summary>An API token (<c>efp_…</c>); device tokens are refused.</summary>
    public string? Token { get; init; }
}

/// <summary>Who is signed in (<c>GET /api/v1/session</c>, and the answer to a login).</summary>
public sealed record SessionInfo
{
    /// <summary>The token's name.</summary>
    public required string Name { get; init; }

    /// <summary>The token's role: what the dashboard shows as actions.</summary>
    public required ApiRole Role { get; init; }

    /// <summary>
    /// For a cookie session: the value to send in the <c>X-EdgeFleet-CSRF</c> header of every state-changing request;
    /// null for a bearer-token caller (bearer requests need none).
    /// </summary>
    public string? Csrf { get; init; }

    /// <summary>When the session cookie expires; null for a bearer-token caller.</summary>
    public DateTimeOffset? Expires { get; init; }
}

/// <summary>
/// One event of <c>GET /api/v1/live</c> (server-sent events, event name = <see cref="Kind"/>): what changed, so a
/// client fetches it again. Changes are coalesced, so one event may stand for many writes.
/// </summary>
public sealed record LiveChangeInfo
{
    /// <summary><c>devices</c> (ingestion wrote telemetry, status, drift or events) or <c>rollouts</c> (a rollout changed).</summary>
    public required string Kind { get; init; }

    /// <summary>Ids of the devices or rollouts that changed (at most 100; empty with <see cref="More"/>: refetch all).</summary>
    public IReadOnlyList<string> Ids { get; init; } = [];

    /// <summary>More ids changed than are listed.</summary>
    public bool More { get; init; }
}
