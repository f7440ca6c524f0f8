using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Drift;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet drift compare</c>: the agent's drift statistics, offline, on CSV files or profiles.</summary>
internal static class DriftCommand
{
    public static Command Create()
    {
        var baseline = new Option<string>("--baseline") { Description = "Baseline: CSV (header of feature names) or drift profile JSON", Required = true };
        var current = new Option<string>("--current") { Description = "Current data: CSV or drift profile JSON", Required = true };
        var bins = new Option<int>("--bins") { Description = "Quantile bins for PSI and Jensen–Shannon", DefaultValueFactory = _ => 10 };
        var categorical = new Option<string?>("--categorical") { Description = "Columns holding category codes: COL[,COL…]" };
        var psiWarn = new Option<double>("--psi-warn") { Description = "PSI for severity warn", DefaultValueFactory = _ => 0.1 };
        var psiAlert = new Option<double>("--psi-alert") { Description = "PSI for severity alert", DefaultValueFactory = _ => 0.25 };
        var alpha = new Option<double>("--alpha") { Description = "Significance after Benjamini–Hochberg", DefaultValueFactory = _ => 0.05 };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object" };
        var failOnDrift = new Option<bool>("--fail-on-drift") { Description = "Exit with 1 when any feature drifted (for CI pipelines)" };
        var compare = new Command("compare", "Compare two datasets feature by feature: PSI, KS, Jensen–Shannon, Wasserstein, chi-square")
        {
            baseline, current, bins, categorical, psiWarn, psiAlert, alpha, json, failOnDrift,
        };
        compare.SetAction(parse =>
        {
            var thresholds = new DriftThresholds
            {
                Bins = parse.GetValue(bins),
                PsiWarn = parse.GetValue(psiWarn),
                PsiAlert = parse.GetValue(psiAlert),
                Alpha = parse.GetValue(alpha),
            };
            if (thresholds.Bins is < 2 or > 1000 || thresholds.PsiWarn <= 0 || thresholds.PsiAlert < thresholds.PsiWarn
                || thresholds.Alpha is <= 0 or >= 1)
            {
                Console.Error.WriteLine("error: --bins must be 2–1000, 0 < --psi-warn ≤ --psi-alert, 0 < --alpha < 1");
                return 2;
            }

            var categories = (parse.GetValue(categorical) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .ToHashSet(StringComparer.Ordinal);
            try
            {
                var a = DriftDataset.Load(parse.GetValue(baseline)!, categories);
                var b = DriftDataset.Load(parse.GetValue(current)!, categories);
                var features = DriftDataset.Compare(a, b, thresholds);
                var drifted = features.Any(f => f.Severity != DriftSeverity.None);
                Console.Out.WriteLine(parse.GetValue(json) ? ToJson(features, drifted) : ToTable(features, drifted));
                return drifted && parse.GetValue(failOnDrift) ? 1 : 0;
            }
            catch (DriftDataException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });
        return new Command("drift", "Drift statistics") { compare };
    }

    internal static string ToJson(IReadOnlyList<FeatureDrift> features, bool drifted)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteStartArray("features");
            foreach (var f in features)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteString("kind", f.Kind);
                w.WriteStartObject("n");
                w.WriteNumber("baseline", f.N.Baseline);
                w.WriteNumber("current", f.N.Current);
                w.WriteEndObject();
                Number(w, "psi", f.Psi);
                if (f.Ks is { } ks)
                {
                    w.WriteStartObject("ks");
                    Number(w, "statistic", ks.Statistic);
                    Number(w, "pValue", ks.PValue);
                    w.WriteEndObject();
                }

                Number(w, "jsDistance", f.JsDistance);
                if (f.Wasserstein is { } wd)
                {
                    Number(w, "wasserstein", wd);
                    Number(w, "wassersteinNormed", f.WassersteinNormed ?? double.NaN);
                }

                if (f.Chi2 is { } chi2)
                {
                    w.WriteStartObject("chi2");
                    Number(w, "statistic", chi2.Statistic);
                    Number(w, "pValue", chi2.PValue);
                    w.WriteEndObject();
                }

                if (f.PValueAdjusted is { } adjusted)
                {
                    Number(w, "pValueAdjusted", adjusted);
                }

                w.WriteString("severity", f.Severity.ToString().ToLowerInvariant());
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteBoolean("drifted", drifted);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>JSON has no NaN or infinity: such values (a test that cannot run) are written as null.</summary>
    private static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumber(name, value);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static string ToTable(IReadOnlyList<FeatureDrift> features, bool drifted)
    {
        var c = CultureInfo.InvariantCulture;
        var rows = new List<string[]> { new[] { "feature", "n (base/cur)", "PSI", "KS D", "KS p", "JS", "W1", "W1/σ", "χ² p", "adj. p", "severity" } };
        foreach (var f in features)
        {
            static string F(double? v, string format) => v is { } x && double.IsFinite(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
            rows.Add(
            [
                f.Name, string.Create(c, $"{f.N.Baseline}/{f.N.Current}"), F(f.Psi, "0.000"), F(f.Ks?.Statistic, "0.000"), F(f.Ks?.PValue, "0.###E+0"),
                F(f.JsDistance, "0.000"), F(f.Wasserstein, "0.###"), F(f.WassersteinNormed, "0.000"), F(f.Chi2?.PValue, "0.###E+0"),
                F(f.PValueAdjusted, "0.###E+0"), f.Severity.ToString().ToLowerInvariant(),
            ]);
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var lines = rows.Select(r => string.Join("  ", r.Select((cell, i) => i == 0 ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]))));
        return string.Join(Environment.NewLine, lines) + Environment.NewLine +
            (drifted ? "drift detected" : "no drift") + $" ({features.Count(f => f.Severity != DriftSeverity.None)} of {features.Count} features)";
    }
}
