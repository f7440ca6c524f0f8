using EdgeFleet.Agent.Enrollment;
using EdgeFleet.Agent.Hosting;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Onnx;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Commands;

/// <summary><c>edgefleet-agent run --config FILE</c>: the long-lived service.</summary>
public static class RunCommand
{
    public const int ConfigurationError = 2;
    public const int StartupError = 1;

    public static async Task<int> ExecuteAsync(string? configPath, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (configPath is not null && !File.Exists(configPath))
        {
            await error.WriteLineAsync($"error: configuration file {configPath} not found").ConfigureAwait(false);
            return ConfigurationError;
        }

        IHost host;
        try
        {
            host = BuildHost(configPath);
        }
        catch (InvalidDataException ex) when (ex.Message.Contains(DeviceIdentity.FileName, StringComparison.Ordinal))
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ConfigurationError;
        }
        catch (InvalidDataException ex)
        {
            await error.WriteLineAsync($"error: configuration file {configPath} is not valid JSON: {ex.InnerException?.Message ?? ex.Message}").ConfigureAwait(false);
            return ConfigurationError;
        }

        using (host)
        {
            try
            {
                await host.RunAsync().ConfigureAwait(false);
                return 0;
            }
            catch (OperationCanceledException)
            {
                // A stop (SIGTERM, Ctrl-C) that came while a service was still starting: as clean as any other stop.
                return 0;
            }
            catch (OptionsValidationException ex)
            {
                await error.WriteLineAsync("error: invalid configuration:").ConfigureAwait(false);
                foreach (var failure in ex.Failures)
                {
                    await error.WriteLineAsync($"  {failure}").ConfigureAwait(false);
                }

                return ConfigurationError;
            }
            catch (InvalidOperationException ex) when (ex.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase))
            {
                // The binder's own errors name the key: "Failed to convert configuration value 'x' at 'Agent:...' to type ..."
                await error.WriteLineAsync($"error: invalid configuration: {ex.Message}").ConfigureAwait(false);
                return ConfigurationError;
            }
            catch (Exception ex) when (ex is ModelLoadException or OnnxRuntimeNotFoundException or OnnxRuntimeException
                or EdgeFleet.Drift.DriftDataException or EdgeFleet.Mqtt.MqttException or EdgeFleet.Agent.Gpio.GpioException)
            {
                await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return StartupError;
            }
        }
    }

    /// <param name="services">Replaces services after the agent's own (tests: a fake GPIO chip).</param>
    internal static IHost BuildHost(string? configPath, IEnumerable<KeyValuePair<string, string?>>? overrides = null,
        Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        if (configPath is not null)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(configPath), optional: false, reloadOnChange: false);
        }

        builder.Configuration.AddEnvironmentVariables("EDGEFLEET_");
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        // After `edgefleet-agent enroll`, the identity supplies the device id and broker login, below everything else.
        var stateDirectory = builder.Configuration["Agent:StateDirectory"] ?? new EdgeFleet.Agent.Configuration.AgentOptions().StateDirectory;
        if (DeviceIdentity.Load(stateDirectory) is { } identity)
        {
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = identity.AsConfiguration() });
        }

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.AddEdgeFleetAgent();
        EdgeFleet.Agent.LocalApi.LocalApiHosting.AddEdgeFleetLocalApi(builder);
        services?.Invoke(builder.Services);
        return builder.Build();
    }
}
