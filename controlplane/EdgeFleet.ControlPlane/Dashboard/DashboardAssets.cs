using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;

namespace EdgeFleet.ControlPlane.Dashboard;

/// <summary>
/// The dashboard's bundle (index.html, app.js, app.css), embedded in the assembly at build time by the
/// <c>DashboardBundle</c> MSBuild target, so the control plane serves it wherever its dll runs. Served with an ETag,
/// a strict Content-Security-Policy (nothing from other origins, no inline script) and no framing.
/// </summary>
public static class DashboardAssets
{
    private const string Prefix = "dashboard/";

    private const string Csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);

    public static bool Available => Assets.ContainsKey("index.html");

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/", (HttpContext http) => Serve(http, "index.html")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/dashboard/{file}", (string file, HttpContext http) => Serve(http, file)).AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    private static IResult Serve(HttpContext http, string file)
    {
        if (!Assets.TryGetValue(file, out var asset))
        {
            return file == "index.html"
                ? TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "dashboard not built",
                    detail: "this build of the control plane has no dashboard bundle (it was built without node/npm); the API under /api/v1 works")
                : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "not found", detail: $"the dashboard has no file '{Domain.Input.Quote(file)}'");
        }

        var headers = http.Response.Headers;
        headers.ETag = asset.ETag;
        headers.CacheControl = "no-cache"; // revalidate with the ETag: a new build is picked up at once
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        if (file == "index.html")
        {
            headers.ContentSecurityPolicy = Csp;
            headers.XFrameOptions = "DENY";
        }

        return http.Request.Headers.IfNoneMatch == asset.ETag
            ? TypedResults.StatusCode(StatusCodes.Status304NotModified)
            : TypedResults.Bytes(asset.Bytes, asset.ContentType);
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = Assembly.GetExecutingAssembly();
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var bytes = memory.ToArray();
            var file = name[Prefix.Length..];
            var type = Path.GetExtension(file) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                ".map" => "application/json",
                _ => "application/octet-stream",
            };
            assets[file] = new Asset(bytes, type, $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}\"");
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
