using System.Numerics.Tensors;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>Turns raw model outputs into an <see cref="InferenceResult"/> without allocating.</summary>
public interface IOutputDecoder
{
    /// <summary>Reads <paramref name="output"/> (first model output, batch 1) with its shape into <paramref name="result"/>.</summary>
    void Decode(ReadOnlySpan<float> output, ReadOnlySpan<long> shape, InferenceResult result);

    InferenceResult CreateResult();

    public static IOutputDecoder For(ModelManifest manifest, int inputWidth, int inputHeight)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return manifest.Task switch
        {
            ModelTask.Classification => new ClassificationDecoder(manifest.Decoding.TopK, manifest.Decoding.OutputKind == "logits"),
            ModelTask.Detection => new YoloDecoder(manifest.Decoding, inputWidth, inputHeight),
            _ => throw new NotSupportedException($"Task {manifest.Task} has no decoder"),
        };
    }
}

/// <summary>Top-k classes of a probability (or logit) vector.</summary>
public sealed class ClassificationDecoder(int topK, bool logits) : IOutputDecoder
{
    private float[] _probabilities = [];

    public InferenceResult CreateResult() => new(topK, 1);

    public void Decode(ReadOnlySpan<float> output, ReadOnlySpan<long> shape, InferenceResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        result.DetectionCount = 0;
        var classes = output.Length; // batch 1: the whole tensor is one row
        if (classes == 0)
        {
            result.TopCount = 0;
            return;
        }

        if (_probabilities.Length != classes)
        {
            _probabilities = new float[classes]; // once per model
        }

        var p = _probabilities.AsSpan();
        if (logits)
        {
            TensorPrimitives.SoftMax(output, p);
        }
        else
        {
            output.CopyTo(p);
        }

        result.NonFinite = !AllFinite(p);
        var k = Math.Min(topK, classes);
        var ids = result.ClassIdBuffer;
        var scores = result.ScoreBuffer;
        var count = 0;
        for (var c = 0; c < classes; c++)
        {
            var v = p[c];
            if (float.IsNaN(v))
            {
                continue;
            }

            if (count < k)
            {
                count++;
            }
            else if (v <= scores[k - 1])
            {
                continue;
            }

            // insertion into the sorted top-k (k is small)
            var j = count - 1;
            while (j > 0 && scores[j - 1] < v)
            {
                scores[j] = scores[j - 1];
                ids[j] = ids[j - 1];
                j--;
            }

            scores[j] = v;
            ids[j] = c;
        }

        result.TopCount = count;
        result.Entropy = NormalisedEntropy(p);
    }

    /// <summary>Whether every value is finite: one vectorised pass (the largest magnitude is NaN or ±∞ if any value is).</summary>
    internal static bool AllFinite(ReadOnlySpan<float> values) =>
        values.IsEmpty || float.IsFinite(TensorPrimitives.MaxMagnitude(values));

    private static float NormalisedEntropy(ReadOnlySpan<float> p)
    {
        if (p.Length < 2)
        {
            return 0;
        }

        double h = 0;
        foreach (var v in p)
        {
            if (v > 0)
            {
                h -= v * Math.Log(v);
            }
        }

        return (float)(h / Math.Log(p.Length));
    }
}

/// <summary>
/// YOLO output decoding plus greedy non-maximum suppression.
/// <c>yolov5</c>: <c>[1, N, 5 + K]</c> rows of cx, cy, w, h, objectness, K class scores (score = objectness × class).
/// <c>yolov8</c>: <c>[1, 4 + K, N]</c> columns of cx, cy, w, h, K class scores (no objectness).
/// </summary>
public sealed class YoloDecoder : IOutputDecoder
{
    private readonly bool _v8;
    private readonly float _scoreThreshold;
    private readonly float _iouThreshold;
    private readonly int _maxDetections;
    private readonly bool _agnostic;
    private readonly float _xScale;
    private readonly float _yScale;
    private Detection[] _candidates = [];
    private float[] _sortKeys = [];
    private int[] _order = [];
    private bool[] _suppressed = [];

    public YoloDecoder(OutputDecoding decoding, int inputWidth, int inputHeight)
    {
        ArgumentNullException.ThrowIfNull(decoding);
        _v8 = decoding.Format == "yolov8";
        _scoreThreshold = decoding.ScoreThreshold;
        _iouThreshold = decoding.IouThreshold;
        _maxDetections = decoding.MaxDetections;
        _agnostic = decoding.ClassAgnosticNms;
        var normalized = decoding.Coordinates == "normalized";
        _xScale = normalized ? inputWidth : 1f;
        _yScale = normalized ? inputHeight : 1f;
    }

    public InferenceResult CreateResult() => new(1, _maxDetections);

