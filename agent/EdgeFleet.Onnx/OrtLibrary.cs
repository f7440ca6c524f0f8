using System.Globalization;
using System.Runtime.InteropServices;

namespace EdgeFleet.Onnx;

/// <summary>
/// A native ONNX Runtime library opened and identified before the managed API may touch it: the managed package
/// asks the library for its own C API version and fails with an obscure message when the library is older, so the
/// version is read first through <c>OrtGetApiBase()->GetVersionString()</c>.
/// </summary>
internal sealed record OrtLibrary(nint Handle, string Path, string Version)
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint GetApiBaseFunction();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint GetVersionStringFunction();

    /// <summary>Opens <paramref name="path"/> and reads its version.</summary>
    /// <exception cref="OnnxRuntimeNotFoundException">The file is missing, cannot be loaded, or is not ONNX Runtime.</exception>
    public static OrtLibrary Open(string path, string origin)
    {
        if (!File.Exists(path))
        {
            throw new OnnxRuntimeNotFoundException(
                $"ONNX Runtime native library not found at {path} (set by {origin}). Fix: {OnnxRuntime.FixHint}");
        }

        if (!NativeLibrary.TryLoad(path, out var handle))
        {
            throw new OnnxRuntimeNotFoundException(
                $"Cannot load ONNX Runtime from {path} (set by {origin}): {DlError(path)}. The library must be built for this " +
                $"machine ({RuntimeInformation.ProcessArchitecture}, glibc ≥ 2.28) with its dependencies beside it. Fix: {OnnxRuntime.FixHint}");
        }

        return Identify(handle, path, origin);
    }

    /// <summary>Identifies an opened library; <paramref name="path"/> is what the caller asked for.</summary>
    public static OrtLibrary Identify(nint handle, string path, string origin)
    {
        if (!NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out var getApiBase))
        {
            throw new OnnxRuntimeNotFoundException(
                $"{path} (set by {origin}) is not ONNX Runtime: it has no OrtGetApiBase export. Fix: {OnnxRuntime.FixHint}");
        }

        // struct OrtApiBase { const OrtApi* (*GetApi)(uint32_t version); const char* (*GetVersionString)(void); }
        var apiBase = Marshal.GetDelegateForFunctionPointer<GetApiBaseFunction>(getApiBase)();
        var getVersion = apiBase == 0 ? 0 : Marshal.ReadIntPtr(apiBase, IntPtr.Size);
        if (getVersion == 0)
        {
            throw new OnnxRuntimeNotFoundException(
                $"{path} (set by {origin}) is not a usable ONNX Runtime: OrtGetApiBase returned no version function. Fix: {OnnxRuntime.FixHint}");
        }

        var version = Marshal.PtrToStringUTF8(Marshal.GetDelegateForFunctionPointer<GetVersionStringFunction>(getVersion)()) ?? "";
        return new OrtLibrary(handle, MappedFile(getApiBase) ?? System.IO.Path.GetFullPath(path), version.Trim());
    }

    /// <summary>
    /// Fails unless this library's version is at least <paramref name="required"/> (major and minor: the C API version
    /// the managed package asks for).
    /// </summary>
    public void EnsureAtLeast(Version required, string origin)
    {
        if (!TryParseVersion(Version, out var actual))
        {
            throw new OnnxRuntimeNotFoundException(
                $"{Path} (set by {origin}) reports the version '{Version}', which is not an ONNX Runtime version. Fix: {OnnxRuntime.FixHint}");
        }

        if (actual.Major < required.Major || (actual.Major == required.Major && actual.Minor < required.Minor))
        {
            var y = Format(required);
            throw new OnnxRuntimeNotFoundException(
                $"ONNX Runtime {Version} at {Path} is older than {y} that this agent needs. Fix: install ONNX Runtime ≥ {y} " +
                $"(on a Jetson, a JetPack build of ≥ {y}), or point {OnnxRuntime.LibraryEnvironmentVariable} / Agent:Inference:OrtLibraryPath " +
                $"at a newer build, or use an agent built against an older Microsoft.ML.OnnxRuntime package (OnnxRuntimeVersion " +
                $"in Directory.Packages.props) that matches {Version}.");
        }
    }

    internal static bool TryParseVersion(string text, out Version version)
    {
        // "1.30.0", also "1.16.3-jetson" or "1.18.0+abc" from custom builds
        var core = text.Split('-', '+', ' ')[0];
        if (System.Version.TryParse(core, out var parsed) && parsed.Build >= 0)
        {
            version = parsed;
            return true;
        }

        if (System.Version.TryParse(core, out parsed))
        {
            version = new Version(parsed.Major, parsed.Minor, 0);
            return true;
        }

        version = new Version(0, 0, 0);
        return false;
    }

    internal static string Format(Version v) =>
        string.Create(CultureInfo.InvariantCulture, $"{v.Major}.{v.Minor}.{Math.Max(0, v.Build)}");

    /// <summary>The file mapped at <paramref name="address"/> (from /proc/self/maps), or null.</summary>
    internal static string? MappedFile(nint address)
    {
        try
        {
            var a = (ulong)address;
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                // 7f1c2a400000-7f1c2a6f1000 r-xp 00000000 08:01 1234 /path/to/lib.so
                var dash = line.IndexOf('-', StringComparison.Ordinal);
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (dash < 0 || space < dash || slash < 0
                    || !ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var start)
                    || !ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var end))
                {
                    continue;
                }

                if (a >= start && a < end)
                {
                    return line[slash..].Trim();
                }
            }
        }
        catch (IOException)
        {
            // no procfs: the caller falls back to the requested path
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    /// <summary>Why the loader refused the file (dlopen's message), without an exception of our own.</summary>
    private static string DlError(string path)
    {
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return "the loader refused it";
        }
        catch (DllNotFoundException ex)
        {
            return ex.Message;
        }
        catch (BadImageFormatException ex)
        {
            return ex.Message;
        }
    }
}
