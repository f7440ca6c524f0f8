using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Security;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>/api/v1/models: the registry.</summary>
public static class ModelsApi
{
    /// <summary>Names the key that made a signature (see <c>ManifestSigning.KeyId</c>).</summary>
    public const string SignatureKeyIdHeader = "X-Signature-KeyId";

    private const int MaxManifestBytes = 4 * 1024 * 1024;

    public static RouteGroupBuilder MapModelsApi(this RouteGroupBuilder api)
    {
        var models = api.MapGroup("/models").WithTags("Models");
        models.MapGet("/", async (ModelRegistry registry) => TypedResults.Ok<IReadOnlyList<ModelSummary>>((await registry.ListAsync()).Select(m => m.WithUrls()).ToList()));
        models.MapGet("/{name}", async Task<Results<Ok<ModelSummary>, ProblemHttpResult>> (string name, ModelRegistry registry) =>
        {
            ModelRegistry.ValidateName(name);
            return await registry.GetAsync(name) is { } m ? TypedResults.Ok(m.WithUrls()) : throw ApiProblem.NotFound($"model {name}");
        });
        models.MapGet("/{name}/history", async (string name, ModelRegistry registry) =>
        {
            ModelRegistry.ValidateName(name);
            _ = await registry.GetAsync(name) ?? throw ApiProblem.NotFound($"model {name}");
            return TypedResults.Ok(await registry.HistoryAsync(name));
        });
        models.MapGet("/{name}/versions/{version}", async (string name, string version, ModelRegistry registry) =>
            TypedResults.Ok((await Find(registry, name, version)).WithUrls()));
        models.MapPost("/{name}/versions/{version}", PushAsync)
            .RequireAuthorization(Policies.Operator)
            .DisableAntiforgery()
            .Accepts<IFormFile>("multipart/form-data")
            .WithDescription("Multipart upload: part 'manifest' (JSON) first, then part 'model' (the ONNX file).");
        models.MapPatch("/{name}/versions/{version}", async (string name, string version, ModelVersionMetadata metadata, ModelRegistry registry, HttpContext http) =>
        {
            await Find(registry, name, version);
            return TypedResults.Ok((await registry.SetMetadataAsync(name, version, metadata, http.User.Actor())).WithUrls());
        }).RequireAuthorization(Policies.Operator);
        models.MapPost("/{name}/versions/{version}/stage", async (string name, string version, StageChangeRequest change, ModelRegistry registry, HttpContext http) =>
        {
            await Find(registry, name, version);
            return TypedResults.Ok((await registry.ChangeStageAsync(name, version, change.Stage, change.Reason, http.User.Actor())).WithUrls());
        }).RequireAuthorization(Policies.Operator);
        models.MapGet("/{name}/versions/{version}/manifest", async (string name, string version, ModelRegistry registry, HttpContext http) =>
        {
            var signed = await SignedAsync(registry, name, version);
            http.Response.Headers[SignatureKeyIdHeader] = signed.KeyId;
            return TypedResults.Bytes(signed.Bytes, "application/json", entityTag: new EntityTagHeaderValue(signed.ETag));
        }).RequireAuthorization(Policies.DeviceRead)
            .WithDescription("The manifest exactly as signed (verify with the .sig beside it and GET /api/v1/registry/key). Device tokens may read it.");
        models.MapGet("/{name}/versions/{version}/manifest.sig", async (string name, string version, ModelRegistry registry, HttpContext http) =>
        {
            var signed = await SignedAsync(registry, name, version);
            http.Response.Headers[SignatureKeyIdHeader] = signed.KeyId;
            return TypedResults.Bytes(signed.Signature, "application/octet-stream", $"{name}-{version}.manifest.json.sig");
        }).RequireAuthorization(Policies.DeviceRead)
            .WithDescription("Detached ES256 signature (DER, as openssl dgst -sha256 -sign writes it) of the manifest's exact bytes; X-Signature-KeyId names the key.");
        models.MapGet("/{name}/versions/{version}/artifact", ArtifactDownload.HandleAsync).RequireAuthorization(Policies.DeviceRead)
            .WithDescription("The ONNX file; HTTP Range, ETag (its sha256) and X-Content-SHA256. Device tokens may read it.");
        models.MapPut("/{name}/versions/{version}/drift-profile", async (string name, string version, DriftProfile profile, ModelRegistry registry, HttpContext http) =>
        {
            await Find(registry, name, version);
            ModelRegistry.ValidateDriftProfile(profile);
            await registry.SetDriftProfileAsync(name, version, profile, http.User.Actor());
            return TypedResults.NoContent();
        }).RequireAuthorization(Policies.Operator);
        models.MapGet("/{name}/versions/{version}/drift-profile", async (string name, string version, ModelRegistry registry) =>
        {
            await Find(registry, name, version);
            return await registry.GetDriftProfileAsync(name, version) is { } json
                ? Results.Text(json, "application/json")
                : throw ApiProblem.NotFound($"a drift profile for {name} {version}");
        }).RequireAuthorization(Policies.DeviceRead);

        api.MapGet("/registry/key", (RegistryKey key, HttpContext http) =>
        {
            http.Response.Headers[SignatureKeyIdHeader] = key.KeyId;
            return TypedResults.Text(key.PublicKeyPem, "application/x-pem-file");
        }).AllowAnonymous().WithTags("Models")
            .WithDescription("The registry's ECDSA P-256 public key (PEM, SubjectPublicKeyInfo) that signs manifests; X-Signature-KeyId is its id. Public: no token needed.");
        return api;
    }

