using System.Globalization;
using System.Text.Json;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Drift;

/// <summary>A dataset that cannot be read; the message names the file, and the row and column when it applies.</summary>
public sealed class DriftDataException : Exception
{
    public DriftDataException(string message)
        : base(message)
    {
    }

    public DriftDataException()
    {
    }

    public DriftDataException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The features of one side of an offline comparison, read from a CSV file (header of feature names, one row per
/// observation, numeric cells; categorical columns hold category codes) or from a drift profile JSON file.
/// </summary>
public sealed class DriftDataset
{
    private DriftDataset(string source, IReadOnlyList<string> names, IReadOnlyDictionary<string, NumericData> numeric,
        IReadOnlyDictionary<string, CategoricalData> categorical)
    {
        Source = source;
        Names = names;
        Numeric = numeric;
        Categorical = categorical;
    }

    public string Source { get; }

    /// <summary>Feature names in file order.</summary>
    public IReadOnlyList<string> Names { get; }

    public IReadOnlyDictionary<string, NumericData> Numeric { get; }

    public IReadOnlyDictionary<string, CategoricalData> Categorical { get; }

    /// <summary>Reads a CSV file or, when it starts with '{', a drift profile.</summary>
    public static DriftDataset Load(string path, IReadOnlySet<string> categoricalColumns)
    {
        ArgumentNullException.ThrowIfNull(categoricalColumns);
        if (!File.Exists(path))
        {
            throw new DriftDataException($"{path}: file not found");
        }

        var text = File.ReadAllText(path);
        return text.TrimStart().StartsWith('{') ? FromProfile(path, text) : FromCsv(path, text, categoricalColumns);
    }

    private static DriftDataset FromProfile(string path, string json)
    {
        DriftProfile? profile;
        try
        {
            profile = JsonSerializer.Deserialize(json, ContractsJsonContext.Default.DriftProfile);
        }
        catch (JsonException ex)
        {
            throw new DriftDataException($"{path}: not a valid drift profile: {ex.Message}", ex);
        }

        if (profile is null || profile.Schema != Schemas.DriftProfile || profile.Features is null)
        {
            throw new DriftDataException($"{path}: not a drift profile (expected schema '{Schemas.DriftProfile}')");
        }

        var numeric = new Dictionary<string, NumericData>();
        var categorical = new Dictionary<string, CategoricalData>();
        foreach (var f in profile.Features)
        {
            if (f.Kind == "categorical")
            {
                categorical[f.Name] = new CategoricalData(f.Name, f.Categories);
            }
            else if (f.Sample.Count == 0)
            {
                throw new DriftDataException($"{path}: feature '{f.Name}' has no sample values");
            }
            else
            {
                numeric[f.Name] = NumericData.FromProfile(f);
            }
        }

        return new DriftDataset(path, profile.Features.Select(f => f.Name).ToList(), numeric, categorical);
    }

    private static DriftDataset FromCsv(string path, string text, IReadOnlySet<string> categoricalColumns)
    {
        using var reader = new StringReader(text);
        var header = reader.ReadLine();
        if (string.IsNullOrWhiteSpace(header))
        {
            throw new DriftDataException($"{path}: empty file (expected a header row of feature names)");
        }

        var names = SplitCsv(header).Select(n => n.Trim()).ToArray();
        var duplicate = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new DriftDataException($"{path}: column '{duplicate.Key}' appears twice in the header");
        }

        if (names.Any(string.IsNullOrEmpty))
        {
            throw new DriftDataException($"{path}: the header has an empty column name");
        }

        var values = names.Select(_ => new List<double>()).ToArray();
        var codes = names.Select(_ => new Dictionary<string, long>()).ToArray();
        var row = 1;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            row++;
            if (line.Length == 0)
            {
                continue;
            }

            var cells = SplitCsv(line);
            if (cells.Count != names.Length)
            {
                throw new DriftDataException($"{path}: row {row} has {cells.Count} cells, the header has {names.Length}");
            }

            for (var c = 0; c < names.Length; c++)
            {
                var cell = cells[c].Trim();
                if (cell.Length == 0)
                {
                    continue; // a missing value
                }

                if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                {
                    throw new DriftDataException($"{path}: row {row}, column '{names[c]}': '{Truncate(cell)}' is not a number");
                }

                if (categoricalColumns.Contains(names[c]))
                {
                    var code = v.ToString(CultureInfo.InvariantCulture);
                    codes[c][code] = codes[c].GetValueOrDefault(code) + 1;
                }
                else
                {
                    values[c].Add(v);
                }
            }
        }

        var unknown = categoricalColumns.Where(c => !names.Contains(c)).ToList();
        if (unknown.Count > 0)
        {
            throw new DriftDataException($"{path}: --categorical names column(s) not in the header: {string.Join(", ", unknown)}");
        }

        var numeric = new Dictionary<string, NumericData>();
        var categorical = new Dictionary<string, CategoricalData>();
        for (var c = 0; c < names.Length; c++)
        {
            if (categoricalColumns.Contains(names[c]))
            {
                if (codes[c].Count == 0)
                {
                    throw new DriftDataException($"{path}: column '{names[c]}' is empty");
                }

                categorical[names[c]] = new CategoricalData(names[c], codes[c]);
            }
            else
            {
                if (values[c].Count == 0)
                {
                    throw new DriftDataException($"{path}: column '{names[c]}' is empty");
                }

                numeric[names[c]] = NumericData.FromValues(names[c], values[c]);
            }
        }

        return new DriftDataset(path, names, numeric, categorical);
    }

    /// <summary>Compares every feature of <paramref name="current"/> with the same feature of <paramref name="baseline"/>.</summary>
    public static IReadOnlyList<FeatureDrift> Compare(DriftDataset baseline, DriftDataset current, DriftThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(thresholds);
        var missing = baseline.Names.Except(current.Names).ToList();
        var extra = current.Names.Except(baseline.Names).ToList();
        if (missing.Count > 0 || extra.Count > 0)
        {
            throw new DriftDataException(
                $"the two sides have different features: {(missing.Count > 0 ? $"missing from {current.Source}: {string.Join(", ", missing)}" : "")}" +
                $"{(missing.Count > 0 && extra.Count > 0 ? "; " : "")}{(extra.Count > 0 ? $"not in {baseline.Source}: {string.Join(", ", extra)}" : "")}");
        }

        var results = new List<FeatureDrift>();
        foreach (var name in baseline.Names)
        {
            if (baseline.Numeric.TryGetValue(name, out var bn) && current.Numeric.TryGetValue(name, out var cn))
            {
                results.Add(DriftComparer.CompareNumeric(bn, cn, thresholds.Bins));
            }
            else if (baseline.Categorical.TryGetValue(name, out var bc) && current.Categorical.TryGetValue(name, out var cc))
            {
                results.Add(DriftComparer.CompareCategorical(bc, cc));
            }
            else
            {
                throw new DriftDataException($"feature '{name}' is numeric on one side and categorical on the other");
            }
        }

        return DriftComparer.Grade(results, thresholds);
    }

    /// <summary>Splits one CSV line (RFC 4180 quotes supported).</summary>
    internal static List<string> SplitCsv(string line)
    {
        var cells = new List<string>();
        var cell = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (ch == '"')
                {
                    quoted = false;
                }
                else
                {
                    cell.Append(ch);
                }
            }
            else if (ch == '"')
            {
                quoted = true;
            }
            else if (ch == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else if (ch != '\r')
            {
                cell.Append(ch);
            }
        }

        cells.Add(cell.ToString());
        return cells;
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
