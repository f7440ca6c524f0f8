using System.CommandLine;
using System.Net;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using Spectre.Console;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet devices</c>: the fleet (list, show, tag, assign, revoke, history).</summary>
internal static class DevicesCommand
{
    public static Command Create() => new("devices", "The fleet: list devices, show one, change its tags, assign it a model, revoke it")
    {
        List(), Show(), Tag(), Assign(), Unassign(), Revoke(), History(),
    };

    private static Command List()
    {
        var tag = new Option<string?>("--tag") { HelpName = "TAG", Description = "Only devices with this tag (key or key=value)" };
        var online = new Option<bool>("--online") { Description = "Only devices that are online" };
        var offline = new Option<bool>("--offline") { Description = "Only devices that are offline" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("list", "Devices with their status, model and health") { tag, online, offline, json };
        command.SetAction((parse, cancellationToken) =>
        {
            if (parse.GetValue(online) && parse.GetValue(offline))
            {
                return Task.FromResult(ControlPlaneCommand.Fail("--online and --offline exclude each other; leave both out for every device", ExitCodes.Usage));
            }

            bool? filter = parse.GetValue(online) ? true : parse.GetValue(offline) ? false : null;
            return ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await client.ListDevicesAsync(parse.GetValue(tag), filter, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                    return ExitCodes.Ok;
                }

                if (response.Value.Count == 0)
                {
                    Render.Line("no devices match; enroll one with edgefleet enroll create");
                    return ExitCodes.Ok;
                }

                var table = Render.Table("device", "status", "tags", "model", "agent", "last seen", "fps", "p95 ms", "drift");
                foreach (var d in response.Value)
                {
                    Render.Row(table, d.Id, Render.Status(d), Render.List(d.Tags), d.Model is { } m ? $"{m.Name} {m.Version}" : null,
                        d.AgentVersion, Render.Time(d.LastSeen), Render.Number(d.Health?.Fps, "0.0"), Render.Number(d.Health?.LatencyP95Ms, "0.0"),
                        d.Health?.DriftSeverity);
                }

                Render.Write(table);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("show", "One device: status, tags, model, health, message counters, its assignment, OTA state and last 10 update events")
        {
            id, json,
        };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.GetDeviceAsync(parse.GetValue(id)!, cancellationToken).ConfigureAwait(false);
            Write(response, parse.GetValue(json));
            if (!parse.GetValue(json))
            {
                WriteUpdateEvents((await client.GetUpdateEventsAsync(parse.GetValue(id)!, 10, cancellationToken).ConfigureAwait(false)).Value.Items);
            }

            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(id))));
        return command;
    }

