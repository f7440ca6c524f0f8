using BenchmarkDotNet.Attributes;
using EdgeFleet.Agent.Pipeline;
using EdgeFleet.Onnx;
using EdgeFleet.Testing;

namespace EdgeFleet.Benchmarks;

/// <summary>
/// One frame's work without capture: bare ORT Run (baseline) against preprocess + Run + decode on the same session,
/// for the 10 ms-class sample classifier. The ratio is the in-process pipeline overhead per frame; both go through the
/// IoBinding runner, so Allocated should read 0. ONNX Runtime is loaded only through EdgeFleet.Onnx, which turns its
/// telemetry off before the library loads (in this process and in BenchmarkDotNet's child processes alike).
/// </summary>
[MemoryDiagnoser]
public class InferenceBenchmarks
{
    private LoadedModel _model = null!;
    private InferenceResult _result = null!;
    private byte[] _frame = [];

    [Params(4, 32)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var path = TestModels.Get(new EdgeFleet.ModelFormat.SampleModelOptions { InputSize = 224, Classes = 1000, Depth = Depth });
        _model = LoadedModel.Load(OnnxRuntime.Load(), path, new SessionSettings());
        _result = _model.Decoder.CreateResult();
        _frame = new byte[224 * 224 * 3];
        new Random(3).NextBytes(_frame);
        _model.Preprocessor.Run(_frame, _model.Runner.Input<float>(0));
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    [Benchmark(Baseline = true)]
    public void OrtRun() => _model.Runner.Run();

    [Benchmark]
    public int PreprocessRunDecode()
    {
        _model.Preprocessor.Run(_frame, _model.Runner.Input<float>(0));
        _model.Runner.Run();
        _model.Decoder.Decode(_model.Runner.Output<float>(0), _model.Runner.OutputShape(0), _result);
        return _result.TopCount;
    }
}
