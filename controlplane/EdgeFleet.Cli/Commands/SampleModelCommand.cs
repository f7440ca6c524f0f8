using System.CommandLine;
using EdgeFleet.Contracts.Models;
using EdgeFleet.ModelFormat;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet sample-model</c>: writes a generated ONNX model and its manifest (no download needed).</summary>
internal static class SampleModelCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "classification or detection", DefaultValueFactory = _ => "classification" };
        task.AcceptOnlyFromAmong("classification", "detection");
        var size = new Option<int>("--input-size") { Description = "Square input size in pixels", DefaultValueFactory = _ => 224 };
        var classes = new Option<int>("--classes") { Description = "Number of classes", DefaultValueFactory = _ => 10 };
        var output = new Option<string>("--out") { Description = "Where to write FILE.onnx (FILE.manifest.json goes beside it)", Required = true };
        var name = new Option<string?>("--name") { Description = "Model name (default sample-classifier / sample-detector)" };
        var version = new Option<string>("--version") { Description = "Semantic version", DefaultValueFactory = _ => "1.0.0" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the deterministic weights", DefaultValueFactory = _ => 1UL };
        var depth = new Option<int>("--depth") { Description = "Convolution blocks: scales compute (about 1 ms to 50 ms per inference)", DefaultValueFactory = _ => 1 };
        var width = new Option<int>("--width") { Description = "Channels per convolution block", DefaultValueFactory = _ => 16 };
        var fault = new Option<string>("--fault") { Description = "Make a broken variant: nan, slow or bad-shape", DefaultValueFactory = _ => "none" };
        fault.AcceptOnlyFromAmong("none", "nan", "slow", "bad-shape");
        var dynamicBatch = new Option<bool>("--dynamic-batch") { Description = "Declare the batch dimension dynamic" };
        var json = new Option<bool>("--json") { Description = "Print the manifest as JSON" };

        var command = new Command("sample-model", "Write a sample ONNX model with deterministic weights and its manifest")
        {
            task, size, classes, output, name, version, seed, depth, width, fault, dynamicBatch, json,
        };
        command.SetAction(parse =>
        {
            var options = new SampleModelOptions
            {
                Task = parse.GetValue(task) == "detection" ? ModelTask.Detection : ModelTask.Classification,
                InputSize = parse.GetValue(size),
                Classes = parse.GetValue(classes),
                Name = parse.GetValue(name),
                Version = parse.GetValue(version)!,
                Seed = parse.GetValue(seed),
                Depth = parse.GetValue(depth),
                Width = parse.GetValue(width),
                DynamicBatch = parse.GetValue(dynamicBatch),
                Fault = parse.GetValue(fault) switch
                {
                    "nan" => SampleFault.Nan,
                    "slow" => SampleFault.Slow,
                    "bad-shape" => SampleFault.BadShape,
                    _ => SampleFault.None,
                },
            };
            var errors = options.Validate();
            if (errors.Count > 0)
            {
                foreach (var e in errors)
                {
                    Console.Error.WriteLine($"error: {e}");
                }

                return 2;
            }

            var path = parse.GetValue(output)!;
            try
            {
                var manifest = SampleModelBuilder.Write(options, path);
                if (parse.GetValue(json))
                {
                    Console.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ManifestFile.Serialize(manifest)));
                }
                else
                {
                    Console.Out.WriteLine($"wrote {path} ({manifest.Artifact.Size} bytes, sha256 {manifest.Artifact.Sha256[..16]}…) and {ManifestFile.PathFor(path)}");
                    Console.Out.WriteLine($"{manifest.Name} {manifest.Version}: {manifest.Task.ToString().ToLowerInvariant()}, input [{string.Join(",", manifest.Input.Shape)}], " +
                        $"output {manifest.Outputs[0].Name} [{string.Join(",", manifest.Outputs[0].Shape)}], {manifest.Labels.Count} classes");
                }

                return 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: cannot write {path}: {ex.Message}");
                return 1;
            }
        });
        return command;
    }
}
