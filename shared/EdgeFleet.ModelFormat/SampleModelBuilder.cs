using System.Globalization;
using System.Security.Cryptography;
using EdgeFleet.Contracts.Models;
using Google.Protobuf;

namespace EdgeFleet.ModelFormat;

/// <summary>An ONNX model and its manifest, as built in memory.</summary>
public sealed record SampleModel(byte[] Onnx, ModelManifest Manifest);

/// <summary>
/// Builds small but real ONNX models with deterministic weights, so tests and demos never need a download:
/// a convolutional classifier ending in Softmax, or a detector with a YOLOv5-style output
/// <c>[1, N, 5 + K]</c> (cx, cy, w, h in input pixels, objectness, class scores).
/// </summary>
public static class SampleModelBuilder
{
    private const long Opset = 17;

    /// <summary>Builds the model and writes <paramref name="onnxPath"/> and its manifest beside it.</summary>
    public static ModelManifest Write(SampleModelOptions options, string onnxPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        var built = Build(options, Path.GetFileName(onnxPath));
        var directory = Path.GetDirectoryName(Path.GetFullPath(onnxPath));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        var temp = onnxPath + ".tmp";
        File.WriteAllBytes(temp, built.Onnx);
        File.Move(temp, onnxPath, overwrite: true);
        ManifestFile.Save(built.Manifest, ManifestFile.PathFor(onnxPath));
        return built.Manifest;
    }

    /// <summary>Builds the model in memory; <paramref name="fileName"/> is what the manifest calls the ONNX file.</summary>
    public static SampleModel Build(SampleModelOptions options, string fileName = "model.onnx")
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        var s = options.InputSize;
        var sh = options.InputHeight ?? s;
        var healthy = Network.Create(options, options.Depth);
        var actual = options.Fault == SampleFault.Slow ? Network.Create(options, SlowDepth(options)) : healthy;
        var graphWidth = options.Fault == SampleFault.BadShape ? s + 16 : s;
        var graphHeight = options.Fault == SampleFault.BadShape ? sh + 16 : sh;
        var name = options.Name ?? (options.Task == ModelTask.Classification ? "sample-classifier" : "sample-detector");

        var metadata = new Dictionary<string, string>
        {
            ["edgefleet.name"] = name,
            ["edgefleet.version"] = options.Version,
            ["edgefleet.task"] = options.Task == ModelTask.Classification ? "classification" : "detection",
            ["edgefleet.seed"] = options.Seed.ToString(CultureInfo.InvariantCulture),
            ["edgefleet.fault"] = options.Fault.ToString().ToLowerInvariant(),
        };
        var model = actual.ToOnnx(graphWidth, graphHeight, options.DynamicBatch, options.Fault == SampleFault.Nan, metadata,
            $"EdgeFleet sample {metadata["edgefleet.task"]} model (depth {actual.Depth}, width {options.Width}, seed {options.Seed})");
        var onnx = model.ToByteArray();

        var input = options.Task == ModelTask.Classification
            ? new ManifestInput
            {
                Name = Network.InputName,
                Shape = [1, 3, sh, s],
                Resize = ResizeMode.CenterCrop,
                Scale = 1f / 255f,
                Mean = [0.485f, 0.456f, 0.406f],
                Std = [0.229f, 0.224f, 0.225f],
            }
            : new ManifestInput
            {
                Name = Network.InputName,
                Shape = [1, 3, s, s],
                Resize = ResizeMode.Letterbox,
                Scale = 1f / 255f,
                Mean = [0f, 0f, 0f],
                Std = [1f, 1f, 1f],
            };

        // The self-test describes what the model is meant to compute: a NaN or wrongly-shaped build fails it.
        var reference = options.Fault == SampleFault.Slow ? actual : healthy;
        var image = SelfTestImage.Create(options.Seed, s, sh);
        var tensor = ReferenceOps.Preprocess(image, s, sh, input.Scale, input.Mean, input.Std, bgr: false);
        var output = reference.Evaluate(tensor, s, sh);

