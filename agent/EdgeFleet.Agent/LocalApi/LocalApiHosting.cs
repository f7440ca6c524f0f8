using EdgeFleet.Agent.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.LocalApi;

public static class LocalApiHosting
{
    /// <summary>The local gRPC API on a Unix socket and the optional Prometheus endpoint (agent/README.md, "Local API").</summary>
    public static IHostApplicationBuilder AddEdgeFleetLocalApi(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(sp => new ResultHub(sp.GetRequiredService<IOptions<AgentOptions>>().Value.LocalApi.SubscriberBuffer,
            sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddHostedService<LocalApiServer>();
        return builder;
    }
}
