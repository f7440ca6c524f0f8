namespace EdgeFleet.Agent.Pipeline;

/// <summary>A detected object; coordinates in model-input pixels, (X1, Y1) top-left, (X2, Y2) bottom-right.</summary>
public struct Detection
{
    public int ClassId;
    public float Score;
    public float X1;
    public float Y1;
    public float X2;
    public float Y2;

    public readonly float Area => Math.Max(0, X2 - X1) * Math.Max(0, Y2 - Y1);
}

/// <summary>
/// The result of one frame. The pipeline reuses one instance per frame, so a sink that keeps anything beyond
/// its <c>OnResult</c> call copies it.
/// </summary>
public sealed class InferenceResult
{
    private readonly int[] _classIds;
    private readonly float[] _scores;
    private readonly Detection[] _detections;

    public InferenceResult(int topK, int maxDetections)
    {
        _classIds = new int[Math.Max(1, topK)];
        _scores = new float[Math.Max(1, topK)];
        _detections = new Detection[Math.Max(1, maxDetections)];
    }

    public long FrameSequence { get; set; }

    /// <summary>Stopwatch timestamp of capture.</summary>
    public long CapturedAt { get; set; }

    /// <summary>Stopwatch timestamp when the result was ready.</summary>
    public long CompletedAt { get; set; }

    /// <summary>Whether the model produced NaN or infinite values for this frame.</summary>
    public bool NonFinite { get; set; }

    public int TopCount { get; set; }

    /// <summary>Classification: class ids, best first.</summary>
    public Span<int> TopClassIds => _classIds.AsSpan(0, TopCount);

    /// <summary>Classification: probabilities matching <see cref="TopClassIds"/>.</summary>
    public Span<float> TopScores => _scores.AsSpan(0, TopCount);

    /// <summary>Classification: normalised entropy of the class distribution (0 = certain, 1 = uniform).</summary>
    public float Entropy { get; set; }

    public int DetectionCount { get; set; }

    public Span<Detection> Detections => _detections.AsSpan(0, DetectionCount);

    internal int[] ClassIdBuffer => _classIds;

    internal float[] ScoreBuffer => _scores;

    internal Detection[] DetectionBuffer => _detections;
}
