using System.Runtime.InteropServices;
using EdgeFleet.Onnx.Native;

namespace EdgeFleet.Onnx;

/// <summary>
/// Runs one session with input and output tensors allocated once, in native memory, and reused for every
/// <see cref="Run"/>: a steady-state run allocates nothing on the managed heap. Outputs whose shape is fully known
/// are pre-allocated; outputs with dynamic dimensions are allocated by ORT on each run and freed on the next.
/// One runner belongs to one thread at a time; create one per thread for concurrent inference.
/// </summary>
public sealed unsafe class SessionRunner : IDisposable
{
    private const nuint Alignment = 64;

    private readonly OnnxSession _session;
    private readonly OrtApi _api;
    private readonly int _inputCount;
    private readonly int _outputCount;
    private readonly nint* _inputNames;
    private readonly nint* _outputNames;
    private readonly nint* _inputValues;
    private readonly nint* _outputValues;
    private readonly void*[] _inputData;
    private readonly nuint[] _inputBytes;
    private readonly long[][] _inputShapes;
    private readonly void*[] _outputData;
    private readonly long[] _outputElements;
    private readonly long[][] _outputShapes;
    private readonly bool[] _outputPreallocated;
    private readonly nint _runOptions;
    private readonly nint _memoryInfo;
    private bool _disposed;

    internal SessionRunner(OnnxSession session, IReadOnlyDictionary<string, long[]>? requestedShapes)
    {
        _session = session;
        _api = session.Runtime.Api;
        _inputCount = session.Inputs.Count;
        _outputCount = session.Outputs.Count;
        _inputData = new void*[_inputCount];
        _inputBytes = new nuint[_inputCount];
        _inputShapes = new long[_inputCount][];
        _outputData = new void*[_outputCount];
        _outputElements = new long[_outputCount];
        _outputShapes = new long[_outputCount][];
        _outputPreallocated = new bool[_outputCount];

        _inputNames = (nint*)NativeMemory.AllocZeroed((nuint)Math.Max(1, _inputCount), (nuint)sizeof(nint));
        _outputNames = (nint*)NativeMemory.AllocZeroed((nuint)Math.Max(1, _outputCount), (nuint)sizeof(nint));
        _inputValues = (nint*)NativeMemory.AllocZeroed((nuint)Math.Max(1, _inputCount), (nuint)sizeof(nint));
        _outputValues = (nint*)NativeMemory.AllocZeroed((nuint)Math.Max(1, _outputCount), (nuint)sizeof(nint));
        try
        {
            nint memoryInfo;
            _api.Check(_api.CreateCpuMemoryInfo(0 /* OrtDeviceAllocator */, 0 /* OrtMemTypeDefault */, &memoryInfo), "CreateCpuMemoryInfo");
            _memoryInfo = memoryInfo;
            nint runOptions;
            _api.Check(_api.CreateRunOptions(&runOptions), "CreateRunOptions");
            _runOptions = runOptions;

            for (var i = 0; i < _inputCount; i++)
            {
                var meta = session.Inputs[i];
                _inputNames[i] = Marshal.StringToCoTaskMemUTF8(meta.Name);
                var shape = ResolveInputShape(meta, requestedShapes);
                _inputShapes[i] = shape;
                var elementSize = TensorMetadata.ElementSize(meta.ElementType);
                if (elementSize == 0)
                {
                    throw new OnnxRuntimeException($"Input '{meta.Name}' has element type {meta.ElementType}, which the runner does not support");
                }

                var bytes = (nuint)(Product(shape) * elementSize);
                _inputBytes[i] = bytes;
                _inputData[i] = NativeMemory.AlignedAlloc(Math.Max(bytes, 1), Alignment);
                NativeMemory.Clear(_inputData[i], bytes);
                _inputValues[i] = CreateTensor(_inputData[i], bytes, shape, meta.ElementType, $"input '{meta.Name}'");
            }

            for (var i = 0; i < _outputCount; i++)
            {
                var meta = session.Outputs[i];
                _outputNames[i] = Marshal.StringToCoTaskMemUTF8(meta.Name);
                _outputShapes[i] = meta.Shape.ToArray();
                var elementSize = TensorMetadata.ElementSize(meta.ElementType);
                if (!meta.IsDynamic && elementSize > 0)
                {
                    var count = Product(_outputShapes[i]);
                    var bytes = (nuint)(count * elementSize);
                    _outputData[i] = NativeMemory.AlignedAlloc(Math.Max(bytes, 1), Alignment);
                    _outputElements[i] = count;
                    _outputValues[i] = CreateTensor(_outputData[i], bytes, _outputShapes[i], meta.ElementType, $"output '{meta.Name}'");
                    _outputPreallocated[i] = true;
                }
                else
                {
                    _outputShapes[i] = new long[Math.Max(8, meta.Shape.Count)];
                }
            }
        }
        catch
        {
            Free();
            throw;
        }
    }

