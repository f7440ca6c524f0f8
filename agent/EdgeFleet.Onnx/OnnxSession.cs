using Ort = Microsoft.ML.OnnxRuntime;

namespace EdgeFleet.Onnx;

/// <summary>
/// A loaded model. Thread-safe: any number of <see cref="SessionRunner"/>s may run on it at once, each from one
/// thread. Disposing the session while runners are mid-run is safe: their runs finish, later runs throw
/// <see cref="ObjectDisposedException"/>, and the native session is released when the session and every runner
/// created on it are disposed.
/// </summary>
public sealed class OnnxSession : IDisposable
{
    private readonly Ort.InferenceSession _session;
    private int _references = 1; // the session itself, plus one per live runner
    private int _disposed;

    internal OnnxSession(Ort.InferenceSession session, string source, ExecutionProvider provider, IReadOnlyList<string> providerNotes)
    {
        _session = session;
        Source = source;
        ActiveProvider = provider;
        ProviderNotes = providerNotes;
        Inputs = ReadMetadata(session.InputNames, session.InputMetadata);
        Outputs = ReadMetadata(session.OutputNames, session.OutputMetadata);
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

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal Ort.InferenceSession Inner => _session;

    /// <summary>
    /// Creates a runner with input and output tensors allocated once. Dynamic input dimensions are taken from
    /// <paramref name="inputShapes"/> (by input name), or 1 when not given.
    /// </summary>
    /// <exception cref="OnnxRuntimeException">A requested shape does not fit the model, or ORT refused a tensor.</exception>
    public SessionRunner CreateRunner(IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        AddReference();
        try
        {
            return new SessionRunner(this, inputShapes);
        }
        catch
        {
            Release();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Release();
        }
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
#pragma warning disable IDISP007 // the session is handed over by OnnxRuntime.CreateSession and owned here
            _session.Dispose();
#pragma warning restore IDISP007
        }
    }

    private void AddReference()
    {
        while (true)
        {
            var current = Volatile.Read(ref _references);
            if (current == 0)
            {
                throw new ObjectDisposedException(nameof(OnnxSession));
            }

            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current)
            {
                return;
            }
        }
    }

    private static TensorMetadata[] ReadMetadata(IReadOnlyList<string> names, IReadOnlyDictionary<string, Ort.NodeMetadata> metadata)
    {
        var result = new TensorMetadata[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            var meta = metadata[names[i]];
            if (meta.OnnxValueType != Ort.OnnxValueType.ONNX_TYPE_TENSOR)
            {
                result[i] = new TensorMetadata(names[i], TensorElementType.Undefined, [], []);
                continue;
            }

            var dims = meta.Dimensions.Select(d => (long)d).ToArray();
            var symbols = meta.SymbolicDimensions.Select(s => s ?? "").ToArray();
            result[i] = new TensorMetadata(names[i], (TensorElementType)(int)meta.ElementDataType, dims, symbols);
        }

        return result;
    }
}
