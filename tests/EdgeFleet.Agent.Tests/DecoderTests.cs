using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class DecoderTests
{
    private static readonly OutputDecoding Yolo = new()
    {
        Type = DecodingTypes.Yolo,
        Format = "yolov5",
        ScoreThreshold = 0.25f,
        IouThreshold = 0.5f,
        MaxDetections = 10,
    };

    [Fact]
    public void Classification_Probabilities_TopKBestFirst()
    {
        var decoder = new ClassificationDecoder(topK: 3, logits: false);
        var result = decoder.CreateResult();

        decoder.Decode([0.05f, 0.5f, 0.1f, 0.3f, 0.05f], [1, 5], result);

        Assert.Equal([1, 3, 2], result.TopClassIds.ToArray());
        Assert.Equal([0.5f, 0.3f, 0.1f], result.TopScores.ToArray());
        Assert.False(result.NonFinite);
    }

    [Fact]
    public void Classification_Logits_AppliesSoftmax()
    {
        var decoder = new ClassificationDecoder(topK: 2, logits: true);
        var result = decoder.CreateResult();

        decoder.Decode([0f, MathF.Log(3f)], [1, 2], result);

        Assert.Equal([1, 0], result.TopClassIds.ToArray());
        Assert.Equal(0.75f, result.TopScores[0], 5);
        Assert.Equal(0.25f, result.TopScores[1], 5);
    }

    [Fact]
    public void Classification_UniformDistribution_HasEntropyOne()
    {
        var decoder = new ClassificationDecoder(topK: 1, logits: false);
        var result = decoder.CreateResult();

        decoder.Decode([0.25f, 0.25f, 0.25f, 0.25f], [1, 4], result);

        Assert.Equal(1f, result.Entropy, 5);
    }

    [Fact]
    public void Classification_NaN_IsFlaggedAndSkipped()
    {
        var decoder = new ClassificationDecoder(topK: 2, logits: false);
        var result = decoder.CreateResult();

        decoder.Decode([float.NaN, 0.6f, 0.4f], [1, 3], result);

        Assert.True(result.NonFinite);
        Assert.Equal([1, 2], result.TopClassIds.ToArray());
    }

    [Fact]
    public void Yolov5_OverlappingSameClass_KeepsOnlyTheBest()
    {
        // rows: cx, cy, w, h, objectness, class0, class1
        float[] output =
        [
            50, 50, 20, 20, 0.9f, 0.9f, 0.1f,   // A: score 0.81
            52, 50, 20, 20, 0.8f, 0.9f, 0.1f,   // overlaps A (IoU 0.82), same class: suppressed
            52, 50, 20, 20, 0.8f, 0.1f, 0.9f,   // same place, other class: kept
            150, 150, 10, 10, 0.6f, 0.8f, 0.2f, // far away: kept (0.48)
            10, 10, 5, 5, 0.3f, 0.5f, 0.5f,     // 0.15 < threshold
        ];
        var decoder = new YoloDecoder(Yolo, 224, 224);
        var result = decoder.CreateResult();

        decoder.Decode(output, [1, 5, 7], result);

        var d = result.Detections.ToArray();
        Assert.Equal(3, d.Length);
        Assert.Equal(0, d[0].ClassId);
        Assert.Equal(0.81f, d[0].Score, 5);
        Assert.Equal((40f, 40f, 60f, 60f), (d[0].X1, d[0].Y1, d[0].X2, d[0].Y2));
        Assert.Equal(1, d[1].ClassId);
        Assert.Equal(0.72f, d[1].Score, 5);
        Assert.Equal(0.48f, d[2].Score, 5);
    }

    [Fact]
    public void Yolov5_ClassAgnostic_SuppressesAcrossClasses()
    {
        float[] output =
        [
            50, 50, 20, 20, 0.9f, 0.9f, 0.1f,
            52, 50, 20, 20, 0.8f, 0.1f, 0.9f,
        ];
        var decoder = new YoloDecoder(Yolo with { ClassAgnosticNms = true }, 224, 224);
        var result = decoder.CreateResult();

        decoder.Decode(output, [1, 2, 7], result);

        Assert.Equal(1, result.DetectionCount);
    }

    [Fact]
    public void Yolov8_TransposedLayoutNormalizedCoordinates_Decodes()
    {
        // [1, 4 + 2, N = 2]: rows are attributes, columns are candidates
        float[] output =
        [
            0.5f, 0.1f,  // cx
            0.5f, 0.1f,  // cy
            0.25f, 0.1f, // w
            0.25f, 0.1f, // h
            0.1f, 0.2f,  // class 0
            0.7f, 0.1f,  // class 1
        ];
        var decoder = new YoloDecoder(Yolo with { Format = "yolov8", Coordinates = "normalized" }, 200, 100);
        var result = decoder.CreateResult();

        decoder.Decode(output, [1, 6, 2], result);

        var d = Assert.Single(result.Detections.ToArray());
        Assert.Equal(1, d.ClassId);
        Assert.Equal((75f, 37.5f, 125f, 62.5f), (d.X1, d.Y1, d.X2, d.Y2));
    }

    [Fact]
    public void Yolov5_MoreBoxesThanMax_KeepsTheHighestScores()
    {
        var rows = 30;
        var output = new float[rows * 6];
        for (var i = 0; i < rows; i++)
        {
            // disjoint boxes with rising scores
            float[] row = [i * 30 + 10, 10, 10, 10, 0.5f + i / 100f, 1f];
            row.CopyTo(output, i * 6);
        }

        var decoder = new YoloDecoder(Yolo with { MaxDetections = 5 }, 1000, 1000);
        var result = decoder.CreateResult();

        decoder.Decode(output, [1, rows, 6], result);

        Assert.Equal(5, result.DetectionCount);
        Assert.Equal(0.79f, result.Detections[0].Score, 5);
        Assert.True(result.Detections[0].Score >= result.Detections[4].Score);
    }

    [Fact]
    public void HeapSort_RandomKeys_SortsKeysAndItemsTogether()
    {
        var random = new Random(5);
        var keys = Enumerable.Range(0, 257).Select(_ => (float)random.NextDouble()).ToArray();
        var original = keys.ToArray();
        var items = Enumerable.Range(0, keys.Length).ToArray();

        YoloDecoder.HeapSort(keys, items);

        Assert.Equal(original.Order().ToArray(), keys);
        Assert.All(Enumerable.Range(0, keys.Length), i => Assert.Equal(original[items[i]], keys[i]));
    }

    [Fact]
    public void IoU_KnownBoxes_MatchesHandComputed()
    {
        var a = new Detection { X1 = 0, Y1 = 0, X2 = 10, Y2 = 10 };
        var b = new Detection { X1 = 5, Y1 = 0, X2 = 15, Y2 = 10 };

        Assert.Equal(50f / 150f, YoloDecoder.IoU(a, b), 6);
        Assert.Equal(0f, YoloDecoder.IoU(a, new Detection { X1 = 20, Y1 = 20, X2 = 30, Y2 = 30 }));
    }

    [Fact]
    public void Decode_SteadyState_AllocatesNothing()
    {
        var output = new float[100 * 7];
        var random = new Random(3);
        for (var i = 0; i < output.Length; i++)
        {
            output[i] = (float)random.NextDouble() * 100;
        }

        var decoder = new YoloDecoder(Yolo, 224, 224);
        var result = decoder.CreateResult();
        long[] shape = [1, 100, 7]; // a collection literal at the call would allocate in the test itself
        decoder.Decode(output, shape, result);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            decoder.Decode(output, shape, result);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
