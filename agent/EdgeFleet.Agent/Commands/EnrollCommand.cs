using System.Net.Http.Json;
using System.Text.Json;
using EdgeFleet.Agent.Enrollment;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Serialization;
using Microsoft.Extensions.Configuration;

namespace EdgeFleet.Agent.Commands;

/// <summary>
/// <c>edgefleet-agent enroll --server URL --token T</c>: exchanges an enrollment token for this device's identity
/// and broker login, and stores them in the state directory for <c>run</c> to use.
/// </summary>
public static class EnrollCommand
{
    public sealed record Options(string Server, string Token, string? DeviceId, string? ConfigPath, string? StateDirectory, bool Force)
    {
        public TimeProvider Time { get; init; } = TimeProvider.System;
    }

    public static async Task<int> ExecuteAsync(Options options, TextWriter output, TextWriter error, HttpMessageHandler? handler = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (!Uri.TryCreate(options.Server, UriKind.Absolute, out var server) || server.Scheme is not ("http" or "https"))
        {
            await error.WriteLineAsync($"error: --server '{options.Server}' must be an http:// or https:// URL of the control plane").ConfigureAwait(false);
            return 2;
        }

        string stateDirectory;
        try
        {
            stateDirectory = StateDirectoryOf(options);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        if (!options.Force && File.Exists(DeviceIdentity.PathIn(stateDirectory)))
        {
            await error.WriteLineAsync($"error: this device is already enrolled ({DeviceIdentity.PathIn(stateDirectory)}); pass --force to enroll again with a new identity").ConfigureAwait(false);
            return 2;
        }

        using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.Timeout = TimeSpan.FromSeconds(30);
        HttpResponseMessage response;
        try
        {
            response = await http.PostAsJsonAsync(new Uri(server, "/api/v1/enroll"), new EnrollRequest
            {
                Token = options.Token,
                DeviceId = options.DeviceId,
                AgentVersion = typeof(EnrollCommand).Assembly.GetName().Version?.ToString(3),
            }, ApiJsonContext.Default.EnrollRequest, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            await error.WriteLineAsync($"error: cannot reach the control plane at {server}: {ex.Message}").ConfigureAwait(false);
            return 3;
        }
        catch (TaskCanceledException)
        {
            await error.WriteLineAsync($"error: the control plane at {server} did not answer within 30 s").ConfigureAwait(false);
            return 3;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                await error.WriteLineAsync($"error: enrollment refused ({(int)response.StatusCode}): {Detail(body)}").ConfigureAwait(false);
                return 1;
            }

            EnrollResponse enrolled;
            try
            {
                enrolled = JsonSerializer.Deserialize(body, ApiJsonContext.Default.EnrollResponse)
                    ?? throw new JsonException("empty response");
            }
            catch (JsonException ex)
            {
                await error.WriteLineAsync($"error: the control plane's answer is not an enrollment response: {ex.Message}").ConfigureAwait(false);
                return 1;
            }

            var identity = new DeviceIdentity
            {
                DeviceId = enrolled.DeviceId,
                Server = server.ToString(),
                MqttHost = enrolled.Mqtt.Host,
                MqttPort = enrolled.Mqtt.Port,
                MqttTls = enrolled.Mqtt.Tls,
                MqttUsername = enrolled.Mqtt.Username,
                MqttPassword = enrolled.Mqtt.Password,
                RegistryPublicKey = enrolled.RegistryPublicKey,
                HttpToken = enrolled.HttpToken,
                Tags = enrolled.Tags,
                EnrolledAt = options.Time.GetUtcNow(),
            };
            try
            {
                identity.Save(stateDirectory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"error: enrolled as {enrolled.DeviceId}, but the identity cannot be saved in {stateDirectory}: {ex.Message}. " +
                    "Fix the directory's permissions and enroll again with a new token (this one's login is lost).").ConfigureAwait(false);
                return 1;
            }

            await output.WriteLineAsync($"enrolled as {enrolled.DeviceId}; broker {enrolled.Mqtt.Host}:{enrolled.Mqtt.Port}; identity saved in {DeviceIdentity.PathIn(stateDirectory)} (mode 0600)")
                .ConfigureAwait(false);
            return 0;
        }
    }

    /// <summary>--state-dir, else Agent:StateDirectory from --config (and the environment), else the default.</summary>
    private static string StateDirectoryOf(Options options)
    {
        if (options.StateDirectory is not null)
        {
            return Path.GetFullPath(options.StateDirectory);
        }

        var builder = new ConfigurationBuilder();
        if (options.ConfigPath is not null)
        {
            builder.AddJsonFile(Path.GetFullPath(options.ConfigPath), optional: false);
        }

        builder.AddEnvironmentVariables("EDGEFLEET_");
        return Path.GetFullPath(builder.Build()["Agent:StateDirectory"] ?? new Configuration.AgentOptions().StateDirectory);
    }

    private static string Detail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.TryGetProperty("detail", out var d) && d.GetString() is { } s ? s : body;
        }
        catch (JsonException)
        {
            return body.Length > 300 ? body[..300] : body;
        }
    }
}
