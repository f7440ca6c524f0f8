using System.Diagnostics;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Messaging;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class ModelStatsTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static long Ticks(double ms) => (long)(ms * Stopwatch.Frequency / 1000);

    private static InferenceResult Classified(float top1, bool nonFinite = false)
    {
        var result = new InferenceResult(3, 1) { TopCount = 3, NonFinite = nonFinite };
        result.TopScores[0] = top1;
        result.TopScores[1] = top1 / 2;
        result.TopScores[2] = top1 / 4;
        return result;
    }

    private static InferenceResult Detected(params float[] scores)
    {
        var result = new InferenceResult(1, 8) { DetectionCount = scores.Length };
        for (var i = 0; i < scores.Length; i++)
        {
            result.Detections[i].Score = scores[i];
        }

        return result;
    }

    [Fact]
    public void Snapshot_LatenciesOneToHundred_PercentilesSinceActivationAndOverTheRecentWindow()
    {
        var stats = new ModelStats(new ModelRef("m", "1.0.0"), Start, window: 10);
        for (var ms = 1; ms <= 100; ms++)
        {
            stats.RecordFrame(Ticks(ms), Classified(0.5f));
        }

        var s = stats.Snapshot();

        Assert.Equal(new ModelRef("m", "1.0.0"), s.Model);
        Assert.Equal(Start, s.Since);
        Assert.Equal(100, s.SinceActivation.Frames);
        Assert.Equal(95, s.SinceActivation.LatencyP95Ms, 95 * 0.021); // log buckets 2 % wide
        Assert.Equal(50, s.SinceActivation.LatencyP50Ms, 50 * 0.021);
        Assert.Equal(10, s.Recent.Frames);
        Assert.Equal(100, s.Recent.LatencyP95Ms, 1e-6);
        Assert.Equal(95, s.Recent.LatencyP50Ms, 1e-6);
        Assert.Equal(10, s.RecentCapacity);
    }

    [Fact]
    public void Snapshot_Classification_MeanTopOneAndNonFiniteAndErrorsInBothWindows()
    {
        var stats = new ModelStats(new ModelRef("m", "1.0.0"), Start, window: 4);
        stats.RecordFrame(Ticks(1), Classified(0.9f));
        stats.RecordFrame(Ticks(1), Classified(0.7f));
        stats.RecordFrame(Ticks(1), Classified(float.NaN, nonFinite: true));
        stats.RecordError();
        stats.RecordFrame(Ticks(1), Classified(0.5f));
        stats.RecordFrame(Ticks(1), Classified(0.3f));

        var s = stats.Snapshot();

        Assert.Equal(5, s.SinceActivation.Frames);
        Assert.Equal(1, s.SinceActivation.Errors);
        Assert.Equal(1, s.SinceActivation.NonFinite);
        Assert.Equal(4, s.SinceActivation.ConfidenceFrames); // the NaN frame has no confidence
        Assert.Equal((0.9 + 0.7 + 0.5 + 0.3) / 4, s.SinceActivation.MeanConfidence!.Value, 1e-6);
        Assert.Equal(1 / 6.0, s.SinceActivation.NonFiniteShare, 1e-9);
        // The last 4 frames: NaN, error, 0.5, 0.3.
        Assert.Equal(3, s.Recent.Frames);
        Assert.Equal(1, s.Recent.Errors);
        Assert.Equal(1, s.Recent.NonFinite);
        Assert.Equal(0.4, s.Recent.MeanConfidence!.Value, 1e-6);
        Assert.Equal(0.25, s.Recent.ErrorShare, 1e-9);
    }

    [Fact]
    public void Snapshot_Detection_MeanBoxScoreOverFramesWithBoxes()
    {
        var stats = new ModelStats(new ModelRef("d", "1.0.0"), Start);
        stats.RecordFrame(Ticks(2), Detected(0.8f, 0.6f));
        stats.RecordFrame(Ticks(2), Detected());
        stats.RecordFrame(Ticks(2), Detected(0.4f));

        var s = stats.Snapshot().SinceActivation;

        Assert.Equal(3, s.Frames);
        Assert.Equal(2, s.ConfidenceFrames);
        Assert.Equal((0.7 + 0.4) / 2, s.MeanConfidence!.Value, 1e-6);
    }

    [Fact]
    public void Snapshot_NoFrames_ZeroesAndNoConfidence()
    {
        var s = new ModelStats(new ModelRef("m", "1.0.0"), Start).Snapshot();

        Assert.Equal(0, s.SinceActivation.Frames);
        Assert.Null(s.SinceActivation.MeanConfidence);
        Assert.Equal(0, s.Recent.LatencyP95Ms);
        Assert.Equal(0, s.Recent.NonFiniteShare);
    }

    [Fact]
    public async Task Snapshot_WhileAnotherThreadRecords_IsConsistent()
    {
        var stats = new ModelStats(new ModelRef("m", "1.0.0"), Start, window: 64);
        var result = Classified(0.5f);
        const int Frames = 200_000;
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < Frames; i++)
            {
                stats.RecordFrame(Ticks(1 + i % 7), result);
            }
        });

        long last = 0;
        while (!writer.IsCompleted)
        {
            var s = stats.Snapshot();
            Assert.True(s.SinceActivation.Frames >= last);
            Assert.Equal(s.SinceActivation.Frames, s.SinceActivation.ConfidenceFrames);
            Assert.True(s.Recent.Frames <= 64);
            Assert.Equal(0.5, s.Recent.MeanConfidence ?? 0.5, 1e-6);
            last = s.SinceActivation.Frames;
        }

        await writer;
        Assert.Equal(Frames, stats.Snapshot().SinceActivation.Frames);
    }
}

