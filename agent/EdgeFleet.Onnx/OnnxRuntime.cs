using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Ort = Microsoft.ML.OnnxRuntime;

namespace EdgeFleet.Onnx;

/// <summary>
/// ONNX Runtime, loaded once per process: the native library (the Microsoft.ML.OnnxRuntime package's, or one named by
/// configuration such as JetPack's on a Jetson) and its process-wide environment. A process can load only one
/// ONNX Runtime, so the first <see cref="Load"/> decides which library is used.
/// </summary>
public sealed class OnnxRuntime
{
    /// <summary>Environment variable that names the library to load.</summary>
    public const string LibraryEnvironmentVariable = "EDGEFLEET_ORT_LIB";

    internal const string FixHint =
        "rebuild or re-publish the agent (the Microsoft.ML.OnnxRuntime package brings libonnxruntime.so for linux-x64 " +
        "and linux-arm64), or set " + LibraryEnvironmentVariable + " or Agent:Inference:OrtLibraryPath to a libonnxruntime.so " +
        "of a matching version (on a Jetson, JetPack's build, which has the CUDA and TensorRT providers).";

    private const string OrtProviderTensorRt = "TensorrtExecutionProvider";
    private const string OrtProviderCuda = "CUDAExecutionProvider";

    private static readonly Lock LoadLock = new();
    private static OnnxRuntime? s_instance;
    private static nint s_libraryHandle;
    private static bool s_resolverSet;

    private OnnxRuntime(string libraryPath, string version, IReadOnlyList<string> providers)
    {
        LibraryPath = libraryPath;
        Version = version;
        AvailableProviders = providers;
    }

    /// <summary>The file the native library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <summary>The native library's version, for example <c>1.30.0</c>.</summary>
    public string Version { get; }

    /// <summary>Execution providers compiled into this build (for example <c>CPUExecutionProvider</c>).</summary>
    public IReadOnlyList<string> AvailableProviders { get; }

    /// <summary>
    /// The oldest native library this build can use: the version of the Microsoft.ML.OnnxRuntime.Managed package it
    /// was built against (the managed API refuses an older library).
    /// </summary>
    public static Version RequiredVersion { get; } = ManagedVersion();

