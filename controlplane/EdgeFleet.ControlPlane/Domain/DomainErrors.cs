namespace EdgeFleet.ControlPlane.Domain;

/// <summary>
/// A rule of the domain refused an operation. Services throw these and know nothing of HTTP; the API layer
/// (<c>Apis.ProblemMapping</c>) is the one place that turns them into problem+json with a status code.
/// </summary>
public abstract class DomainException : Exception
{
    protected DomainException(string message)
        : base(message)
    {
    }
}

/// <summary>An input value is wrong: which field, and how to fix it.</summary>
public sealed class InvalidInputException(string field, string problem) : DomainException($"{field}: {problem}")
{
    public string Field { get; } = field;

    public string Problem { get; } = problem;
}

/// <summary>Something the operation names does not exist.</summary>
public sealed class NotFoundException(string what) : DomainException($"{what} does not exist")
{
    public string What { get; } = what;
}

/// <summary>The operation contradicts the current state (a device already in a rollout, a finished rollout, a change made meanwhile).</summary>
public sealed class ConflictException(string detail) : DomainException(detail);

/// <summary>A dependency the operation needs (the broker) is away; the same request can be sent again later.</summary>
public sealed class UnavailableException(string detail) : DomainException(detail);
