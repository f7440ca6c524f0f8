namespace EdgeFleet.Onnx.Tests;

[Trait("Category", "Unit")]
public sealed class SessionSettingsTests
{
    [Fact]
    public void ResolvedIntraOpThreads_Zero_IsOnePerCpuThisProcessMayUse()
    {
        // Not 0 handed to ORT: its own default counts physical cores and gave one thread on a 2-vCPU VM.
        Assert.Equal(Environment.ProcessorCount, new SessionSettings().ResolvedIntraOpThreads);
    }

    [Fact]
    public void ResolvedIntraOpThreads_Set_IsTakenAsIs()
    {
        Assert.Equal(3, new SessionSettings { IntraOpThreads = 3 }.ResolvedIntraOpThreads);
    }
}
