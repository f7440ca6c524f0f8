namespace EdgeFleet.Cli.Tests;

/// <summary>
/// Values the CLI refuses itself: exit code 2 and a message naming the option, against a URL where nothing listens, so
/// exit code 2 rather than 3 also proves that no request was tried.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RolloutsUsageTests
{
    [Theory]
    [InlineData("--bake: '10x' is not a duration", "create", "--model", "m", "--version", "1.0.0", "--bake", "10x")]
    [InlineData("--deadline: '-5m' is not a duration", "create", "--model", "m", "--version", "1.0.0", "--deadline=-5m")]
    [InlineData("--stages: stage '10%' is below", "create", "--model", "m", "--version", "1.0.0", "--stages", "50%,10%")]
    [InlineData("--stages: stage 'lots' is neither", "create", "--model", "m", "--version", "1.0.0", "--stages", "1%,lots")]
    [InlineData("--rate: 'fast' is not a rate", "create", "--model", "m", "--version", "1.0.0", "--rate", "fast")]
    [InlineData("--rate-growth: '2/50' is not FACTORx/N", "create", "--model", "m", "--version", "1.0.0", "--rate-growth", "2/50")]
    [InlineData("--gate: 'speed' is not a quality gate", "create", "--model", "m", "--version", "1.0.0", "--gate", "latency,speed")]
    [InlineData("--on-failure: 'retry' is not a policy", "create", "--model", "m", "--version", "1.0.0", "--on-failure", "retry")]
    [InlineData("--max-failure-share: '2' is not a share", "create", "--model", "m", "--version", "1.0.0", "--max-failure-share", "2")]
    [InlineData("--min-devices", "create", "--model", "m", "--version", "1.0.0", "--min-devices", "many")]
    [InlineData("--model", "create", "--version", "1.0.0")]
    [InlineData("--interval: '0s' must be longer than 0 seconds", "watch", "ro-1", "--interval", "0s")]
    [InlineData("--interval: 'often' is not a duration", "watch", "ro-1", "--interval", "often")]
    [InlineData("bogus", "list", "--state", "bogus")]
    public async Task Rollouts_BadValue_ExitsTwoNamingTheOptionWithoutARequest(string expected, params string[] args)
    {
        using var cli = CliRunner.For(CliRunner.Nowhere, "t");

        var result = await cli.RunAsync(["rollouts", .. args]);

        Assert.True(result.Code == 2, $"exit {result.Code}: {result.Err}");
        Assert.Contains(expected, result.Err, StringComparison.Ordinal);
    }
}
