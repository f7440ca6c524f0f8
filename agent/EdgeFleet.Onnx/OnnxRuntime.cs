using System.Runtime.InteropServices;
using EdgeFleet.Onnx.Native;

namespace EdgeFleet.Onnx;

/// <summary>
/// The loaded ONNX Runtime native library and its process-wide environment. ORT allows one environment per
/// process, so there is one instance: the first <see cref="Load"/> decides which library is used.
/// </summary>
public sealed unsafe class OnnxRuntime
{
    /// <summary>File name of the library on Linux.</summary>
    public const string LibraryFileName = "libonnxruntime.so.1";

    /// <summary>Environment variable that names the library to load.</summary>
    public const string LibraryEnvironmentVariable = "EDGEFLEET_ORT_LIB";

    private static readonly Lock LoadLock = new();
    private static OnnxRuntime? s_instance;

    private readonly nint _env;

    private OnnxRuntime(string libraryPath, string version, OrtApi api, nint env, IReadOnlyList<string> providers)
    {
        LibraryPath = libraryPath;
        Version = version;
        Api = api;
        _env = env;
        AvailableProviders = providers;
    }

    /// <summary>Path of the loaded library.</summary>
    public string LibraryPath { get; }

    /// <summary>ORT's version string, for example <c>1.30.0</c>.</summary>
    public string Version { get; }

    /// <summary>Execution providers compiled into this build (for example <c>CPUExecutionProvider</c>).</summary>
    public IReadOnlyList<string> AvailableProviders { get; }

    internal OrtApi Api { get; }

    internal nint Env => _env;

    /// <summary>
    /// Loads ONNX Runtime. <paramref name="libraryPath"/> (from configuration) wins, then the
    /// <c>EDGEFLEET_ORT_LIB</c> environment variable, then the copy installed by <c>deploy/bootstrap.sh</c>, then
    /// the usual install locations and the system search path.
    /// </summary>
    /// <exception cref="OnnxRuntimeNotFoundException">No usable library was found; the message lists where it looked and the fix.</exception>
    public static OnnxRuntime Load(string? libraryPath = null)
    {
        lock (LoadLock)
        {
            var explicitPath = ExplicitPath(libraryPath);
            if (explicitPath is not null && !File.Exists(explicitPath))
            {
                throw NotFound($"ONNX Runtime native library not found at {explicitPath} (set by configuration or {LibraryEnvironmentVariable}).");
            }

            if (s_instance is { } loaded)
            {
                if (explicitPath is not null && !SameFile(explicitPath, loaded.LibraryPath))
                {
                    throw new OnnxRuntimeNotFoundException(
                        $"ONNX Runtime is already loaded from {loaded.LibraryPath}; a process can use only one library, " +
                        $"so {explicitPath} cannot be loaded as well. Restart the process with the library you want.");
                }

                return loaded;
            }

            s_instance = LoadLibrary(explicitPath);
            return s_instance;
        }
    }

