using System.Text.Json.Serialization;

namespace EdgeFleet.Contracts.Models;

/// <summary>
/// The manifest that travels with every ONNX model (DESIGN.md §5): what the model expects as input, how to read its
/// outputs, a self-test and the artifact's hash. Stored beside the model as <c>NAME.manifest.json</c>. The registry
/// signs the exact bytes it serves with a detached signature (<see cref="ManifestSigning"/>); nothing is embedded,
/// and a <c>signature</c> field written by older registries is ignored when read.
/// </summary>
public sealed record ModelManifest
{
    /// <summary>The manifest schema identifier, <c>ef.manifest/1</c>.</summary>
    public string Schema { get; set; } = ManifestSchema.Current;

    /// <summary>Model name: lowercase letters, digits, '-', '_' and '.', starting with a letter or digit.</summary>
    public required string Name { get; init; }

    /// <summary>Semantic version of this model build (for example <c>1.4.0</c>).</summary>
    public required string Version { get; init; }

    /// <summary>What the model does.</summary>
    public required ModelTask Task { get; init; }

    /// <summary>Free text for operators.</summary>
    public string? Description { get; init; }

    /// <summary>The single image input of the model and how frames are turned into it.</summary>
    public required ManifestInput Input { get; init; }

    /// <summary>The model outputs the agent reads, in the order the decoder expects them.</summary>
    public required IReadOnlyList<ManifestTensor> Outputs { get; init; }

    /// <summary>How the outputs become results.</summary>
    public required OutputDecoding Decoding { get; init; }

    /// <summary>Class labels, indexed by class id. May be empty (results then carry ids only).</summary>
    public IReadOnlyList<string> Labels { get; set; } = [];

    /// <summary>A known input and its expected outputs, run before a model is activated.</summary>
    public SelfTest? SelfTest { get; init; }

    /// <summary>The ONNX file this manifest describes.</summary>
    public required ManifestArtifact Artifact { get; init; }
}

/// <summary>Manifest schema identifiers.</summary>
public static class ManifestSchema
{
    /// <summary>The schema this code writes and accepts.</summary>
    public const string Current = "ef.manifest/1";
}

/// <summary>What a model does.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ModelTask>))]
public enum ModelTask
{
    /// <summary>One label per frame with a probability per class.</summary>
    [JsonStringEnumMemberName("classification")] Classification,

    /// <summary>Boxes with a class and a score.</summary>
    [JsonStringEnumMemberName("detection")] Detection,
}

/// <summary>How a camera frame is fitted to the model's input size.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ResizeMode>))]
public enum ResizeMode
{
    /// <summary>Scale both axes independently (aspect ratio not kept).</summary>
    [JsonStringEnumMemberName("stretch")] Stretch,

    /// <summary>Keep the aspect ratio and pad the rest with grey (value 114), as YOLO models are trained.</summary>
    [JsonStringEnumMemberName("letterbox")] Letterbox,

    /// <summary>Keep the aspect ratio, scale to cover and crop the centre.</summary>
    [JsonStringEnumMemberName("center-crop")] CenterCrop,
}

/// <summary>The image input: tensor name and shape, and the preprocessing that produces it.</summary>
public sealed record ManifestInput
{
    /// <summary>The ONNX input name.</summary>
    public required string Name { get; init; }

    /// <summary>The tensor shape, <c>[1, 3, H, W]</c> for NCHW.</summary>
    public required IReadOnlyList<long> Shape { get; init; }

    /// <summary>Element type of the tensor; only <c>float32</c> is supported.</summary>
    public string ElementType { get; set; } = "float32";

    /// <summary>Tensor layout; only <c>NCHW</c> is supported.</summary>
    public string Layout { get; set; } = "NCHW";

    /// <summary>Channel order the model was trained with: <c>RGB</c> or <c>BGR</c>.</summary>
    public string ColorOrder { get; set; } = "RGB";

    /// <summary>How frames are fitted to the input size.</summary>
    public ResizeMode Resize { get; set; } = ResizeMode.Stretch;

    /// <summary>Pixel values (0–255) are multiplied by this first.</summary>
    public float Scale { get; set; } = 1f / 255f;

    /// <summary>Per-channel mean subtracted after scaling, in the model's channel order.</summary>
    public IReadOnlyList<float> Mean { get; set; } = [0f, 0f, 0f];

    /// <summary>Per-channel standard deviation divided by after subtracting the mean.</summary>
    public IReadOnlyList<float> Std { get; set; } = [1f, 1f, 1f];

