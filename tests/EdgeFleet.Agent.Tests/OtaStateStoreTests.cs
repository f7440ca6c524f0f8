using EdgeFleet.Agent.Ota;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Testing;
using Microsoft.Extensions.Time.Testing;

namespace EdgeFleet.Agent.Tests;

public sealed class OtaStateStoreTests
{
    private static readonly FakeTimeProvider Time = new(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));

    private static DesiredMessage Desired(string version = "1.2.0") => new()
    {
        Model = "cls",
        Version = version,
        ArtifactUrl = "http://cp/a",
        ManifestUrl = "http://cp/m",
        Sha256 = new string('a', 64),
        Size = 10,
        Probation = new ProbationOverrides { Frames = 5 },
    };

    [Fact]
    public void Load_NoFile_IsEmpty()
    {
        using var dir = new TempDirectory();

        var state = new OtaStateStore(dir.Path, Time).Load(out var problem);

        Assert.Null(problem);
        Assert.Null(state.Current);
        Assert.Null(state.Job);
    }

    [Fact]
    public void Save_ThenLoad_RoundTripsEveryField()
    {
        using var dir = new TempDirectory();
        var store = new OtaStateStore(dir.Path, Time);
        var state = new OtaState
        {
            Current = new InstalledModel("cls", "1.1.0", "/x/cls.onnx"),
            Previous = new InstalledModel("cls", "1.0.0", "/y/cls.onnx"),
            Job = new OtaJob { Desired = Desired(), Phase = OtaPhase.Downloading, Bytes = 4, Total = 10, StartedAt = Time.GetUtcNow() },
            LastFailure = new OtaFailure { DesiredId = "d", Model = "cls", Version = "0.9.0", Event = UpdateEvents.Rejected, Reason = "sha256", Message = "m" },
        }.WithSettled("a").WithSettled("b");

        store.Save(state);
        var loaded = store.Load(out var problem);

        Assert.Null(problem);
        Assert.Equal(state.Current, loaded.Current);
        Assert.Equal(state.Previous, loaded.Previous);
        Assert.Equal(OtaPhase.Downloading, loaded.Job!.Phase);
        Assert.Equal(4, loaded.Job.Bytes);
        Assert.Equal("cls@1.2.0", loaded.Job.Desired.EffectiveId);
        Assert.Equal(5, loaded.Job.Desired.Probation!.Frames);
        Assert.Equal("sha256", loaded.LastFailure!.Reason);
        Assert.Equal(["a", "b"], loaded.Settled);
        Assert.Equal(Time.GetUtcNow(), loaded.UpdatedAt);
        Assert.False(File.Exists(store.Path + ".tmp"));
    }

    [Fact]
    public void Load_Corrupt_KeepsTheFileAsideAndStartsEmpty()
    {
        using var dir = new TempDirectory();
        var store = new OtaStateStore(dir.Path, Time);
        File.WriteAllText(store.Path, "{\"current\": {\"name\": ");

        var state = store.Load(out var problem);

        Assert.Null(state.Current);
        Assert.Contains("could not be read", problem, StringComparison.Ordinal);
        Assert.Equal("{\"current\": {\"name\": ", File.ReadAllText(store.Path + ".corrupt"));
    }

    [Fact]
    public void Load_OtherSchema_IsNotGuessedAt()
    {
        using var dir = new TempDirectory();
        var store = new OtaStateStore(dir.Path, Time);
        File.WriteAllText(store.Path, "{\"schema\": 7}");

        store.Load(out var problem);

        Assert.Contains("schema 7", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void WithSettled_KeepsTheNewest32()
    {
        var state = new OtaState();
        for (var i = 0; i < 40; i++)
        {
            state = state.WithSettled($"id{i}");
        }

        state = state.WithSettled("id20");

        Assert.Equal(32, state.Settled.Count);
        Assert.Equal("id20", state.Settled[^1]);
        Assert.DoesNotContain("id7", state.Settled);
        Assert.Contains("id8", state.Settled);
    }
}
