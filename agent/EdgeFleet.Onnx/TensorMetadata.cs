namespace EdgeFleet.Onnx;

/// <summary>Element types of ORT tensors (<c>ONNXTensorElementDataType</c>; same codes as ONNX for 0–23).</summary>
public enum TensorElementType
{
    /// <summary>Unknown.</summary>
    Undefined = 0,
    /// <summary>32-bit float.</summary>
    Float = 1,
    /// <summary>Unsigned byte.</summary>
    UInt8 = 2,
    /// <summary>Signed byte.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit.</summary>
    Int64 = 7,
    /// <summary>String.</summary>
    String = 8,
    /// <summary>Boolean.</summary>
    Bool = 9,
    /// <summary>16-bit float.</summary>
    Float16 = 10,
    /// <summary>64-bit float.</summary>
    Double = 11,
    /// <summary>Unsigned 32-bit.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit.</summary>
    UInt64 = 13,
}

/// <summary>A model input or output as ORT reports it. Dynamic dimensions are -1 with their symbolic name, if any.</summary>
public sealed record TensorMetadata(string Name, TensorElementType ElementType, IReadOnlyList<long> Shape,
    IReadOnlyList<string> SymbolicDimensions)
{
    /// <summary>Whether any dimension is dynamic.</summary>
    public bool IsDynamic => Shape.Any(d => d < 0);

    /// <summary>Shape as text, <c>[1,3,224,224]</c>, dynamic dimensions by name or <c>?</c>.</summary>
    public string ShapeText => FormatShape(Shape, SymbolicDimensions);

    internal static string FormatShape(IReadOnlyList<long> shape, IReadOnlyList<string>? symbols = null) =>
        "[" + string.Join(",", shape.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture)
            : symbols is not null && i < symbols.Count && symbols[i].Length > 0 ? symbols[i] : "?")) + "]";

    internal static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.UInt8 or TensorElementType.Int8 or TensorElementType.Bool => 1,
        TensorElementType.UInt16 or TensorElementType.Int16 or TensorElementType.Float16 => 2,
        TensorElementType.Int64 or TensorElementType.Double or TensorElementType.UInt64 => 8,
        _ => 0,
    };
}