    /// <summary>Input height in pixels (from <see cref="Shape"/>).</summary>
    [JsonIgnore]
    public int Height => Shape.Count == 4 ? checked((int)Shape[2]) : 0;

    /// <summary>Input width in pixels (from <see cref="Shape"/>).</summary>
    [JsonIgnore]
    public int Width => Shape.Count == 4 ? checked((int)Shape[3]) : 0;
}

/// <summary>A named tensor with its shape; -1 marks a dynamic dimension.</summary>
public sealed record ManifestTensor
{
    /// <summary>The ONNX output name.</summary>
    public required string Name { get; init; }

    /// <summary>Shape; -1 for a dimension that varies.</summary>
    public required IReadOnlyList<long> Shape { get; init; }

    /// <summary>Element type; only <c>float32</c> outputs are decoded.</summary>
    public string ElementType { get; set; } = "float32";
}

/// <summary>How the model outputs are decoded into results.</summary>
public sealed record OutputDecoding
{
    /// <summary><c>classification</c> or <c>yolo</c>.</summary>
    public required string Type { get; init; }

    /// <summary>Classification: whether the output already holds <c>probabilities</c> or raw <c>logits</c> (softmax applied by the agent).</summary>
    public string? OutputKind { get; init; }

    /// <summary>Classification: how many of the best classes each result carries.</summary>
    public int TopK { get; set; } = 5;

    /// <summary>
    /// Detection: <c>yolov5</c> (<c>[1, N, 5+K]</c>: cx, cy, w, h, objectness, class scores) or <c>yolov8</c>
    /// (<c>[1, 4+K, N]</c>: cx, cy, w, h, class scores, no objectness).
    /// </summary>
    public string? Format { get; init; }

    /// <summary>Detection: boxes scoring below this are discarded before NMS.</summary>
    public float ScoreThreshold { get; set; } = 0.25f;

    /// <summary>Detection: IoU above which the lower-scoring of two boxes is suppressed.</summary>
    public float IouThreshold { get; set; } = 0.45f;

    /// <summary>Detection: at most this many boxes per frame.</summary>
    public int MaxDetections { get; set; } = 100;

    /// <summary>Detection: suppress overlapping boxes of different classes too.</summary>
    public bool ClassAgnosticNms { get; init; }

    /// <summary>Detection: box coordinates are in input <c>pixels</c> or <c>normalized</c> to 0–1.</summary>
    public string Coordinates { get; set; } = "pixels";
}

/// <summary>Decoding type names.</summary>
public static class DecodingTypes
{
    /// <summary>Top-k over a class-probability vector.</summary>
    public const string Classification = "classification";

    /// <summary>YOLO-style box decoding followed by non-maximum suppression.</summary>
    public const string Yolo = "yolo";
}

/// <summary>The ONNX file a manifest describes.</summary>
public sealed record ManifestArtifact
{
    /// <summary>File name of the model, relative to the manifest.</summary>
    public required string File { get; init; }

    /// <summary>Lowercase hex SHA-256 of the file.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Size in bytes.</summary>
    public required long Size { get; init; }
}

/// <summary>A deterministic input and the outputs the model must produce for it.</summary>
public sealed record SelfTest
{
    /// <summary>The input image: <c>random-image</c> generated from <see cref="Seed"/>.</summary>
    public string Input { get; set; } = SelfTestInputs.RandomImage;

    /// <summary>Seed of the generator (see <c>SelfTestImage</c>).</summary>
    public required ulong Seed { get; init; }

    /// <summary>Expected outputs after the manifest's preprocessing and the model.</summary>
    public required IReadOnlyList<ExpectedOutput> Expected { get; init; }

    /// <summary>Largest allowed absolute difference per checked value.</summary>
    public double Tolerance { get; set; } = 1e-4;
}

/// <summary>Self-test input kinds.</summary>
public static class SelfTestInputs
{
    /// <summary>An RGB image whose bytes come from SplitMix64 seeded with the self-test seed.</summary>
    public const string RandomImage = "random-image";
}

/// <summary>What one output must look like for the self-test input.</summary>
public sealed record ExpectedOutput
{
    /// <summary>Output name.</summary>
    public required string Name { get; init; }

    /// <summary>Element count.</summary>
    public required long Count { get; init; }

    /// <summary>Sum of all elements.</summary>
    public required double Sum { get; init; }

    /// <summary>Checked elements as (flat index, value) pairs; all of them for small outputs.</summary>
    public required IReadOnlyList<IndexedValue> Values { get; init; }
}

/// <summary>A value at a flat index of a tensor.</summary>
public sealed record IndexedValue(long Index, float Value);
