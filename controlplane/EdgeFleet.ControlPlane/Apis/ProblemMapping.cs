using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>Turns <see cref="ApiProblem"/> (and bad JSON bodies) into problem+json; anything else is a 500 without internals.</summary>
public sealed partial class ProblemMapping(IProblemDetailsService problems, ILogger<ProblemMapping> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        ProblemDetails details;
        switch (exception)
        {
            case ApiProblem p:
                details = p.Errors is { } errors
                    ? new HttpValidationProblemDetails(errors) { Status = p.Status, Title = p.Title, Detail = p.Detail }
                    : new ProblemDetails { Status = p.Status, Title = p.Title, Detail = p.Detail };
                break;
            case BadHttpRequestException bad:
                details = new ProblemDetails { Status = bad.StatusCode, Title = "bad request", Detail = bad.Message };
                break;
            case System.Text.Json.JsonException json:
                details = new ProblemDetails { Status = 400, Title = "invalid JSON", Detail = json.Message };
                break;
            default:
                LogUnhandled(logger, httpContext.Request.Method, httpContext.Request.Path, exception);
                details = new ProblemDetails { Status = 500, Title = "internal error", Detail = "the control plane failed; see its log" };
                break;
        }

        httpContext.Response.StatusCode = details.Status ?? 500;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = details, Exception = exception })
            .ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception exception);
}
