using EdgeFleet.Cli.Commands;
using EdgeFleet.Contracts.Api;

namespace EdgeFleet.Cli.Tests;

[Trait("Category", "Unit")]
public sealed class RolloutsArgumentsTests
{
    private static RolloutCreateArguments Args => new() { Model = "det", Version = "1.1.0" };

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("10m", 600)]
    [InlineData("1h", 3600)]
    [InlineData("1h30m", 5400)]
    [InlineData("1m30s", 90)]
    [InlineData("1d", 86400)]
    [InlineData("500ms", 0.5)]
    [InlineData("600", 600)]
    [InlineData("2.5", 2.5)]
    [InlineData("0", 0)]
    [InlineData(" 10m ", 600)]
    public void ParseDuration_UnitsOrPlainSeconds_Seconds(string text, double expected)
    {
        Assert.Equal(expected, RolloutArguments.ParseDuration(text, "--bake"), 9);
    }

    [Theory]
    [InlineData("10x")]
    [InlineData("")]
    [InlineData("-5")]
    [InlineData("1h30")]
    [InlineData("m")]
    [InlineData("30m1h")]
    [InlineData("1.5.2")]
    [InlineData("ten minutes")]
    public void ParseDuration_NotADuration_ThrowsNamingTheOption(string text)
    {
        var ex = Assert.Throws<OptionValueException>(() => RolloutArguments.ParseDuration(text, "--deadline"));

        Assert.Equal("--deadline", ex.Option);
        Assert.StartsWith($"--deadline: '{text}' is not a duration", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("500/min", 500)]
    [InlineData("10/s", 600)]
    [InlineData("600/h", 10)]
    [InlineData("5 / sec", 300)]
    [InlineData("2/m", 2)]
    [InlineData("120", 120)]
    [InlineData("0.5/s", 30)]
    public void ParseRate_CountPerUnit_DevicesPerMinute(string text, double expected)
    {
        Assert.Equal(expected, RolloutArguments.ParseRate(text, "--rate"), 9);
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("10/day")]
    [InlineData("-1/s")]
    [InlineData("0/min")]
    [InlineData("/min")]
    public void ParseRate_NotARate_ThrowsNamingTheOption(string text)
    {
        var ex = Assert.Throws<OptionValueException>(() => RolloutArguments.ParseRate(text, "--rate"));

        Assert.StartsWith($"--rate: '{text}'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2x/50", 2, 50)]
    [InlineData("1.5x/10", 1.5, 10)]
    [InlineData("1x/1", 1, 1)]
    public void ParseRateGrowth_FactorAndCount_Parsed(string text, double factor, int every)
    {
        Assert.Equal((factor, every), RolloutArguments.ParseRateGrowth(text, "--rate-growth"));
    }

    [Theory]
    [InlineData("2/50")]
    [InlineData("2x")]
    [InlineData("0.5x/10")]
    [InlineData("2x/0")]
    [InlineData("x/5")]
    public void ParseRateGrowth_Bad_ThrowsNamingTheOption(string text)
    {
        var ex = Assert.Throws<OptionValueException>(() => RolloutArguments.ParseRateGrowth(text, "--rate-growth"));

        Assert.Equal("--rate-growth", ex.Option);
    }

    [Fact]
    public void ParseStages_PercentagesAndCounts_CumulativeStagesInOrder()
    {
        var stages = RolloutArguments.ParseStages("5, 1%,50%,100%,200", "--stages");

        Assert.Equal(new (double?, int?)[] { (null, 5), (1, null), (50, null), (100, null), (null, 200) }, stages.Select(s => (s.Percent, s.Count)));
    }

    [Theory]
    [InlineData("0%", "must be more than 0 %")]
    [InlineData("101%", "at most 100 %")]
    [InlineData("50%,10%", "below the stage before it (50%)")]
    [InlineData("10,5", "below the stage before it (10 devices)")]
    [InlineData("0", "at least 1 device")]
    [InlineData("abc", "neither a percentage")]
    [InlineData("-1", "neither a percentage")]
    [InlineData("1%,,2%", "is not a list")]
    [InlineData("", "is not a list")]
    public void ParseStages_BadEntry_ThrowsNamingTheOptionAndTheEntry(string text, string expected)
    {
        var ex = Assert.Throws<OptionValueException>(() => RolloutArguments.ParseStages(text, "--stages"));

        Assert.StartsWith("--stages: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseStages_MoreThanTwenty_Throws()
    {
        var text = string.Join(',', Enumerable.Range(1, 21));

        Assert.Throws<OptionValueException>(() => RolloutArguments.ParseStages(text, "--stages"));
    }

    [Fact]
    public void BuildRequest_OnlyModelAndVersion_LeavesEveryDefaultToTheServer()
    {
        var request = RolloutArguments.BuildRequest(Args);

        Assert.Equal(("det", "1.1.0"), (request.Model, request.Version));
        Assert.Null(request.Stages);
        Assert.Null(request.Gates);
        Assert.Null(request.Selector);
        Assert.Null(request.Devices);
        Assert.Null(request.DeadlineSeconds);
        Assert.Null(request.RatePerMinute);
        Assert.Null(request.OnFailure);
        Assert.False(request.ApproveEach || request.Promote || request.Supersede);
    }

    [Fact]
    public void BuildRequest_BakeAndMinDevicesWithoutStages_ApplyToTheDefaultStages()
    {
        var request = RolloutArguments.BuildRequest(Args with { Bake = "1h30m", MinDevices = 2 });

        Assert.Equal([1.0, 10, 50, 100], request.Stages!.Select(s => s.Percent!.Value));
        Assert.All(request.Stages!, s => Assert.Equal((5400.0, 2), (s.BakeSeconds!.Value, s.MinDevices!.Value)));
    }

    [Fact]
    public void BuildRequest_StagesWithoutBake_LeaveBakeAndMinimumToTheServer()
    {
        var request = RolloutArguments.BuildRequest(Args with { Stages = "3,100%" });

        Assert.Equal(new (double?, int?)[] { (null, 3), (100, null) }, request.Stages!.Select(s => (s.Percent, s.Count)));
        Assert.All(request.Stages!, s => Assert.Equal(((double?)null, (int?)null), (s.BakeSeconds, s.MinDevices)));
    }

    [Fact]
    public void BuildRequest_EveryOption_MappedToTheRequestFields()
    {
        var request = RolloutArguments.BuildRequest(Args with
        {
            Selector = ["line=3", "hw=pi5,site=a"],
            Devices = ["cam-1,cam-2", "cam-1"],
            Gates = ["latency,errors", "nan"],
            DryRunGates = ["drift", "delivery"],
            OnFailure = "rollback",
            Deadline = "45m",
            Rate = "10/s",
            RateGrowth = "2x/50",
            Shadow = "10m",
            MaxFailureShare = 0.2,
            MinFinished = 4,
            Margins = ["latency=0.2", "errors=0.02"],
            Alpha = 0.01,
            StratifyBy = "board",
            ApproveEach = true,
            Promote = true,
            Supersede = true,
            Reason = "new detector",
        });

        Assert.Equal(["line=3", "hw=pi5", "site=a"], request.Selector);
        Assert.Equal(["cam-1", "cam-2"], request.Devices);
        Assert.Equal(["latency", "errors", "nan"], request.Gates);
        Assert.Equal(["drift", "delivery"], request.DryRunGates);
        Assert.Equal(("rollback", 2700.0, 600.0, 2.0, 50, 600.0), (request.OnFailure, request.DeadlineSeconds, request.RatePerMinute,
            request.RateGrowthFactor, request.RateGrowthEvery, request.ShadowSeconds));
        Assert.Equal((0.2, 4, 0.01, "board"), (request.MaxFailureShare, request.MinFinished, request.Alpha, request.StratifyBy));
        Assert.Equal(0.2, request.Margins!["latency"]);
        Assert.Equal(0.02, request.Margins["errors"]);
        Assert.True(request.ApproveEach && request.Promote && request.Supersede);
        Assert.Equal("new detector", request.Reason);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("")]
    public void BuildRequest_GateNoneOrEmpty_NoQualityGate(string value)
    {
        var request = RolloutArguments.BuildRequest(Args with { Gates = [value] });

        Assert.NotNull(request.Gates);
        Assert.Empty(request.Gates);
    }

    // By name: RolloutCreateArguments is internal to the CLI, so a theory cannot take it as a parameter.
    private static readonly Dictionary<string, (RolloutCreateArguments Arguments, string Expected)> BadCases = new()
    {
        ["gate"] = (Args with { Gates = ["speed"] }, "--gate: 'speed' is not a quality gate"),
        ["gate none and more"] = (Args with { Gates = ["none,latency"] }, "--gate: none (delivery only) cannot be combined"),
        ["dry-run gate"] = (Args with { DryRunGates = ["speed"] }, "--dry-run-gate: 'speed' is not a gate"),
        ["on failure"] = (Args with { OnFailure = "retry" }, "--on-failure: 'retry' is not a policy"),
        ["deadline zero"] = (Args with { Deadline = "0" }, "--deadline: '0' must be longer than 0 seconds"),
        ["deadline"] = (Args with { Deadline = "soon" }, "--deadline: 'soon' is not a duration"),
        ["bake"] = (Args with { Bake = "10x" }, "--bake: '10x' is not a duration"),
        ["shadow"] = (Args with { Shadow = "1w" }, "--shadow: '1w' is not a duration"),
        ["rate"] = (Args with { Rate = "fast" }, "--rate: 'fast' is not a rate"),
        ["rate growth"] = (Args with { RateGrowth = "2/50" }, "--rate-growth: '2/50' is not FACTORx/N"),
        ["stages"] = (Args with { Stages = "50%,10%" }, "--stages: stage '10%' is below"),
        ["min devices"] = (Args with { MinDevices = -1 }, "--min-devices: must be 0 or more"),
        ["max failure share"] = (Args with { MaxFailureShare = 1.5 }, "--max-failure-share: '1.5' is not a share"),
        ["min finished"] = (Args with { MinFinished = 0 }, "--min-finished: must be at least 1"),
        ["alpha"] = (Args with { Alpha = 0 }, "--alpha: '0' is not a probability"),
        ["margin without value"] = (Args with { Margins = ["latency"] }, "--margin: 'latency' is not GATE=MARGIN"),
        ["margin of no gate"] = (Args with { Margins = ["speed=0.1"] }, "--margin: 'speed=0.1' is not GATE=MARGIN"),
    };

    public static TheoryData<string> BadCaseNames => new(BadCases.Keys);

    [Theory]
    [MemberData(nameof(BadCaseNames))]
    public void BuildRequest_BadValue_ThrowsNamingTheOption(string name)
    {
        var (arguments, expected) = BadCases[name];

        var ex = Assert.Throws<OptionValueException>(() => RolloutArguments.BuildRequest(arguments));

        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(90, "1m30s")]
    [InlineData(5400, "1h30m")]
    [InlineData(600, "10m")]
    [InlineData(86400 + 60, "1d1m")]
    [InlineData(0, "0s")]
    [InlineData(0.5, "0.5s")]
    public void FormatDuration_Seconds_AsPeopleWriteThem(double seconds, string expected)
    {
        Assert.Equal(expected, RolloutArguments.FormatDuration(seconds));
        Assert.Equal(seconds, RolloutArguments.ParseDuration(expected, "--bake"), 9);
    }

    [Fact]
    public void Counts_DeviceStates_InTheOrderADevicePassesThemWithoutZeros()
    {
        var counts = new Dictionary<string, int> { ["succeeded"] = 2, ["pending"] = 5, ["notified"] = 1, ["failed"] = 0, ["shadow"] = 1 };

        Assert.Equal("5 pending, 1 shadow, 1 notified, 2 succeeded", RolloutsCommand.Counts(counts));
        Assert.Equal("none", RolloutsCommand.Counts(new Dictionary<string, int>()));
        Assert.Equal("none", RolloutsCommand.Counts(null));
    }

    [Theory]
    [InlineData(RolloutStates.Paused, "continue with: edgefleet rollouts resume ro-1")]
    [InlineData(RolloutStates.AwaitingApproval, "approve with: edgefleet rollouts approve ro-1")]
    public void WatchLine_RolloutWaitingForAnOperator_SaysWhatToRun(string state, string expected)
    {
        var line = RolloutsCommand.WatchLine(Rollout(state, "paused by ops: lunch"));

        Assert.Contains("ro-1 " + state + " stage 1/2 (live, baking): 1 pending, 1 activated", line, StringComparison.Ordinal);
        Assert.Contains("gates delivery=pass latency=inconclusive (dry run)", line, StringComparison.Ordinal);
        Assert.Contains("paused by ops: lunch", line, StringComparison.Ordinal);
        Assert.EndsWith(expected, line, StringComparison.Ordinal);
    }

    [Fact]
    public void Compact_IndentedBody_OneLine_CompactBody_AsReceived()
    {
        const string compact = """{"id":"ro-1","state":"running","reason":null}""";

        Assert.Same(compact, RolloutsCommand.Compact(compact));
        Assert.Equal(compact, RolloutsCommand.Compact("{\n  \"id\": \"ro-1\",\r\n  \"state\": \"running\",\n  \"reason\": null\n}"));
    }

    private static RolloutInfo Rollout(string state, string? reason) => new()
    {
        Id = "ro-1",
        Model = "det",
        Version = "1.1.0",
        State = state,
        Reason = reason,
        Stage = 0,
        Stages =
        [
            new RolloutStageInfo { Index = 0, Percent = 10, Target = 1, Devices = 1, BakeSeconds = 60, State = "baking" },
            new RolloutStageInfo { Index = 1, Percent = 100, Target = 2, Devices = 1, BakeSeconds = 60, State = "pending" },
        ],
        Counts = new Dictionary<string, int> { ["activated"] = 1, ["pending"] = 1 },
        DeviceCount = 2,
        Verdicts =
        [
            new GateVerdictInfo { Stage = 0, Gate = "delivery", Outcome = "pass" },
            new GateVerdictInfo { Stage = 0, Gate = "latency", Outcome = "inconclusive", DryRun = true, Look = 10 },
        ],
    };
}
