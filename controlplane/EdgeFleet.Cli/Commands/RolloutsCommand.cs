using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet rollouts</c>: staged rollouts of a model version (create, list, show, watch and the operator actions).</summary>
internal static class RolloutsCommand
{
    /// <summary>Devices <c>show</c> lists before it says how many more there are (<c>--json</c> has all).</summary>
    internal const int DeviceLines = 50;

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static readonly IReadOnlyList<string> States =
    [
        RolloutStates.Running, RolloutStates.AwaitingApproval, RolloutStates.Paused, RolloutStates.RollingBack,
        RolloutStates.Succeeded, RolloutStates.Failed, RolloutStates.Aborted, RolloutStates.RolledBack,
    ];

    private static readonly Dictionary<string, int> StateOrder =
        RolloutDeviceStates.All.Select((state, i) => (state, i)).ToDictionary(p => p.state, p => p.i, StringComparer.Ordinal);

    public static Command Create() => new("rollouts", "Staged rollouts: send a model version to the fleet stage by stage, each stage judged by gates")
    {
        CreateCommand(), List(), Show(), Watch(),
        Action("approve", "Start the next stage of a rollout awaiting approval, or pass a stage a gate stopped"),
        Action("pause", "Stop a running rollout where it is (devices keep what they run) until resume"),
        Action("resume", "Continue a paused rollout; a stage a gate stopped is judged afresh"),
        Action("abort", "End a rollout: devices not notified yet are skipped, updated ones keep the new version"),
        Action("rollback", "Send every device the rollout notified its previous version again"),
        Action("retry", "Notify the failed and timed-out devices of the stages so far once more"),
    };

    /// <summary>The states a rollout does not leave again.</summary>
    internal static bool IsFinal(string state) => state is RolloutStates.Succeeded or RolloutStates.Failed or RolloutStates.Aborted or RolloutStates.RolledBack;

