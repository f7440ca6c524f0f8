using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

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

    protected DomainException(string message, Exception innerException)
        : base(message, innerException)
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
public sealed class UnavailableException(string detail, string title = "unavailable") : DomainException(detail)
{
    public string Title { get; } = title;
}

/// <summary>A value is larger than the domain allows (the metadata of a model version).</summary>
public sealed class TooLargeException(string title, string field, string problem) : DomainException($"{field}: {problem}")
{
    public string Title { get; } = title;

    public string Field { get; } = field;

    public string Problem { get; } = problem;
}

/// <summary>
/// A document (a manifest, a drift profile) breaks several rules at once, given as "field: message" lines as the
/// shared validators report them; <see cref="FieldPrefix"/> places the fields inside the request (<c>manifest.</c>).
/// </summary>
public class ValidationException(string title, IEnumerable<string> lines, string fieldPrefix = "") : DomainException(title)
{
    public string Title { get; } = title;

    public IReadOnlyList<string> Lines { get; } = [.. lines];

    public string FieldPrefix { get; } = fieldPrefix;
}

/// <summary>Each document is valid on its own but they contradict each other (a manifest and the model file it describes).</summary>
public sealed class MismatchException(string title, IEnumerable<string> lines, string fieldPrefix = "") : ValidationException(title, lines, fieldPrefix);

/// <summary>
/// A document is not JSON, or not the JSON its contract describes. The API layer reads the field and the expected
/// type from the reader's error and the contract.
/// </summary>
public sealed class MalformedDocumentException(string title, string root, JsonTypeInfo contract, JsonException inner)
    : DomainException(inner.Message, inner)
{
    public string Title { get; } = title;

    public string Root { get; } = root;

    public JsonTypeInfo Contract { get; } = contract;

    public JsonException Json { get; } = inner;
}

/// <summary>A credential presented to the domain (an enrollment token) is not accepted.</summary>
public sealed class CredentialRefusedException(string title, string detail) : DomainException(detail)
{
    public string Title { get; } = title;
}
