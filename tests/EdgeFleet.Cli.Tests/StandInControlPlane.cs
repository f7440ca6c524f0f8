using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace EdgeFleet.Cli.Tests;

/// <summary>What the stand-in received in one request.</summary>
internal sealed record RecordedRequest(string Method, string Path, string Query, string? Authorization, string? ContentType, string Body);

/// <summary>One part of a multipart upload as the stand-in received it: the bytes are hashed, not trusted to the client.</summary>
internal sealed record ReceivedPart(string Name, string? FileName, string? ContentType, long Length, string Sha256, string? Text);

/// <summary>
/// STAND-IN for the control plane's REST API, to be replaced: the real EdgeFleet.ControlPlane is being written in
/// parallel, so these endpoints return canned bodies (serialised with the contract types and ApiJsonContext) and
/// record what they received. Good only for the CLI's request/response plumbing — status codes, multipart layout,
/// problem+json, headers — not for API semantics. A real Kestrel on a free loopback port (port 0), so the CLI goes
/// through real sockets and HTTP/1.1 (100-continue included). Logged errors fail the test on dispose.
/// Canned behaviour: token <see cref="Token"/> only; model "missing" → 404; push of model "rejected" → 422 with
/// field errors; push of "existing" 1.0.0 → 409 before the body is read; anything else succeeds.
/// </summary>
internal sealed class StandInControlPlane : IAsyncDisposable
{
    public const string Token = "good-token";
    public const string EnrollmentSecret = "efe_2b7c0d1e9f";
    private const string BodyKey = "body";

    private static readonly DateTimeOffset Then = DateTimeOffset.Parse("2026-11-20T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
    private readonly WebApplication _app;
    private readonly ErrorLog _errors;

    private StandInControlPlane(WebApplication app, ErrorLog errors)
    {
        _app = app;
        _errors = errors;
    }

    public Uri Url => new(_app.Urls.Single());

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Parts of the last multipart upload, in the order they arrived.</summary>
    public IReadOnlyList<ReceivedPart>? PushedParts { get; private set; }

    public static async Task<StandInControlPlane> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var errors = new ErrorLog();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(errors);
        var app = builder.Build();
        var server = new StandInControlPlane(app, errors);
        server.Map(app);
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Assert.True(_errors.Messages.IsEmpty, "the stand-in control plane logged errors:\n" + string.Join("\n", _errors.Messages));
    }

    public static ModelVersionInfo Version(string name, string version, string stage = Stages.None) => new()
    {
        Name = name,
        Version = version,
        Stage = stage,
        Task = "classification",
        Description = "canned",
        Sha256 = new string('a', 64),
        Size = 123_456,
        CreatedBy = "ci",
        CreatedAt = Then,
        Metadata = new ModelVersionMetadata { Metrics = new Dictionary<string, double> { ["top1"] = 0.91 }, DatasetVersion = "ds-7" },
    };

    public static DeviceInfo Device(string id, params string[] tags) => new()
    {
        Id = id,
        Tags = tags,
        Online = true,
        LastSeen = Then,
        EnrolledAt = Then,
        AgentVersion = "0.1.0",
        Model = new ModelRefInfo("line-cam", "1.2.0"),
        Health = new DeviceHealth { Fps = 29.9, LatencyP95Ms = 12.5, DriftSeverity = "none" },
        MessagesReceived = 1000,
    };

