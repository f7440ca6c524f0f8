using System.Text;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Rollouts;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.ControlPlane.Tests.Rollouts;

/// <summary>The rollout rules on a snapshot in memory, with a fake clock and devices that answer as the test says.</summary>
[Trait("Category", "Unit")]
public sealed class RolloutStepperTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Targets_PercentRoundedUp_AtLeastTheMinimum_NeverAboveTheFleet()
    {
        var plan = Plan(new RolloutRequest { Model = "m", Version = "2.0.0" });

        Assert.Equal([5, 31, 152, 303], RolloutRules.Targets(plan.Stages, 303));
        Assert.Equal([3, 3, 3, 3], RolloutRules.Targets(plan.Stages, 3));
        Assert.Equal([0, 0, 0, 0], RolloutRules.Targets(plan.Stages, 0));
    }

    [Fact]
    public void OrderKey_IsStablePerRolloutAndDevice_AndDiffersBetweenRollouts()
    {
        Assert.Equal(RolloutRules.OrderKey("ro-1", "cam-1"), RolloutRules.OrderKey("ro-1", "cam-1"));
        Assert.NotEqual(RolloutRules.OrderKey("ro-1", "cam-1"), RolloutRules.OrderKey("ro-2", "cam-1"));
        var a = Enumerable.Range(0, 50).Select(i => $"cam-{i}").OrderBy(d => RolloutRules.OrderKey("ro-1", d), StringComparer.Ordinal).ToList();
        var b = Enumerable.Range(0, 50).Select(i => $"cam-{i}").OrderBy(d => RolloutRules.OrderKey("ro-2", d), StringComparer.Ordinal).ToList();
        Assert.NotEqual(a, b); // each rollout has its own order, so the first canaries are not always the same cameras
    }

    [Theory]
    [InlineData("{\"percent\": 0}", "stages[0].percent")]
    [InlineData("{\"percent\": 50}, {\"percent\": 10}", "stages[1].percent")]
    [InlineData("{\"percent\": 10, \"count\": 3}", "stages[0]")]
    [InlineData("{\"count\": 5, \"bakeSeconds\": -1}", "stages[0].bakeSeconds")]
    public void Resolve_RefusesBadStages_NamingTheField(string stages, string field)
    {
        var request = System.Text.Json.JsonSerializer.Deserialize<RolloutRequest>($"{{\"model\": \"m\", \"version\": \"1.0.0\", \"stages\": [{stages}]}}",
            EdgeFleet.Contracts.Serialization.ApiJsonContext.Default.RolloutRequest)!;

        var ex = Assert.Throws<InvalidInputException>(() => RolloutRules.Resolve(request, "http://cp"));

        Assert.Equal(field, ex.Field);
    }

    [Fact]
    public void Resolve_QualityGatesWithoutBakeTime_AreRefused_DeliveryOnlyIsFine()
    {
        var stages = new[] { new RolloutStageRequest { Percent = 100, BakeSeconds = 0 } };
        Assert.Throws<InvalidInputException>(() => RolloutRules.Resolve(new RolloutRequest { Model = "m", Version = "1.0.0", Stages = stages }, "http://cp"));

        var plan = RolloutRules.Resolve(new RolloutRequest { Model = "m", Version = "1.0.0", Stages = stages, Gates = [] }, "http://cp");
        Assert.Empty(plan.Gates);
    }

    [Fact]
    public void GoodVersion_GoesThroughEveryStage_AndEveryDeviceSucceedsOnlyOnCommitted()
    {
        var s = Snapshot(40, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], Stages = Stages(0, 10, 50, 100) });

        for (var round = 0; round < 20 && s.Rollout.State == RolloutStates.Running; round++)
        {
            var step = Step(s, 1000);
            // Activated is not success: only committed counts.
            Respond(s, step, "activated");
            Step(s, 1000);
            Assert.DoesNotContain(s.Devices, d => d.State == RolloutDeviceStates.Succeeded && d.DesiredId is not null && Observed(d) == "activated");
            Respond(s, step, "committed");
        }

        Assert.Equal(RolloutStates.Succeeded, s.Rollout.State);
        Assert.All(s.Devices, d => Assert.Equal(RolloutDeviceStates.Succeeded, d.State));
        Assert.All(s.Stages, st => Assert.Equal(StageStates.Passed, st.State));
        Assert.All(s.Devices, d => Assert.Equal("1.0.0", d.PreviousVersion));
    }

    [Fact]
    public void RateLimit_NotifiesNoMoreThanTheBudget_InRolloutOrder()
    {
        var s = Snapshot(100, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], Stages = [new RolloutStageRequest { Percent = 100, BakeSeconds = 0 }] });

        var step = Step(s, 7);

        Assert.Equal(7, step.Publications.Count);
        Assert.Equal(s.Devices.Take(7).Select(d => d.DeviceId), step.Publications.Select(p => p.DeviceId));
        var desired = MessageParser.TryParse<DesiredMessage>(step.Publications[0].Payload, out var message, out _) ? message! : throw new InvalidOperationException();
        Assert.Equal(s.Rollout.Id, desired.RolloutId);
        Assert.Equal("2.0.0", desired.Version);
    }

    [Fact]
    public void DeliveryFailure_UnderPause_PausesTheRollout_AndUnderRollback_SendsEveryUpdatedDeviceItsPreviousVersion()
    {
        foreach (var policy in new[] { FailurePolicies.Pause, FailurePolicies.Rollback })
        {
            var s = Snapshot(30, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], Stages = Stages(0, 20, 100), OnFailure = policy });
            var step = Step(s, 1000);
            Assert.Equal(6, step.Publications.Count);
            Respond(s, step, "rolled_back", count: 2);
            Respond(s, step.Publications.Skip(2).ToList(), "committed");

            var after = Step(s, 1000);

            if (policy == FailurePolicies.Pause)
            {
                Assert.Equal(RolloutStates.Paused, s.Rollout.State);
                Assert.Contains("delivery gate failed", s.Rollout.Reason, StringComparison.Ordinal);
                Assert.Empty(after.Publications);
                continue;
            }

            Assert.Equal(RolloutStates.RollingBack, s.Rollout.State);
            Assert.Equal(6, after.Publications.Count); // the 4 committed and the 2 that rolled back themselves
            Assert.All(after.Publications, p => Assert.Contains("\"version\":\"1.0.0\"", Encoding.UTF8.GetString(p.Payload), StringComparison.Ordinal));
            Assert.All(s.Devices.Where(d => d.Stage > 0), d => Assert.Equal(RolloutDeviceStates.Skipped, d.State));
            Assert.Equal([StageStates.Failed, StageStates.Skipped], s.Stages.Select(st => st.State));
            Assert.NotNull(s.Stages[0].FinishedAt);
            Respond(s, after, "committed");
            Step(s, 1000);
            Assert.Equal(RolloutStates.RolledBack, s.Rollout.State);
            Assert.All(s.Devices.Where(d => d.Stage == 0), d => Assert.Equal(RolloutDeviceStates.Reverted, d.State));
        }
    }

    [Fact]
    public void OfflineDevices_TimeOutAtTheirDeadline_NeverCountAsSuccess()
    {
        var s = Snapshot(10, new RolloutRequest
        {
            Model = "m", Version = "2.0.0", Gates = [], DeadlineSeconds = 600, Stages = [new RolloutStageRequest { Percent = 100, BakeSeconds = 0 }],
        });
        var step = Step(s, 1000);
        Respond(s, step.Publications.Take(7).ToList(), "committed");
        Step(s, 1000);
        Assert.Equal(RolloutStates.Running, s.Rollout.State); // three are still on their way

        _clock.Advance(TimeSpan.FromSeconds(599));
        Step(s, 1000);
        Assert.Equal(3, s.Devices.Count(d => RolloutDeviceStates.InFlight(d.State)));

        _clock.Advance(TimeSpan.FromSeconds(1));
        Step(s, 1000);
        Assert.Equal(3, s.Devices.Count(d => d.State == RolloutDeviceStates.TimedOut));
        Assert.Equal(7, s.Devices.Count(d => d.State == RolloutDeviceStates.Succeeded));
        Assert.Equal(RolloutStates.Succeeded, s.Rollout.State);
    }

    [Fact]
    public void EveryDeviceOfAStageOffline_IsInconclusive_AndPauses()
    {
        var s = Snapshot(10, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], DeadlineSeconds = 60, Stages = Stages(0, 50, 100) });
        Step(s, 1000);
        _clock.Advance(TimeSpan.FromSeconds(61));

        Step(s, 1000);

        Assert.Equal(RolloutStates.Paused, s.Rollout.State);
        Assert.Contains("inconclusive", s.Rollout.Reason, StringComparison.Ordinal);
        Assert.All(s.Devices.Where(d => d.Stage == 0), d => Assert.Equal(RolloutDeviceStates.TimedOut, d.State));
    }

    [Fact]
    public void SlowerVersion_FailsTheLatencyGate_DuringTheBake_AnEqualOneWaitsForTheLastLookAndPasses()
    {
        foreach (var factor in new[] { 1.4, 1.0 })
        {
            var s = Snapshot(60, new RolloutRequest
            {
                Model = "m", Version = "2.0.0", Gates = ["latency"], Stages = [new RolloutStageRequest { Percent = 20, BakeSeconds = 100 }, new RolloutStageRequest { Percent = 100, BakeSeconds = 100 }],
            });
            var step = Step(s, 1000);
            Respond(s, step, "committed");
            Step(s, 1000);
            Assert.Equal(StageStates.Baking, s.CurrentStage.State);

            var looks = 0;
            while (s.Rollout.State == RolloutStates.Running && s.Rollout.Stage == 0 && looks < 20)
            {
                _clock.Advance(TimeSpan.FromSeconds(10));
                Step(s, 1000, Windows(s, factor));
                looks++;
            }

            if (factor > 1)
            {
                Assert.Equal(RolloutStates.Paused, s.Rollout.State);
                Assert.Contains("latency", s.Rollout.Reason, StringComparison.Ordinal);
                Assert.True(looks < RolloutStepper.LooksPerBake, $"stopped only after {looks} looks");
            }
            else
            {
                Assert.Equal(1, s.Rollout.Stage);
                Assert.Equal(RolloutStepper.LooksPerBake, looks);
            }
        }
    }

    [Fact]
    public void NoTelemetry_IsInconclusive_NeverAPass()
    {
        var s = Snapshot(30, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = ["latency", "errors"], Stages = Stages(100, 50, 100) });
        Respond(s, Step(s, 1000), "committed");
        Step(s, 1000);
        var empty = new GateWindows(new Dictionary<string, DeviceAggregate>(), new Dictionary<string, DeviceAggregate>(), new Dictionary<string, DeviceAggregate>());

        for (var i = 0; i < RolloutStepper.LooksPerBake; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(10));
            Step(s, 1000, empty);
        }

        Assert.Equal(RolloutStates.Paused, s.Rollout.State);
        Assert.Contains("inconclusive", s.Rollout.Reason, StringComparison.Ordinal);
        Assert.Equal(0, s.Rollout.Stage);
    }

    [Fact]
    public void Approval_StopsBeforeTheStage_UntilAnOperatorApproves()
    {
        var s = Snapshot(20, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], Stages = Stages(0, 25, 100), ApproveEach = true });
        Respond(s, Step(s, 1000), "committed");

        Step(s, 1000);

        Assert.Equal(RolloutStates.AwaitingApproval, s.Rollout.State);
        Assert.Empty(Step(s, 1000).Publications);
        Assert.Throws<ConflictException>(() => RolloutService.Apply(s, RolloutActions.Resume, "ops", null, _clock.GetUtcNow()));

        RolloutService.Apply(s, RolloutActions.Approve, "ops", "looks fine", _clock.GetUtcNow());
        var step = Step(s, 1000);

        Assert.Equal(RolloutStates.Running, s.Rollout.State);
        Assert.Equal(15, step.Publications.Count); // the other 15 of the 20
        Assert.Equal("ops", s.Stages[1].ApprovedBy);
    }

    [Fact]
    public void Actions_PauseStopsNotifications_AbortLeavesDevices_RetryNotifiesFailedDevicesAgain()
    {
        var s = Snapshot(20, new RolloutRequest { Model = "m", Version = "2.0.0", Gates = [], Stages = [new RolloutStageRequest { Percent = 100, BakeSeconds = 0 }] });
        var first = Step(s, 5);
        RolloutService.Apply(s, RolloutActions.Pause, "ops", "lunch", _clock.GetUtcNow());
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Empty(Step(s, 1000).Publications);

        RolloutService.Apply(s, RolloutActions.Resume, "ops", null, _clock.GetUtcNow());
        Respond(s, first, "rejected", count: 1);
        Step(s, 1000);
        var failed = Assert.Single(s.Devices, d => d.State == RolloutDeviceStates.Failed);
        var oldId = failed.DesiredId;

        RolloutService.Apply(s, RolloutActions.Retry, "ops", null, _clock.GetUtcNow());
        _clock.Advance(TimeSpan.FromSeconds(1));
        var retried = Step(s, 1000);
        Assert.Contains(retried.Publications, p => p.DeviceId == failed.DeviceId && p.DesiredId != oldId);

        RolloutService.Apply(s, RolloutActions.Abort, "ops", "enough", _clock.GetUtcNow());
        Assert.Equal(RolloutStates.Aborted, s.Rollout.State);
        Assert.Empty(Step(s, 1000).Publications);
        Assert.Throws<ConflictException>(() => RolloutService.Apply(s, RolloutActions.Pause, "ops", null, _clock.GetUtcNow()));
    }

    [Fact]
    public void Rate_GrowsByItsFactor_AsDevicesSucceed()
    {
        var plan = Plan(new RolloutRequest { Model = "m", Version = "2.0.0", RatePerMinute = 60, RateGrowthFactor = 2, RateGrowthEvery = 10 });

        Assert.Equal(60, RolloutRules.Rate(plan, 0));
        Assert.Equal(60, RolloutRules.Rate(plan, 9));
        Assert.Equal(120, RolloutRules.Rate(plan, 10));
        Assert.Equal(480, RolloutRules.Rate(plan, 35));
    }

    [Fact]
    public void DryRunGate_IsJudgedAndStored_ButNeverStopsTheRollout()
    {
        var s = Snapshot(60, new RolloutRequest
        {
            Model = "m", Version = "2.0.0", Gates = ["latency"], DryRunGates = ["latency"],
            Stages = [new RolloutStageRequest { Percent = 20, BakeSeconds = 100 }, new RolloutStageRequest { Percent = 100, BakeSeconds = 100 }],
        });
        Respond(s, Step(s, 1000), "committed");
        Step(s, 1000);
        var verdicts = new List<VerdictRecord>();
        for (var i = 0; i < RolloutStepper.LooksPerBake; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(10));
            Step(s, 1000, Windows(s, 1.5));
            verdicts.AddRange(s.NewVerdicts);
            s.NewVerdicts.Clear();
        }

        Assert.Equal(RolloutStates.Running, s.Rollout.State);
        Assert.Equal(1, s.Rollout.Stage); // went on to the next stage
        Assert.Contains(verdicts, v => v.Gate == "latency" && v.Outcome == "fail" && v.DryRun);
    }

    [Fact]
    public void ShadowStage_RunsTheCandidateBesideTheModelOnTheFirstStagesDevices_ThenTheyGoLive()
    {
        var s = Snapshot(30, new RolloutRequest
        {
            Model = "m", Version = "2.0.0", Gates = [], ShadowSeconds = 50,
            Stages = [new RolloutStageRequest { Percent = 20, BakeSeconds = 0 }, new RolloutStageRequest { Percent = 100, BakeSeconds = 0 }],
        });
        Assert.Equal([StagePlan.Shadow, StagePlan.Live, StagePlan.Live], s.Rollout.Plan.Stages.Select(p => p.Kind));

        var shadow = Step(s, 1000);

        Assert.Equal(6, shadow.Publications.Count);
        Assert.All(shadow.Publications, p => Assert.Contains("\"mode\":\"shadow\"", Encoding.UTF8.GetString(p.Payload), StringComparison.Ordinal));
        Assert.All(s.DevicesOf(0), d => Assert.Equal(RolloutDeviceStates.Shadow, d.State));
        foreach (var p in shadow.Publications)
        {
            _observations[p.DeviceId] = new OtaObservation(p.DeviceId, p.DesiredId!, "shadow.report", null, 0.97);
        }

        var agreement = new GateWindows(new Dictionary<string, DeviceAggregate>(),
            shadow.Publications.ToDictionary(p => p.DeviceId, _ => new DeviceAggregate(null, 0, 0, 0, null, 0, 0, 1, 0.97)), new Dictionary<string, DeviceAggregate>());
        StepResult live = new();
        for (var i = 0; i < RolloutStepper.LooksPerBake && s.Rollout.Stage == 0; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(5));
            live = Step(s, 1000, agreement);
        }

        Assert.Equal(RolloutStates.Running, s.Rollout.State);
        Assert.Equal(1, s.Rollout.Stage);
        Assert.Equal(6, live.Publications.Count); // the same devices, now live
        Assert.All(live.Publications, p => Assert.DoesNotContain("\"mode\":\"shadow\"", Encoding.UTF8.GetString(p.Payload), StringComparison.Ordinal));
    }

    private static RolloutPlan Plan(RolloutRequest request) => RolloutRules.Resolve(request, "http://cp.example:8080");

    private static RolloutStageRequest[] Stages(double bake, params double[] percents) =>
        percents.Select(p => new RolloutStageRequest { Percent = p, BakeSeconds = bake, MinDevices = 5 }).ToArray();

    private RolloutSnapshot Snapshot(int devices, RolloutRequest request)
    {
        var plan = Plan(request);
        var id = "ro-test";
        var ordered = Enumerable.Range(1, devices).Select(i => $"cam-{i:000}").OrderBy(d => RolloutRules.OrderKey(id, d), StringComparer.Ordinal).ToList();
        var targets = RolloutRules.Targets(plan.Stages, devices);
        var live = Enumerable.Range(0, plan.Stages.Count).Where(i => plan.Stages[i].Kind == StagePlan.Live).ToList();
        return new RolloutSnapshot
        {
            Rollout = new RolloutRecord { Id = id, Plan = plan, State = RolloutStates.Running, CreatedBy = "test", CreatedAt = _clock.GetUtcNow(), UpdatedAt = _clock.GetUtcNow() },
            Stages = plan.Stages.Select((_, i) => new StageRecord { Index = i, State = StageStates.Pending }).ToList(),
            Devices = ordered.Select((d, i) => new DeviceRecord
            {
                DeviceId = d, OrderKey = RolloutRules.OrderKey(id, d), Stage = live.FirstOrDefault(s => i < targets[s], plan.Stages.Count), State = RolloutDeviceStates.Pending,
                CurrentModel = "m", CurrentVersion = "1.0.0", Stratum = i % 2 == 0 ? "orin" : "nano",
            }).ToList(),
        };
    }

    private readonly Dictionary<string, OtaObservation> _observations = new(StringComparer.Ordinal);

    private string? Observed(DeviceRecord d) => _observations.TryGetValue(d.DeviceId, out var o) && o.DesiredId == d.DesiredId ? o.State : null;

    private StepResult Step(RolloutSnapshot s, int budget, GateWindows? windows = null) =>
        RolloutStepper.Step(s, _clock.GetUtcNow(), _observations, budget, Template, windows);

    private void Respond(RolloutSnapshot s, StepResult step, string state, int? count = null) =>
        Respond(s, step.Publications.Take(count ?? int.MaxValue).ToList(), state);

    private void Respond(RolloutSnapshot s, IReadOnlyList<Publication> publications, string state)
    {
        foreach (var p in publications.Where(p => p.DesiredId is not null))
        {
            _observations[p.DeviceId] = new OtaObservation(p.DeviceId, p.DesiredId!, state, state == "committed" ? null : "selftest", null);
        }
    }

    /// <summary>Per-device p95: a device's own level (spread over the fleet) times the factor once it runs the new version.</summary>
    private static GateWindows Windows(RolloutSnapshot s, double factor)
    {
        DeviceAggregate Agg(double p95) => new(p95, 0, 1000, 0, 0.8, 0, 0, 10);
        double Level(string id) => 5 + (Math.Abs(id.GetHashCode(StringComparison.Ordinal)) % 100) / 20.0;
        var before = s.Devices.ToDictionary(d => d.DeviceId, d => Agg(Level(d.DeviceId)));
        var afterNew = s.Devices.Where(d => d.State == RolloutDeviceStates.Succeeded).ToDictionary(d => d.DeviceId, d => Agg(Level(d.DeviceId) * factor));
        var afterOld = s.Devices.Where(d => d.State == RolloutDeviceStates.Pending).ToDictionary(d => d.DeviceId, d => Agg(Level(d.DeviceId) * 1.01));
        return new GateWindows(before, afterNew, afterOld);
    }

    private static DesiredMessage? Template(string model, string version, string mode) => new()
    {
        Model = model, Version = version, Mode = mode, ArtifactUrl = $"http://cp/a/{version}", Sha256 = new string('a', 64), Size = 10,
        ManifestUrl = $"http://cp/m/{version}", Signature = "c2ln",
    };
}