    public void Decode(ReadOnlySpan<float> output, ReadOnlySpan<long> shape, InferenceResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        result.TopCount = 0;
        result.DetectionCount = 0;
        if (shape.Length != 3)
        {
            throw new InvalidOperationException($"A YOLO output must have 3 dimensions, this one has {shape.Length}");
        }

        int rows, width;
        if (_v8)
        {
            width = (int)shape[1];
            rows = (int)shape[2];
        }
        else
        {
            rows = (int)shape[1];
            width = (int)shape[2];
        }

        var classes = width - (_v8 ? 4 : 5);
        if (classes < 1)
        {
            throw new InvalidOperationException($"YOLO output of shape [{string.Join(",", shape.ToArray())}] has no class scores");
        }

        EnsureCapacity(rows);
        result.NonFinite = !ClassificationDecoder.AllFinite(output);
        var count = _v8 ? CandidatesV8(output, rows, classes) : CandidatesV5(output, rows, classes);
        result.DetectionCount = Suppress(count, result.DetectionBuffer);
    }

    private int CandidatesV5(ReadOnlySpan<float> o, int rows, int classes)
    {
        var stride = 5 + classes;
        var count = 0;
        for (var n = 0; n < rows; n++)
        {
            var row = o.Slice(n * stride, stride);
            var objectness = row[4];
            if (!(objectness >= _scoreThreshold))
            {
                continue; // also skips NaN
            }

            var scores = row[5..];
            var best = TensorPrimitives.IndexOfMax(scores);
            var score = objectness * scores[best];
            if (score >= _scoreThreshold)
            {
                Add(ref count, best, score, row[0], row[1], row[2], row[3]);
            }
        }

        return count;
    }

    private int CandidatesV8(ReadOnlySpan<float> o, int rows, int classes)
    {
        var count = 0;
        for (var n = 0; n < rows; n++)
        {
            var best = 0;
            var score = float.NegativeInfinity;
            for (var c = 0; c < classes; c++)
            {
                var v = o[(4 + c) * rows + n];
                if (v > score)
                {
                    score = v;
                    best = c;
                }
            }

            if (score >= _scoreThreshold)
            {
                Add(ref count, best, score, o[n], o[rows + n], o[2 * rows + n], o[3 * rows + n]);
            }
        }

        return count;
    }

    private void Add(ref int count, int classId, float score, float cx, float cy, float w, float h)
    {
        cx *= _xScale;
        cy *= _yScale;
        w *= _xScale;
        h *= _yScale;
        _candidates[count] = new Detection
        {
            ClassId = classId,
            Score = score,
            X1 = cx - w / 2,
            Y1 = cy - h / 2,
            X2 = cx + w / 2,
            Y2 = cy + h / 2,
        };
        _sortKeys[count] = -score; // ascending sort of negated scores = best first
        _order[count] = count;
        count++;
    }

    private int Suppress(int count, Detection[] kept)
    {
        var keys = _sortKeys.AsSpan(0, count);
        var order = _order.AsSpan(0, count);
        HeapSort(keys, order); // MemoryExtensions.Sort(keys, items) allocates; this does not
        var suppressed = _suppressed.AsSpan(0, count);
        suppressed.Clear();
        var keptCount = 0;
        for (var i = 0; i < count && keptCount < _maxDetections && keptCount < kept.Length; i++)
        {
            if (suppressed[i])
            {
                continue;
            }

            ref readonly var a = ref _candidates[order[i]];
            kept[keptCount++] = a;
            for (var j = i + 1; j < count; j++)
            {
                if (suppressed[j])
                {
                    continue;
                }

                ref readonly var b = ref _candidates[order[j]];
                if ((_agnostic || a.ClassId == b.ClassId) && IoU(a, b) > _iouThreshold)
                {
                    suppressed[j] = true;
                }
            }
        }

        return keptCount;
    }

    /// <summary>Sorts <paramref name="keys"/> ascending, moving <paramref name="items"/> along. In place, no allocation.</summary>
    internal static void HeapSort(Span<float> keys, Span<int> items)
    {
        var n = keys.Length;
        for (var i = n / 2 - 1; i >= 0; i--)
        {
            SiftDown(keys, items, i, n);
        }

        for (var end = n - 1; end > 0; end--)
        {
            (keys[0], keys[end]) = (keys[end], keys[0]);
            (items[0], items[end]) = (items[end], items[0]);
            SiftDown(keys, items, 0, end);
        }
    }

    private static void SiftDown(Span<float> keys, Span<int> items, int root, int end)
    {
        while (true)
        {
            var child = 2 * root + 1;
            if (child >= end)
            {
                return;
            }

            if (child + 1 < end && keys[child + 1] > keys[child])
            {
                child++;
            }

            if (keys[root] >= keys[child])
            {
                return;
            }

            (keys[root], keys[child]) = (keys[child], keys[root]);
            (items[root], items[child]) = (items[child], items[root]);
            root = child;
        }
    }

    public static float IoU(in Detection a, in Detection b)
    {
        var iw = Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1);
        var ih = Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1);
        if (iw <= 0 || ih <= 0)
        {
            return 0;
        }

        var intersection = iw * ih;
        var union = a.Area + b.Area - intersection;
        return union <= 0 ? 0 : intersection / union;
    }

    private void EnsureCapacity(int rows)
    {
        if (_candidates.Length >= rows)
        {
            return;
        }

        _candidates = new Detection[rows]; // once per model
        _sortKeys = new float[rows];
        _order = new int[rows];
        _suppressed = new bool[rows];
    }
}
