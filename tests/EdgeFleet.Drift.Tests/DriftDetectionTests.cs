using EdgeFleet.Contracts.Messaging;

namespace EdgeFleet.Drift.Tests;

/// <summary>Detection behaviour on synthetic data: what must and must not be flagged.</summary>
[Trait("Category", "Unit")]
public sealed class DriftDetectionTests
{
    private static double[] Normal(int n, double mean, double std, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            var u1 = 1 - r.NextDouble();
            var u2 = r.NextDouble();
            return mean + std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }).ToArray();
    }

    /// <summary>An AR(1) series: each value is φ·previous + noise, like a feature of consecutive video frames.</summary>
    private static double[] Ar1(int n, double phi, int seed)
    {
        var noise = Normal(n, 0, Math.Sqrt(1 - phi * phi), seed);
        var x = new double[n];
        for (var i = 1; i < n; i++)
        {
            x[i] = phi * x[i - 1] + noise[i];
        }

        return x;
    }

    private static FeatureDrift Compare(double[] baseline, double[] current) =>
        DriftComparer.Grade([DriftComparer.CompareNumeric(NumericData.FromValues("f", baseline), NumericData.FromValues("f", current), 10)],
            new DriftThresholds())[0];

    [Fact]
    public void SameDistribution_IsNotFlagged()
    {
        for (var seed = 0; seed < 20; seed++)
        {
            var f = Compare(Normal(2000, 0, 1, seed), Normal(2000, 0, 1, seed + 1000));
            Assert.Equal(DriftSeverity.None, f.Severity);
            Assert.True(f.Psi < 0.05, $"seed {seed}: PSI {f.Psi}");
        }
    }

    [Fact]
    public void MeanShift_IsAnAlert()
    {
        var f = Compare(Normal(2000, 0, 1, 1), Normal(2000, 0.8, 1, 2));

        Assert.Equal(DriftSeverity.Alert, f.Severity);
        Assert.True(f.Ks!.PValue < 1e-10);
        Assert.Equal(0.8, f.Wasserstein!.Value, 1);
        Assert.Equal(0.8, f.WassersteinNormed!.Value, 1);
    }

    [Fact]
    public void SmallMeanShift_IsAWarning()
    {
        var f = Compare(Normal(5000, 0, 1, 3), Normal(5000, 0.4, 1, 4)); // PSI ≈ 0.16

        Assert.Equal(DriftSeverity.Warn, f.Severity);
    }

    [Fact]
    public void VarianceChange_IsFlagged()
    {
        var f = Compare(Normal(2000, 0, 1, 5), Normal(2000, 0, 2.5, 6));

        Assert.NotEqual(DriftSeverity.None, f.Severity);
        Assert.True(f.Psi > 0.25);
    }

    [Fact]
    public void CorrelatedWindows_SameProcess_AreNotFlaggedOnceTheEffectiveSizeIsUsed()
    {
        var falseAlarmsNaive = 0;
        var falseAlarmsCorrected = 0;
        for (var seed = 0; seed < 20; seed++)
        {
            var reference = Normal(1000, 0, 1, seed + 500); // stationary reference (independent draws)
            var monitorWindow = new NumericAccumulator("f", 1000, (ulong)seed + 1);
            foreach (var v in Ar1(1000, 0.98, seed))
            {
                monitorWindow.Add(v);
            }

            var current = monitorWindow.ToCurrent();
            var corrected = DriftComparer.Grade([DriftComparer.CompareNumeric(NumericData.FromValues("f", reference), current, 10)], new DriftThresholds())[0];
            var naive = Compare(reference, current.Sorted);
            falseAlarmsCorrected += corrected.Severity == DriftSeverity.None ? 0 : 1;
            falseAlarmsNaive += naive.Severity == DriftSeverity.None ? 0 : 1;
            Assert.True(current.EffectiveCount < 50, $"n_eff {current.EffectiveCount}");
        }

        Assert.True(falseAlarmsNaive >= 10, $"without correction a slowly wandering series looks drifted ({falseAlarmsNaive}/20)");
        Assert.True(falseAlarmsCorrected <= 2, $"{falseAlarmsCorrected}/20 false alarms with the effective sample size");
    }

    [Fact]
    public void CorrelatedWindow_LargeShift_IsStillAnAlert()
    {
        var window = new NumericAccumulator("f", 1000, 7);
        foreach (var v in Ar1(1000, 0.98, 3))
        {
            window.Add(v + 6); // e.g. the camera was pointed somewhere else
        }

        var f = DriftComparer.Grade([DriftComparer.CompareNumeric(NumericData.FromValues("f", Normal(1000, 0, 1, 9)), window.ToCurrent(), 10)],
            new DriftThresholds())[0];

        Assert.Equal(DriftSeverity.Alert, f.Severity);
    }

    [Fact]
    public void Categorical_ChangedMix_IsFlaggedAndSameMixIsNot()
    {
        var baseline = new CategoricalData("c", new Dictionary<string, long> { ["0"] = 500, ["1"] = 300, ["2"] = 200 });
        var same = new CategoricalData("c", new Dictionary<string, long> { ["0"] = 490, ["1"] = 310, ["2"] = 200 });
        var changed = new CategoricalData("c", new Dictionary<string, long> { ["0"] = 200, ["1"] = 300, ["2"] = 450, ["3"] = 50 });

        var graded = DriftComparer.Grade([DriftComparer.CompareCategorical(baseline, same), DriftComparer.CompareCategorical(baseline, changed)],
            new DriftThresholds());

        Assert.Equal(DriftSeverity.None, graded[0].Severity);
        Assert.Equal(DriftSeverity.Alert, graded[1].Severity);
        Assert.Equal(3, graded[1].Chi2 is { } c ? 3 : 0);
        Assert.True(graded[1].Chi2!.PValue < 1e-10);
    }
}