[Trait("Category", "Unit")]
public sealed class FrameResizerTests
{
    private static byte[] Uniform(int width, int height, byte r, byte g, byte b)
    {
        var data = new byte[width * height * 3];
        for (var i = 0; i < data.Length; i += 3)
        {
            (data[i], data[i + 1], data[i + 2]) = (r, g, b);
        }

        return data;
    }

    private static byte[] Pixel(byte[] frame, int width, int x, int y) => frame.AsSpan((y * width + x) * 3, 3).ToArray();

    [Fact]
    public void Resize_SameSizeStretch_CopiesExactly()
    {
        var source = new byte[32 * 24 * 3];
        new Random(3).NextBytes(source);
        var destination = new byte[source.Length];

        new FrameResizer().Resize(source, 32, 24, destination, 32, 24, ResizeMode.Stretch);

        Assert.Equal(source, destination);
    }

    [Fact]
    public void Resize_LetterboxWideToSquare_PadsTopAndBottomWithGrey114()
    {
        var source = Uniform(160, 120, 200, 10, 50);
        var destination = new byte[64 * 64 * 3];

        new FrameResizer().Resize(source, 160, 120, destination, 64, 64, ResizeMode.Letterbox);

        // Scale 0.4: the picture is 64×48, rows 8–55.
        Assert.Equal([114, 114, 114], Pixel(destination, 64, 10, 0));
        Assert.Equal([114, 114, 114], Pixel(destination, 64, 63, 7));
        Assert.Equal([200, 10, 50], Pixel(destination, 64, 0, 8));
        Assert.Equal([200, 10, 50], Pixel(destination, 64, 63, 55));
        Assert.Equal([114, 114, 114], Pixel(destination, 64, 30, 56));
    }

    [Fact]
    public void Resize_CenterCropWideToSquare_DropsTheSides()
    {
        var source = Uniform(160, 120, 0, 255, 0);
        for (var y = 0; y < 120; y++)
        {
            for (var x = 0; x < 160; x++)
            {
                if (x < 20 || x >= 140)
                {
                    source[(y * 160 + x) * 3] = 255; // red sides outside the centred 120×120
                    source[(y * 160 + x) * 3 + 1] = 0;
                }
            }
        }

        var destination = new byte[64 * 64 * 3];

        new FrameResizer().Resize(source, 160, 120, destination, 64, 64, ResizeMode.CenterCrop);

        for (var i = 0; i < destination.Length; i += 3)
        {
            Assert.Equal(0, destination[i]);
            Assert.Equal(255, destination[i + 1]);
        }
    }

    [Fact]
    public void Resize_StretchGradient_KeepsItMonotonic()
    {
        var source = new byte[64 * 2 * 3];
        for (var x = 0; x < 64; x++)
        {
            source[x * 3] = source[(64 + x) * 3] = (byte)(x * 4);
        }

        var destination = new byte[96 * 3 * 3];

        new FrameResizer().Resize(source, 64, 2, destination, 96, 3, ResizeMode.Stretch);

        for (var x = 1; x < 96; x++)
        {
            Assert.True(destination[x * 3] >= destination[(x - 1) * 3]);
        }

        Assert.InRange(destination[0], 0, 2);
        Assert.InRange(destination[95 * 3], 250, 252);
    }
}
