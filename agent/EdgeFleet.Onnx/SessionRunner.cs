using System.Runtime.InteropServices;
using Ort = Microsoft.ML.OnnxRuntime;

namespace EdgeFleet.Onnx;

/// <summary>
/// Runs one session with input and output tensors allocated once by ORT, in native memory, and bound to the
/// session once (<c>OrtIoBinding</c>): every <see cref="Run"/> reuses them, ORT writes outputs in place, and a
/// steady-state run allocates nothing on the managed heap. Outputs with dynamic dimensions are allocated by ORT on
/// each run and read back (that path allocates a little per run). One runner belongs to one thread at a time;
/// create one per thread for concurrent inference on a shared session.
/// </summary>
public sealed class SessionRunner : IDisposable
{
    private readonly OnnxSession _session;
    private readonly Ort.RunOptions _runOptions;
    private readonly Ort.OrtIoBinding _binding;
    private readonly Ort.OrtValue[] _inputs;
    private readonly long[][] _inputShapes;
    private readonly Ort.OrtValue?[] _outputs;
    private readonly long[][] _outputShapes;
    private readonly int[] _outputRanks;
    private readonly bool _hasDynamicOutputs;
    private Ort.IDisposableReadOnlyCollection<Ort.OrtValue>? _dynamicResults;
    private bool _disposed;

    internal SessionRunner(OnnxSession session, IReadOnlyDictionary<string, long[]>? requestedShapes)
    {
        _session = session;
        var inputCount = session.Inputs.Count;
        var outputCount = session.Outputs.Count;
        _inputs = new Ort.OrtValue[inputCount];
        _inputShapes = new long[inputCount][];
        _outputs = new Ort.OrtValue?[outputCount];
        _outputShapes = new long[outputCount][];
        _outputRanks = new int[outputCount];
        _runOptions = new Ort.RunOptions();
        try
        {
            _binding = session.Inner.CreateIoBinding();
            for (var i = 0; i < inputCount; i++)
            {
                var meta = session.Inputs[i];
                if (TensorMetadata.ElementSize(meta.ElementType) == 0)
                {
                    throw new OnnxRuntimeException($"Input '{meta.Name}' has element type {meta.ElementType}, which the runner does not support");
                }

                var shape = ResolveInputShape(meta, requestedShapes);
                _inputShapes[i] = shape;
                _inputs[i] = Ort.OrtValue.CreateAllocatedTensorValue(Ort.OrtAllocator.DefaultInstance, ToOrt(meta.ElementType), shape);
                _inputs[i].GetTensorMutableRawData().Clear();
                _binding.BindInput(meta.Name, _inputs[i]);
            }

            for (var i = 0; i < outputCount; i++)
            {
                var meta = session.Outputs[i];
                if (!meta.IsDynamic && TensorMetadata.ElementSize(meta.ElementType) > 0)
                {
                    _outputShapes[i] = meta.Shape.ToArray();
                    _outputRanks[i] = meta.Shape.Count;
                    _outputs[i] = Ort.OrtValue.CreateAllocatedTensorValue(Ort.OrtAllocator.DefaultInstance, ToOrt(meta.ElementType), _outputShapes[i]);
                    _binding.BindOutput(meta.Name, _outputs[i]);
                }
                else
                {
                    _outputShapes[i] = new long[Math.Max(8, meta.Shape.Count)];
                    _binding.BindOutputToDevice(meta.Name, Ort.OrtMemoryInfo.DefaultInstance);
                    _hasDynamicOutputs = true;
                }
            }
        }
        catch (Ort.OnnxRuntimeException ex)
        {
            Free();
            throw OnnxRuntimeException.From(ex, $"CreateRunner({session.Source})");
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
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the input's element type.</exception>
    public Span<T> Input<T>(int index)
        where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckType<T>(_session.Inputs[index]);
        return MemoryMarshal.Cast<byte, T>(_inputs[index].GetTensorMutableRawData());
    }

    /// <summary>Output <paramref name="index"/> of the last <see cref="Run"/>; valid until the next run.</summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the output's element type.</exception>
    public ReadOnlySpan<T> Output<T>(int index)
        where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckType<T>(_session.Outputs[index]);
        var value = _outputs[index] ?? (_dynamicResults is { } results ? results[index] : null);
        return value is null ? default : MemoryMarshal.Cast<byte, T>(value.GetTensorMutableRawData());
    }

