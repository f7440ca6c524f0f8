using System.Text.RegularExpressions;

namespace EdgeFleet.Onnx;

/// <summary>An error reported by ONNX Runtime (an <c>OrtStatus</c>), or by this adapter about its use.</summary>
public sealed partial class OnnxRuntimeException : Exception
{
    /// <summary>Creates the exception from an ORT status.</summary>
    public OnnxRuntimeException(OrtErrorCode code, string operation, string ortMessage)
        : base($"ONNX Runtime {operation} failed ({code}): {ortMessage}")
    {
        ErrorCode = code;
        Operation = operation;
        OrtMessage = ortMessage;
    }

    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeException()
        : this("ONNX Runtime error")
    {
    }

    /// <summary>Creates the exception for a problem found by the adapter itself.</summary>
    public OnnxRuntimeException(string message)
        : base(message)
    {
        ErrorCode = OrtErrorCode.Fail;
        Operation = "";
        OrtMessage = message;
    }

    /// <summary>Creates the exception with an inner cause.</summary>
    public OnnxRuntimeException(string message, Exception innerException)
        : base(message, innerException)
    {
        ErrorCode = OrtErrorCode.Fail;
        Operation = "";
        OrtMessage = message;
    }

    /// <summary>ORT's error code.</summary>
    public OrtErrorCode ErrorCode { get; }

    /// <summary>What the adapter was doing (for example <c>CreateSession</c>).</summary>
    public string Operation { get; }

    /// <summary>ORT's own message, unchanged.</summary>
    public string OrtMessage { get; }

    /// <summary>Wraps the managed package's exception, keeping ORT's code and message.</summary>
    internal static OnnxRuntimeException From(Microsoft.ML.OnnxRuntime.OnnxRuntimeException ex, string operation)
    {
        var match = CodePrefix().Match(ex.Message);
        var code = OrtErrorCode.Fail;
        if (match.Success)
        {
            // The managed package names ORT_EP_FAIL (11) after an old meaning of the code.
            code = match.Groups[1].Value == "ShapeInferenceNotRegistered" ? OrtErrorCode.EpFail
                : Enum.TryParse<OrtErrorCode>(match.Groups[1].Value, out var parsed) ? parsed : OrtErrorCode.Fail;
        }

        return new OnnxRuntimeException(code, operation, StripCode(ex.Message), ex);
    }

    /// <summary>The message without the managed package's <c>[ErrorCode:X] </c> prefix.</summary>
    internal static string StripCode(string message) => CodePrefix().Replace(message, "", 1);

    private OnnxRuntimeException(OrtErrorCode code, string operation, string ortMessage, Exception inner)
        : base($"ONNX Runtime {operation} failed ({code}): {ortMessage}", inner)
    {
        ErrorCode = code;
        Operation = operation;
        OrtMessage = ortMessage;
    }

    [GeneratedRegex(@"^\[ErrorCode:(\w+)\] ")]
    private static partial Regex CodePrefix();
}

/// <summary>The ONNX Runtime native library could not be found or loaded.</summary>
public sealed class OnnxRuntimeNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeNotFoundException()
        : this("ONNX Runtime native library not found")
    {
    }

    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>ONNX Runtime's error codes (<c>OrtErrorCode</c>).</summary>
public enum OrtErrorCode
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>Generic failure.</summary>
    Fail = 1,
    /// <summary>An argument is invalid (for example an input of the wrong shape).</summary>
    InvalidArgument = 2,
    /// <summary>A file does not exist.</summary>
    NoSuchFile = 3,
    /// <summary>No model loaded.</summary>
    NoModel = 4,
    /// <summary>Engine error.</summary>
    EngineError = 5,
    /// <summary>Runtime exception inside ONNX Runtime.</summary>
    RuntimeException = 6,
    /// <summary>The model bytes are not a valid protobuf.</summary>
    InvalidProtobuf = 7,
    /// <summary>The session is in the wrong state.</summary>
    ModelLoaded = 8,
    /// <summary>Not implemented (for example an unsupported operator).</summary>
    NotImplemented = 9,
    /// <summary>The graph is invalid.</summary>
    InvalidGraph = 10,
    /// <summary>An execution provider failed.</summary>
    EpFail = 11,
}
