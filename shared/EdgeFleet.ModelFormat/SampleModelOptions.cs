using EdgeFleet.Contracts.Models;

namespace EdgeFleet.ModelFormat;

/// <summary>A deliberate defect, for testing what the agent and the rollout engine do with broken models.</summary>
public enum SampleFault
{
    /// <summary>A healthy model.</summary>
    None,

    /// <summary>Every output is NaN (a NaN constant is added before the final activation).</summary>
    Nan,

    /// <summary>Correct outputs for its own weights, about ten times the compute of the healthy model.</summary>
    Slow,

    /// <summary>The ONNX input is 16 pixels larger than the manifest says.</summary>
    BadShape,
}

/// <summary>What <see cref="SampleModelBuilder"/> builds.</summary>
public sealed record SampleModelOptions
{
    /// <summary>Classification (ends in Softmax) or detection (YOLOv5-style output).</summary>
    public ModelTask Task { get; init; } = ModelTask.Classification;

    /// <summary>Input size in pixels: the width, and the height unless <see cref="InputHeight"/> is set.</summary>
    public int InputSize { get; init; } = 224;

    /// <summary>Input height when it differs from the width (classification only); null: square.</summary>
    public int? InputHeight { get; init; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; init; } = 10;

    /// <summary>Model name for the manifest; defaults to <c>sample-{task}</c>.</summary>
    public string? Name { get; init; }

    /// <summary>Semantic version for the manifest.</summary>
    public string Version { get; init; } = "1.0.0";

    /// <summary>Seed of the deterministic weights.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Number of full-resolution 3×3 convolution blocks: the knob that scales compute.</summary>
    public int Depth { get; init; } = 1;

    /// <summary>Channels of the convolution blocks.</summary>
    public int Width { get; init; } = 16;

    /// <summary>Declare the batch dimension of the input and output as dynamic, as many exported models do.</summary>
    public bool DynamicBatch { get; init; }

    /// <summary>Deliberate defect.</summary>
    public SampleFault Fault { get; init; }

    /// <summary>The problems with these options, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (InputSize is < 16 or > 2048)
        {
            errors.Add($"--input-size {InputSize}: must be between 16 and 2048");
        }

        if (InputHeight is { } height && (height is < 16 or > 2048 || (Task == ModelTask.Detection && height != InputSize)))
        {
            errors.Add($"--input-height {height}: must be between 16 and 2048, and equal to the width for detection models");
        }

        if (Task == ModelTask.Detection && InputSize % 8 != 0)
        {
            errors.Add($"--input-size {InputSize}: detection models need a multiple of 8 (the output grid has stride 8)");
        }

        if (Classes is < 1 or > 10000)
        {
            errors.Add($"--classes {Classes}: must be between 1 and 10000");
        }

        if (Depth is < 0 or > 200)
        {
            errors.Add($"--depth {Depth}: must be between 0 and 200");
        }

        if (Width is < 1 or > 512)
        {
            errors.Add($"--width {Width}: must be between 1 and 512");
        }

        if (Name is not null && !ManifestFile.IsValidName(Name))
        {
            errors.Add($"--name '{Name}': use 1–64 of a-z 0-9 - _ ., starting with a letter or digit");
        }

        if (!SemVer.TryParse(Version, out _))
        {
            errors.Add($"--version '{Version}': not a semantic version (for example 1.2.0)");
        }

        return errors;
    }
}