    private static Command CreateCommand()
    {
        var model = new Option<string>("--model") { HelpName = "NAME", Description = "Model name (a registered model)", Required = true };
        var version = new Option<string>("--version") { HelpName = "VERSION", Description = "The version to roll out", Required = true };
        var selector = new Option<string[]>("--selector")
        {
            HelpName = "TAG", Description = "Devices with this tag (key or key=value; repeat for more, all must match). Neither --selector nor --devices: every device",
        };
        var devices = new Option<string[]>("--devices") { HelpName = "IDS", Description = "These devices (as well): ID[,ID…]" };
        var stages = new Option<string?>("--stages")
        {
            HelpName = "LIST", Description = $"Cumulative stages, N% of the devices or a number of devices, e.g. 5,50%,100% (default {RolloutArguments.DefaultStages})",
        };
        var minDevices = new Option<int?>("--min-devices") { HelpName = "N", Description = "Every stage has at least N devices, or the whole selection (default 5)" };
        var bake = new Option<string?>("--bake")
        {
            HelpName = "DURATION", Description = "How long the quality gates watch every stage once its devices updated: 90s, 10m, 1h30m or seconds (default 10m)",
        };
        var approveEach = new Option<bool>("--approve-each") { Description = "Wait for edgefleet rollouts approve before every stage after the first" };
        var gates = new Option<string[]>("--gate")
        {
            HelpName = "GATES",
            Description = "Quality gates: latency, errors, nan, confidence, drift (shadow needs --shadow); none: delivery only. Default: all but shadow",
        };
        var dryRun = new Option<string[]>("--dry-run-gate") { HelpName = "GATE", Description = "Judge and show this gate but never act on it (repeatable; delivery too)" };
        var onFailure = new Option<string?>("--on-failure") { HelpName = "pause|rollback", Description = "What a failing gate does: pause (the default) or rollback" };
        var deadline = new Option<string?>("--deadline")
        {
            HelpName = "DURATION", Description = "Time a notified device has to commit the version before it counts as timed out (default 30m)",
        };
        var rate = new Option<string?>("--rate") { HelpName = "RATE", Description = "Devices notified per unit of time: 500/min, 10/s, 600/h (default 1000/min)" };
        var rateGrowth = new Option<string?>("--rate-growth")
        {
            HelpName = "FACTORx/N", Description = "Multiply the rate by FACTOR each time N more devices succeeded, e.g. 2x/50 (default: a constant rate)",
        };
        var shadow = new Option<string?>("--shadow")
        {
            HelpName = "DURATION", Description = "A shadow stage first: the first stage's devices run the version beside their model this long and report agreement",
        };
        var maxFailure = new Option<double?>("--max-failure-share")
        {
            HelpName = "SHARE", Description = "Delivery gate: the largest share of finished devices that may fail (default 0.1)",
        };
        var minFinished = new Option<int?>("--min-finished")
        {
            HelpName = "N", Description = "Delivery gate: devices that must have finished before the share is judged (default 3, at most the stage)",
        };
        var margins = new Option<string[]>("--margin")
        {
            HelpName = "GATE=MARGIN", Description = "Tolerated worsening per quality gate, e.g. latency=0.2 (20 % slower), errors=0.02 (two points); repeatable",
        };
        var alpha = new Option<double?>("--alpha") { HelpName = "ALPHA", Description = "Quality gates: one-sided false-alarm rate per stage (default 0.05)" };
        var stratifyBy = new Option<string?>("--stratify-by") { HelpName = "KEY", Description = "Tag key whose values are the hardware strata of the quality gates (default hw)" };
        var promote = new Option<bool>("--promote") { Description = "Promote the version to production when the rollout succeeds" };
        var supersede = new Option<bool>("--supersede") { Description = "Take devices out of another active rollout instead of refusing" };
        var reason = ReasonOption();
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("create", "Start a staged rollout of a model version to the devices a selector picks")
        {
            model, version, selector, devices, stages, minDevices, bake, approveEach, gates, dryRun, onFailure, deadline, rate, rateGrowth, shadow,
            maxFailure, minFinished, margins, alpha, stratifyBy, promote, supersede, reason, json,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            RolloutRequest request;
            try
            {
                request = RolloutArguments.BuildRequest(new RolloutCreateArguments
                {
                    Model = parse.GetValue(model)!,
                    Version = parse.GetValue(version)!,
                    Selector = parse.GetValue(selector),
                    Devices = parse.GetValue(devices),
                    Stages = parse.GetValue(stages),
                    MinDevices = parse.GetValue(minDevices),
                    Bake = parse.GetValue(bake),
                    ApproveEach = parse.GetValue(approveEach),

                    // Given but empty (--gate "") means no quality gate, like --gate none; not given means the server's default.
                    Gates = parse.GetResult(gates) is null ? null : parse.GetValue(gates) ?? [],
                    DryRunGates = parse.GetValue(dryRun),
                    OnFailure = parse.GetValue(onFailure),
                    Deadline = parse.GetValue(deadline),
                    Rate = parse.GetValue(rate),
                    RateGrowth = parse.GetValue(rateGrowth),
                    Shadow = parse.GetValue(shadow),
                    MaxFailureShare = parse.GetValue(maxFailure),
                    MinFinished = parse.GetValue(minFinished),
                    Margins = parse.GetValue(margins),
                    Alpha = parse.GetValue(alpha),
                    StratifyBy = parse.GetValue(stratifyBy),
                    Promote = parse.GetValue(promote),
                    Supersede = parse.GetValue(supersede),
                    Reason = parse.GetValue(reason),
                });
            }
            catch (OptionValueException ex)
            {
                return Task.FromResult(ControlPlaneCommand.Fail(ex.Message, ExitCodes.Usage));
            }

            return ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await client.CreateRolloutAsync(request, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                    return ExitCodes.Ok;
                }

                var r = response.Value;
                Render.Line(string.Create(Invariant,
                    $"created rollout {r.Id}: {r.Model} {r.Version} to {r.DeviceCount} device{(r.DeviceCount == 1 ? "" : "s")} in {r.Stages.Count} stage{(r.Stages.Count == 1 ? "" : "s")} ({r.State})"));
                var table = Render.Table("stage", "kind", "size", "target", "devices", "bake", "approval");
                foreach (var s in r.Stages)
                {
                    Render.Row(table, Number(s.Index + 1), s.Kind, Size(s), Number(s.Target), Number(s.Devices), RolloutArguments.FormatDuration(s.BakeSeconds),
                        s.Approval ? "yes" : "no");
                }

                Render.Write(table);
                Render.Line($"follow it with: edgefleet rollouts watch {r.Id}");
                return ExitCodes.Ok;
            }, ex => ex.StatusCode == HttpStatusCode.NotFound && ex.Problem?.Detail is null
                ? $"no model {request.Model} version {request.Version}; edgefleet models show {request.Model} lists its versions"
                : null);
        });
        return command;
    }

    private static Command List()
    {
        var state = new Option<string?>("--state") { HelpName = "STATE", Description = $"Only rollouts in this state: {string.Join(", ", States)}" };
        state.AcceptOnlyFromAmong([.. States]);
        var limit = new Option<int?>("--limit") { HelpName = "N", Description = "At most N rollouts, newest first (default 100)" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("list", "Rollouts, newest first: state, stage and devices per state") { state, limit, json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.ListRolloutsAsync(parse.GetValue(state), parse.GetValue(limit), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            if (response.Value.Count == 0)
            {
                Render.Line(parse.GetValue(state) is { } s
                    ? $"no rollouts are {s}"
                    : "no rollouts yet: edgefleet rollouts create --model NAME --version VERSION --selector TAG");
                return ExitCodes.Ok;
            }

            var table = Render.Table("rollout", "model", "version", "state", "stage", "devices", "created");
            foreach (var r in response.Value)
            {
                Render.Row(table, r.Id, r.Model, r.Version, r.State, StageLabel(r), $"{Number(r.DeviceCount)}: {Counts(r.Counts)}", Render.Time(r.CreatedAt));
            }

            Render.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Show()
    {
        var id = IdArgument();
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("show", $"One rollout: its settings, stages, the newest verdict of every gate and the devices not pending or succeeded (the first {DeviceLines})")
        {
            id, json,
        };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.GetRolloutAsync(parse.GetValue(id)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            var r = response.Value;
            Render.Write(Render.Properties(Properties(r)));
            Render.Write(StagesTable(r));
            if ((r.Verdicts ?? []).Count == 0)
            {
                Render.Line("no verdicts yet");
            }
            else
            {
                Render.Write(VerdictsTable(r.Verdicts!));
            }

            WriteDevices(r);
            if (Next(r) is { } next)
            {
                Render.Line(next);
            }

            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(id))));
        return command;
    }

    private static Command Watch()
    {
        var id = IdArgument();
        var interval = new Option<string>("--interval") { HelpName = "DURATION", Description = "Time between two looks at the rollout (default 2s)", DefaultValueFactory = _ => "2s" };
        var json = new Option<bool>("--json") { Description = "Print the server's JSON body on one line each time it changes, and nothing else" };
        var command = new Command("watch", "Follow a rollout until it ends: exit code 0 when it succeeded, 1 when it failed, was aborted or rolled back")
        {
            id, interval, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            double seconds;
            try
            {
                var text = parse.GetValue(interval)!;
                seconds = RolloutArguments.ParseDuration(text, "--interval");
                if (seconds <= 0)
                {
                    throw new OptionValueException("--interval", $"'{text}' must be longer than 0 seconds");
                }
            }
            catch (OptionValueException ex)
            {
                return ControlPlaneCommand.Fail(ex.Message, ExitCodes.Usage);
            }

            // System.CommandLine 2.0.0 leaves SIGINT alone (its ProcessTerminationTimeout is null unless set): Ctrl+C would kill
            // the process mid-frame, with the live view's cursor still hidden. Turned into cancellation, it ends with 130.
            using var interrupted = new CancellationTokenSource();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interrupted.Token);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
            {
                context.Cancel = true;
                interrupted.Cancel();
            });
            var rolloutId = parse.GetValue(id)!;
            return await ControlPlaneCommand.RunAsync(
                (client, _) => WatchAsync(client, rolloutId, TimeSpan.FromSeconds(seconds), parse.GetValue(json), linked.Token), NotFoundHint(rolloutId)).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Action(string action, string description)
    {
        var id = IdArgument();
        var reason = ReasonOption();
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command(action, description) { id, reason, json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.ActOnRolloutAsync(parse.GetValue(id)!, action, new RolloutActionRequest { Reason = parse.GetValue(reason) }, cancellationToken)
                .ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            var r = response.Value;
            Render.Line($"{r.Id} is {r.State} at stage {StageLabel(r)}{(r.Reason is { Length: > 0 } why ? $": {why}" : "")}");
            if (Next(r) is { } next)
            {
                Render.Line(next);
            }

            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(id))));
        return command;
    }

    /// <summary>
    /// Polls the rollout until it reaches a final state: a live view on a terminal, otherwise one line (or with
    /// <paramref name="json"/> one compact JSON body) each time it changed.
    /// </summary>
    private static async Task<int> WatchAsync(ControlPlaneClient client, string id, TimeSpan interval, bool json, CancellationToken cancellationToken)
    {
        if (!json && !Console.IsOutputRedirected && Render.Console.Profile.Capabilities.Interactive)
        {
            RolloutInfo? last = null;
            await Render.Console.Live(new Text($"loading rollout {id}…")).AutoClear(false).StartAsync(async live =>
            {
                while (true)
                {
                    last = (await client.GetRolloutAsync(id, cancellationToken).ConfigureAwait(false)).Value;
                    live.UpdateTarget(LiveView(last));
                    live.Refresh();
                    if (IsFinal(last.State))
                    {
                        return;
                    }

                    await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
                }
            }).ConfigureAwait(false);
            return Finished(last!, print: true);
        }

        string? previous = null;
        while (true)
        {
            var response = await client.GetRolloutAsync(id, cancellationToken).ConfigureAwait(false);
            var r = response.Value;
            var line = json ? Compact(response.Body) : WatchLine(r);
            if (!string.Equals(line, previous, StringComparison.Ordinal))
            {
                if (json)
                {
                    ControlPlaneCommand.WriteJson(line);
                }
                else
                {
                    Render.Line(line);
                }

                previous = line;
            }

            if (IsFinal(r.State))
            {
                return Finished(r, print: !json);
            }

            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }

    private static int Finished(RolloutInfo r, bool print)
    {
        if (print)
        {
            Render.Line($"rollout {r.Id} {r.State}{(r.Reason is { Length: > 0 } why ? $": {why}" : "")}");
        }

        return r.State == RolloutStates.Succeeded ? ExitCodes.Ok : ExitCodes.Refused;
    }

    /// <summary>The body on one line, as received when it is one already (the control plane writes compact JSON).</summary>
    internal static string Compact(string body)
    {
        if (!body.Contains('\n', StringComparison.Ordinal) && !body.Contains('\r', StringComparison.Ordinal))
        {
            return body;
        }

        using var document = JsonDocument.Parse(body);
        var buffer = new ArrayBufferWriter<byte>(body.Length);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            document.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>One line for logs: when, state, stage, devices per state, the current stage's verdicts and what to do next.</summary>
    internal static string WatchLine(RolloutInfo r)
    {
        var stage = r.Stage < r.Stages.Count ? r.Stages[r.Stage] : null;
        var verdicts = (r.Verdicts ?? []).Where(v => v.Stage == r.Stage).Select(v => $"{v.Gate}={v.Outcome}{(v.DryRun ? " (dry run)" : "")}").ToList();
        var line = $"{Render.Time(r.UpdatedAt)} {r.Id} {r.State} stage {StageLabel(r)}{(stage is null ? "" : $" ({stage.Kind}, {stage.State})")}: {Counts(r.Counts)}";
        if (verdicts.Count > 0)
        {
            line += $"; gates {string.Join(' ', verdicts)}";
        }

        if (r.Reason is { Length: > 0 } reason && !IsFinal(r.State))
        {
            line += $"; {reason}";
        }

        return r.State switch
        {
            RolloutStates.AwaitingApproval => $"{line}; approve with: edgefleet rollouts approve {r.Id}",
            RolloutStates.Paused => $"{line}; continue with: edgefleet rollouts resume {r.Id}",
            _ => line,
        };
    }

    private static IRenderable LiveView(RolloutInfo r)
    {
        var header = $"{r.Id}  {r.Model} {r.Version}  {r.State}  stage {StageLabel(r)}  {Number(r.DeviceCount)} devices: {Counts(r.Counts)}";
        var parts = new List<IRenderable> { new Text(header, new Style(decoration: Decoration.Bold)) };
        if (r.Reason is { Length: > 0 } reason)
        {
            parts.Add(new Text(reason));
        }

        parts.Add(StagesTable(r));
        var newest = (r.Verdicts ?? []).OrderByDescending(v => v.At).Take(6).ToList();
        parts.Add(newest.Count == 0 ? new Text("no verdicts yet") : VerdictsTable(newest));
        if (Next(r) is { } next)
        {
            parts.Add(new Text(next));
        }

        return new Rows(parts);
    }

    private static IEnumerable<(string, string?)> Properties(RolloutInfo r)
    {
        yield return ("rollout", r.Id);
        yield return ("state", r.State);
        yield return ("reason", r.Reason);
        yield return ("model", $"{r.Model} {r.Version}");
        var stage = r.Stage < r.Stages.Count ? r.Stages[r.Stage] : null;
        yield return ("stage", $"{StageLabel(r)}{(stage is null ? "" : $" ({stage.Kind}, {stage.State})")}");
        yield return ("devices", $"{Number(r.DeviceCount)}: {Counts(r.Counts)}");
        if (r.Spec is { ValueKind: JsonValueKind.Object } spec)
        {
            var selector = Strings(spec, "selector");
            var devices = Strings(spec, "devices");
            yield return ("selector", selector.Count == 0 && devices.Count == 0 ? "every device" : Render.List(selector));
            if (devices.Count > 0)
            {
                yield return ("device ids", devices.Count <= 10 ? Render.List(devices) : string.Create(Invariant, $"{devices.Count} devices ({Render.List(devices.Take(10).ToList())}, …)"));
            }

            var dryRun = Strings(spec, "dryRunGates");
            var gates = new[] { "delivery" }.Concat(Strings(spec, "gates")).Select(g => dryRun.Contains(g, StringComparer.Ordinal) ? $"{g} (dry run)" : g);
            yield return ("gates", Render.List(gates.ToList()));
            yield return ("delivery gate", Number(spec, "maxFailureShare") is { } share
                ? string.Create(Invariant, $"at most {share:0.###} failed among finished devices, judged once {Number(spec, "minFinished") ?? 0:0} have finished")
                : null);
            yield return ("on failure", String(spec, "onFailure"));
            yield return ("deadline", Number(spec, "deadlineSeconds") is { } deadline ? $"{RolloutArguments.FormatDuration(deadline)} per device" : null);
            if (Number(spec, "ratePerMinute") is { } perMinute)
            {
                var growth = Number(spec, "rateGrowthFactor") is { } g && g > 1
                    ? string.Create(Invariant, $", ×{g:0.##} every {Number(spec, "rateGrowthEvery") ?? 0:0} succeeded devices")
                    : "";
                yield return ("rate", string.Create(Invariant, $"{perMinute:0.##} devices/min{growth}"));
            }

            yield return ("promote", spec.TryGetProperty("promote", out var p) && p.ValueKind == JsonValueKind.True ? "to production when it succeeds" : "no");
        }

        yield return ("created", $"{Render.Time(r.CreatedAt)}{(r.CreatedBy is null ? "" : $" by {r.CreatedBy}")}");
        yield return ("updated", Render.Time(r.UpdatedAt));
        if (r.FinishedAt is not null)
        {
            yield return ("finished", Render.Time(r.FinishedAt));
        }
    }

    private static Table StagesTable(RolloutInfo r)
    {
        var table = Render.Table("stage", "kind", "size", "target", "devices", "bake", "approval", "state", "device states");
        foreach (var s in r.Stages)
        {
            var current = s.Index == r.Stage && !IsFinal(r.State) ? "▶ " : "";
            Render.Row(table, current + Number(s.Index + 1), s.Kind, Size(s), Number(s.Target), Number(s.Devices), RolloutArguments.FormatDuration(s.BakeSeconds),
                s.Approval ? "yes" : "no", s.State, Counts(s.Counts));
        }

        return table;
    }

    private static Table VerdictsTable(IEnumerable<GateVerdictInfo> verdicts)
    {
        var table = Render.Table("stage", "gate", "outcome", "dry run", "look", "at", "summary");
        foreach (var v in verdicts)
        {
            Render.Row(table, Number(v.Stage + 1), v.Gate, v.Outcome, v.DryRun ? "yes" : "no", Number(v.Look), Render.Time(v.At), v.Summary);
        }

        return table;
    }

    private static void WriteDevices(RolloutInfo r)
    {
        var notable = (r.Devices ?? []).Where(d => d.State is not (RolloutDeviceStates.Pending or RolloutDeviceStates.Succeeded)).ToList();
        if (notable.Count == 0)
        {
            return;
        }

        var table = Render.Table("device", "stage", "state", "previous version", "reason");
        foreach (var d in notable.Take(DeviceLines))
        {
            // Devices past the last stage's target are in no stage: they stay on their version as controls.
            Render.Row(table, d.DeviceId, d.Stage < r.Stages.Count ? Number(d.Stage + 1) : "none", d.State, d.PreviousVersion, d.Reason);
        }

        Render.Write(table);
        if (notable.Count > DeviceLines)
        {
            Render.Line(string.Create(Invariant, $"… {notable.Count - DeviceLines} more (edgefleet rollouts show {r.Id} --json lists every device)"));
        }
    }

    /// <summary>The command that moves the rollout on from its state, if any.</summary>
    private static string? Next(RolloutInfo r) => r.State switch
    {
        RolloutStates.Running or RolloutStates.RollingBack => $"follow it with: edgefleet rollouts watch {r.Id}",
        RolloutStates.AwaitingApproval => $"start the next stage with: edgefleet rollouts approve {r.Id}",
        RolloutStates.Paused => $"continue with: edgefleet rollouts resume {r.Id} (approve passes a stage a gate stopped; rollback reverts the updated devices)",
        _ => null,
    };

    /// <summary>1-based, as the server's own messages count stages.</summary>
    private static string StageLabel(RolloutInfo r) => string.Create(Invariant, $"{r.Stage + 1}/{r.Stages.Count}");

    private static string Size(RolloutStageInfo s) =>
        s.Percent is { } p ? string.Create(Invariant, $"{p:0.###} %") : s.Count is { } c ? string.Create(Invariant, $"{c} device{(c == 1 ? "" : "s")}") : "–";

    /// <summary>Devices per state in the order a device passes through them: "3 notified, 2 pending".</summary>
    internal static string Counts(IReadOnlyDictionary<string, int>? counts)
    {
        if (counts is null || counts.Count == 0)
        {
            return "none";
        }

        return string.Join(", ", counts.Where(c => c.Value > 0).OrderBy(c => StateOrder.GetValueOrDefault(c.Key, int.MaxValue)).ThenBy(c => c.Key, StringComparer.Ordinal)
            .Select(c => string.Create(Invariant, $"{c.Value} {c.Key}")));
    }

    private static string Number(long value) => value.ToString(Invariant);

    private static List<string> Strings(JsonElement spec, string name)
    {
        var list = new List<string>();
        if (spec.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array)
        {
            // By index: the array enumerator is IDisposable, which the analyzers track even through foreach.
            for (var i = 0; i < v.GetArrayLength(); i++)
            {
                if (v[i].ValueKind == JsonValueKind.String)
                {
                    list.Add(v[i].GetString()!);
                }
            }
        }

        return list;
    }

    private static string? String(JsonElement spec, string name) =>
        spec.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double? Number(JsonElement spec, string name) =>
        spec.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static Argument<string> IdArgument() => new("ID") { Description = "Rollout id (ro-…)" };

    private static Option<string?> ReasonOption() => new("--reason") { HelpName = "TEXT", Description = "Why (kept in the audit log)" };

    private static Func<ControlPlaneException, string?> NotFoundHint(string? id) => ex =>
        ex.StatusCode == HttpStatusCode.NotFound && ex.Problem?.Detail is null ? $"no rollout '{id}'; edgefleet rollouts list shows them" : null;
}

/// <summary>A command-line value the CLI cannot turn into a request; the message names the option.</summary>
internal sealed class OptionValueException : Exception
{
    public OptionValueException(string option, string message)
        : base($"{option}: {message}")
    {
        Option = option;
    }

    public OptionValueException()
    {
    }

    public OptionValueException(string message)
        : base(message)
    {
    }

    public OptionValueException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public string Option { get; } = "";
}

/// <summary>The options of <c>edgefleet rollouts create</c> as typed: raw text where the CLI has its own syntax.</summary>
internal sealed record RolloutCreateArguments
{
    public required string Model { get; init; }

    public required string Version { get; init; }

    public IReadOnlyList<string>? Selector { get; init; }

    public IReadOnlyList<string>? Devices { get; init; }

    public string? Stages { get; init; }

    public int? MinDevices { get; init; }

    public string? Bake { get; init; }

    public bool ApproveEach { get; init; }

    /// <summary>Null: the option was not given (the server's default gates); empty or "none": delivery only.</summary>
    public IReadOnlyList<string>? Gates { get; init; }

    public IReadOnlyList<string>? DryRunGates { get; init; }

    public string? OnFailure { get; init; }

    public string? Deadline { get; init; }

    public string? Rate { get; init; }

    public string? RateGrowth { get; init; }

    public string? Shadow { get; init; }

    public double? MaxFailureShare { get; init; }

    public int? MinFinished { get; init; }

    public IReadOnlyList<string>? Margins { get; init; }

    public double? Alpha { get; init; }

    public string? StratifyBy { get; init; }

    public bool Promote { get; init; }

    public bool Supersede { get; init; }

    public string? Reason { get; init; }
}

/// <summary>
/// The CLI's own syntax for rollouts (durations, rates, stage lists) turned into the API's numbers. Only the syntax and
/// signs are checked here; limits (longest bake, largest rate…) are the server's to say, with the field it names.
/// </summary>
internal static partial class RolloutArguments
{
    /// <summary>The server's default stages; <c>--bake</c> or <c>--min-devices</c> without <c>--stages</c> apply to these.</summary>
    public const string DefaultStages = "1%,10%,50%,100%";

    public static readonly IReadOnlyList<string> QualityGates = ["latency", "errors", "nan", "confidence", "drift", "shadow"];

    private const string Delivery = "delivery";
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <exception cref="OptionValueException">A value is not what its option takes.</exception>
    public static RolloutRequest BuildRequest(RolloutCreateArguments a)
    {
        ArgumentNullException.ThrowIfNull(a);
        IReadOnlyList<RolloutStageRequest>? stages = null;
        if (a.Stages is not null || a.Bake is not null || a.MinDevices is not null)
        {
            if (a.MinDevices is < 0)
            {
                throw new OptionValueException("--min-devices", "must be 0 or more");
            }

            var bake = a.Bake is null ? (double?)null : ParseDuration(a.Bake, "--bake");
            stages = ParseStages(a.Stages ?? DefaultStages, "--stages")
                .Select(s => s with { MinDevices = a.MinDevices, BakeSeconds = bake }).ToList();
        }

        if (a.MaxFailureShare is { } share && (!double.IsFinite(share) || share is < 0 or > 1))
        {
            throw new OptionValueException("--max-failure-share", $"'{share.ToString(Invariant)}' is not a share between 0 and 1 (0.1: one failed device in ten)");
        }

        if (a.MinFinished is < 1)
        {
            throw new OptionValueException("--min-finished", "must be at least 1");
        }

        if (a.Alpha is { } alpha && (!double.IsFinite(alpha) || alpha <= 0 || alpha >= 1))
        {
            throw new OptionValueException("--alpha", $"'{alpha.ToString(Invariant)}' is not a probability between 0 and 1 (0.05: one false alarm in twenty)");
        }

        var onFailure = a.OnFailure;
        if (onFailure is not (null or "pause" or "rollback"))
        {
            throw new OptionValueException("--on-failure", $"'{onFailure}' is not a policy: pause (stop and wait for an operator) or rollback (send updated devices their previous version)");
        }

        (double Factor, int Every)? growth = a.RateGrowth is null ? null : ParseRateGrowth(a.RateGrowth, "--rate-growth");
        return new RolloutRequest
        {
            Model = a.Model,
            Version = a.Version,
            Selector = a.Selector is { Count: > 0 } ? ControlPlaneCommand.SplitList(a.Selector) : null,
            Devices = a.Devices is { Count: > 0 } ? ControlPlaneCommand.SplitList(a.Devices) : null,
            Stages = stages,
            Gates = a.Gates is null ? null : ParseGates(a.Gates, "--gate"),
            DryRunGates = a.DryRunGates is { Count: > 0 } ? ParseDryRunGates(a.DryRunGates, "--dry-run-gate") : null,
            OnFailure = onFailure,
            DeadlineSeconds = a.Deadline is null ? null : Positive(ParseDuration(a.Deadline, "--deadline"), a.Deadline, "--deadline"),
            RatePerMinute = a.Rate is null ? null : ParseRate(a.Rate, "--rate"),
            RateGrowthFactor = growth?.Factor,
            RateGrowthEvery = growth?.Every,
            ShadowSeconds = a.Shadow is null ? null : ParseDuration(a.Shadow, "--shadow"),
            ApproveEach = a.ApproveEach,
            Supersede = a.Supersede,
            Promote = a.Promote,
            MaxFailureShare = a.MaxFailureShare,
            MinFinished = a.MinFinished,
            Alpha = a.Alpha,
            Margins = a.Margins is { Count: > 0 } ? ParseMargins(a.Margins, "--margin") : null,
            StratifyBy = a.StratifyBy,
            Reason = a.Reason,
        };
    }

    /// <summary><c>90s</c>, <c>10m</c>, <c>1h30m</c>, <c>1d</c>, <c>500ms</c> or plain seconds (<c>600</c>, <c>2.5</c>) → seconds.</summary>
    /// <exception cref="OptionValueException">Not a duration.</exception>
    public static double ParseDuration(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim();
        double seconds;
        if (PlainNumber().IsMatch(value))
        {
            seconds = double.Parse(value, NumberStyles.AllowDecimalPoint, Invariant);
        }
        else if (Duration().Match(value) is { Success: true } m && value.Length > 0)
        {
            double Part(string group, double unit) => m.Groups[group].Success ? double.Parse(m.Groups[group].Value, NumberStyles.AllowDecimalPoint, Invariant) * unit : 0;
            seconds = Part("d", 86400) + Part("h", 3600) + Part("m", 60) + Part("s", 1) + Part("ms", 0.001);
        }
        else
        {
            throw new OptionValueException(option, $"'{text}' is not a duration: use e.g. 90s, 10m, 1h, 1h30m or plain seconds");
        }

        return double.IsFinite(seconds) ? seconds : throw new OptionValueException(option, $"'{text}' is too long a duration");
    }

    /// <summary><c>500/min</c>, <c>10/s</c>, <c>600/h</c> (a bare number: per minute) → devices per minute.</summary>
    /// <exception cref="OptionValueException">Not a rate, or not above zero.</exception>
    public static double ParseRate(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = Rate().Match(text.Trim());
        if (!m.Success)
        {
            throw new OptionValueException(option, $"'{text}' is not a rate: use devices per unit of time, e.g. 500/min, 10/s or 600/h");
        }

        var count = double.Parse(m.Groups["n"].Value, NumberStyles.AllowDecimalPoint, Invariant);
        var perMinute = m.Groups["unit"].Value switch
        {
            "s" or "sec" => count * 60,
            "h" or "hour" => count / 60,
            _ => count,
        };
        return perMinute > 0 && double.IsFinite(perMinute) ? perMinute : throw new OptionValueException(option, $"'{text}' must be more than 0 devices");
    }

    /// <summary><c>2x/50</c> → multiply the rate by 2 each time 50 more devices succeeded.</summary>
    /// <exception cref="OptionValueException">Not FACTORx/N, factor below 1 or N below 1.</exception>
    public static (double Factor, int Every) ParseRateGrowth(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = RateGrowth().Match(text.Trim());
        if (!m.Success || !int.TryParse(m.Groups["every"].Value, NumberStyles.None, Invariant, out var every))
        {
            throw new OptionValueException(option, $"'{text}' is not FACTORx/N, e.g. 2x/50: double the rate each time 50 more devices succeeded");
        }

        var factor = double.Parse(m.Groups["factor"].Value, NumberStyles.AllowDecimalPoint, Invariant);
        if (factor < 1)
        {
            throw new OptionValueException(option, $"the factor in '{text}' must be at least 1 (1x: a constant rate)");
        }

        return every >= 1 ? (factor, every) : throw new OptionValueException(option, $"the device count in '{text}' must be at least 1");
    }

    /// <summary>
    /// <c>1%,10%,50%,100%</c> or <c>5,50%,100%</c>: cumulative stages, a percentage of the selected devices or a bare
    /// count of devices.
    /// </summary>
    /// <exception cref="OptionValueException">An entry is neither, out of range, or below the stage before it.</exception>
    public static IReadOnlyList<RolloutStageRequest> ParseStages(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = text.Split(',', StringSplitOptions.TrimEntries);
        if (entries.Length > 20 || entries.Any(e => e.Length == 0))
        {
            throw new OptionValueException(option, $"'{text}' is not a list of 1 to 20 stages, e.g. 1%,10%,50%,100% (N% of the devices, or a bare number of devices)");
        }

        var stages = new List<RolloutStageRequest>(entries.Length);
        double lastPercent = 0;
        var lastCount = 0;
        foreach (var entry in entries)
        {
            if (Percent().Match(entry) is { Success: true } p)
            {
                var percent = double.Parse(p.Groups["n"].Value, NumberStyles.AllowDecimalPoint, Invariant);
                if (percent is <= 0 or > 100)
                {
                    throw new OptionValueException(option, $"stage '{entry}' must be more than 0 % and at most 100 %");
                }

                if (percent < lastPercent)
                {
                    throw new OptionValueException(option, $"stage '{entry}' is below the stage before it ({lastPercent.ToString(Invariant)}%): stages are cumulative");
                }

                lastPercent = percent;
                stages.Add(new RolloutStageRequest { Percent = percent });
            }
            else if (int.TryParse(entry, NumberStyles.None, Invariant, out var count))
            {
                if (count < 1)
                {
                    throw new OptionValueException(option, $"stage '{entry}' must be at least 1 device");
                }

                if (count < lastCount)
                {
                    throw new OptionValueException(option, $"stage '{entry}' is below the stage before it ({lastCount} devices): stages are cumulative");
                }

                lastCount = count;
                stages.Add(new RolloutStageRequest { Count = count });
            }
            else
            {
                throw new OptionValueException(option, $"stage '{entry}' is neither a percentage (10%) nor a number of devices (25)");
            }
        }

        return stages;
    }

    /// <summary><c>latency,errors</c> → those gates; <c>none</c> or nothing → no quality gate (delivery only).</summary>
    /// <exception cref="OptionValueException">An unknown gate, or none together with gates.</exception>
    public static IReadOnlyList<string> ParseGates(IEnumerable<string> values, string option)
    {
        var gates = ControlPlaneCommand.SplitList(values);
        if (gates.Contains("none", StringComparer.Ordinal))
        {
            return gates.Count == 1 ? [] : throw new OptionValueException(option, "none (delivery only) cannot be combined with other gates");
        }

        return gates.FirstOrDefault(g => !QualityGates.Contains(g, StringComparer.Ordinal)) is { } unknown
            ? throw new OptionValueException(option, $"'{unknown}' is not a quality gate: {string.Join(", ", QualityGates)}, or none (the delivery gate always runs)")
            : gates;
    }

    /// <exception cref="OptionValueException">An unknown gate.</exception>
    public static IReadOnlyList<string> ParseDryRunGates(IEnumerable<string> values, string option)
    {
        var gates = ControlPlaneCommand.SplitList(values);
        return gates.FirstOrDefault(g => g != Delivery && !QualityGates.Contains(g, StringComparer.Ordinal)) is { } unknown
            ? throw new OptionValueException(option, $"'{unknown}' is not a gate: {Delivery}, {string.Join(", ", QualityGates)}")
            : gates;
    }

    /// <summary><c>latency=0.2</c> (repeatable or comma-separated) → margin per gate.</summary>
    /// <exception cref="OptionValueException">Not GATE=NUMBER, an unknown gate or a negative margin.</exception>
    public static IReadOnlyDictionary<string, double> ParseMargins(IEnumerable<string> values, string option)
    {
        var margins = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var entry in ControlPlaneCommand.SplitList(values))
        {
            var parts = entry.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !QualityGates.Contains(parts[0], StringComparer.Ordinal)
                || !double.TryParse(parts[1], NumberStyles.AllowDecimalPoint, Invariant, out var margin) || !double.IsFinite(margin))
            {
                throw new OptionValueException(option, $"'{entry}' is not GATE=MARGIN with a gate of {string.Join(", ", QualityGates)}, e.g. latency=0.2 (20 % slower tolerated)");
            }

            margins[parts[0]] = margin;
        }

        return margins;
    }

    /// <summary>Seconds as people write them: 90 → 1m30s, 5400 → 1h30m, 0.5 → 0.5s.</summary>
    public static string FormatDuration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds <= 0)
        {
            return "0s";
        }

        if (seconds < 1)
        {
            return string.Create(Invariant, $"{seconds:0.###}s");
        }

        var total = (long)Math.Round(seconds);
        var parts = new List<string>(4);
        foreach (var (unit, size) in new[] { ("d", 86400L), ("h", 3600L), ("m", 60L), ("s", 1L) })
        {
            if (total >= size)
            {
                parts.Add(string.Create(Invariant, $"{total / size}{unit}"));
                total %= size;
            }
        }

        return string.Concat(parts);
    }

    private static double Positive(double seconds, string text, string option) =>
        seconds > 0 ? seconds : throw new OptionValueException(option, $"'{text}' must be longer than 0 seconds");

    [GeneratedRegex(@"^\d+(\.\d+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex PlainNumber();

    [GeneratedRegex(@"^(?:(?<d>\d+(?:\.\d+)?)d)?(?:(?<h>\d+(?:\.\d+)?)h)?(?:(?<m>\d+(?:\.\d+)?)m)?(?:(?<s>\d+(?:\.\d+)?)s)?(?:(?<ms>\d+(?:\.\d+)?)ms)?$",
        RegexOptions.CultureInvariant)]
    private static partial Regex Duration();

    [GeneratedRegex(@"^(?<n>\d+(?:\.\d+)?)\s*(?:/\s*(?<unit>s|sec|m|min|h|hour))?$", RegexOptions.CultureInvariant)]
    private static partial Regex Rate();

    [GeneratedRegex(@"^(?<factor>\d+(?:\.\d+)?)x/(?<every>\d{1,9})$", RegexOptions.CultureInvariant)]
    private static partial Regex RateGrowth();

    [GeneratedRegex(@"^(?<n>\d+(?:\.\d+)?)\s*%$", RegexOptions.CultureInvariant)]
    private static partial Regex Percent();
}
