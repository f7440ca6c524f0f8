using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using EdgeFleet.ControlPlane.Domain;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>
/// The one place where refused requests become application/problem+json: <see cref="DomainException"/> from the
/// services, <see cref="ApiProblem"/> from the endpoints, and the binding failures of minimal APIs (<see cref="BadHttpRequestException"/>, thrown because
/// <c>RouteHandlerOptions.ThrowOnBadRequest</c> is set) turned into field errors, so a client learns which field
/// was wrong and how. Anything else is a 500 without internals, logged.
/// </summary>
public sealed partial class ProblemMapping(IProblemDetailsService problems, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
    ILogger<ProblemMapping> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        ProblemDetails details;
        switch (exception)
        {
            case ApiProblem p:
                details = ToDetails(p);
                break;
            case DomainException d:
                details = ToDetails(FromDomain(d));
                break;
            case BadHttpRequestException bad:
                details = ToDetails(FromBadRequest(bad, BodyType(httpContext)));
                break;
            case JsonException j:
                details = ToDetails(FromJson(j, BodyType(httpContext)));
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

    /// <summary>
    /// Fills in what the framework's own bodiless refusals (written by the status-code pages) leave out: which part
    /// of the request was wrong and how to fix it.
    /// </summary>
    public static void Customize(ProblemDetailsContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var problem = context.ProblemDetails;
        if (problem.Detail is not null || problem is HttpValidationProblemDetails)
        {
            return;
        }

        var request = context.HttpContext.Request;
        (problem.Title, problem.Detail, var field) = problem.Status switch
        {
            StatusCodes.Status404NotFound when context.HttpContext.GetEndpoint() is null =>
                ("not found", $"there is no endpoint {request.Method} {request.Path}; the API is under /api/v1 (see /openapi/v1.json)", null),
            StatusCodes.Status405MethodNotAllowed => ("method not allowed", $"{request.Path} does not take {request.Method} (see /openapi/v1.json)", null),
            StatusCodes.Status413PayloadTooLarge => ("request too large",
                $"the body is larger than the {context.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes this endpoint takes",
                "body"),
            StatusCodes.Status415UnsupportedMediaType => ("unsupported media type",
                $"Content-Type: '{Input.Quote(request.ContentType)}' is not accepted here; send application/json (multipart/form-data to upload a model)", "Content-Type"),
            _ => (problem.Title, problem.Detail, (string?)null),
        };
        if (field is not null)
        {
            context.ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [problem.Detail!] })
            {
                Status = problem.Status, Title = problem.Title, Detail = problem.Detail, Type = problem.Type, Instance = problem.Instance,
                Extensions = problem.Extensions,
            };
        }
    }

    /// <summary>
    /// A charset .NET cannot decode makes the JSON reader throw an InvalidOperationException (a 500); refuse it as
    /// 415 before the endpoint reads the body.
    /// </summary>
    public static Task RejectUnknownCharsetAsync(HttpContext context, Func<Task> next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        if (MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var type) && type.Charset is { Length: > 0 } charset)
        {
            try
            {
                _ = Encoding.GetEncoding(HeaderUtilities.RemoveQuotes(charset).ToString());
            }
            catch (ArgumentException)
            {
                throw new ApiProblem(StatusCodes.Status415UnsupportedMediaType, "unsupported media type",
                    $"Content-Type: charset '{charset}' is not supported; send UTF-8",
                    new Dictionary<string, string[]> { ["Content-Type"] = [$"charset '{charset}' is not supported; send UTF-8"] });
            }
        }

        return next();
    }

    /// <summary>Domain refusals and their status codes.</summary>
    internal static ApiProblem FromDomain(DomainException exception) => exception switch
    {
        InvalidInputException i => ApiProblem.Invalid(i.Field, i.Problem),
        NotFoundException n => ApiProblem.NotFound(n.What),
        ConflictException c => ApiProblem.Conflict(c.Message),
        UnavailableException u => new ApiProblem(StatusCodes.Status503ServiceUnavailable, u.Title, u.Message),
        TooLargeException t => ApiProblem.TooLarge(t.Title, t.Field, t.Problem),
        MismatchException m => ApiProblem.Invalid(StatusCodes.Status422UnprocessableEntity, m.Title, m.Lines, m.FieldPrefix),
        ValidationException v => ApiProblem.Invalid(StatusCodes.Status400BadRequest, v.Title, v.Lines, v.FieldPrefix),
        MalformedDocumentException j => FromJson(j.Json, j.Contract, j.Root, j.Title),
        CredentialRefusedException c => new ApiProblem(StatusCodes.Status401Unauthorized, c.Title, c.Message),
        _ => new ApiProblem(StatusCodes.Status400BadRequest, "refused", exception.Message),
    };

    private static ProblemDetails ToDetails(ApiProblem p) => p.Errors is { } errors
        ? new HttpValidationProblemDetails(errors) { Status = p.Status, Title = p.Title, Detail = p.Detail }
        : new ProblemDetails { Status = p.Status, Title = p.Title, Detail = p.Detail };

    /// <summary>The JSON contract of the endpoint's body, to say what a field should have been.</summary>
    private JsonTypeInfo? BodyType(HttpContext context)
    {
        // The exception handler has cleared the endpoint by now; its feature keeps the one that failed.
        var endpoint = context.GetEndpoint() ?? context.Features.Get<IExceptionHandlerFeature>()?.Endpoint;
        var type = endpoint?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
        try
        {
            return type is null ? null : json.Value.SerializerOptions.GetTypeInfo(type);
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>
    /// Minimal APIs describe a binding failure only in the exception's message (parameter type and name, the raw
    /// value) and, for bodies, the inner <see cref="JsonException"/> (its JSON path). These shapes are the
    /// framework's own; the malformed-request tests pin them, so a change in a later ASP.NET Core shows up there.
    /// </summary>
    internal static ApiProblem FromBadRequest(BadHttpRequestException bad, JsonTypeInfo? body)
    {
        ArgumentNullException.ThrowIfNull(bad);
        if (bad.InnerException is JsonException j)
        {
            return FromJson(j, body);
        }

        if (BindFailedRegex().Match(bad.Message) is { Success: true } failed)
        {
            var value = failed.Groups["value"].Value;
            return ApiProblem.Invalid(failed.Groups["name"].Value, $"'{(value.Length > 100 ? value[..100] + "…" : value)}' is not {Expected(failed.Groups["type"].Value)}");
        }

        if (NotProvidedRegex().Match(bad.Message) is { Success: true } missing)
        {
            return missing.Groups["source"].Value is "body" or ""
                ? ApiProblem.Invalid("body", "is required: a JSON object, not an empty body or null")
                : ApiProblem.Invalid(missing.Groups["name"].Value, "is required");
        }

        if (bad.StatusCode == StatusCodes.Status415UnsupportedMediaType)
        {
            const string Message = "must be application/json";
            return new ApiProblem(bad.StatusCode, "unsupported media type", $"Content-Type: {Message} ({bad.Message})",
                new Dictionary<string, string[]> { ["Content-Type"] = [Message] });
        }

        return new ApiProblem(bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request too large" : "bad request",
            $"body: {bad.Message}", new Dictionary<string, string[]> { ["body"] = [bad.Message] });
    }

    /// <summary>
    /// A body that is not JSON, or not the JSON the endpoint takes: the field from the error's JSON path (under
    /// <paramref name="root"/> when the JSON is one part of the request, as the manifest of an upload) and what
    /// the contract <paramref name="type"/> expects there.
    /// </summary>
    internal static ApiProblem FromJson(JsonException json, JsonTypeInfo? type, string? root = null, string title = "invalid request")
    {
        ArgumentNullException.ThrowIfNull(json);
        var message = PathSuffixRegex().Replace(json.Message, "");
        var at = Field(json.Path, root);
        if (MissingRequiredRegex().Match(message) is { Success: true } missing)
        {
            var prefix = json.Path is null or "$" ? root is null ? "" : root + "." : at + ".";
            var fields = missing.Groups["names"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n => prefix + n.Trim('\''));
            return ApiProblem.Invalid(StatusCodes.Status400BadRequest, title, fields.Select(f => $"{f}: is required"));
        }

        var text = message.Contains("duplicate", StringComparison.OrdinalIgnoreCase) ? "appears more than once; give each field once"
            : message.Contains("could not be converted", StringComparison.Ordinal) || message.Contains("is not in a supported", StringComparison.Ordinal)
                ? $"must be {Describe(Resolve(type, json.Path)) ?? "of another type"}"
            : message.Contains("doesn't allow setting null", StringComparison.Ordinal) ? "must not be null"
            : $"is not valid JSON: {message}";
        return new ApiProblem(StatusCodes.Status400BadRequest, title, $"{at}: {text}", new Dictionary<string, string[]> { [at] = [text] });
    }

    /// <summary><c>$.tags[0]</c> → <c>tags[0]</c>; the document itself is <c>body</c> (or <paramref name="root"/>).</summary>
    private static string Field(string? path, string? root)
    {
        var inner = path is null or "$" ? "" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path[1..];
        return (root, inner) switch
        {
            (null, "") => "body",
            (null, _) => inner,
            (_, "") => root,
            _ => inner.StartsWith('[') ? root + inner : $"{root}.{inner}",
        };
    }

    /// <summary>The contract of the value at a JSON path (<c>$.features[0].edges[2]</c>), walking properties, elements and map values.</summary>
    private static JsonTypeInfo? Resolve(JsonTypeInfo? type, string? path)
    {
        if (type is null || path is null)
        {
            return null;
        }

        try
        {
            foreach (Match segment in PathSegmentRegex().Matches(path))
            {
                if (segment.Groups["index"].Success && type.Kind == JsonTypeInfoKind.Enumerable)
                {
                    type = type.Options.GetTypeInfo(type.ElementType!);
                }
                else if (segment.Groups["name"].Success && type.Kind == JsonTypeInfoKind.Dictionary)
                {
                    type = type.Options.GetTypeInfo(type.ElementType!);
                }
                else if (segment.Groups["name"].Success && type.Kind == JsonTypeInfoKind.Object
                         && type.Properties.FirstOrDefault(p => string.Equals(p.Name, segment.Groups["name"].Value, StringComparison.OrdinalIgnoreCase)) is { } property)
                {
                    type = type.Options.GetTypeInfo(property.PropertyType);
                }
                else
                {
                    return null;
                }
            }

            return type;
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>What a contract type looks like in JSON, for "must be …".</summary>
    private static string? Describe(JsonTypeInfo? info)
    {
        if (info is null)
        {
            return null;
        }

        var t = Nullable.GetUnderlyingType(info.Type) ?? info.Type;
        return t switch
        {
            _ when t == typeof(string) => "a string",
            _ when t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong) => "an integer",
            _ when t == typeof(double) || t == typeof(float) || t == typeof(decimal) => "a number",
            _ when t == typeof(bool) => "true or false",
            _ when t == typeof(DateTimeOffset) || t == typeof(DateTime) => "an RFC 3339 date-time string (e.g. \"2026-01-31T08:00:00Z\")",
            _ when t == typeof(JsonElement) => "a JSON value",
            { IsEnum: true } => "one of " + string.Join(", ", Enum.GetNames(t).Select(n => $"\"{JsonNamingPolicy.CamelCase.ConvertName(n)}\"")),
            _ => info.Kind switch
            {
                JsonTypeInfoKind.Enumerable => "an array",
                _ => "an object",
            },
        };
    }

    /// <summary>The same for a parameter type as minimal APIs print it (<c>Nullable&lt;int&gt;</c>, <c>bool?</c>).</summary>
    private static string Expected(string type)
    {
        var t = NullableRegex().Match(type) is { Success: true } nullable ? nullable.Groups["inner"].Value : type.TrimEnd('?');
        return t switch
        {
            "int" or "long" or "short" or "Int32" or "Int64" => "an integer",
            "double" or "float" or "decimal" or "Double" => "a number",
            "bool" or "Boolean" => "true or false",
            "DateTimeOffset" or "DateTime" => "an RFC 3339 date-time (e.g. 2026-01-31T08:00:00Z; '+' in an offset must be sent as %2B)",
            _ => $"a valid {t}",
        };
    }

    [GeneratedRegex("""^Failed to bind parameter "(?<type>.+) (?<name>[^ "]+)" from "(?<value>.*)"\.$""", RegexOptions.Singleline)]
    private static partial Regex BindFailedRegex();

    [GeneratedRegex("""^(Required parameter "(?<type>.+) (?<name>[^ "]+)" was not provided from (?<source>[a-z]+)\.|Implicit body inferred for parameter "(?<name>[^"]+)" but no body was provided)""")]
    private static partial Regex NotProvidedRegex();

    [GeneratedRegex("""missing required properties,? including:? (?<names>.+?)\.?$""")]
    private static partial Regex MissingRequiredRegex();

    [GeneratedRegex("""\s*Path: \S* \| LineNumber: \d+ \| BytePositionInLine: \d+\.$""")]
    private static partial Regex PathSuffixRegex();

    [GeneratedRegex("""\.(?<name>[^.\[]+)|\['(?<name>(?:[^']|'')*)'\]|\[(?<index>\d+)\]""")]
    private static partial Regex PathSegmentRegex();

    [GeneratedRegex("""^(System\.)?Nullable(`1\[|<)(?<inner>[A-Za-z.]+)""")]
    private static partial Regex NullableRegex();

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception exception);
}