    /// <summary>
    /// Loads ONNX Runtime. <paramref name="libraryPath"/> (from configuration) wins, then the <c>EDGEFLEET_ORT_LIB</c>
    /// environment variable, then the library that came with the Microsoft.ML.OnnxRuntime package. Before any of it is
    /// loaded, ONNX Runtime's telemetry is switched off (<c>ORT_DISABLE_TELEMETRY=1</c> in the native environment).
    /// </summary>
    /// <exception cref="OnnxRuntimeNotFoundException">
    /// No usable library: missing, not loadable, not ONNX Runtime, or older than <see cref="RequiredVersion"/>; the
    /// message names the file and the fix.
    /// </exception>
    public static OnnxRuntime Load(string? libraryPath = null)
    {
        lock (LoadLock)
        {
            OrtTelemetry.Disable();
            var (explicitPath, origin) = ExplicitPath(libraryPath);
            if (explicitPath is not null && !File.Exists(explicitPath))
            {
                throw new OnnxRuntimeNotFoundException(
                    $"ONNX Runtime native library not found at {explicitPath} (set by {origin}). Fix: {FixHint}");
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

            var library = explicitPath is not null ? OrtLibrary.Open(explicitPath, origin) : OpenPackaged();
            library.EnsureAtLeast(RequiredVersion, origin);
            UseLibrary(library.Handle);
            s_instance = CreateEnvironment(library);
            return s_instance;
        }
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

        var fullPath = Path.GetFullPath(modelPath);
        return CreateSession(options => new Ort.InferenceSession(fullPath, options), modelPath, settings ?? new SessionSettings(), AvailableProviders);
    }

    /// <summary>Creates a session from ONNX bytes held in memory.</summary>
    /// <exception cref="OnnxRuntimeException">ORT cannot load the model.</exception>
    public OnnxSession CreateSession(ReadOnlySpan<byte> model, SessionSettings? settings = null, string name = "(memory)")
    {
        if (model.IsEmpty)
        {
            throw new OnnxRuntimeException($"Model {name} is empty (0 bytes)");
        }

        var bytes = model.ToArray();
        return CreateSession(options => new Ort.InferenceSession(bytes, options), name, settings ?? new SessionSettings(), AvailableProviders);
    }

    /// <summary>
    /// Creates a session as if the build had <paramref name="availableProviders"/>: lets tests drive the fallback past a
    /// provider that is listed but cannot be enabled, which is what a GPU build on a machine without CUDA does.
    /// </summary>
    internal OnnxSession CreateSession(string modelPath, SessionSettings settings, IReadOnlyList<string> availableProviders) =>
        CreateSession(options => new Ort.InferenceSession(Path.GetFullPath(modelPath), options), modelPath, settings, availableProviders);

    private static OnnxSession CreateSession(Func<Ort.SessionOptions, Ort.InferenceSession> create, string source, SessionSettings settings,
        IReadOnlyList<string> availableProviders)
    {
        settings.Validate();
        var notes = new List<string>();
        Ort.InferenceSession session;
        ExecutionProvider active;
        using (var options = CreateOptions(settings))
        {
            active = AppendProviders(options, settings, availableProviders, notes);
            try
            {
                session = create(options);
            }
            catch (Ort.OnnxRuntimeException ex) when (active != ExecutionProvider.Cpu)
            {
                // A provider that could be appended can still fail on this model (a TensorRT engine build, device memory):
                // the CPU is the last resort, and if the model itself is bad the CPU attempt says so.
                notes.Add($"{active} failed to create the session, falling back to the CPU: {OnnxRuntimeException.StripCode(ex.Message)}");
                session = CreateOnCpu(create, source, settings);
                active = ExecutionProvider.Cpu;
            }
            catch (Ort.OnnxRuntimeException ex)
            {
                throw OnnxRuntimeException.From(ex, $"CreateSession({source})");
            }
        }

        try
        {
            return new OnnxSession(session, source, active, notes);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static Ort.InferenceSession CreateOnCpu(Func<Ort.SessionOptions, Ort.InferenceSession> create, string source, SessionSettings settings)
    {
        using var options = CreateOptions(settings);
        try
        {
            return create(options);
        }
        catch (Ort.OnnxRuntimeException ex)
        {
            throw OnnxRuntimeException.From(ex, $"CreateSession({source})");
        }
    }

    private static Ort.SessionOptions CreateOptions(SessionSettings settings)
    {
        var options = new Ort.SessionOptions();
        try
        {
            options.IntraOpNumThreads = settings.ResolvedIntraOpThreads;
            options.InterOpNumThreads = settings.InterOpThreads;
            options.GraphOptimizationLevel = (Ort.GraphOptimizationLevel)(int)settings.OptimizationLevel;
            options.ExecutionMode = Ort.ExecutionMode.ORT_SEQUENTIAL;
            options.LogSeverityLevel = (Ort.OrtLoggingLevel)(int)settings.LogSeverity;
            if (settings.LogId is { } logId)
            {
                options.LogId = logId;
            }

            options.AddSessionConfigEntry("session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
            return options;
        }
        catch (Ort.OnnxRuntimeException ex)
        {
            options.Dispose();
            throw OnnxRuntimeException.From(ex, "SessionOptions");
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>Appends the preferred providers that this build has, in order; CPU is always the last resort.</summary>
    private static ExecutionProvider AppendProviders(Ort.SessionOptions options, SessionSettings settings, IReadOnlyList<string> available,
        List<string> notes)
    {
        ExecutionProvider? first = null;
        foreach (var provider in settings.Providers)
        {
            if (provider == ExecutionProvider.Cpu)
            {
                first ??= ExecutionProvider.Cpu;
                break; // ORT places whatever is left on the CPU provider
            }

            var ortName = provider == ExecutionProvider.TensorRT ? OrtProviderTensorRt : OrtProviderCuda;
            if (!available.Contains(ortName))
            {
                notes.Add($"{provider} not in this ONNX Runtime build ({string.Join(", ", available)})");
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

                notes.Add($"{provider} enabled on device {settings.DeviceId}");
                first ??= provider;
            }
            catch (Ort.OnnxRuntimeException ex)
            {
                notes.Add($"{provider} could not be enabled, falling back: {OnnxRuntimeException.StripCode(ex.Message).Trim()}");
            }
        }

        return first ?? ExecutionProvider.Cpu;
    }

    private static void AppendTensorRt(Ort.SessionOptions options, SessionSettings settings)
    {
        using var trt = new Ort.OrtTensorRTProviderOptions();
        var values = new Dictionary<string, string>
        {
            ["device_id"] = settings.DeviceId.ToString(CultureInfo.InvariantCulture),
            ["trt_fp16_enable"] = settings.TensorRtFp16 ? "1" : "0",
        };
        if (settings.TensorRtEngineCachePath is { } cache)
        {
            values["trt_engine_cache_enable"] = "1";
            values["trt_engine_cache_path"] = cache;
        }

        trt.UpdateOptions(values);
        options.AppendExecutionProvider_Tensorrt(trt);
    }

    private static void AppendCuda(Ort.SessionOptions options, SessionSettings settings)
    {
        using var cuda = new Ort.OrtCUDAProviderOptions();
        cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = settings.DeviceId.ToString(CultureInfo.InvariantCulture) });
        options.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>The package's library, found the way the managed API itself would find it (deps.json, app folder).</summary>
    private static OrtLibrary OpenPackaged()
    {
        var assembly = typeof(Ort.OrtEnv).Assembly;
        if (NativeLibrary.TryLoad("onnxruntime", assembly, null, out var handle))
        {
            return OrtLibrary.Identify(handle, "libonnxruntime.so", "the Microsoft.ML.OnnxRuntime package");
        }

        var rid = $"linux-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}";
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "libonnxruntime.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libonnxruntime.so"),
        };
        foreach (var candidate in candidates.Where(File.Exists))
        {
            return OrtLibrary.Open(candidate, "the Microsoft.ML.OnnxRuntime package");
        }

        throw new OnnxRuntimeNotFoundException(
            $"ONNX Runtime native library not found: the Microsoft.ML.OnnxRuntime package's libonnxruntime.so is not beside the " +
            $"agent (looked in {string.Join("; ", candidates)} and the system library path). Fix: {FixHint}");
    }

    /// <summary>Makes the managed API use exactly <paramref name="handle"/>, whatever it would have found itself.</summary>
    private static void UseLibrary(nint handle)
    {
        s_libraryHandle = handle;
        if (s_resolverSet)
        {
            return;
        }

        // Read by the managed package before its NativeMethods type initialiser installs a resolver of its own.
        Ort.OrtEnv.DisableDllImportResolver = true;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Ort.OrtEnv).Assembly, static (name, _, _) =>
                name is "onnxruntime" or "libonnxruntime" or "libonnxruntime.so" ? s_libraryHandle : 0);
        }
        catch (InvalidOperationException ex)
        {
            throw new OnnxRuntimeNotFoundException(
                "Another component of this process already chose the native library of Microsoft.ML.OnnxRuntime " +
                "(NativeLibrary.SetDllImportResolver); ONNX Runtime must be loaded through EdgeFleet.Onnx only.", ex);
        }

        s_resolverSet = true;
    }