    /// <summary>The session's inputs.</summary>
    public IReadOnlyList<TensorMetadata> Inputs => _session.Inputs;

    /// <summary>The session's outputs.</summary>
    public IReadOnlyList<TensorMetadata> Outputs => _session.Outputs;

    /// <summary>The concrete shape of input <paramref name="index"/> (dynamic dimensions resolved).</summary>
    public ReadOnlySpan<long> InputShape(int index) => _inputShapes[index];

    /// <summary>The buffer of input <paramref name="index"/>; write the input here before <see cref="Run"/>.</summary>
    public Span<T> Input<T>(int index)
        where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckType<T>(_session.Inputs[index]);
        return new Span<T>(_inputData[index], (int)(_inputBytes[index] / (nuint)sizeof(T)));
    }

    /// <summary>Output <paramref name="index"/> of the last <see cref="Run"/>; valid until the next run.</summary>
    public ReadOnlySpan<T> Output<T>(int index)
        where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckType<T>(_session.Outputs[index]);
        return _outputData[index] == null ? default : new ReadOnlySpan<T>(_outputData[index], checked((int)_outputElements[index]));
    }

    /// <summary>The shape of output <paramref name="index"/> after the last <see cref="Run"/>.</summary>
    public ReadOnlySpan<long> OutputShape(int index) =>
        _outputPreallocated[index] ? _outputShapes[index] : _outputShapes[index].AsSpan(0, _session.Outputs[index].Shape.Count);

    /// <summary>Runs the model on the current input buffers.</summary>
    /// <exception cref="OnnxRuntimeException">ORT failed; the message is ORT's.</exception>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var handle = _session.Handle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added); // keeps the native session alive if it is disposed mid-run
            ReleaseDynamicOutputs();
            var status = _api.Run(handle.DangerousGetHandle(), _runOptions, _inputNames, _inputValues, (nuint)_inputCount,
                _outputNames, (nuint)_outputCount, _outputValues);
            if (status != 0)
            {
                throw _api.ToException(status, $"Run({_session.Source})");
            }

            ReadDynamicOutputs();
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException(nameof(OnnxSession), "The session was disposed; create a new runner on a live session.");
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Free();
    }

    private void ReleaseDynamicOutputs()
    {
        for (var i = 0; i < _outputCount; i++)
        {
            if (!_outputPreallocated[i] && _outputValues[i] != 0)
            {
                _api.ReleaseValue(_outputValues[i]);
                _outputValues[i] = 0;
                _outputData[i] = null;
                _outputElements[i] = 0;
            }
        }
    }

    private void ReadDynamicOutputs()
    {
        for (var i = 0; i < _outputCount; i++)
        {
            if (_outputPreallocated[i] || _outputValues[i] == 0)
            {
                continue;
            }

            void* data;
            _api.Check(_api.GetTensorMutableData(_outputValues[i], &data), "GetTensorMutableData");
            nint info;
            _api.Check(_api.GetTensorTypeAndShape(_outputValues[i], &info), "GetTensorTypeAndShape");
            try
            {
                nuint rank;
                _api.Check(_api.GetDimensionsCount(info, &rank), "GetDimensionsCount");
                if ((int)rank > _outputShapes[i].Length)
                {
                    throw new OnnxRuntimeException($"Output '{_session.Outputs[i].Name}' has rank {rank}, more than the {_outputShapes[i].Length} supported");
                }

                fixed (long* dims = _outputShapes[i])
                {
                    _api.Check(_api.GetDimensions(info, dims, rank), "GetDimensions");
                }

                _outputElements[i] = Product(_outputShapes[i].AsSpan(0, (int)rank));
                _outputData[i] = data;
            }
            finally
            {
                _api.ReleaseTensorTypeAndShapeInfo(info);
            }
        }
    }

    private nint CreateTensor(void* data, nuint bytes, long[] shape, TensorElementType type, string what)
    {
        nint value;
        fixed (long* s = shape)
        {
            var status = _api.CreateTensorWithDataAsOrtValue(_memoryInfo, data, bytes, s, (nuint)shape.Length, (int)type, &value);
            if (status != 0)
            {
                throw _api.ToException(status, $"CreateTensorWithDataAsOrtValue({what})");
            }
        }

        return value;
    }

    private static long[] ResolveInputShape(TensorMetadata meta, IReadOnlyDictionary<string, long[]>? requested)
    {
        if (requested is not null && requested.TryGetValue(meta.Name, out var asked))
        {
            var compatible = asked.Length == meta.Shape.Count && asked.All(d => d > 0)
                && asked.Zip(meta.Shape).All(p => p.Second < 0 || p.First == p.Second);
            if (!compatible)
            {
                throw new OnnxRuntimeException(
                    $"Input '{meta.Name}' of the model has shape {meta.ShapeText}, which does not accept " +
                    $"{TensorMetadata.FormatShape(asked)}: the model and its input description disagree.");
            }

            return asked.ToArray();
        }

        return meta.Shape.Select(d => d < 0 ? 1 : d).ToArray();
    }

    private static void CheckType<T>(TensorMetadata meta)
        where T : unmanaged
    {
        var expected = meta.ElementType switch
        {
            TensorElementType.Float => typeof(T) == typeof(float),
            TensorElementType.Double => typeof(T) == typeof(double),
            TensorElementType.UInt8 => typeof(T) == typeof(byte),
            TensorElementType.Int8 => typeof(T) == typeof(sbyte),
            TensorElementType.Int32 => typeof(T) == typeof(int),
            TensorElementType.Int64 => typeof(T) == typeof(long),
            TensorElementType.Float16 => typeof(T) == typeof(Half),
            TensorElementType.Bool => typeof(T) == typeof(bool),
            _ => false,
        };
        if (!expected)
        {
            throw new InvalidOperationException($"Tensor '{meta.Name}' holds {meta.ElementType}, not {typeof(T).Name}");
        }
    }

    private static long Product(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            n = checked(n * d);
        }

        return n;
    }

    private void Free()
    {
        for (var i = 0; i < _inputCount; i++)
        {
            if (_inputValues[i] != 0)
            {
                _api.ReleaseValue(_inputValues[i]);
            }

            NativeMemory.AlignedFree(_inputData[i]);
            Marshal.FreeCoTaskMem(_inputNames[i]);
        }

        for (var i = 0; i < _outputCount; i++)
        {
            if (_outputValues[i] != 0)
            {
                _api.ReleaseValue(_outputValues[i]);
            }

            if (_outputPreallocated[i])
            {
                NativeMemory.AlignedFree(_outputData[i]);
            }

            Marshal.FreeCoTaskMem(_outputNames[i]);
        }

        NativeMemory.Free(_inputNames);
        NativeMemory.Free(_outputNames);
        NativeMemory.Free(_inputValues);
        NativeMemory.Free(_outputValues);
        if (_runOptions != 0)
        {
            _api.ReleaseRunOptions(_runOptions);
        }

        if (_memoryInfo != 0)
        {
            _api.ReleaseMemoryInfo(_memoryInfo);
        }
    }
}