    private void Map(WebApplication app)
    {
        // Recorded before auth, so a test can see what a refused request carried.
        app.Use(async (context, next) =>
        {
            if (!(context.Request.ContentType?.StartsWith("multipart/", StringComparison.Ordinal) ?? false))
            {
                using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
                var body = await reader.ReadToEndAsync();
                context.Items[BodyKey] = body;
                Record(context, body);
            }
            else
            {
                Record(context, "(multipart)");
            }

            if (context.Request.Headers.Authorization != $"Bearer {Token}")
            {
                await Results.Problem(title: "Unauthorized", detail: "missing or unknown API token", statusCode: 401).ExecuteAsync(context);
                return;
            }

            await next(context);
        });

        var api = app.MapGroup("/api/v1");
        api.MapGet("/models", () => Json<IReadOnlyList<ModelSummary>>(
            [
                new ModelSummary
                {
                    Name = "line-cam", Task = "detection", VersionCount = 3, LatestVersion = "1.3.0", ProductionVersion = "1.2.0",
                    StagingVersions = ["1.3.0"], CreatedAt = Then, UpdatedAt = Then,
                },
                new ModelSummary { Name = "sorter", Task = "classification", VersionCount = 1, LatestVersion = "0.1.0", CreatedAt = Then, UpdatedAt = Then },
            ], ApiJsonContext.Default.IReadOnlyListModelSummary));
        api.MapGet("/models/{name}", (string name) => name == "missing"
            ? Results.Problem(title: "Not Found", statusCode: 404)
            : Json(new ModelSummary
            {
                Name = name, Task = "classification", VersionCount = 2, LatestVersion = "1.1.0", ProductionVersion = "1.0.0", CreatedAt = Then,
                UpdatedAt = Then, Versions = [Version(name, "1.1.0", Stages.Staging), Version(name, "1.0.0", Stages.Production)],
            }, ApiJsonContext.Default.ModelSummary));
        api.MapGet("/models/{name}/versions/{version}", (string name, string version) =>
            Json(Version(name, version), ApiJsonContext.Default.ModelVersionInfo));
        api.MapPost("/models/{name}/versions/{version}", PushAsync);
        api.MapPost("/models/{name}/versions/{version}/stage", (string name, string version, HttpContext context) =>
        {
            var change = Read(context, ApiJsonContext.Default.StageChangeRequest);
            return Json(Version(name, version, change.Stage), ApiJsonContext.Default.ModelVersionInfo);
        });
        api.MapGet("/models/{name}/history", (string name) => Json<IReadOnlyList<StageHistoryEntry>>(
            [
                new StageHistoryEntry { Version = "1.0.0", From = Stages.None, To = Stages.Staging, By = "ci", At = Then, Reason = "first" },
                new StageHistoryEntry { Version = "1.0.0", From = Stages.Staging, To = Stages.Production, By = "ops", At = Then.AddHours(2), Reason = "bake passed" },
            ], ApiJsonContext.Default.IReadOnlyListStageHistoryEntry));
        api.MapGet("/devices", () => Json<IReadOnlyList<DeviceInfo>>(
            [Device("cam-1", "line=3"), Device("cam-2", "line=3", "pilot") with { Online = false, Health = null }],
            ApiJsonContext.Default.IReadOnlyListDeviceInfo));
        api.MapGet("/devices/{id}", (string id) => Json(Device(id, "line=3"), ApiJsonContext.Default.DeviceInfo));
        api.MapPut("/devices/{id}/tags", (string id, HttpContext context) =>
        {
            var change = Read(context, ApiJsonContext.Default.TagChangeRequest);
            var tags = new[] { "line=3" }.Concat(change.Add).Except(change.Remove).ToArray();
            return Json(Device(id, tags), ApiJsonContext.Default.DeviceInfo);
        });
        api.MapPost("/devices/{id}/revoke", (string id) => Json(Device(id) with { Online = false, Revoked = true }, ApiJsonContext.Default.DeviceInfo));
        api.MapPost("/enrollment-tokens", (HttpContext context) =>
        {
            var create = Read(context, ApiJsonContext.Default.EnrollmentTokenRequest);
            return Json(new EnrollmentTokenInfo
            {
                Id = "tok-1", Token = EnrollmentSecret, Tags = create.Tags, MaxUses = create.MaxUses, Description = create.Description,
                ExpiresAt = Then.AddHours(create.ExpiresInHours ?? 24), CreatedAt = Then, CreatedBy = "ops",
            }, ApiJsonContext.Default.EnrollmentTokenInfo, StatusCodes.Status201Created);
        });
    }

    private async Task<IResult> PushAsync(string name, string version, HttpRequest request)
    {
        if (name == "existing" && version == "1.0.0")
        {
            // Refused before the body is read: with 100-continue the client never sends it.
            return Results.Problem(title: "Version exists", detail: "existing 1.0.0 is already registered", statusCode: 409);
        }

        var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(request.ContentType).Boundary).Value!;
        var reader = new MultipartReader(boundary, request.Body);
        var parts = new List<ReceivedPart>();
        while (await reader.ReadNextSectionAsync() is { } section)
        {
            var disposition = ContentDispositionHeaderValue.Parse(section.ContentDisposition);
            using var buffer = new MemoryStream();
            await section.Body.CopyToAsync(buffer);
            var bytes = buffer.ToArray();
            parts.Add(new ReceivedPart(
                HeaderUtilities.RemoveQuotes(disposition.Name).Value!,
                HeaderUtilities.RemoveQuotes(disposition.FileName).Value,
                section.ContentType,
                bytes.Length,
                Convert.ToHexStringLower(SHA256.HashData(bytes)),
                section.ContentType == "application/json" ? Encoding.UTF8.GetString(bytes) : null));
        }

        PushedParts = parts;
        if (name == "rejected")
        {
            return Results.ValidationProblem(
                new Dictionary<string, string[]>
                {
                    ["manifest.artifact.sha256"] = ["does not match the uploaded file"],
                    ["manifest.input.shape"] = ["the model's input is [1,3,64,64], the manifest says [1,3,32,32]"],
                },
                detail: "the manifest does not describe the uploaded ONNX file",
                title: "Manifest mismatch",
                statusCode: 422);
        }

        var model = parts.Single(p => p.Name == "model");
        return Json(Version(name, version) with { Sha256 = model.Sha256, Size = model.Length }, ApiJsonContext.Default.ModelVersionInfo, StatusCodes.Status201Created);
    }

    private void Record(HttpContext context, string body) => Requests.Enqueue(new RecordedRequest(
        context.Request.Method, context.Request.Path.Value ?? "", context.Request.QueryString.Value ?? "", context.Request.Headers.Authorization,
        context.Request.ContentType, body));

    private static T Read<T>(HttpContext context, JsonTypeInfo<T> type) => JsonSerializer.Deserialize((string)context.Items[BodyKey]!, type)!;

    private static IResult Json<T>(T value, JsonTypeInfo<T> type, int status = StatusCodes.Status200OK) =>
        Results.Text(JsonSerializer.Serialize(value, type), "application/json", Encoding.UTF8, status);

    /// <summary>Collects errors the server logs (a handler that threw), so the test fails on them.</summary>
    private sealed class ErrorLog : ILoggerProvider, ILogger
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Messages.Enqueue($"{logLevel}: {formatter(state, exception)} {exception}");
            }
        }

        public void Dispose()
        {
        }
    }
}
