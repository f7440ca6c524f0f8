using EdgeFleet.ModelFormat.Onnx;
using Google.Protobuf;

namespace EdgeFleet.ModelFormat;

/// <summary>A tensor declared by an ONNX graph: name, element type and shape (null entries are dynamic).</summary>
public sealed record OnnxTensorInfo(string Name, string ElementType, IReadOnlyList<long?> Shape)
{
    /// <summary>The shape with dynamic dimensions as -1, as manifests write it.</summary>
    public IReadOnlyList<long> ManifestShape => Shape.Select(d => d ?? -1).ToArray();
}

/// <summary>What an ONNX file declares, read from its protobuf without running it.</summary>
public sealed record OnnxModelInfo(
    long IrVersion,
    IReadOnlyDictionary<string, long> Opsets,
    string ProducerName,
    IReadOnlyList<OnnxTensorInfo> Inputs,
    IReadOnlyList<OnnxTensorInfo> Outputs,
    IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Reads the model declarations of an ONNX file.</summary>
    /// <exception cref="OnnxFormatException">The file is not a readable ONNX model.</exception>
    public static OnnxModelInfo Read(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Read(stream, path);
        }
        catch (IOException ex)
        {
            throw new OnnxFormatException($"{path}: cannot read the model file: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new OnnxFormatException($"{path}: cannot read the model file: {ex.Message}", ex);
        }
    }

    /// <summary>Reads the model declarations from ONNX bytes; <paramref name="source"/> names them in errors.</summary>
    public static OnnxModelInfo Read(Stream stream, string source)
    {
        ModelProto model;
        try
        {
            // Weights can be large; the default 64 MB protobuf limit does not apply to a stream reader.
            using var input = new CodedInputStream(stream, leaveOpen: true);
            model = ModelProto.Parser.ParseFrom(input);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new OnnxFormatException($"{source}: not an ONNX model (the protobuf does not parse: {ex.Message})", ex);
        }

        if (model.IrVersion <= 0 || model.Graph is null || model.Graph.Output.Count == 0)
        {
            throw new OnnxFormatException(
                $"{source}: not an ONNX model (no IR version, graph or outputs; is this really a .onnx file?)");
        }

        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Select(ToInfo).ToArray();
        if (inputs.Length == 0)
        {
            throw new OnnxFormatException($"{source}: the ONNX graph has no inputs");
        }

        return new OnnxModelInfo(
            model.IrVersion,
            model.OpsetImport.GroupBy(o => o.Domain ?? "").ToDictionary(g => g.Key, g => g.Max(o => o.Version)),
            model.ProducerName ?? "",
            inputs,
            model.Graph.Output.Select(ToInfo).ToArray(),
            model.MetadataProps.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Last().Value));
    }

    private static OnnxTensorInfo ToInfo(ValueInfoProto v)
    {
        var tensor = v.Type?.TensorType;
        var shape = tensor?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : (long?)null).ToArray() ?? [];
        return new OnnxTensorInfo(v.Name, ElementTypeName(tensor?.ElemType ?? 0), shape);
    }

    /// <summary>The manifest name of an ONNX element type code.</summary>
    public static string ElementTypeName(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float => "float32",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Double => "float64",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.String => "string",
        _ => $"type{dataType}",
    };
}

/// <summary>An ONNX file that cannot be read.</summary>
public sealed class OnnxFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OnnxFormatException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public OnnxFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public OnnxFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