    /// <summary>The shape of output <paramref name="index"/> after the last <see cref="Run"/>.</summary>
    public ReadOnlySpan<long> OutputShape(int index) => _outputShapes[index].AsSpan(0, _outputRanks[index]);

    /// <summary>Runs the model on the current input buffers.</summary>
    /// <exception cref="OnnxRuntimeException">ORT failed; the message is ORT's.</exception>
    /// <exception cref="ObjectDisposedException">The runner or its session was disposed.</exception>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_session.IsDisposed)
        {
            throw new ObjectDisposedException(nameof(OnnxSession), "The session was disposed; create a new runner on a live session.");
        }

        try
        {
            if (_hasDynamicOutputs)
            {
                ReleaseDynamicOutputs();
            }

            // The runner holds a reference on the native session, so a concurrent Dispose of the session cannot free it here.
            _session.Inner.RunWithBinding(_runOptions, _binding);
            if (_hasDynamicOutputs)
            {
                ReadDynamicOutputs();
            }
        }
        catch (Ort.OnnxRuntimeException ex)
        {
            throw OnnxRuntimeException.From(ex, $"Run({_session.Source})");
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
        _session.Release();
    }

    private void ReleaseDynamicOutputs()
    {
        _dynamicResults?.Dispose();
        _dynamicResults = null;
        for (var i = 0; i < _outputs.Length; i++)
        {
            if (_outputs[i] is null)
            {
                _outputRanks[i] = 0;
            }
        }
    }

    private void ReadDynamicOutputs()
    {
        _dynamicResults?.Dispose();
        _dynamicResults = _binding.GetOutputValues();
        for (var i = 0; i < _outputs.Length; i++)
        {
            if (_outputs[i] is not null)
            {
                continue;
            }

            var shape = _dynamicResults[i].GetTensorTypeAndShape().Shape;
            if (shape.Length > _outputShapes[i].Length)
            {
                throw new OnnxRuntimeException($"Output '{_session.Outputs[i].Name}' has rank {shape.Length}, more than the {_outputShapes[i].Length} supported");
            }

            shape.CopyTo(_outputShapes[i], 0);
            _outputRanks[i] = shape.Length;
        }
    }

    private void Free()
    {
        _dynamicResults?.Dispose();
        _dynamicResults = null;
        _binding?.Dispose();
        foreach (var value in _inputs)
        {
            value?.Dispose();
        }

        foreach (var value in _outputs)
        {
            value?.Dispose();
        }

        _runOptions.Dispose();
    }

    private static Ort.Tensors.TensorElementType ToOrt(TensorElementType type) => (Ort.Tensors.TensorElementType)(int)type;

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
            TensorElementType.UInt16 => typeof(T) == typeof(ushort),
            TensorElementType.Int16 => typeof(T) == typeof(short),
            TensorElementType.Int32 => typeof(T) == typeof(int),
            TensorElementType.UInt32 => typeof(T) == typeof(uint),
            TensorElementType.Int64 => typeof(T) == typeof(long),
            TensorElementType.UInt64 => typeof(T) == typeof(ulong),
            TensorElementType.Float16 => typeof(T) == typeof(Half),
            TensorElementType.Bool => typeof(T) == typeof(bool),
            _ => false,
        };
        if (!expected)
        {
            throw new InvalidOperationException($"Tensor '{meta.Name}' holds {meta.ElementType}, not {typeof(T).Name}");
        }
    }
}