    private static async Task<ModelRegistry.SignedManifest> SignedAsync(ModelRegistry registry, string name, string version)
    {
        await Find(registry, name, version);
        return await registry.GetSignedManifestAsync(name, version) ?? throw ApiProblem.NotFound($"model {name} version {version}");
    }

    internal static async Task<ModelVersionInfo> Find(ModelRegistry registry, string name, string version)
    {
        ModelRegistry.ValidateName(name);
        ModelRegistry.ValidateVersion(version);
        return await registry.GetVersionAsync(name, version) ?? throw ApiProblem.NotFound($"model {name} version {version}");
    }

    /// <summary>
    /// Streams the upload: the manifest part is read (bounded) and validated first, so a bad manifest or an
    /// existing version is refused before the model file is transferred; the model part goes to disk while it is
    /// hashed, with the size limit enforced as the bytes arrive (413).
    /// </summary>
    private static async Task<Created<ModelVersionInfo>> PushAsync(string name, string version, HttpContext http, ModelRegistry registry,
        ArtifactStore artifacts, IOptions<ControlPlaneOptions> options)
    {
        ModelRegistry.ValidateName(name);
        ModelRegistry.ValidateVersion(version);
        var limit = options.Value.MaxUploadBytes;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit + MaxManifestBytes + 64 * 1024;
        }

        if (http.Request.ContentLength is { } length && length > limit + MaxManifestBytes + 64 * 1024)
        {
            throw ApiProblem.TooLarge("upload too large", "body", $"{length} bytes; models may be at most {limit} bytes");
        }

        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            var message = $"must be multipart/form-data (got '{Input.Quote(http.Request.ContentType)}'), with a 'manifest' part and a 'model' part";
            throw new ApiProblem(StatusCodes.Status415UnsupportedMediaType, "unsupported media type", $"Content-Type: {message}",
                new Dictionary<string, string[]> { ["Content-Type"] = [message] });
        }

        if (HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
        {
            throw ApiProblem.Invalid("Content-Type", "has no boundary parameter (multipart/form-data; boundary=…)");
        }

        var reader = new MultipartReader(boundary, http.Request.Body) { HeadersLengthLimit = 16 * 1024 };
        Contracts.Models.ModelManifest? manifest = null;
        ModelVersionInfo? created = null;
        while (await ReadAsync(() => reader.ReadNextSectionAsync(http.RequestAborted)) is { } section)
        {
            var part = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                ? HeaderUtilities.RemoveQuotes(disposition.Name).Value : null;
            if (part == "manifest")
            {
                using var buffer = new MemoryStream();
                await ReadAsync(() => CopyBoundedAsync(section.Body, buffer, MaxManifestBytes, "manifest", http.RequestAborted));
                manifest = ModelRegistry.ParseManifest(buffer.ToArray());
                if (await registry.ExistsAsync(name, version))
                {
                    throw ApiProblem.Conflict($"model {name} version {version} already exists; versions are immutable, push a new version");
                }
            }
            else if (part == "model")
            {
                if (manifest is null)
                {
                    throw ApiProblem.Invalid("manifest", "the 'manifest' part must come before the 'model' part");
                }

                using var staged = await StageAsync(artifacts, section.Body, limit, http.RequestAborted);
                created = await registry.PushAsync(name, version, manifest, staged, http.User.Actor());
            }
            else
            {
                // Unknown parts are drained so the next one can be read.
                await ReadAsync(() => section.Body.CopyToAsync(Stream.Null, http.RequestAborted));
            }
        }

        if (created is null)
        {
            throw ApiProblem.Invalid(manifest is null ? "manifest" : "model", manifest is null ? "the 'manifest' part is missing" : "the 'model' part is missing");
        }

        return TypedResults.Created(ModelUrls.Version(name, version), created.WithUrls());
    }

    private static async Task<ArtifactStore.Staged> StageAsync(ArtifactStore artifacts, Stream body, long limit, CancellationToken cancellationToken)
    {
        try
        {
            return await artifacts.StageAsync(body, limit, cancellationToken);
        }
        catch (ArtifactStore.TooLargeException ex)
        {
            throw ApiProblem.TooLarge("model too large", "model", ex.Message);
        }
        catch (ArtifactStore.SourceReadException ex)
        {
            throw Malformed(ex.InnerException!);
        }
    }

    /// <summary>A read of the multipart body, whose parse errors (truncated, no closing boundary, oversized headers) are 400s naming the body.</summary>
    private static async Task<T> ReadAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            throw Malformed(ex);
        }
    }

    private static Task ReadAsync(Func<Task> read) => ReadAsync(async () =>
    {
        await read();
        return true;
    });

    /// <summary>The server's own refusals while reading (413 past the body limit, a body shorter than announced) keep their status.</summary>
    private static Exception Malformed(Exception ex) => ex is BadHttpRequestException
        ? ex
        : ApiProblem.Invalid("body", $"is not valid multipart/form-data ({ex.Message.TrimEnd('.', ' ')}); send a 'manifest' part and a 'model' part, each with a Content-Disposition header");

    private static async Task CopyBoundedAsync(Stream source, Stream target, int max, string what, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (target.Length + read > max)
            {
                throw ApiProblem.TooLarge("too large", what, $"may be at most {max} bytes");
            }

            await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }
}