    private static OnnxRuntime CreateEnvironment(OrtLibrary library)
    {
        try
        {
            var creation = new Ort.EnvironmentCreationOptions
            {
                logId = "edgefleet",
                logLevel = Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
            };
#pragma warning disable IDISP001 // the process-wide environment lives as long as the process
            var env = Ort.OrtEnv.CreateInstanceWithOptions(ref creation);
#pragma warning restore IDISP001
            env.DisableTelemetryEvents(); // belt and braces: the environment variable already kept the store from being created
            return new OnnxRuntime(library.Path, env.GetVersionString(), env.GetAvailableProviders());
        }
        catch (Ort.OnnxRuntimeException ex)
        {
            throw new OnnxRuntimeNotFoundException($"ONNX Runtime {library.Version} at {library.Path} could not start: {ex.Message}. Fix: {FixHint}", ex);
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or TypeInitializationException or DllNotFoundException)
        {
            throw new OnnxRuntimeNotFoundException(
                $"ONNX Runtime {library.Version} at {library.Path} does not work with Microsoft.ML.OnnxRuntime {OrtLibrary.Format(RequiredVersion)}: " +
                $"{ex.GetBaseException().Message}. Fix: {FixHint}", ex);
        }
    }

    private static Version ManagedVersion()
    {
        var assembly = typeof(Ort.OrtEnv).Assembly;
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (informational is not null && OrtLibrary.TryParseVersion(informational, out var v))
        {
            return v;
        }

        return assembly.GetName().Version ?? new Version(1, 0, 0);
    }

    private static (string? Path, string Origin) ExplicitPath(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return (configured, "Agent:Inference:OrtLibraryPath / --ort-lib");
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        return string.IsNullOrWhiteSpace(fromEnvironment) ? (null, "the Microsoft.ML.OnnxRuntime package") : (fromEnvironment, LibraryEnvironmentVariable);
    }

    private static bool SameFile(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal)
        || string.Equals(ResolveLinks(a), ResolveLinks(b), StringComparison.Ordinal);

    private static string ResolveLinks(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        catch (IOException)
        {
            return Path.GetFullPath(path);
        }
    }
}
