using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Ota;
using EdgeFleet.Agent.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Hosting;

public static class AgentHostingExtensions
{
    /// <summary>Registers the agent: validated options, the pipeline and its long-running services.</summary>
    public static IHostApplicationBuilder AddEdgeFleetAgent(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<AgentOptions>()
            .BindConfiguration(AgentOptions.SectionName, o => o.ErrorOnUnknownConfiguration = true)
            .PostConfigure(o => o.DeviceId ??= DefaultDeviceId())
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AgentOptions>, AgentOptionsValidator>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => new DeviceReporter(sp.GetRequiredService<IOptions<AgentOptions>>().Value.DeviceId!,
            sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AgentOptions>>().Value;
            return new Outbox(Path.Combine(o.StateDirectory, "outbox.db"), new OutboxLimits
            {
                MaxBytes = o.Telemetry.Outbox.MaxBytes,
                MaxAge = TimeSpan.FromHours(o.Telemetry.Outbox.MaxAgeHours),
                SynchronousFull = o.Telemetry.Outbox.SynchronousFull,
            }, sp.GetRequiredService<TimeProvider>());
        });
        builder.Services.AddSingleton<OutboxNotifier>();
        builder.Services.AddSingleton<MqttState>();
        builder.Services.AddSingleton<OtaIdentity>();
        builder.Services.AddSingleton<OtaBootstrap>();
        builder.Services.AddSingleton<AgentPipeline>();
        builder.Services.AddSingleton<EdgeFleet.Agent.Pipeline.IModelHost>(sp => sp.GetRequiredService<AgentPipeline>());
        builder.Services.AddSingleton<OtaHttp>();
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AgentOptions>>().Value;
            var identity = sp.GetRequiredService<OtaIdentity>();
            var time = sp.GetRequiredService<TimeProvider>();
            var loggers = sp.GetRequiredService<ILoggerFactory>();
            var downloader = new UpdateDownloader(sp.GetRequiredService<OtaHttp>().Client, o.Ota, identity.Server, identity.HttpToken, time,
                loggers.CreateLogger<UpdateDownloader>());
            return new OtaService(sp.GetRequiredService<EdgeFleet.Agent.Pipeline.IModelHost>(), sp.GetRequiredService<OtaBootstrap>(), downloader, o.Ota,
                identity.RegistryKey, sp.GetRequiredService<DeviceReporter>(), time, loggers.CreateLogger<OtaService>());
        });
        builder.Services.AddHostedService<PipelineStartup>();
        // After the pipeline is built, before capture and inference start: the trigger gates the very first frame.
        builder.Services.TryAddSingleton<EdgeFleet.Agent.Gpio.GpioChipFactory>(EdgeFleet.Agent.Gpio.GpioChip.Open);
        builder.Services.AddSingleton<EdgeFleet.Agent.Gpio.GpioService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EdgeFleet.Agent.Gpio.GpioService>());
        builder.Services.AddHostedService<CaptureService>();
        builder.Services.AddHostedService<InferenceService>();
        builder.Services.AddHostedService<OtaHostedService>();
        builder.Services.AddHostedService<TelemetryService>();
        builder.Services.AddHostedService<MqttService>();
        builder.Services.AddHostedService<ConsoleReporter>();
        // The notifier alone, not AddSystemd()/UseSystemd(): that lifetime sends READY=1 as soon as the host has started
        // (the agent is ready when a frame is inferred) and only turns itself on when systemd is the parent process.
        // SystemdNotifier reads NOTIFY_SOCKET and is a no-op without it. Registered last: stopped first (STOPPING=1).
        builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
        builder.Services.AddHostedService<SystemdNotifyService>();

        return builder;
    }

    /// <summary>The host name, lowercased, with anything outside [a-z0-9-] replaced by '-'.</summary>
    public static string DefaultDeviceId()
    {
        var chars = Environment.MachineName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray();
        var id = new string(chars).Trim('-');
        return id.Length == 0 ? "device" : id[..Math.Min(id.Length, 63)];
    }
}
