using System.Text.Json;

namespace EdgeFleet.Cli.Api;

/// <summary>An RFC 9457 problem+json body: what the server said went wrong, with per-field validation messages.</summary>
internal sealed record ApiProblem(
    string? Type,
    string? Title,
    int? Status,
    string? Detail,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Errors)
{
    /// <summary>
    /// Reads a problem body leniently (read, not deserialised: it is not a contract type and any server, proxy or
    /// older control plane may send a partial one); null when the body is not a JSON object.
    /// </summary>
    public static ApiProblem? TryParse(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            var errors = new SortedDictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (root.TryGetProperty("errors", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                using var fields = map.EnumerateObject();
                foreach (var field in fields)
                {
                    errors[field.Name] = Messages(field.Value);
                }
            }

            return new ApiProblem(
                String(root, "type"),
                String(root, "title"),
                root.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt32(out var status) ? status : null,
                String(root, "detail"),
                errors);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string[] Messages(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            return [Text(value)];
        }

        using var items = value.EnumerateArray();
        return items.Select(Text).ToArray();
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Text(JsonElement value) => value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
}
