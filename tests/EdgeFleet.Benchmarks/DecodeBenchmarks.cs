using BenchmarkDotNet.Attributes;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// Postprocessing of a YOLOv5 output of 1600 candidates × 80 classes (the 320×320 sample detector): candidate
/// extraction alone as the baseline, then with NMS at a loose threshold (many candidates survive to NMS).
/// </summary>
[MemoryDiagnoser]
public class DecodeBenchmarks
{
    private const int Rows = 1600;
    private const int Width = 85;
    private static readonly long[] Shape = [1, Rows, Width];

    private float[] _output = [];
    private YoloDecoder _strict = null!;
    private YoloDecoder _loose = null!;
    private InferenceResult _result = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(2);
        _output = new float[Rows * Width];
        for (var n = 0; n < Rows; n++)
        {
            var row = _output.AsSpan(n * Width, Width);
            row[0] = random.NextSingle() * 320;
            row[1] = random.NextSingle() * 320;
            row[2] = 10 + random.NextSingle() * 60;
            row[3] = 10 + random.NextSingle() * 60;
            row[4] = random.NextSingle();
            for (var c = 5; c < Width; c++)
            {
                row[c] = random.NextSingle();
            }
        }

        var decoding = new OutputDecoding { Type = DecodingTypes.Yolo, Format = "yolov5", MaxDetections = 100 };
        _strict = new YoloDecoder(decoding with { ScoreThreshold = 0.99f }, 320, 320);
        _loose = new YoloDecoder(decoding with { ScoreThreshold = 0.25f }, 320, 320);
        _result = _loose.CreateResult();
    }

    [Benchmark(Baseline = true)]
    public int CandidatesOnly()
    {
        _strict.Decode(_output, Shape, _result);
        return _result.DetectionCount;
    }

    [Benchmark]
    public int DecodeAndNms()
    {
        _loose.Decode(_output, Shape, _result);
        return _result.DetectionCount;
    }
}