        var manifest = new ModelManifest
        {
            Name = name,
            Version = options.Version,
            Task = options.Task,
            Description = model.DocString,
            Input = input,
            Outputs = [new ManifestTensor { Name = actual.OutputName, Shape = reference.OutputShape(s, options.DynamicBatch) }],
            Decoding = options.Task == ModelTask.Classification
                ? new OutputDecoding { Type = DecodingTypes.Classification, OutputKind = "probabilities", TopK = Math.Min(5, options.Classes) }
                : new OutputDecoding
                {
                    Type = DecodingTypes.Yolo,
                    Format = "yolov5",
                    ScoreThreshold = 0.25f,
                    IouThreshold = 0.45f,
                    MaxDetections = 100,
                    Coordinates = "pixels",
                },
            Labels = Enumerable.Range(0, options.Classes).Select(i => $"class-{i}").ToArray(),
            SelfTest = new SelfTest
            {
                Seed = options.Seed,
                Expected = [Expected(actual.OutputName, output)],
                Tolerance = 1e-4,
            },
            Artifact = new ManifestArtifact
            {
                File = fileName,
                Sha256 = Convert.ToHexStringLower(SHA256.HashData(onnx)),
                Size = onnx.Length,
            },
        };
        return new SampleModel(onnx, manifest);
    }

    /// <summary>All values of small outputs, an evenly spaced sample of 256 of large ones.</summary>
    private static ExpectedOutput Expected(string name, float[] values)
    {
        var picked = values.Length <= 1024
            ? Enumerable.Range(0, values.Length).Select(i => new IndexedValue(i, values[i]))
            : Enumerable.Range(0, 256).Select(i => (long)i * values.Length / 256).Select(i => new IndexedValue(i, values[i]));
        return new ExpectedOutput
        {
            Name = name,
            Count = values.Length,
            Sum = values.Sum(v => (double)v),
            Values = picked.ToArray(),
        };
    }

    /// <summary>The depth whose compute is about ten times that of the healthy model.</summary>
    private static int SlowDepth(SampleModelOptions o)
    {
        var stem = 3.0 * 9;
        var block = (double)o.Width * 9;
        var healthy = stem + block * o.Depth;
        return (int)Math.Ceiling((10 * healthy - stem) / block);
    }

    private sealed record Conv(float[] W, float[] B, int CIn, int COut, int K, int Stride, int Pad);

    private sealed class Network
    {
        public const string InputName = "input";

        private readonly ModelTask _task;
        private readonly int _classes;
        private readonly List<Conv> _trunk = [];
        private Conv? _detectionHead;
        private float[] _gemmB = [];
        private float[] _gemmC = [];

        private Network(ModelTask task, int classes, int depth)
        {
            _task = task;
            _classes = classes;
            Depth = depth;
        }

        public int Depth { get; }

        public string OutputName => _task == ModelTask.Classification ? "probabilities" : "detections";

        public static Network Create(SampleModelOptions o, int depth)
        {
            var net = new Network(o.Task, o.Classes, depth);
            var rng = new Rng(o.Seed);
            var c = o.Width;
            net._trunk.Add(rng.Conv(3, c, 3, 2, 1));
            for (var i = 0; i < depth; i++)
            {
                net._trunk.Add(rng.Conv(c, c, 3, 1, 1));
            }

            if (o.Task == ModelTask.Classification)
            {
                net._gemmB = rng.Uniform(o.Classes * c, MathF.Sqrt(6f / c) * 2f);
                net._gemmC = rng.Uniform(o.Classes, 0.1f);
            }
            else
            {
                net._trunk.Add(rng.Conv(c, c, 3, 2, 1));
                net._trunk.Add(rng.Conv(c, c, 3, 2, 1));
                net._detectionHead = rng.Conv(c, 5 + o.Classes, 1, 1, 0);
            }

            net.Calibrate(o.InputSize, o.InputHeight ?? o.InputSize);
            return net;
        }

        /// <summary>
        /// Random weights give near-uniform outputs. Like a trained model, the sample should be confident about some
        /// things and not others, and react to what the camera sees: on a synthetic calibration picture, the class
        /// logits are scaled to a spread of 2 (classification), and the objectness logits are standardised so that
        /// only cells about 1.7 standard deviations above the mean look like objects (detection: a few boxes a frame).
        /// </summary>
        private void Calibrate(int size, int height)
        {
            var image = CalibrationImage(size, height);
            var input = ReferenceOps.Preprocess(image, size, height, 1f / 255f, [0f, 0f, 0f], [1f, 1f, 1f], bgr: false);
            var (features, c, h, w) = Trunk(input, size, height);
            if (_task == ModelTask.Classification)
            {
                var pooled = ReferenceOps.GlobalAveragePool(features, c, h, w);
                var logits = ReferenceOps.Gemm(pooled, _gemmB, new float[_classes], _classes);
                var k = 2f / Math.Max(1e-6f, StdDev(logits));
                Scale(_gemmB, k);
                Scale(_gemmC, k);
                return;
            }

            var head = _detectionHead!;
            var cells = h * w;
            var z = new float[cells];
            for (var i = 0; i < cells; i++)
            {
                double acc = 0;
                for (var ch = 0; ch < c; ch++)
                {
                    acc += (double)head.W[4 * c + ch] * features[ch * cells + i];
                }

                z[i] = (float)acc;
            }

            var mean = z.Average();
            var scale = 1.5f / Math.Max(1e-6f, StdDev(z));
            for (var ch = 0; ch < c; ch++)
            {
                head.W[4 * c + ch] *= scale;
            }

            head.B[4] = -mean * scale - 3.5f; // logit ≥ 0 (objectness ≥ 0.5) from z-score 2.3: ~1 % of cells
        }

        private static float StdDev(float[] v)
        {
            var mean = v.Average();
            return (float)Math.Sqrt(v.Sum(x => (x - mean) * (double)(x - mean)) / v.Length);
        }

        private static void Scale(float[] v, float k)
        {
            for (var i = 0; i < v.Length; i++)
            {
                v[i] *= k;
            }
        }

        /// <summary>Gradients and a few rectangles: more like a camera picture than noise.</summary>
        private static byte[] CalibrationImage(int size, int height)
        {
            var rgb = new byte[size * height * 3];
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < size; x++)
                {
                    var p = (y * size + x) * 3;
                    var inBox = (x / (size / 4) + y / (size / 4)) % 3 == 0;
                    rgb[p] = (byte)(x * 255 / size);
                    rgb[p + 1] = (byte)(y * 255 / height);
                    rgb[p + 2] = inBox ? (byte)220 : (byte)40;
                }
            }

            return rgb;
        }

        private (float[] Features, int Channels, int Height, int Width) Trunk(float[] input, int size, int height)
        {
            var x = input;
            int c = 3, h = height, w = size;
            foreach (var conv in _trunk)
            {
                x = ReferenceOps.Conv(x, c, h, w, conv.W, conv.B, conv.COut, conv.K, conv.Stride, conv.Pad, out h, out w);
                ReferenceOps.Relu(x);
                c = conv.COut;
            }

            return (x, c, h, w);
        }

        public long[] OutputShape(int size, bool dynamicBatch) => _task == ModelTask.Classification
            ? [dynamicBatch ? -1 : 1, _classes]
            : [dynamicBatch ? -1 : 1, (long)(size / 8) * (size / 8), 5 + _classes];

        public Onnx.ModelProto ToOnnx(int size, int height, bool dynamicBatch, bool nan, IReadOnlyDictionary<string, string> metadata, string doc)
        {
            var g = new GraphBuilder(_task == ModelTask.Classification ? "sample_classifier" : "sample_detector");
            var x = g.Input(InputName, dynamicBatch ? -1 : 1, 3, height, size);
            for (var i = 0; i < _trunk.Count; i++)
            {
                var conv = _trunk[i];
                var w = g.Initializer($"conv{i}.weight", conv.W, conv.COut, conv.CIn, conv.K, conv.K);
                var b = g.Initializer($"conv{i}.bias", conv.B, conv.COut);
                x = g.Node("Conv", [x, w, b], null, ConvAttributes(conv));
                x = g.Node("Relu", [x]);
            }

            if (_task == ModelTask.Classification)
            {
                x = g.Node("GlobalAveragePool", [x]);
                x = g.Node("Flatten", [x], null, GraphBuilder.Int("axis", 1));
                var b = g.Initializer("fc.weight", _gemmB, _classes, _gemmB.Length / _classes);
                var c = g.Initializer("fc.bias", _gemmC, _classes);
                x = g.Node("Gemm", [x, b, c], null, GraphBuilder.Int("transB", 1));
                if (nan)
                {
                    x = g.Node("Add", [x, g.Initializer("fault.nan", [float.NaN], 1)]);
                }

                g.Node("Softmax", [x], OutputName, GraphBuilder.Int("axis", -1));
                g.Output(OutputName, OutputShape(size, dynamicBatch));
            }
            else
            {
                var head = _detectionHead!;
                var grid = size / 8;
                var n = grid * grid;
                var channels = 5 + _classes;
                var w = g.Initializer("head.weight", head.W, head.COut, head.CIn, 1, 1);
                var b = g.Initializer("head.bias", head.B, head.COut);
                x = g.Node("Conv", [x, w, b], null, ConvAttributes(head));
                if (nan)
                {
                    x = g.Node("Add", [x, g.Initializer("fault.nan", [float.NaN], 1)]);
                }

                x = g.Node("Sigmoid", [x]);
                x = g.Node("Reshape", [x, g.InitializerInt64("head.shape", [0, channels, n], 3)]); // 0 keeps the batch
                x = g.Node("Transpose", [x], null, GraphBuilder.Ints("perm", 0, 2, 1));
                x = g.Node("Mul", [x, g.Initializer("decode.scale", ColumnScale(size), channels)]);
                var parts = g.NodeMulti("Split", [x, g.InitializerInt64("decode.split", [2, channels - 2], 2)],
                    ["decode.xy", "decode.rest"], GraphBuilder.Int("axis", 2));
                var xy = g.Node("Add", [parts[0], g.Initializer("decode.grid", GridOffsets(size), n, 2)]);
                g.Node("Concat", [xy, parts[1]], OutputName, GraphBuilder.Int("axis", 2));
                g.Output(OutputName, OutputShape(size, dynamicBatch));
            }

            return g.Build(Opset, metadata, doc);
        }

        /// <summary>The model's output for a preprocessed input, computed without ONNX Runtime.</summary>
        public float[] Evaluate(float[] input, int size, int height)
        {
            var (x, c, h, w) = Trunk(input, size, height);

            if (_task == ModelTask.Classification)
            {
                var logits = ReferenceOps.Gemm(ReferenceOps.GlobalAveragePool(x, c, h, w), _gemmB, _gemmC, _classes);
                ReferenceOps.Softmax(logits);
                return logits;
            }

            var head = _detectionHead!;
            var y = ReferenceOps.Conv(x, c, h, w, head.W, head.B, head.COut, 1, 1, 0, out var gh, out var gw);
            ReferenceOps.Sigmoid(y);
            var channels = 5 + _classes;
            var n = gh * gw;
            var scale = ColumnScale(size);
            var offsets = GridOffsets(size);
            var result = new float[n * channels];
            for (var cell = 0; cell < n; cell++)
            {
                for (var j = 0; j < channels; j++)
                {
                    var v = y[j * n + cell] * scale[j];
                    result[cell * channels + j] = j < 2 ? v + offsets[cell * 2 + j] : v;
                }
            }

            return result;
        }

        private float[] ColumnScale(int size)
        {
            var scale = new float[5 + _classes];
            Array.Fill(scale, 1f);
            scale[0] = scale[1] = 8f;
            scale[2] = scale[3] = size / 4f;
            return scale;
        }

        private static float[] GridOffsets(int size)
        {
            var grid = size / 8;
            var offsets = new float[grid * grid * 2];
            for (var gy = 0; gy < grid; gy++)
            {
                for (var gx = 0; gx < grid; gx++)
                {
                    offsets[(gy * grid + gx) * 2] = gx * 8f;
                    offsets[(gy * grid + gx) * 2 + 1] = gy * 8f;
                }
            }

            return offsets;
        }

        private static Onnx.AttributeProto[] ConvAttributes(Conv conv) =>
        [
            GraphBuilder.Ints("kernel_shape", conv.K, conv.K),
            GraphBuilder.Ints("strides", conv.Stride, conv.Stride),
            GraphBuilder.Ints("pads", conv.Pad, conv.Pad, conv.Pad, conv.Pad),
        ];
    }

    /// <summary>Deterministic weights: He-uniform from SplitMix64.</summary>
    private sealed class Rng(ulong seed)
    {
        private ulong _state = seed;

        public float[] Uniform(int count, float limit)
        {
            var values = new float[count];
            for (var i = 0; i < count; i++)
            {
                var unit = (SelfTestImage.NextSplitMix64(ref _state) >> 11) * (1.0 / (1UL << 53));
                values[i] = (float)((unit * 2 - 1) * limit);
            }

            return values;
        }

        public Conv Conv(int cIn, int cOut, int k, int stride, int pad)
        {
            var fanIn = cIn * k * k;
            return new Conv(Uniform(cOut * fanIn, MathF.Sqrt(6f / fanIn)), Uniform(cOut, 0.1f), cIn, cOut, k, stride, pad);
        }
    }
}
