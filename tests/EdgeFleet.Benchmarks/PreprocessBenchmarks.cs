using BenchmarkDotNet.Attributes;
using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Benchmarks;

/// <summary>uint8 HWC RGB → float32 NCHW: the SIMD path against the plain per-pixel loop.</summary>
[MemoryDiagnoser]
public class PreprocessBenchmarks
{
    private static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    private byte[] _rgb = [];
    private float[] _tensor = [];
    private Preprocessor _preprocessor = null!;

    [Params(224, 640)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _rgb = new byte[Size * Size * 3];
        new Random(1).NextBytes(_rgb);
        _tensor = new float[_rgb.Length];
        _preprocessor = new Preprocessor(Size, Size, 1f / 255f, Mean, Std, bgr: false);
    }

    [Benchmark(Baseline = true)]
    public void Scalar()
    {
        var plane = Size * Size;
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                _tensor[c * plane + p] = (_rgb[p * 3 + c] * (1f / 255f) - Mean[c]) / Std[c];
            }
        }
    }

    [Benchmark]
    public void Vectorized() => _preprocessor.Run(_rgb, _tensor);
}
