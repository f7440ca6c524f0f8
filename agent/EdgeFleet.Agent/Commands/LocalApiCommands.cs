using System.Globalization;
using System.Text;
using EdgeFleet.Agent.LocalApi;
using EdgeFleet.Agent.LocalApi.V1;
using Google.Protobuf;
using Grpc.Core;

namespace EdgeFleet.Agent.Commands;

/// <summary><c>status</c> (live part), <c>results</c> and <c>snapshot</c> over the local API.</summary>
public static class LocalApiCommands
{
    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    /// <summary>The live status, or null when the agent does not answer on the socket (the caller falls back).</summary>
    public static async Task<StatusReply?> TryStatusAsync(string socket, CancellationToken cancellationToken)
    {
        if (!LocalApiClient.IsListening(socket))
        {
            return null;
        }

        using var channel = LocalApiClient.Open(socket);
        try
        {
            return await LocalApiClient.Client(channel).StatusAsync(new StatusRequest(), deadline: TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(10), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
        }
        catch (RpcException)
        {
            return null;
        }
    }

    public static string FormatStatusJson(StatusReply reply) => Json.Format(reply);

    public static async Task PrintStatusAsync(StatusReply s, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(output);
        var c = CultureInfo.InvariantCulture;
        var p = s.Pipeline;
        await output.WriteLineAsync($"device:    {s.DeviceId} (agent {s.AgentVersion}, live over the local API)").ConfigureAwait(false);
        if (s.Model is { } m)
        {
            await output.WriteLineAsync($"model:     {m.Name} {m.Version} ({m.Task}, {m.Provider}, input {m.InputWidth}x{m.InputHeight})").ConfigureAwait(false);
        }

        await output.WriteLineAsync(string.Create(c,
            $"pipeline:  {p.Fps:0.0} fps | captured {p.Captured} inferred {p.Inferred}{(p.Skipped > 0 ? $" skipped {p.Skipped}" : "")} dropped {p.Dropped} errors {p.Errors} | end-to-end p50 {p.Latency?.P50Ms:0.0} p95 {p.Latency?.P95Ms:0.0} ms")).ConfigureAwait(false);
        var cam = s.Camera;
        await output.WriteLineAsync($"camera:    {cam.State}{(cam.Connected ? "" : " (not delivering)")}, restarts {cam.Restarts}, stalls {cam.Stalls}{(cam.LastError is { Length: > 0 } e ? $", last error: {e}" : "")}").ConfigureAwait(false);
        if (s.Trigger is { } t)
        {
            await output.WriteLineAsync($"trigger:   {t.Chip} line {t.Line}, {t.Edge} edge: {t.Edges} edges, {t.Inferred} frames inferred on them, {t.Debounced} debounced").ConfigureAwait(false);
        }

        if (s.StatusLed is { Length: > 0 } led)
        {
            await output.WriteLineAsync($"led:       {led}").ConfigureAwait(false);
        }

        var o = s.Ota;
        await output.WriteLineAsync(o.State == "none"
            ? "update:    none received"
            : $"update:    {o.Model} {o.Version} ({o.Mode}): {o.State}{(o.Total > 0 ? string.Create(c, $", {o.Bytes} of {o.Total} bytes") : "")}").ConfigureAwait(false);
        if (o.LastFailure is { Length: > 0 } f)
        {
            await output.WriteLineAsync($"last failure: {f}").ConfigureAwait(false);
        }
    }

    /// <summary><c>results --follow</c>: one line per result until Ctrl-C or the agent stops. Exit 0, 3 agent not reachable.</summary>
    public static async Task<int> ResultsAsync(string socket, bool json, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (!LocalApiClient.IsListening(socket))
        {
            await error.WriteLineAsync(NotRunning(socket)).ConfigureAwait(false);
            return 3;
        }

        using var channel = LocalApiClient.Open(socket);
        try
        {
            using var call = LocalApiClient.Client(channel).Results(new ResultsRequest(), cancellationToken: cancellationToken);
            await foreach (var r in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await output.WriteLineAsync(json ? Json.Format(r) : Describe(r)).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled || cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (RpcException ex)
        {
            await error.WriteLineAsync($"error: {ex.Status.Detail} ({ex.StatusCode})").ConfigureAwait(false);
            return ex.StatusCode == StatusCode.Unavailable ? 3 : 1;
        }
    }

    /// <summary><c>snapshot --out FILE</c>: the next frame as JPEG. Exit 0, 1 no frame, 3 agent not reachable.</summary>
    public static async Task<int> SnapshotAsync(string socket, string outPath, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (!LocalApiClient.IsListening(socket))
        {
            await error.WriteLineAsync(NotRunning(socket)).ConfigureAwait(false);
            return 3;
        }

        using var channel = LocalApiClient.Open(socket);
        try
        {
            var reply = await LocalApiClient.Client(channel).SnapshotAsync(new SnapshotRequest(), deadline: TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(70), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            await File.WriteAllBytesAsync(outPath, reply.Jpeg.ToByteArray(), cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"{outPath}: {reply.Width}x{reply.Height} JPEG, {reply.Jpeg.Length} bytes; {Describe(reply.Result)}").ConfigureAwait(false);
            return 0;
        }
        catch (RpcException ex)
        {
            await error.WriteLineAsync($"error: {ex.Status.Detail} ({ex.StatusCode})").ConfigureAwait(false);
            return 1;
        }
    }

    internal static string Describe(Result r)
    {
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append(c, $"frame {r.Frame} {r.Model} {r.ModelVersion}: ");
        if (r.Classes.Count > 0)
        {
            b.AppendJoin(", ", r.Classes.Take(3).Select(k => string.Create(c, $"{(k.Label.Length > 0 ? k.Label : $"#{k.ClassId}")} {k.Score:0.00}")));
        }
        else
        {
            b.Append(c, $"{r.Detections.Count} box{(r.Detections.Count == 1 ? "" : "es")}");
            foreach (var d in r.Detections.Take(3))
            {
                b.Append(c, $", {(d.Label.Length > 0 ? d.Label : $"#{d.ClassId}")} {d.Score:0.00} [{d.X1:0},{d.Y1:0},{d.X2:0},{d.Y2:0}]");
            }
        }

        if (r.Dropped > 0)
        {
            b.Append(c, $" (dropped {r.Dropped})");
        }

        return b.ToString();
    }

    private static string NotRunning(string socket) =>
        $"error: no agent answers on {socket} (is `edgefleet-agent run` running? set --socket or Agent:LocalApi:Socket in --config)";
}
