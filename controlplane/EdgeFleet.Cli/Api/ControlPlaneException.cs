using System.Net;

namespace EdgeFleet.Cli.Api;

/// <summary>The control plane answered with an error status (4xx/5xx) or with a body that is not what the API promises.</summary>
internal sealed class ControlPlaneException : Exception
{
    public ControlPlaneException(string request, HttpStatusCode statusCode, string? reasonPhrase, ApiProblem? problem, string? message = null)
        : base(message ?? Describe(request, statusCode, reasonPhrase, problem))
    {
        Request = request;
        StatusCode = statusCode;
        ReasonPhrase = reasonPhrase;
        Problem = problem;
    }

    public ControlPlaneException()
    {
    }

    public ControlPlaneException(string message)
        : base(message)
    {
    }

    public ControlPlaneException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Method and path, e.g. <c>POST api/v1/models/cls/versions/1.0.0</c>.</summary>
    public string Request { get; } = "";

    public HttpStatusCode StatusCode { get; }

    public string? ReasonPhrase { get; }

    /// <summary>The problem+json body, when the server sent one.</summary>
    public ApiProblem? Problem { get; }

    private static string Describe(string request, HttpStatusCode statusCode, string? reasonPhrase, ApiProblem? problem) =>
        $"{request}: {(int)statusCode} {reasonPhrase}{(problem?.Title is { } title ? $": {title}" : "")}";
}

/// <summary>The control plane could not be reached: refused, unresolvable, TLS failure, dropped or silent.</summary>
internal sealed class ControlPlaneUnreachableException : Exception
{
    public ControlPlaneUnreachableException(Uri server, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Server = server;
    }

    public ControlPlaneUnreachableException()
    {
    }

    public ControlPlaneUnreachableException(string message)
        : base(message)
    {
    }

    public ControlPlaneUnreachableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public Uri? Server { get; }
}
