using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeFleet.Contracts.Serialization;

namespace EdgeFleet.Contracts.Models;

/// <summary>Reads, validates and writes model manifests.</summary>
public static partial class ManifestFile
{
    /// <summary>Largest manifest accepted; real ones are a few kilobytes (labels and self-test included).</summary>
    public const int MaxBytes = 4 * 1024 * 1024;

    /// <summary>The manifest path that belongs to a model file: <c>NAME.onnx</c> → <c>NAME.manifest.json</c>.</summary>
    public static string PathFor(string modelPath)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        return Path.Combine(directory, Path.GetFileNameWithoutExtension(modelPath) + ".manifest.json");
    }

    /// <summary>Loads and validates the manifest at <paramref name="path"/>.</summary>
    /// <exception cref="ManifestException">The file is missing, unreadable, not JSON or not a valid manifest.</exception>
    public static ModelManifest Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ManifestException(path, [$"manifest not found; every model needs its manifest beside it ({Path.GetFileName(path)})"]);
        }

        var info = new FileInfo(path);
        if (info.Length > MaxBytes)
        {
            throw new ManifestException(path, [$"manifest is {info.Length} bytes, more than the {MaxBytes} allowed"]);
        }

        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses and validates manifest bytes; <paramref name="source"/> names them in errors.</summary>
    public static ModelManifest Parse(ReadOnlySpan<byte> json, string source)
    {
        ModelManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(json, ContractsJsonContext.Default.ModelManifest);
        }
        catch (JsonException ex)
        {
            var where = ex.Path is null ? "" : $" at {ex.Path}";
            throw new ManifestException(source, [$"not a valid manifest{where}: {ex.Message}"]);
        }

        if (manifest is null)
        {
            throw new ManifestException(source, ["manifest is empty (JSON null)"]);
        }

        var errors = Validate(manifest);
        return errors.Count > 0 ? throw new ManifestException(source, errors) : manifest;
    }

    /// <summary>Serialises a manifest (indented, camelCase).</summary>
    public static byte[] Serialize(ModelManifest manifest) =>
        JsonSerializer.SerializeToUtf8Bytes(manifest, ContractsJsonContext.Default.ModelManifest);

    /// <summary>Writes a manifest atomically (temporary file + rename).</summary>
    public static void Save(ModelManifest manifest, string path)
    {
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, Serialize(manifest));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Lowercase hex SHA-256 and size of a file.</summary>
    public static (string Sha256, long Size) HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        var hash = SHA256.HashData(stream);
        return (Convert.ToHexStringLower(hash), stream.Length);
    }

    /// <summary>Every problem with the manifest, each prefixed with the JSON path of the field.</summary>
    public static IReadOnlyList<string> Validate(ModelManifest m)
    {
        var errors = new List<string>();
        void Fail(string path, string message) => errors.Add($"{path}: {message}");

        if (m.Schema != ManifestSchema.Current)
        {
            Fail("schema", $"'{m.Schema}' is not supported; expected '{ManifestSchema.Current}'");
        }

        if (!IsValidName(m.Name))
        {
            Fail("name", $"'{m.Name}' is not a valid model name (1–64 of a-z 0-9 - _ ., starting with a letter or digit)");
        }

        if (!SemVer.TryParse(m.Version, out _))
        {
            Fail("version", $"'{m.Version}' is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])");
        }

        ValidateInput(m.Input, Fail);

        if (m.Outputs is null || m.Outputs.Count == 0)
        {
            Fail("outputs", "at least one output is required");
        }
        else
        {
            for (var i = 0; i < m.Outputs.Count; i++)
            {
                var o = m.Outputs[i];
                if (string.IsNullOrWhiteSpace(o.Name))
                {
                    Fail($"outputs[{i}].name", "is required");
                }

                if (o.Shape is null || o.Shape.Count == 0 || o.Shape.Any(d => d == 0 || d < -1))
                {
                    Fail($"outputs[{i}].shape", "must be a non-empty list of positive dimensions (-1 for dynamic)");
                }

                if (o.ElementType != "float32")
                {
                    Fail($"outputs[{i}].elementType", $"'{o.ElementType}' is not supported; only float32 outputs are decoded");
                }
            }
        }

        ValidateDecoding(m, Fail);

        if (m.Labels is null)
        {
            Fail("labels", "must be a list (it may be empty)");
        }

        if (m.SelfTest is { } st)
        {
            if (st.Input != SelfTestInputs.RandomImage)
            {
                Fail("selfTest.input", $"'{st.Input}' is not supported; expected '{SelfTestInputs.RandomImage}'");
            }

            if (st.Tolerance is <= 0 or > 1 || double.IsNaN(st.Tolerance))
            {
                Fail("selfTest.tolerance", "must be in (0, 1]");
            }

            if (st.Expected is null || st.Expected.Count == 0)
            {
                Fail("selfTest.expected", "at least one expected output is required");
            }
        }

        if (m.Artifact is null)
        {
            Fail("artifact", "is required");
        }
        else
        {
            if (string.IsNullOrWhiteSpace(m.Artifact.File) || m.Artifact.File.Contains('/', StringComparison.Ordinal)
                || m.Artifact.File.Contains('\\', StringComparison.Ordinal) || m.Artifact.File is "." or "..")
            {
                Fail("artifact.file", $"'{m.Artifact.File}' must be a plain file name");
            }

            if (m.Artifact.Sha256 is null || !Sha256Regex().IsMatch(m.Artifact.Sha256))
            {
                Fail("artifact.sha256", "must be 64 lowercase hex characters");
            }

            if (m.Artifact.Size <= 0)
            {
                Fail("artifact.size", "must be positive");
            }
        }

        return errors;
    }

    private static void ValidateInput(ManifestInput? input, Action<string, string> fail)
    {
        if (input is null)
        {
            fail("input", "is required");
            return;
        }

        if (string.IsNullOrWhiteSpace(input.Name))
        {
            fail("input.name", "is required");
        }

        if (input.Layout != "NCHW")
        {
            fail("input.layout", $"'{input.Layout}' is not supported; only NCHW");
        }

        if (input.ElementType != "float32")
        {
            fail("input.elementType", $"'{input.ElementType}' is not supported; only float32");
        }

        if (input.Shape is null || input.Shape.Count != 4 || input.Shape[0] != 1 || input.Shape[1] != 3
            || input.Shape[2] is < 8 or > 8192 || input.Shape[3] is < 8 or > 8192)
        {
            fail("input.shape", "must be [1, 3, H, W] with H and W between 8 and 8192");
        }

        if (input.ColorOrder is not ("RGB" or "BGR"))
        {
            fail("input.colorOrder", $"'{input.ColorOrder}' is not supported; use RGB or BGR");
        }

        if (!float.IsFinite(input.Scale) || input.Scale == 0)
        {
            fail("input.scale", "must be a finite non-zero number");
        }

        if (input.Mean is null || input.Mean.Count != 3 || input.Mean.Any(v => !float.IsFinite(v)))
        {
            fail("input.mean", "must hold 3 finite numbers");
        }

        if (input.Std is null || input.Std.Count != 3 || input.Std.Any(v => !float.IsFinite(v) || v <= 0))
        {
            fail("input.std", "must hold 3 positive numbers");
        }
    }

    private static void ValidateDecoding(ModelManifest m, Action<string, string> fail)
    {
        var d = m.Decoding;
        if (d is null)
        {
            fail("decoding", "is required");
            return;
        }

        switch (m.Task)
        {
            case ModelTask.Classification:
                if (d.Type != DecodingTypes.Classification)
                {
                    fail("decoding.type", $"'{d.Type}' does not fit task classification; expected '{DecodingTypes.Classification}'");
                }

                if (d.OutputKind is not ("probabilities" or "logits"))
                {
                    fail("decoding.outputKind", $"'{d.OutputKind}' must be 'probabilities' or 'logits'");
                }

                if (d.TopK is < 1 or > 1000)
                {
                    fail("decoding.topK", "must be between 1 and 1000");
                }

                break;
            case ModelTask.Detection:
                if (d.Type != DecodingTypes.Yolo)
                {
                    fail("decoding.type", $"'{d.Type}' does not fit task detection; expected '{DecodingTypes.Yolo}'");
                }

                if (d.Format is not ("yolov5" or "yolov8"))
                {
                    fail("decoding.format", $"'{d.Format}' must be 'yolov5' or 'yolov8'");
                }

                if (d.ScoreThreshold is < 0 or > 1 || float.IsNaN(d.ScoreThreshold))
                {
                    fail("decoding.scoreThreshold", "must be between 0 and 1");
                }

                if (d.IouThreshold is <= 0 or > 1 || float.IsNaN(d.IouThreshold))
                {
                    fail("decoding.iouThreshold", "must be in (0, 1]");
                }

                if (d.MaxDetections is < 1 or > 10000)
                {
                    fail("decoding.maxDetections", "must be between 1 and 10000");
                }

                if (d.Coordinates is not ("pixels" or "normalized"))
                {
                    fail("decoding.coordinates", $"'{d.Coordinates}' must be 'pixels' or 'normalized'");
                }

                break;
            default:
                fail("task", $"'{m.Task}' is not a known task");
                break;
        }
    }

    /// <summary>Model names: safe in paths and topics.</summary>
    public static bool IsValidName(string? name) => name is not null && NameRegex().IsMatch(name);

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex NameRegex();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Regex();
}

/// <summary>A manifest that could not be loaded; <see cref="Errors"/> lists each problem with its field.</summary>
public sealed class ManifestException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ManifestException(string source, IReadOnlyList<string> errors)
        : base($"Invalid model manifest {source}: {string.Join("; ", errors)}")
    {
        Location = source;
        Errors = errors;
    }

    /// <summary>Creates the exception (serialisation support).</summary>
    public ManifestException()
        : this("(unknown)", ["invalid manifest"])
    {
    }

    /// <summary>Creates the exception.</summary>
    public ManifestException(string message)
        : this("(unknown)", [message])
    {
    }

    /// <summary>Creates the exception.</summary>
    public ManifestException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    /// <summary>The problems found, each prefixed with the field's path.</summary>
    public IReadOnlyList<string> Errors { get; } = [];

    /// <summary>The file (or other source) the manifest came from.</summary>
    public string Location { get; } = "(unknown)";
}
