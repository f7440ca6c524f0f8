using System.Globalization;
using EdgeFleet.Contracts.Api;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace EdgeFleet.Cli.Commands;

/// <summary>Human output: Spectre.Console tables on stdout. Server strings are rendered as text, never as markup.</summary>
internal static class Render
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static IAnsiConsole Console { get; } = CreateConsole();

    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(new Text(column, new Style(decoration: Decoration.Bold))));
        }

        return table;
    }

    public static void Row(Table table, params string?[] cells) =>
        table.AddRow(cells.Select(c => (IRenderable)new Text(string.IsNullOrEmpty(c) ? "–" : c)).ToArray());

    /// <summary>A two-column property list (show commands).</summary>
    public static Table Properties(IEnumerable<(string Key, string? Value)> rows)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders();
        table.AddColumn(new TableColumn("key"));
        table.AddColumn(new TableColumn("value"));
        foreach (var (key, value) in rows)
        {
            table.AddRow(new Text(key, new Style(decoration: Decoration.Bold)), new Text(string.IsNullOrEmpty(value) ? "–" : value));
        }

        return table;
    }

    public static void Write(IRenderable renderable) => Console.Write(renderable);

    public static void Line(string text) => Console.Write(new Text(text + Environment.NewLine));

    public static string Time(DateTimeOffset? time) =>
        time is { } t && t != default ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", Invariant) : "–";

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => string.Create(Invariant, $"{bytes} B"),
        < 1024 * 1024 => string.Create(Invariant, $"{bytes / 1024.0:0.0} KiB"),
        < 1024L * 1024 * 1024 => string.Create(Invariant, $"{bytes / (1024.0 * 1024):0.0} MiB"),
        _ => string.Create(Invariant, $"{bytes / (1024.0 * 1024 * 1024):0.00} GiB"),
    };

    public static string Number(double? value, string format) => value is { } v ? v.ToString(format, Invariant) : "–";

    public static string Number(long? value) => value is { } v ? v.ToString(Invariant) : "–";

    /// <summary>
    /// Null-safe on purpose: source-generated deserialisation leaves a list that is missing from the JSON null, even
    /// where the contract type initialises it to empty.
    /// </summary>
    public static string List(IReadOnlyList<string>? items) => items is null ? "" : string.Join(", ", items);

    public static string Short(string? sha256) => sha256 is { Length: > 12 } s ? s[..12] + "…" : sha256 ?? "–";

    public static IEnumerable<(string, string?)> VersionProperties(ModelVersionInfo v)
    {
        yield return ("model", v.Name);
        yield return ("version", v.Version);
        yield return ("stage", v.Stage);
        yield return ("task", v.Task);
        yield return ("description", v.Description);
        yield return ("size", $"{Bytes(v.Size)} ({v.Size.ToString(Invariant)} bytes)");
        yield return ("sha256", v.Sha256);
        yield return ("pushed", $"{Time(v.CreatedAt)}{(v.CreatedBy is null ? "" : $" by {v.CreatedBy}")}");
        yield return ("drift profile", v.HasDriftProfile ? "yes" : "no");
        var m = v.Metadata ?? new ModelVersionMetadata();
        if (m.Metrics is { Count: > 0 } metrics)
        {
            yield return ("metrics", string.Join(", ", metrics.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => string.Create(Invariant, $"{p.Key}={p.Value:0.####}"))));
        }

        if (m.Parameters is { Count: > 0 } parameters)
        {
            yield return ("parameters", string.Join(", ", parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")));
        }

        if (m.DatasetVersion is not null)
        {
            yield return ("dataset", m.DatasetVersion);
        }

        if (m.TrainingRun is not null)
        {
            yield return ("training run", m.TrainingRun);
        }

        if (m.ParentVersion is not null)
        {
            yield return ("parent version", m.ParentVersion);
        }
    }

    public static IEnumerable<(string, string?)> DeviceProperties(DeviceInfo d)
    {
        yield return ("device", d.Id);
        yield return ("status", Status(d));
        yield return ("tags", List(d.Tags));
        yield return ("last seen", Time(d.LastSeen));
        yield return ("enrolled", Time(d.EnrolledAt));
        yield return ("agent", d.AgentVersion);
        yield return ("model", d.Model is { } model ? $"{model.Name} {model.Version}" : null);
        if (d.Health is { } h)
        {
            yield return ("health at", Time(h.At));
            yield return ("fps", Number(h.Fps, "0.0"));
            yield return ("latency p95", h.LatencyP95Ms is null ? null : $"{Number(h.LatencyP95Ms, "0.0")} ms");
            yield return ("errors", Number(h.Errors));
            yield return ("cpu", h.CpuPercent is null ? null : $"{Number(h.CpuPercent, "0")} %");
            yield return ("memory", h.MemUsedBytes is { } mem ? Bytes(mem) : null);
            yield return ("temperature", h.TemperatureC is null ? null : $"{Number(h.TemperatureC, "0.0")} °C");
            yield return ("drift", h.DriftSeverity);
        }

        yield return ("messages", string.Create(Invariant, $"{d.MessagesReceived} received, {d.MessagesLost} lost, {d.MessagesInvalid} invalid"));
        yield return ("desired", d.Desired is { } a ? $"{a.Model} {a.Version} ({a.Mode}), issued {Time(a.IssuedAt)} by {a.IssuedBy}" : "(no assignment)");
        yield return ("ota", d.Ota is { } o
            ? $"{o.State}{(o.Model is null ? "" : $" {o.Model} {o.Version}")}{(o.Mode is null ? "" : $" ({o.Mode})")}{(o.Reason is null ? "" : $": {o.Reason}")} at {Time(o.At)}"
            : "(no update events)");
    }

    public static string Status(DeviceInfo d) => d.Revoked ? "revoked" : d.Online ? "online" : "offline";

    private static IAnsiConsole CreateConsole()
    {
        // Piped into a file, grep or a CI log: Spectre would still emit escape codes when TERM looks capable.
        var redirected = System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(System.Console.Out),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
        });

        // No terminal width there either; 80 columns would squeeze wide tables into many lines.
        if (redirected)
        {
            console.Profile.Width = 200;
        }

        return console;
    }
}
