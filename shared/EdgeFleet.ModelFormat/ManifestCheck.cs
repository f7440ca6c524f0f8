using EdgeFleet.Contracts.Models;

namespace EdgeFleet.ModelFormat;

/// <summary>Checks that a manifest describes the ONNX file it ships with.</summary>
public static class ManifestCheck
{
    /// <summary>
    /// Every mismatch between the manifest's input and outputs and the model's graph: names that do not exist,
    /// element types and ranks that differ, fixed dimensions that disagree (a dynamic dimension in the model
    /// accepts any size; −1 in the manifest accepts only a dynamic one). Empty when they agree.
    /// </summary>
    public static IReadOnlyList<string> Against(ModelManifest manifest, OnnxModelInfo model)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(model);
        var errors = new List<string>();
        Check("input", manifest.Input.Name, manifest.Input.ElementType, manifest.Input.Shape, model.Inputs, errors);
        for (var i = 0; i < manifest.Outputs.Count; i++)
        {
            var o = manifest.Outputs[i];
            Check($"outputs[{i}]", o.Name, o.ElementType, o.Shape, model.Outputs, errors);
        }

        return errors;
    }

    private static void Check(string path, string name, string elementType, IReadOnlyList<long> shape, IReadOnlyList<OnnxTensorInfo> actual, List<string> errors)
    {
        var tensor = actual.FirstOrDefault(t => t.Name == name);
        if (tensor is null)
        {
            errors.Add($"{path}.name: the model has no tensor '{name}' (it has: {string.Join(", ", actual.Select(t => t.Name))})");
            return;
        }

        if (!string.Equals(tensor.ElementType, elementType, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{path}.elementType: '{elementType}' in the manifest, '{tensor.ElementType}' in the model");
        }

        if (tensor.Shape.Count != shape.Count)
        {
            errors.Add($"{path}.shape: [{string.Join(", ", shape)}] in the manifest, [{Describe(tensor.Shape)}] in the model (rank {shape.Count} vs {tensor.Shape.Count})");
            return;
        }

        for (var d = 0; d < shape.Count; d++)
        {
            var declared = shape[d];
            var real = tensor.Shape[d];
            var agrees = real is null || (declared >= 0 && declared == real);
            if (!agrees)
            {
                errors.Add($"{path}.shape[{d}]: {declared} in the manifest, {real} in the model ([{string.Join(", ", shape)}] vs [{Describe(tensor.Shape)}])");
            }
        }
    }

    private static string Describe(IReadOnlyList<long?> shape) => string.Join(", ", shape.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"));
}
