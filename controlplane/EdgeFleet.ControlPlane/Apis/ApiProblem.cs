namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// A request the control plane refuses, with the HTTP status and, for validation failures, the messages per field;
/// turned into application/problem+json by <see cref="ProblemMapping"/>. Thrown by the services, so the rules live
/// in one place and every endpoint reports them alike.
/// </summary>
public sealed class ApiProblem : Exception
{
    public ApiProblem(int status, string title, string? detail = null, IDictionary<string, string[]>? errors = null)
        : base(detail ?? title)
    {
        Status = status;
        Title = title;
        Detail = detail;
        Errors = errors;
    }

    public ApiProblem()
        : this(500, "error")
    {
    }

    public ApiProblem(string message)
        : this(500, message)
    {
    }

    public ApiProblem(string message, Exception innerException)
        : base(message, innerException)
    {
        Status = 500;
        Title = message;
    }

    public int Status { get; }

    public string Title { get; }

    public string? Detail { get; }

    public IDictionary<string, string[]>? Errors { get; }

    public static ApiProblem NotFound(string what) => new(StatusCodes.Status404NotFound, "not found", $"{what} does not exist");

    public static ApiProblem Conflict(string detail) => new(StatusCodes.Status409Conflict, "conflict", detail);

    public static ApiProblem TooLarge(string title, string field, string message) =>
        new(StatusCodes.Status413PayloadTooLarge, title, $"{field}: {message}", new Dictionary<string, string[]> { [field] = [message] });

    public static ApiProblem Invalid(string field, string message) =>
        new(StatusCodes.Status400BadRequest, "invalid request", $"{field}: {message}", new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>Field errors given as "field: message" lines (the form ManifestFile.Validate uses).</summary>
    public static ApiProblem Invalid(int status, string title, IEnumerable<string> lines, string fieldPrefix = "")
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            var (field, message) = colon > 0 ? (fieldPrefix + line[..colon], line[(colon + 2)..]) : (fieldPrefix.TrimEnd('.'), line);
            if (!errors.TryGetValue(field, out var list))
            {
                errors[field] = list = [];
            }

            list.Add(message);
        }

        return new ApiProblem(status, title, string.Join("; ", errors.SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}"))),
            errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));
    }
}