    private static Command Tag()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var add = new Option<string[]>("--add") { HelpName = "TAGS", Description = "Tags to add: TAG[,TAG…] (key or key=value)" };
        var remove = new Option<string[]>("--remove") { HelpName = "TAGS", Description = "Tags to remove: TAG[,TAG…]" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("tag", "Add and remove tags of a device (rollouts select devices by tag)") { id, add, remove, json };
        command.SetAction((parse, cancellationToken) =>
        {
            var request = new TagChangeRequest
            {
                Add = ControlPlaneCommand.SplitList(parse.GetValue(add)),
                Remove = ControlPlaneCommand.SplitList(parse.GetValue(remove)),
            };
            if (request.Add.Count == 0 && request.Remove.Count == 0)
            {
                return Task.FromResult(ControlPlaneCommand.Fail("nothing to change: give --add TAG[,TAG…] and/or --remove TAG[,TAG…]", ExitCodes.Usage));
            }

            return ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await client.ChangeTagsAsync(parse.GetValue(id)!, request, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                }
                else
                {
                    Render.Line($"{response.Value.Id} tags: {(Render.List(response.Value.Tags) is { Length: > 0 } tags ? tags : "(none)")}");
                }

                return ExitCodes.Ok;
            }, NotFoundHint(parse.GetValue(id)));
        });
        return command;
    }

    private static Command Assign()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var model = new Option<string>("--model") { HelpName = "NAME", Description = "Model name (a registered model)", Required = true };
        var version = new Option<string>("--version") { HelpName = "VERSION", Description = "Its version", Required = true };
        var shadow = new Option<bool>("--shadow") { Description = "Run it beside the live model on spare frames and report agreement only" };
        var frames = new Option<long?>("--probation-frames") { HelpName = "N", Description = "Frames the new model must infer before it is committed" };
        var seconds = new Option<double?>("--probation-seconds") { HelpName = "S", Description = "Seconds the probation lasts at least" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("assign", "Set the model version one device should run (its retained desired message)")
        {
            id, model, version, shadow, frames, seconds, json,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var deviceId = parse.GetValue(id)!;
            var request = new AssignmentRequest
            {
                Model = parse.GetValue(model),
                Version = parse.GetValue(version),
                Mode = parse.GetValue(shadow) ? DesiredModes.Shadow : DesiredModes.Live,
                Probation = parse.GetValue(frames) is null && parse.GetValue(seconds) is null
                    ? null
                    : new ProbationOverrides { Frames = parse.GetValue(frames), Seconds = parse.GetValue(seconds) },
            };
            return ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await client.AssignAsync(deviceId, request, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                    return ExitCodes.Ok;
                }

                var d = response.Value;
                Render.Line($"assigned {d.Model} {d.Version} ({d.Mode}) to {deviceId}: assignment {d.Id}, sha256 {Render.Short(d.Sha256)}, {Render.Bytes(d.Size)}");
                Render.Line($"follow it with: edgefleet devices show {deviceId}");
                return ExitCodes.Ok;
            }, NotFoundHint(deviceId));
        });
        return command;
    }

    private static Command Unassign()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var command = new Command("unassign", "Clear a device's assignment (it keeps running what it runs)") { id };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            await client.UnassignAsync(parse.GetValue(id)!, cancellationToken).ConfigureAwait(false);
            Render.Line($"{parse.GetValue(id)} has no assignment now");
            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(id))));
        return command;
    }

    private static void WriteUpdateEvents(IReadOnlyList<EventInfo> events)
    {
        if (events.Count == 0)
        {
            Render.Line("no update events yet");
            return;
        }

        var table = Render.Table("time", "event", "model", "detail");
        foreach (var e in events)
        {
            string? Data(string key) => e.Data is { } d && d.TryGetValue(key, out var v) ? v : null;
            var detail = string.Join(", ", new[] { "reason", "criterion", "bytes", "total", "agreement", "error" }
                .Select(k => Data(k) is { } v ? $"{k}={v}" : null).OfType<string>());
            Render.Row(table, Render.Time(e.Ts), e.Type, Data("model") is { } m ? $"{m} {Data("version")}" : null, detail.Length == 0 ? e.Message : detail);
        }

        Render.Write(table);
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation (required when not run from a terminal)" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("revoke", "Revoke a device: its credentials stop working; it must enroll again to come back") { id, yes, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var deviceId = parse.GetValue(id)!;
            if (!parse.GetValue(yes))
            {
                // A script must say --yes: revoking cuts a device off, and there is nobody to answer a prompt.
                if (parse.GetValue(json) || Console.IsInputRedirected || Console.IsOutputRedirected)
                {
                    return ControlPlaneCommand.Fail($"revoking {deviceId} needs confirmation: pass --yes", ExitCodes.Usage);
                }

                var confirmed = await new ConfirmationPrompt($"Revoke device [bold]{Markup.Escape(deviceId)}[/]? It will be disconnected and must enroll again.")
                {
                    DefaultValue = false,
                }.ShowAsync(Render.Console, cancellationToken).ConfigureAwait(false);
                if (!confirmed)
                {
                    return ControlPlaneCommand.Fail("not revoked", ExitCodes.Usage);
                }
            }

            return await ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await client.RevokeDeviceAsync(deviceId, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                }
                else
                {
                    Render.Line($"{response.Value.Id} is revoked");
                }

                return ExitCodes.Ok;
            }, NotFoundHint(deviceId)).ConfigureAwait(false);
        });
        return command;
    }

    private static Command History()
    {
        var id = new Argument<string>("ID") { Description = "Device id" };
        var limit = new Option<int?>("--limit") { HelpName = "N", Description = "At most N entries, newest first (default 100)" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("history", "Which model version the device ran from when to when, and the rollout that sent it") { id, limit, json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var deviceId = parse.GetValue(id)!;
            var response = await client.GetDeviceHistoryAsync(deviceId, parse.GetValue(limit), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            if (response.Value.Count == 0)
            {
                Render.Line($"no deployments recorded for {deviceId} (a device's history starts when it reports the model it runs)");
                return ExitCodes.Ok;
            }

            var table = Render.Table("model", "version", "from", "to", "rollout");
            foreach (var d in response.Value)
            {
                Render.Row(table, d.Model, d.Version, Render.Time(d.From), d.To is null ? "(running)" : Render.Time(d.To), d.RolloutId);
            }

            Render.Write(table);
            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(id))));
        return command;
    }

    private static void Write(ApiResponse<DeviceInfo> response, bool json)
    {
        if (json)
        {
            ControlPlaneCommand.WriteJson(response.Body);
        }
        else
        {
            Render.Write(Render.Properties(Render.DeviceProperties(response.Value)));
        }
    }

    private static Func<ControlPlaneException, string?> NotFoundHint(string? id) => ex =>
        ex.StatusCode == HttpStatusCode.NotFound && ex.Problem?.Detail is null ? $"no device '{id}'; edgefleet devices list shows them" : null;
}