    /// <summary>Where <see cref="Load"/> would look, in order (for diagnostics).</summary>
    public static IReadOnlyList<string> CandidatePaths(string? libraryPath = null)
    {
        var explicitPath = ExplicitPath(libraryPath);
        if (explicitPath is not null)
        {
            return [explicitPath];
        }

        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, LibraryFileName) };
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var bootstrapped = Path.Combine(dir.FullName, ".edgefleet", "native", "onnxruntime", LibraryFileName);
            if (File.Exists(bootstrapped))
            {
                candidates.Add(bootstrapped);
                break;
            }
        }

        candidates.Add(Path.Combine("/opt/edgefleet/lib", LibraryFileName));
        candidates.Add(Path.Combine("/usr/local/lib", LibraryFileName));
        candidates.Add(Path.Combine("/usr/lib", LibraryFileName));
        return candidates;
    }

    /// <summary>Creates a session from an ONNX file.</summary>
    /// <exception cref="FileNotFoundException">The model file does not exist.</exception>
    /// <exception cref="OnnxRuntimeException">ORT cannot load the model (corrupt, unsupported operator, ...).</exception>
    public OnnxSession CreateSession(string modelPath, SessionSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException($"Model file not found: {modelPath}", modelPath);
        }

        settings ??= new SessionSettings();
        using var options = CreateOptions(settings, out var provider, out var notes);
        var path = Utf8(Path.GetFullPath(modelPath));
        nint session;
        fixed (byte* p = path)
        {
            var status = Api.CreateSession(_env, p, options.DangerousGetHandle(), &session);
            if (status != 0)
            {
                throw Api.ToException(status, $"CreateSession({modelPath})");
            }
        }

        return new OnnxSession(this, session, modelPath, provider, notes);
    }

    /// <summary>Creates a session from ONNX bytes held in memory.</summary>
    public OnnxSession CreateSession(ReadOnlySpan<byte> model, SessionSettings? settings = null, string name = "(memory)")
    {
        if (model.IsEmpty)
        {
            throw new OnnxRuntimeException($"Model {name} is empty (0 bytes)");
        }

        settings ??= new SessionSettings();
        using var options = CreateOptions(settings, out var provider, out var notes);
        nint session;
        fixed (byte* p = model)
        {
            var status = Api.CreateSessionFromArray(_env, p, (nuint)model.Length, options.DangerousGetHandle(), &session);
            if (status != 0)
            {
                throw Api.ToException(status, $"CreateSessionFromArray({name})");
            }
        }

        return new OnnxSession(this, session, name, provider, notes);
    }

    private OrtHandle CreateOptions(SessionSettings settings, out ExecutionProvider active, out IReadOnlyList<string> notes)
    {
        settings.Validate();
        nint raw;
        Api.Check(Api.CreateSessionOptions(&raw), "CreateSessionOptions");
        var options = new OrtHandle(raw, Api.ReleaseSessionOptions);
        try
        {
            var o = options.DangerousGetHandle();
            Api.Check(Api.SetIntraOpNumThreads(o, settings.IntraOpThreads), "SetIntraOpNumThreads");
            Api.Check(Api.SetInterOpNumThreads(o, settings.InterOpThreads), "SetInterOpNumThreads");
            Api.Check(Api.SetSessionGraphOptimizationLevel(o, (int)settings.OptimizationLevel), "SetSessionGraphOptimizationLevel");
            Api.Check(Api.SetSessionExecutionMode(o, 0), "SetSessionExecutionMode");
            Api.Check(Api.SetSessionLogSeverityLevel(o, (int)settings.LogSeverity), "SetSessionLogSeverityLevel");
            AddConfig(o, "session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            if (settings.LogId is { } logId)
            {
                fixed (byte* id = Utf8(logId))
                {
                    Api.Check(Api.SetSessionLogId(o, id), "SetSessionLogId");
                }
            }

            active = AppendProviders(o, settings, out notes);
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>Appends the preferred providers that this build has, in order; CPU is always the last resort.</summary>
    private ExecutionProvider AppendProviders(nint options, SessionSettings settings, out IReadOnlyList<string> notes)
    {
        var log = new List<string>();
        ExecutionProvider? first = null;
        foreach (var provider in settings.Providers)
        {
            if (provider == ExecutionProvider.Cpu)
            {
                first ??= ExecutionProvider.Cpu;
                break; // ORT always places what is left on the CPU provider
            }

            var ortName = provider == ExecutionProvider.TensorRT ? "TensorrtExecutionProvider" : "CUDAExecutionProvider";
            if (!AvailableProviders.Contains(ortName))
            {
                log.Add($"{provider} not in this ONNX Runtime build ({string.Join(", ", AvailableProviders)})");
                continue;
            }

            try
            {
                if (provider == ExecutionProvider.TensorRT)
                {
                    AppendTensorRt(options, settings);
                }
                else
                {
                    AppendCuda(options, settings);
                }

                log.Add($"{provider} enabled on device {settings.DeviceId}");
                first ??= provider;
            }
            catch (OnnxRuntimeException ex)
            {
                log.Add($"{provider} could not be enabled, falling back: {ex.OrtMessage.Trim()}");
            }
        }

        notes = log;
        return first ?? ExecutionProvider.Cpu;
    }

    private void AppendTensorRt(nint options, SessionSettings settings)
    {
        nint created;
        Api.Check(Api.CreateTensorRTProviderOptions(&created), "CreateTensorRTProviderOptions");
        var trt = created;
        try
        {
            var pairs = new List<(string, string)>
            {
                ("device_id", settings.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("trt_fp16_enable", settings.TensorRtFp16 ? "1" : "0"),
            };
            if (settings.TensorRtEngineCachePath is { } cache)
            {
                pairs.Add(("trt_engine_cache_enable", "1"));
                pairs.Add(("trt_engine_cache_path", cache));
            }

            WithKeyValues(pairs, (keys, values, n) =>
                Api.Check(Api.UpdateTensorRTProviderOptions(trt, keys, values, n), "UpdateTensorRTProviderOptions"));
            Api.Check(Api.SessionOptionsAppendExecutionProviderTensorRTV2(options, trt), "SessionOptionsAppendExecutionProvider_TensorRT_V2");
        }
        finally
        {
            Api.ReleaseTensorRTProviderOptions(trt);
        }
    }

    private void AppendCuda(nint options, SessionSettings settings)
    {
        nint created;
        Api.Check(Api.CreateCUDAProviderOptions(&created), "CreateCUDAProviderOptions");
        var cuda = created;
        try
        {
            var pairs = new List<(string, string)>
            {
                ("device_id", settings.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            };
            WithKeyValues(pairs, (keys, values, n) =>
                Api.Check(Api.UpdateCUDAProviderOptions(cuda, keys, values, n), "UpdateCUDAProviderOptions"));
            Api.Check(Api.SessionOptionsAppendExecutionProviderCudaV2(options, cuda), "SessionOptionsAppendExecutionProvider_CUDA_V2");
        }
        finally
        {
            Api.ReleaseCUDAProviderOptions(cuda);
        }
    }

    private delegate void KeyValueAction(byte** keys, byte** values, nuint count);

    private static void WithKeyValues(List<(string Key, string Value)> pairs, KeyValueAction action)
    {
        var keys = stackalloc byte*[pairs.Count];
        var values = stackalloc byte*[pairs.Count];
        try
        {
            for (var i = 0; i < pairs.Count; i++)
            {
                keys[i] = (byte*)Marshal.StringToCoTaskMemUTF8(pairs[i].Key);
                values[i] = (byte*)Marshal.StringToCoTaskMemUTF8(pairs[i].Value);
            }

            action(keys, values, (nuint)pairs.Count);
        }
        finally
        {
            for (var i = 0; i < pairs.Count; i++)
            {
                Marshal.FreeCoTaskMem((nint)keys[i]);
                Marshal.FreeCoTaskMem((nint)values[i]);
            }
        }
    }

    private void AddConfig(nint options, string key, string value)
    {
        fixed (byte* k = Utf8(key))
        fixed (byte* v = Utf8(value))
        {
            Api.Check(Api.AddSessionConfigEntry(options, k, v), $"AddSessionConfigEntry({key})");
        }
    }

    private static OnnxRuntime LoadLibrary(string? explicitPath)
    {
        var tried = new List<string>();
        nint library = 0;
        string? loadedFrom = null;
        foreach (var candidate in CandidatePaths(explicitPath))
        {
            if (!File.Exists(candidate))
            {
                tried.Add($"{candidate} (not found)");
                continue;
            }

            try
            {
                library = NativeLibrary.Load(candidate);
                loadedFrom = candidate;
                break;
            }
            catch (DllNotFoundException ex)
            {
                // The file exists but cannot be loaded: wrong architecture, missing glibc/libstdc++ symbols, ...
                throw new OnnxRuntimeNotFoundException(
                    $"Cannot load ONNX Runtime from {candidate}: {ex.Message}. The library must match this machine " +
                    $"({RuntimeInformation.ProcessArchitecture}, glibc ≥ 2.28). Fix: run deploy/bootstrap.sh, or point " +
                    $"{LibraryEnvironmentVariable} / Agent:Inference:OrtLibraryPath at a compatible libonnxruntime.so.1.", ex);
            }
        }

        if (library == 0 && explicitPath is null && NativeLibrary.TryLoad(LibraryFileName, out library))
        {
            loadedFrom = $"{LibraryFileName} (system search path)";
        }

        tried.Add($"{LibraryFileName} on the system library search path");
        if (library == 0 || loadedFrom is null)
        {
            throw NotFound(explicitPath is not null
                ? $"ONNX Runtime native library not found at {explicitPath} (set by configuration or {LibraryEnvironmentVariable})."
                : $"ONNX Runtime native library not found. Looked in: {string.Join("; ", tried)}.");
        }

        if (!NativeLibrary.TryGetExport(library, "OrtGetApiBase", out var getApiBase))
        {
            throw new OnnxRuntimeNotFoundException($"{loadedFrom} is not ONNX Runtime: it has no OrtGetApiBase export.");
        }

        var apiBase = ((delegate* unmanaged<nint>)getApiBase)();
        var functions = (nint*)apiBase;
        var version = Marshal.PtrToStringUTF8(((delegate* unmanaged<nint>)functions[1])()) ?? "unknown";
        var table = ((delegate* unmanaged<uint, nint>)functions[0])(OrtApi.RequiredVersion);
        if (table == 0)
        {
            throw new OnnxRuntimeNotFoundException(
                $"ONNX Runtime {version} at {loadedFrom} does not provide C API version {OrtApi.RequiredVersion}; " +
                "EdgeFleet needs ONNX Runtime 1.16 or newer.");
        }

        var api = new OrtApi(table);
        nint env;
        fixed (byte* logId = "edgefleet"u8)
        {
            api.Check(api.CreateEnv(2 /* ORT_LOGGING_LEVEL_WARNING */, logId, &env), "CreateEnv");
        }

        return new OnnxRuntime(loadedFrom, version, api, env, ReadProviders(api));
    }

    private static OnnxRuntimeNotFoundException NotFound(string what) => new(
        $"{what} Fix: run deploy/bootstrap.sh (installs ONNX Runtime 1.30.0 under .edgefleet/native), or set " +
        $"{LibraryEnvironmentVariable} or Agent:Inference:OrtLibraryPath to a libonnxruntime.so.1 " +
        "(on a Jetson, the JetPack build that has the CUDA and TensorRT providers).");

    private static string[] ReadProviders(OrtApi api)
    {
        byte** names;
        int count;
        api.Check(api.GetAvailableProviders(&names, &count), "GetAvailableProviders");
        try
        {
            var result = new string[count];
            for (var i = 0; i < count; i++)
            {
                result[i] = Marshal.PtrToStringUTF8((nint)names[i]) ?? "";
            }

            return result;
        }
        finally
        {
            api.Check(api.ReleaseAvailableProviders(names, count), "ReleaseAvailableProviders");
        }
    }

    private static string? ExplicitPath(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        return string.IsNullOrWhiteSpace(fromEnvironment) ? null : fromEnvironment;
    }

    private static bool SameFile(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    internal static byte[] Utf8(string s)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(s) + 1];
        System.Text.Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}
