using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Agent.Hosting;

/// <summary>Keeps a copy of the newest result for reporting, without allocating per frame.</summary>
public sealed class LatestResult : IResultSink
{
    private readonly Lock _lock = new();
    private readonly int[] _ids = new int[5];
    private readonly float[] _scores = new float[5];
    private long _sequence;
    private int _count;
    private int _detections;
    private float _bestDetectionScore;
    private int _bestDetectionClass;
    private IReadOnlyList<string> _labels = [];

    public void OnResult(InferenceResult result, LoadedModel model)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(model);
        lock (_lock)
        {
            _sequence = result.FrameSequence;
            _labels = model.Manifest.Labels;
            _count = Math.Min(result.TopCount, _ids.Length);
            result.TopClassIds[.._count].CopyTo(_ids);
            result.TopScores[.._count].CopyTo(_scores);
            _detections = result.DetectionCount;
            _bestDetectionScore = 0;
            foreach (var d in result.Detections)
            {
                if (d.Score > _bestDetectionScore)
                {
                    _bestDetectionScore = d.Score;
                    _bestDetectionClass = d.ClassId;
                }
            }
        }
    }

    /// <summary>One line: "frame 812: class-3 0.41, class-7 0.22" or "frame 812: 4 boxes, best class-1 0.83".</summary>
    public string Describe()
    {
        lock (_lock)
        {
            if (_sequence == 0)
            {
                return "no result yet";
            }

            if (_count > 0)
            {
                var parts = Enumerable.Range(0, Math.Min(_count, 3)).Select(i => $"{Label(_ids[i])} {_scores[i]:0.00}");
                return $"frame {_sequence}: {string.Join(", ", parts)}";
            }

            return _detections == 0
                ? $"frame {_sequence}: no boxes"
                : $"frame {_sequence}: {_detections} box{(_detections == 1 ? "" : "es")}, best {Label(_bestDetectionClass)} {_bestDetectionScore:0.00}";
        }
    }

    private string Label(int id) => id >= 0 && id < _labels.Count ? _labels[id] : $"#{id}";
}
