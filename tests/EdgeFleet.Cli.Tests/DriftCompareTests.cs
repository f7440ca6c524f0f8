using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

[Trait("Category", "Integration")]
public sealed class DriftCompareTests
{
    private static string Csv(TempDirectory dir, string name, string header, IEnumerable<string> rows)
    {
        var path = dir.File(name);
        File.WriteAllText(path, header + "\n" + string.Join("\n", rows) + "\n");
        return path;
    }

    private static IEnumerable<string> Rows(int n, double mean, int seed, Func<Random, int> category)
    {
        var r = new Random(seed);
        for (var i = 0; i < n; i++)
        {
            var u1 = 1 - r.NextDouble();
            var g = mean + Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * r.NextDouble());
            yield return string.Create(CultureInfo.InvariantCulture, $"{g:0.0000},{r.NextDouble():0.0000},{category(r)}");
        }
    }

    [Fact]
    public void Compare_Json_HasTheContractFieldsAndFlagsOnlyTheShiftedFeatures()
    {
        using var dir = new TempDirectory();
        var a = Csv(dir, "a.csv", "luma,conf,cls", Rows(3000, 0, 1, r => r.Next(3)));
        var b = Csv(dir, "b.csv", "luma,conf,cls", Rows(2500, 1.0, 2, r => r.Next(3)));

        var (code, output, error) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", a, "--current", b, "--categorical", "cls", "--json");

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var features = json.RootElement.GetProperty("features").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        var luma = features["luma"];
        Assert.Equal(3000, luma.GetProperty("n").GetProperty("baseline").GetInt64());
        Assert.Equal(2500, luma.GetProperty("n").GetProperty("current").GetInt64());
        Assert.True(luma.GetProperty("psi").GetDouble() > 0.25);
        Assert.True(luma.GetProperty("ks").GetProperty("pValue").GetDouble() < 1e-6);
        Assert.InRange(luma.GetProperty("wasserstein").GetDouble(), 0.9, 1.1);
        Assert.InRange(luma.GetProperty("wassersteinNormed").GetDouble(), 0.9, 1.1);
        Assert.True(luma.GetProperty("jsDistance").GetDouble() > 0);
        Assert.Equal("alert", luma.GetProperty("severity").GetString());
        Assert.False(luma.TryGetProperty("chi2", out _));
        Assert.Equal("none", features["conf"].GetProperty("severity").GetString());
        Assert.True(features["cls"].TryGetProperty("chi2", out var chi2));
        Assert.True(chi2.GetProperty("pValue").GetDouble() > 0.01);
        Assert.Equal("none", features["cls"].GetProperty("severity").GetString());
        Assert.True(json.RootElement.GetProperty("drifted").GetBoolean());
    }

    [Fact]
    public void Compare_IdenticalFiles_NoDriftAndZeroStatistics()
    {
        using var dir = new TempDirectory();
        var a = Csv(dir, "a.csv", "luma,conf,cls", Rows(500, 0, 3, r => r.Next(4)));

        var (code, output, _) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", a, "--current", a, "--json", "--fail-on-drift");

        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        Assert.False(json.RootElement.GetProperty("drifted").GetBoolean());
        Assert.All(json.RootElement.GetProperty("features").EnumerateArray(), f =>
        {
            Assert.Equal(0, f.GetProperty("psi").GetDouble(), 9);
            Assert.Equal(0, f.GetProperty("ks").GetProperty("statistic").GetDouble(), 9);
        });
    }

    [Fact]
    public void Compare_FailOnDrift_ExitsWithOne()
    {
        using var dir = new TempDirectory();
        var a = Csv(dir, "a.csv", "x,y,z", Rows(500, 0, 4, _ => 0));
        var b = Csv(dir, "b.csv", "x,y,z", Rows(500, 3, 5, _ => 0));

        var (code, output, _) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", a, "--current", b, "--fail-on-drift");

        Assert.Equal(1, code);
        Assert.Contains("drift detected", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("x,y\n1,2\n3,abc\n", "row 3, column 'y': 'abc' is not a number")]
    [InlineData("x,y\n1,2\n3\n", "row 3 has 1 cells, the header has 2")]
    [InlineData("x,y\n", "column 'x' is empty")]
    [InlineData("", "empty file")]
    [InlineData("x,x\n1,2\n", "appears twice")]
    public void Compare_BadCurrentFile_NamesFileRowAndColumn(string content, string expected)
    {
        using var dir = new TempDirectory();
        var a = Csv(dir, "a.csv", "x,y", ["1,2", "3,4"]);
        var b = dir.File("broken.csv");
        File.WriteAllText(b, content);

        var (code, _, error) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", a, "--current", b);

        Assert.Equal(2, code);
        Assert.Contains("broken.csv", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Compare_MismatchedHeaders_ListsTheDifferences()
    {
        using var dir = new TempDirectory();
        var a = Csv(dir, "a.csv", "x,y", ["1,2"]);
        var b = Csv(dir, "b.csv", "x,z", ["1,2"]);

        var (code, _, error) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", a, "--current", b);

        Assert.Equal(2, code);
        Assert.Contains("missing from", error, StringComparison.Ordinal);
        Assert.Contains("y", error, StringComparison.Ordinal);
        Assert.Contains("z", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Compare_MissingFile_SaysSo()
    {
        var (code, _, error) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", "/nonexistent/a.csv", "--current", "/nonexistent/b.csv");

        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/a.csv: file not found", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Compare_ProfileAgainstCsv_UsesTheProfilesBins()
    {
        using var dir = new TempDirectory();
        var profile = dir.File("p.json");
        var edges = Enumerable.Range(1, 9).Select(i => (i - 5) * 0.5).ToArray();
        var sample = Enumerable.Range(0, 400).Select(i => (i - 200) / 100.0).ToArray();
        File.WriteAllText(profile, JsonSerializer.Serialize(new
        {
            schema = "ef.drift-profile/1",
            id = "p1",
            features = new object[]
            {
                new { name = "x", kind = "numeric", count = 400, mean = 0.0, std = 1.15, min = -2.0, max = 1.99, edges, proportions = Enumerable.Repeat(0.1, 10), sample },
            },
        }));
        var current = Csv(dir, "c.csv", "x", sample.Select(v => (v + 2).ToString(CultureInfo.InvariantCulture)));

        var (code, output, error) = SampleModelCommandTests.Edgefleet("drift", "compare", "--baseline", profile, "--current", current, "--json");

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var x = json.RootElement.GetProperty("features")[0];
        Assert.Equal(400, x.GetProperty("n").GetProperty("baseline").GetInt64());
        Assert.Equal(2, x.GetProperty("wasserstein").GetDouble(), 6);
        Assert.Equal("alert", x.GetProperty("severity").GetString());
    }
}
