using System.Text.Json.Serialization;
using EdgeFleet.Contracts.Serialization;
using System.Diagnostics;
using EdgeFleet.ControlPlane.Apis;
using EdgeFleet.ControlPlane.Broker;
using EdgeFleet.ControlPlane.Dashboard;
using EdgeFleet.ControlPlane.Fleet;
using EdgeFleet.ControlPlane.Ingestion;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Rollouts;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.ControlPlane.Telemetry;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace EdgeFleet.ControlPlane;

public static partial class ControlPlaneHosting
{
    /// <summary>Command-line switches of edgefleet-controlplane and the keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--data"] = "ControlPlane:DataDirectory",
        ["--db"] = "ControlPlane:Database",
        ["--mqtt"] = "ControlPlane:Mqtt",
        ["--mqtt-port"] = "ControlPlane:MqttPort",
        ["--mqtt-public-host"] = "ControlPlane:MqttPublicHost",
        ["--public-url"] = "ControlPlane:PublicUrl",
        ["--max-upload-bytes"] = "ControlPlane:MaxUploadBytes",
    };

    public static WebApplicationBuilder AddEdgeFleetControlPlane(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<ControlPlaneOptions>().BindConfiguration("ControlPlane").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.SectionName)
            .Configure<IConfiguration>(ApplyControlPlaneDefaults).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value;
            return Database.Open(o.Database, Path.GetFullPath(o.DataDirectory));
        });
        builder.Services.AddSingleton(sp => RegistryKey.LoadOrCreate(Path.GetFullPath(sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value.DataDirectory)));
        builder.Services.AddSingleton(sp => new ArtifactStore(Path.GetFullPath(sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value.DataDirectory)));
        builder.Services.AddSingleton<AuditLog>();
        builder.Services.AddSingleton<ApiTokens>();
        builder.Services.AddSingleton(sp => DashboardSessions.LoadOrCreate(Path.GetFullPath(sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value.DataDirectory),
            sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<Live.LiveEvents>(_ => new Live.LiveEvents());
        builder.Services.AddSingleton<ModelRegistry>();
        builder.Services.AddSingleton<DeviceRegistry>();
        builder.Services.AddSingleton<IModelLinks, ModelUrls.Links>();
        builder.Services.AddSingleton<DesiredFactory>();
        builder.Services.AddSingleton<RolloutSignal>();
        builder.Services.AddSingleton<RolloutStore>();
        builder.Services.AddSingleton<GateTelemetry>();
        builder.Services.AddSingleton<RolloutService>();
        builder.Services.AddSingleton<ProductionAssignments>();
        builder.Services.AddSingleton<RolloutEngine>();
        builder.Services.AddSingleton<Assignments>();
        builder.Services.AddSingleton<DesiredPublisher>();
        builder.Services.AddSingleton<IDesiredPublisher>(sp => sp.GetRequiredService<DesiredPublisher>());
        builder.Services.AddSingleton<IngestMetrics>();
        builder.Services.AddSingleton<PrometheusExport>();
        builder.Services.AddSingleton<IngestWriter>();
        builder.Services.AddSingleton<DeviceCredentials>();
        builder.Services.AddSingleton<BrokerHost>();
        builder.Services.AddSingleton<IBrokerAccess>(sp => sp.GetRequiredService<BrokerHost>());
        builder.Services.AddSingleton<IMqttEndpoint>(sp => sp.GetRequiredService<BrokerHost>());
        builder.Services.AddSingleton<IMqttConnectionFactory>(sp => sp.GetRequiredService<BrokerHost>());

        // Hosted services start in this order: the schema first, then the broker, then ingestion from it.
        builder.Services.AddHostedService<StartupService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BrokerHost>());
        builder.Services.AddHostedService<IngestionService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DesiredPublisher>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RolloutEngine>());
        builder.Services.AddSingleton<TelemetryStore>();
        builder.Services.AddSingleton<RetentionService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RetentionService>());

        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);

            // Numbers must be JSON numbers ("5" is refused; the web default reads it); "NaN"/"Infinity" still read
            // as doubles so the validators can name the field, and write (drift p-values can be NaN).
            o.SerializerOptions.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals;
            o.SerializerOptions.AllowDuplicateProperties = false;
        });

        // Binding failures (bad JSON, a query value that does not parse, a missing body) throw, so ProblemMapping
        // can say which field was wrong instead of an empty 400.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemMapping.Customize);
        builder.Services.AddExceptionHandler<ProblemMapping>();
        builder.Services.AddAuthentication(BearerAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization(Policies.Add);
        builder.Services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, RouterRefusals>();
        builder.Services.AddOpenApi("v1");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024 * 1024); // raised per endpoint for uploads
        return builder;
    }

    /// <summary>
    /// The broker's data directory, port and address come from <c>--data</c>, <c>--mqtt-port</c> and
    /// <c>ControlPlane:MqttBind</c> unless <c>ControlPlane:Broker</c> sets them itself (the more specific key wins).
    /// Raw configuration values, so that a bad <c>ControlPlane:</c> value is reported once, by its own validation.
    /// </summary>
    private static void ApplyControlPlaneDefaults(BrokerOptions broker, IConfiguration configuration)
    {
        string? Own(string name) => configuration[$"{BrokerOptions.SectionName}:{name}"];
        if (Own(nameof(BrokerOptions.DataDirectory)) is null && configuration["ControlPlane:DataDirectory"] is { Length: > 0 } data)
        {
            broker.DataDirectory = Path.GetFullPath(data);
        }

        if (Own(nameof(BrokerOptions.Port)) is null
            && int.TryParse(configuration["ControlPlane:MqttPort"], System.Globalization.CultureInfo.InvariantCulture, out var port))
        {
            broker.Port = port;
        }

        if (Own(nameof(BrokerOptions.BindAddress)) is null && configuration["ControlPlane:MqttBind"] is { Length: > 0 } bind)
        {
            broker.BindAddress = bind;
        }
    }

    public static WebApplication MapEdgeFleetControlPlane(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // Outermost, so a request is counted with the status it finally got (after the exception handler and the
        // status-code pages) and under its route even when it failed (the handler clears the endpoint).
        var metrics = app.Services.GetRequiredService<IngestMetrics>();
        app.Use(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                var endpoint = context.GetEndpoint() ?? context.Features.Get<IExceptionHandlerFeature>()?.Endpoint;
                var route = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "(unmatched)";
                metrics.OnRequest(route, context.Request.Method, context.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        });
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.Use(DashboardApi.RequireCsrfAsync);
        app.Use(ProblemMapping.RejectUnknownCharsetAsync);
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthResponse("ok"))).AllowAnonymous();
        var api = app.MapGroup("/api/v1");
        api.MapModelsApi();
        api.MapAdminApi();
        api.MapFleetApi();
        api.MapTelemetryApi();
        api.MapRolloutsApi();
        api.MapDashboardApi();
        app.MapDashboard();
        app.MapPrometheusMetrics();
        return app;
    }

    public sealed record HealthResponse(string Status);

    /// <summary>First-start work: schema migrations, the admin token, the signing key.</summary>
    private sealed partial class StartupService(Database database, ApiTokens tokens, RegistryKey key, ModelRegistry registry, IConfiguration configuration,
        TimeProvider time, ILogger<StartupService> logger) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await Migrations.ApplyAsync(database, time, logger, cancellationToken).ConfigureAwait(false);
            var admin = await tokens.EnsureAdminAsync(configuration["EDGEFLEET_ADMIN_TOKEN"]).ConfigureAwait(false);
            if (admin is not null)
            {
                // Printed once, on stdout, where the operator who started it sees it; only its hash is stored.
                await Console.Out.WriteLineAsync($"Admin token (shown once, store it safely): {admin}").ConfigureAwait(false);
            }

            // Versions stored before detached signatures (or signed by another key): sign exactly the stored bytes.
            if (await registry.SignUnsignedAsync(cancellationToken).ConfigureAwait(false) is > 0 and var signed)
            {
                LogSigned(logger, signed, key.KeyId);
            }

            LogReady(logger, database.Display, key.KeyId);
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Signed {Count} stored manifests with the registry key {KeyId} (detached signatures)")]
        private static partial void LogSigned(ILogger logger, int count, string keyId);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Control plane store: {Database}; registry signing key {KeyId}")]
        private static partial void LogReady(ILogger logger, string database, string keyId);
    }
}
