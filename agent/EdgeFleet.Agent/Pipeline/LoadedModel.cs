using EdgeFleet.Contracts.Models;
using EdgeFleet.Onnx;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>A model that failed to load or verify; the message says what, where and how to fix it.</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message)
        : base(message)
    {
    }

    public ModelLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ModelLoadException()
        : this("The model could not be loaded")
    {
    }
}

/// <summary>
/// An ONNX model ready to serve frames: its verified manifest, the session, a runner with pre-allocated tensors,
/// the matching preprocessor and output decoder. One inference thread uses it at a time.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(string path, ModelManifest manifest, OnnxSession session, SessionRunner runner)
    {
        Path = path;
        Manifest = manifest;
        Session = session;
        Runner = runner;
        Preprocessor = Preprocessor.For(manifest.Input);
        Decoder = IOutputDecoder.For(manifest, manifest.Input.Width, manifest.Input.Height);
        OutputIndex = session.Outputs.Select(o => o.Name).ToList().IndexOf(manifest.Outputs[0].Name);
    }

    public string Path { get; }

    public ModelManifest Manifest { get; }

    public OnnxSession Session { get; }

    public SessionRunner Runner { get; }

    public Preprocessor Preprocessor { get; }

    public IOutputDecoder Decoder { get; }

    /// <summary>Index of the decoded output in the session's outputs.</summary>
    public int OutputIndex { get; }

    public int InputWidth => Manifest.Input.Width;

    public int InputHeight => Manifest.Input.Height;

    /// <summary>
    /// Loads <paramref name="path"/> with its manifest: checks the manifest, the file's SHA-256 and size, creates the
    /// session and checks that the model's inputs and outputs are the ones the manifest describes.
    /// </summary>
    /// <exception cref="ModelLoadException">Anything is wrong; nothing is left open.</exception>
    public static LoadedModel Load(OnnxRuntime runtime, string path, SessionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"Model file not found: {path}. Set Agent:Model:Path to an .onnx file " +
                "(edgefleet sample-model writes one with its manifest).");
        }

        ModelManifest manifest;
        try
        {
            manifest = ManifestFile.Load(ManifestFile.PathFor(path));
        }
        catch (ManifestException ex)
        {
            throw new ModelLoadException(ex.Message, ex);
        }

        var (sha256, size) = ManifestFile.HashFile(path);
        if (size != manifest.Artifact.Size || sha256 != manifest.Artifact.Sha256)
        {
            throw new ModelLoadException(
                $"Model file {path} does not match its manifest: sha256 {sha256[..12]}… and {size} bytes, manifest says " +
                $"{manifest.Artifact.Sha256[..Math.Min(12, manifest.Artifact.Sha256.Length)]}… and {manifest.Artifact.Size} bytes. " +
                "The file was changed or truncated; copy it again together with its manifest.");
        }

        OnnxSession? session = null;
        try
        {
            session = runtime.CreateSession(path, settings);
            CheckCompatible(session, manifest, path);
            var runner = session.CreateRunner(new Dictionary<string, long[]> { [manifest.Input.Name] = manifest.Input.Shape.ToArray() });
            return new LoadedModel(path, manifest, session, runner);
        }
        catch (OnnxRuntimeException ex)
        {
            session?.Dispose();
            throw new ModelLoadException($"Model {path} cannot be used: {ex.Message}", ex);
        }
        catch
        {
            session?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs the manifest's self-test through the same preprocessing and runner the frames use.
    /// Returns null when it passes, else what differs.
    /// </summary>
    public string? RunSelfTest()
    {
        if (Manifest.SelfTest is not { } test)
        {
            return null;
        }

        var image = SelfTestImage.Create(test.Seed, InputWidth, InputHeight);
        Preprocessor.Run(image, Runner.Input<float>(0));
        Runner.Run();
        foreach (var expected in test.Expected)
        {
            var index = Session.Outputs.Select(o => o.Name).ToList().IndexOf(expected.Name);
            if (index < 0)
            {
                return $"self-test output '{expected.Name}' is not an output of the model";
            }

            var actual = Runner.Output<float>(index);
            if (actual.Length != expected.Count)
            {
                return $"self-test output '{expected.Name}' has {actual.Length} values, expected {expected.Count}";
            }

            foreach (var (i, value) in expected.Values)
            {
                var got = actual[(int)i];
                var tolerance = test.Tolerance * Math.Max(1, Math.Abs(value));
                if (!(Math.Abs(got - value) <= tolerance))
                {
                    return $"self-test output '{expected.Name}'[{i}] is {got}, expected {value} ± {tolerance:g3}";
                }
            }
        }

        return null;
    }

    public void Dispose()
    {
        Runner.Dispose();
        Session.Dispose();
    }

    private static void CheckCompatible(OnnxSession session, ModelManifest manifest, string path)
    {
        var errors = new List<string>();
        var input = session.Inputs.FirstOrDefault(i => i.Name == manifest.Input.Name);
        if (session.Inputs.Count != 1)
        {
            errors.Add($"the model has {session.Inputs.Count} inputs ({string.Join(", ", session.Inputs.Select(i => i.Name))}); " +
                "EdgeFleet feeds exactly one image input");
        }

        if (input is null)
        {
            errors.Add($"the manifest's input '{manifest.Input.Name}' is not an input of the model " +
                $"(it has {string.Join(", ", session.Inputs.Select(i => $"'{i.Name}'"))})");
        }
        else
        {
            if (input.ElementType != TensorElementType.Float)
            {
                errors.Add($"input '{input.Name}' is {input.ElementType}, but only float32 image inputs are supported");
            }

            if (!ShapesAgree(input.Shape, manifest.Input.Shape))
            {
                errors.Add($"input '{input.Name}' has shape {input.ShapeText} in the model but " +
                    $"[{string.Join(",", manifest.Input.Shape)}] in the manifest");
            }
        }

        foreach (var declared in manifest.Outputs)
        {
            var output = session.Outputs.FirstOrDefault(o => o.Name == declared.Name);
            if (output is null)
            {
                errors.Add($"the manifest's output '{declared.Name}' is not an output of the model " +
                    $"(it has {string.Join(", ", session.Outputs.Select(o => $"'{o.Name}'"))})");
            }
            else if (output.ElementType != TensorElementType.Float)
            {
                errors.Add($"output '{output.Name}' is {output.ElementType}; only float32 outputs are decoded");
            }
            else if (!ShapesAgree(output.Shape, declared.Shape))
            {
                errors.Add($"output '{output.Name}' has shape {output.ShapeText} in the model but " +
                    $"[{string.Join(",", declared.Shape)}] in the manifest");
            }
        }

        if (errors.Count > 0)
        {
            throw new ModelLoadException($"Model {path} does not match its manifest: {string.Join("; ", errors)}");
        }
    }

    /// <summary>Same rank, and every dimension known on both sides is equal (-1 is dynamic).</summary>
    private static bool ShapesAgree(IReadOnlyList<long> model, IReadOnlyList<long> manifest) =>
        model.Count == manifest.Count && model.Zip(manifest).All(p => p.First < 0 || p.Second < 0 || p.First == p.Second);
}
