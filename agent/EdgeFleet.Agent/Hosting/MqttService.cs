using EdgeFleet.Agent.Configuration;
using EdgeFleet.Agent.Telemetry;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Mqtt;
using CommandNames = EdgeFleet.Contracts.Messaging.Commands;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeFleet.Agent.Hosting;

/// <summary>Counters of the MQTT side, read by telemetry.</summary>
public sealed class MqttState
{
    private long _rejected;

    public long Rejected => Interlocked.Read(ref _rejected);

    public void CountRejected() => Interlocked.Increment(ref _rejected);
}

/// <summary>
/// The agent's MQTT connection: retained <c>status</c> with a Last Will that marks the device offline, the outbox
/// publisher, sampled <c>results</c>, and the <c>desired</c> / <c>cmd</c> subscriptions (malformed payloads are
/// counted and reported, never fatal).
/// </summary>
public sealed partial class MqttService(
    AgentPipeline pipeline,
    Outbox outbox,
    OutboxNotifier notifier,
    DeviceReporter reporter,
    MqttState state,
    EdgeFleet.Agent.Ota.OtaService ota,
    IOptions<AgentOptions> options,
    TimeProvider time,
    ILoggerFactory loggerFactory) : BackgroundService
{
    private static readonly long RejectionEventInterval = TimeSpan.FromSeconds(10).Ticks;

    private readonly ILogger _logger = loggerFactory.CreateLogger<MqttService>();
    private readonly DateTimeOffset _startedAt = time.GetUtcNow();
    private long _lastRejectionEvent = long.MinValue;
    private long _rejectionsSinceEvent;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(o.Mqtt.Host))
        {
            LogDisabled(_logger);
            return;
        }

        var deviceId = o.DeviceId!;
        var statusTopic = Topics.For(deviceId, Topics.Status);
        await using var client = new MqttConnection(new MqttConnectionOptions
        {
            Host = o.Mqtt.Host,
            Port = o.Mqtt.Port,
            ClientId = o.Mqtt.ClientId ?? deviceId,
            Username = o.Mqtt.Username,
            Password = o.Mqtt.Password,
            KeepAliveSeconds = o.Mqtt.KeepAliveSeconds,
            MaxReconnectDelay = TimeSpan.FromSeconds(o.Mqtt.MaxReconnectDelaySeconds),
            CaFile = o.Mqtt.Tls.CaFile,
            CertFile = o.Mqtt.Tls.CertFile,
            KeyFile = o.Mqtt.Tls.KeyFile,
            TlsInsecure = o.Mqtt.Tls.Insecure,
            Will = new MqttMessage(statusTopic, Status(online: false), Qos: 1, Retain: true),
            Subscriptions = [new MqttSubscription(Topics.For(deviceId, Topics.Desired)), new MqttSubscription(Topics.For(deviceId, Topics.Command))],
        }, loggerFactory.CreateLogger<MqttConnection>(), time);
        using var publisher = new OutboxPublisher(outbox, client, time, loggerFactory.CreateLogger<OutboxPublisher>());
        notifier.Enqueued += publisher.Signal;
        client.ConnectionChanged += e =>
        {
            if (e.State == MqttConnectionState.Connected)
            {
                _ = PublishStatusAsync(client, statusTopic, online: true);
            }
        };
        void OnActivated(EdgeFleet.Agent.Pipeline.ActiveModel activated)
        {
            if (activated is not null && client.IsConnected)
            {
                _ = PublishStatusAsync(client, statusTopic, online: true); // the retained status names the model that runs now
            }
        }

        pipeline.Activated += OnActivated;
        client.Start(); // after the handlers: the first "connected" must not be missed

        try
        {
            await Task.WhenAll(
                publisher.RunAsync(stoppingToken),
                ReceiveAsync(client, deviceId, stoppingToken),
                PublishResultsAsync(client, deviceId, stoppingToken)).ConfigureAwait(false);
        }
        finally
        {
            notifier.Enqueued -= publisher.Signal;
            pipeline.Activated -= OnActivated;
            if (client.IsConnected)
            {
                // A clean stop sends no Last Will: say "offline" ourselves, and let in-flight telemetry land.
                await PublishStatusAsync(client, statusTopic, online: false).WaitAsync(TimeSpan.FromSeconds(3), CancellationToken.None)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                await publisher.DrainAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
            }

            await client.DisconnectAsync().ConfigureAwait(false); // normal disconnect: the broker drops the Last Will
        }
    }

    private byte[] Status(bool online)
    {
        var o = options.Value;
        return MessageParser.Serialize(new StatusMessage
        {
            DeviceId = o.DeviceId!,
            Ts = time.GetUtcNow(),
            Online = online,
            AgentVersion = typeof(MqttService).Assembly.GetName().Version?.ToString(3),
            Model = online && pipeline.IsInitialized ? pipeline.ModelRef : null,
            StartedAt = online ? _startedAt : null,
            Source = online && pipeline.IsInitialized ? pipeline.Source.Source.Display : null,
            Provider = online && pipeline.IsInitialized ? pipeline.Model.Session.ActiveProvider.ToString() : null,
        });
    }

    private async Task PublishStatusAsync(IMqttConnection client, string topic, bool online)
    {
        try
        {
            await client.PublishAsync(new MqttMessage(topic, Status(online), Qos: 1, Retain: true)).ConfigureAwait(false);
        }
        catch (MqttException ex)
        {
            LogStatusFailed(_logger, ex.Message);
        }
    }

    private async Task ReceiveAsync(IMqttConnection client, string deviceId, CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var message in client.Messages.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                Handle(message, deviceId);
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private void Handle(MqttReceivedMessage message, string deviceId)
    {
        if (!Topics.TryParse(message.Topic, out var target, out var kind) || target != deviceId)
        {
            Reject(message.Topic, "not one of this device's topics");
            return;
        }

        if (kind == Topics.Command)
        {
            if (MessageParser.TryParse<CommandMessage>(message.Payload, out var command, out var reason))
            {
                Execute(command);
            }
            else
            {
                Reject(message.Topic, reason);
            }
        }
        else if (kind == Topics.Desired)
        {
            if (message.Payload.Length == 0)
            {
                ota.Submit(null); // a cleared retained assignment: whatever is in progress stops, the model stays
                return;
            }

            if (MessageParser.TryParse<DesiredMessage>(message.Payload, out var desired, out var reason))
            {
                LogDesired(_logger, desired.Model, desired.Version);
                ota.Submit(desired);
            }
            else
            {
                state.CountRejected();
                ota.RejectInvalid(reason);
            }
        }
        else
        {
            Reject(message.Topic, $"the agent does not accept '{kind}' messages");
        }
    }

    private void Execute(CommandMessage command)
    {
        var data = new Dictionary<string, string> { ["id"] = command.Id, ["command"] = command.Command };
        switch (command.Command)
        {
            case CommandNames.DriftRebaseline when pipeline.Drift is { } drift:
                drift.Rebaseline();
                break;
            case CommandNames.DriftRebaseline:
                reporter.Event("cmd.rejected", "warning", "drift monitoring is off (Agent:Drift:Enabled)", data);
                return;
            case CommandNames.Snapshot:
                pipeline.Sampler?.RequestSnapshot();
                break;
            case CommandNames.PipelineRestart:
                pipeline.Source.RestartCapture();
                break;
        }

        LogCommand(_logger, command.Command, command.Id);
        reporter.Event("cmd.done", "info", $"{command.Command} done", data);
    }

    private void Reject(string topic, string reason)
    {
        state.CountRejected();
        LogRejected(_logger, topic, reason);
        var now = time.GetUtcNow().UtcTicks;
        _rejectionsSinceEvent++;
        if (_lastRejectionEvent == long.MinValue || now - _lastRejectionEvent >= RejectionEventInterval)
        {
            // At most one event per 10 s, so a flood of bad messages cannot flood the outbox.
            reporter.Event("message.rejected", "warning", $"{topic}: {reason}",
                new Dictionary<string, string> { ["count"] = _rejectionsSinceEvent.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            _lastRejectionEvent = now;
            _rejectionsSinceEvent = 0;
        }
    }

    private async Task PublishResultsAsync(IMqttConnection client, string deviceId, CancellationToken stoppingToken)
    {
        if (pipeline.Sampler is not { } sampler)
        {
            return;
        }

        var topic = Topics.For(deviceId, Topics.Results);
        try
        {
            await foreach (var result in sampler.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (client.IsConnected)
                {
                    try
                    {
                        await client.PublishAsync(new MqttMessage(topic, MessageParser.Serialize(result), Qos: 0)).ConfigureAwait(false);
                    }
                    catch (MqttException)
                    {
                        // results are best effort (QoS 0): a disconnect just loses the sample
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT is off (Agent:Mqtt:Host is not set): telemetry, drift reports and events stay on this device")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing status failed: {Reason}")]
    private static partial void LogStatusFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected a message on {Topic}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string topic, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Command {Command} ({Id}) done")]
    private static partial void LogCommand(ILogger logger, string command, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "Desired model: {Model} {Version}")]
    private static partial void LogDesired(ILogger logger, string model, string version);
}
