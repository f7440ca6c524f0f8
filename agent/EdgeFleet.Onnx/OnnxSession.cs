using System.Runtime.InteropServices;
using EdgeFleet.Onnx.Native;

namespace EdgeFleet.Onnx;

/// <summary>
/// A loaded model. Thread-safe: any number of <see cref="SessionRunner"/>s may run on it at once, each from one
/// thread. Disposing the session while runners are mid-run is safe; the native session is released after the
/// last run returns.
/// </summary>
public sealed unsafe class OnnxSession : IDisposable
{
    private readonly OnnxRuntime _runtime;
    private readonly OrtHandle _session;

    internal OnnxSession(OnnxRuntime runtime, nint session, string source, ExecutionProvider provider,
        IReadOnlyList<string> providerNotes)
    {
        _runtime = runtime;
        _session = new OrtHandle(session, runtime.Api.ReleaseSession);
        Source = source;
        ActiveProvider = provider;
        ProviderNotes = providerNotes;
        try
        {
            Inputs = ReadMetadata(isInput: true);
            Outputs = ReadMetadata(isInput: false);
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    /// <summary>Where the model came from (file path or a name for in-memory models).</summary>
    public string Source { get; }

    /// <summary>The first preferred execution provider that could be enabled.</summary>
    public ExecutionProvider ActiveProvider { get; }

    /// <summary>One line per provider that was tried: enabled, missing from the build, or failed and why.</summary>
    public IReadOnlyList<string> ProviderNotes { get; }

    /// <summary>Model inputs.</summary>
    public IReadOnlyList<TensorMetadata> Inputs { get; }

    /// <summary>Model outputs.</summary>
    public IReadOnlyList<TensorMetadata> Outputs { get; }

    internal OnnxRuntime Runtime => _runtime;

    internal OrtHandle Handle => _session;

    /// <summary>
    /// Creates a runner with input and output tensors allocated once. Dynamic input dimensions are taken from
    /// <paramref name="inputShapes"/> (by input name), or 1 when not given.
    /// </summary>
    public SessionRunner CreateRunner(IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        ObjectDisposedException.ThrowIf(_session.IsClosed, this);
        return new SessionRunner(this, inputShapes);
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();

    private TensorMetadata[] ReadMetadata(bool isInput)
    {
        var api = _runtime.Api;
        var s = _session.DangerousGetHandle();
        nuint count;
        api.Check(isInput ? api.SessionGetInputCount(s, &count) : api.SessionGetOutputCount(s, &count), "SessionGetInputCount");
        nint allocator;
        api.Check(api.GetAllocatorWithDefaultOptions(&allocator), "GetAllocatorWithDefaultOptions");

        var result = new TensorMetadata[(int)count];
        for (nuint i = 0; i < count; i++)
        {
            byte* rawName;
            api.Check(isInput ? api.SessionGetInputName(s, i, allocator, &rawName) : api.SessionGetOutputName(s, i, allocator, &rawName),
                "SessionGetInputName");
            string name;
            try
            {
                name = Marshal.PtrToStringUTF8((nint)rawName) ?? "";
            }
            finally
            {
                api.Check(api.AllocatorFree(allocator, rawName), "AllocatorFree");
            }

            nint typeInfo;
            api.Check(isInput ? api.SessionGetInputTypeInfo(s, i, &typeInfo) : api.SessionGetOutputTypeInfo(s, i, &typeInfo),
                "SessionGetInputTypeInfo");
            try
            {
                int onnxType;
                api.Check(api.GetOnnxTypeFromTypeInfo(typeInfo, &onnxType), "GetOnnxTypeFromTypeInfo");
                if (onnxType != 1 /* ONNX_TYPE_TENSOR */)
                {
                    result[(int)i] = new TensorMetadata(name, TensorElementType.Undefined, [], []);
                    continue;
                }

                nint tensorInfo; // owned by typeInfo
                api.Check(api.CastTypeInfoToTensorInfo(typeInfo, &tensorInfo), "CastTypeInfoToTensorInfo");
                result[(int)i] = ReadTensorInfo(api, tensorInfo, name);
            }
            finally
            {
                api.ReleaseTypeInfo(typeInfo);
            }
        }

        return result;
    }

    internal static TensorMetadata ReadTensorInfo(OrtApi api, nint tensorInfo, string name)
    {
        int elementType;
        api.Check(api.GetTensorElementType(tensorInfo, &elementType), "GetTensorElementType");
        nuint rank;
        api.Check(api.GetDimensionsCount(tensorInfo, &rank), "GetDimensionsCount");
        var dims = new long[(int)rank];
        var symbols = new string[(int)rank];
        if (rank > 0)
        {
            fixed (long* d = dims)
            {
                api.Check(api.GetDimensions(tensorInfo, d, rank), "GetDimensions");
            }

            var names = stackalloc byte*[(int)rank];
            api.Check(api.GetSymbolicDimensions(tensorInfo, names, rank), "GetSymbolicDimensions");
            for (var j = 0; j < (int)rank; j++)
            {
                symbols[j] = names[j] == null ? "" : Marshal.PtrToStringUTF8((nint)names[j]) ?? "";
            }
        }

        return new TensorMetadata(name, (TensorElementType)elementType, dims, symbols);
    }
}
