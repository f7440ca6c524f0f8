using System.Buffers;

namespace EdgeFleet.ControlPlane.Domain;

/// <summary>
/// Checks every validator shares, so a field breaking them is reported alike wherever it appears. Request bodies
/// arrive through System.Text.Json, which lets <c>null</c> into any reference-typed field or list element whatever
/// its nullability annotation says; and PostgreSQL refuses text containing NUL, which SQLite would store.
/// </summary>
public static class Input
{
    private static readonly SearchValues<char> ControlCharacters =
        SearchValues.Create([.. Enumerable.Range(0, 32).Where(c => c is not ('\t' or '\n' or '\r')).Select(c => (char)c), '\u007f']);

    /// <summary>
    /// Free text (a description, a reason, a name): at most <paramref name="maxLength"/> characters, no control
    /// characters other than tab and line breaks. Null passes (the field is optional); use <see cref="Required"/> first.
    /// </summary>
    public static string? Text(string? value, string field, int maxLength)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length > maxLength)
        {
            throw new InvalidInputException(field, $"must be at most {maxLength} characters (got {value.Length})");
        }

        var bad = value.AsSpan().IndexOfAny(ControlCharacters);
        return bad >= 0
            ? throw new InvalidInputException(field, $"contains the control character U+{(int)value[bad]:X4} at position {bad}; only printable text, tabs and line breaks are allowed")
            : value;
    }

    /// <summary>A refused value as an error message quotes it: bounded, so a megabyte of garbage is not echoed back.</summary>
    public static string? Quote(string? value) => value is { Length: > 100 } ? value[..100] + "…" : value;

    /// <summary>A required field: present, not null and not blank.</summary>
    public static string Required(string? value, string field, string what) =>
        string.IsNullOrWhiteSpace(value) ? throw new InvalidInputException(field, $"is required: {what}") : value;

    /// <summary>A list field that is present and has no null elements; the element's path (<c>tags[2]</c>) names a null one.</summary>
    public static IReadOnlyList<T> List<T>(IReadOnlyList<T?>? list, string field, string element, int maxCount)
        where T : class
    {
        if (list is null)
        {
            throw new InvalidInputException(field, $"must be an array of {element}s, not null (leave it out for none)");
        }

        if (list.Count > maxCount)
        {
            throw new InvalidInputException(field, $"at most {maxCount} {element}s (got {list.Count})");
        }

        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is null)
            {
                throw new InvalidInputException($"{field}[{i}]", $"must be a {element}, not null");
            }
        }

        return list!;
    }
}
