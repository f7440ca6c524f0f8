using EdgeFleet.Cli.Api;
using EdgeFleet.Cli.Commands;

namespace EdgeFleet.Cli.Tests;

[Trait("Category", "Unit")]
public sealed class ApiProblemTests
{
    [Fact]
    public void TryParse_ValidationProblem_ReadsEveryField()
    {
        var problem = ApiProblem.TryParse("""
            {"type":"https://tools.ietf.org/html/rfc9110#section-15.5.21","title":"Manifest mismatch","status":422,
             "detail":"the manifest does not describe the file","errors":{"manifest.version":["not semver","too long"],"name":"bad"},"traceId":"00-1"}
            """);

        Assert.NotNull(problem);
        Assert.Equal(("Manifest mismatch", 422, "the manifest does not describe the file"), (problem.Title, problem.Status, problem.Detail));
        Assert.Equal(["not semver", "too long"], problem.Errors["manifest.version"]);
        Assert.Equal(["bad"], problem.Errors["name"]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("[1,2]")]
    public void TryParse_NotAProblemObject_ReturnsNull(string body)
    {
        Assert.Null(ApiProblem.TryParse(body));
    }

    [Fact]
    public void TryParse_MinimalProblem_HasNoErrors()
    {
        var problem = ApiProblem.TryParse("""{"title":"Not Found","status":"404"}""");

        Assert.NotNull(problem);
        Assert.Equal("Not Found", problem.Title);
        Assert.Null(problem.Status);
        Assert.Empty(problem.Errors);
    }

    [Theory]
    [InlineData("b: y; a: x", true)]
    [InlineData("a: x; b: y", true)]
    [InlineData("a: x", false)]
    [InlineData("a: x; b: y; c: z", false)]
    [InlineData("the manifest does not describe the file", false)]
    public void RestatesFieldErrors_DetailVersusFieldLines_TrueOnlyForTheSameLines(string detail, bool expected)
    {
        Assert.Equal(expected, ControlPlaneCommand.RestatesFieldErrors(detail, ["a: x", "b: y"]));
    }

    [Fact]
    public void RestatesFieldErrors_NoFieldErrors_False()
    {
        Assert.False(ControlPlaneCommand.RestatesFieldErrors("", []));
    }

    [Fact]
    public void SplitList_CommasAndRepeats_FlattenedWithoutDuplicates()
    {
        Assert.Equal(["a", "b=1", "c"], ControlPlaneCommand.SplitList(["a, b=1", "c,a", ","]));
    }
}

[Trait("Category", "Unit")]
public sealed class RenderTests
{
    [Fact]
    public void VersionProperties_ServerOmitsMetadata_RendersWithoutMetadataRows()
    {
        // Source-generated deserialisation leaves an omitted property null even where the record defaults it.
        var version = System.Text.Json.JsonSerializer.Deserialize(
            """{"name":"m","version":"1.0.0","stage":"none","task":"classification","sha256":"ab","size":2048}""",
            EdgeFleet.Contracts.Serialization.ApiJsonContext.Default.ModelVersionInfo)!;

        var rows = Render.VersionProperties(version).ToDictionary(r => r.Item1, r => r.Item2);

        Assert.Equal("2.0 KiB (2048 bytes)", rows["size"]);
        Assert.DoesNotContain("metrics", rows.Keys);
    }

    [Fact]
    public void List_Null_IsEmpty()
    {
        Assert.Equal("", Render.List(null));
        Assert.Equal("a, b", Render.List(["a", "b"]));
    }
}
