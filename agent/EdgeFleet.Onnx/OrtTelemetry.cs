using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeFleet.Onnx;

/// <summary>
/// Keeps ONNX Runtime from recording and uploading Microsoft telemetry. Its Linux builds write events (model graph
/// and producer names, error messages, the executable path, a device id) to
/// <c>~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db</c> and try to send them, unless
/// <c>ORT_DISABLE_TELEMETRY=1</c> is in the native environment when the library loads. .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> only changes the managed copy, so libc's
/// <c>setenv</c> is called, as soon as this assembly is first touched: nothing in the process can load ONNX Runtime
/// through EdgeFleet before that.
/// </summary>
internal static partial class OrtTelemetry
{
    /// <summary>The variable ONNX Runtime reads.</summary>
    public const string DisableVariable = "ORT_DISABLE_TELEMETRY";

    private static readonly Lock Gate = new();
    private static bool s_done;

    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "It must run before any code of this assembly can load ONNX Runtime; see the class comment.")]
    [ModuleInitializer]
    internal static void Initialize() => Disable();

    /// <summary>Sets <c>ORT_DISABLE_TELEMETRY=1</c> in the native and the managed environment; idempotent.</summary>
    /// <exception cref="InvalidOperationException">libc refused the variable (out of memory).</exception>
    public static void Disable()
    {
        lock (Gate)
        {
            if (s_done)
            {
                return;
            }

            if (SetEnv(DisableVariable, "1", 1) != 0)
            {
                throw new InvalidOperationException(
                    $"setenv({DisableVariable}) failed (errno {Marshal.GetLastPInvokeError()}); refusing to load ONNX Runtime with telemetry on");
            }

            // Child processes started through System.Diagnostics.Process inherit the managed copy.
            Environment.SetEnvironmentVariable(DisableVariable, "1");
            s_done = true;
        }
    }

    /// <summary>The value the native side sees (libc <c>getenv</c>), for tests and diagnostics.</summary>
    public static string? NativeValue() => Marshal.PtrToStringUTF8(GetEnv(DisableVariable));

    [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
