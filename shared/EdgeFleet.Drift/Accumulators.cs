using EdgeFleet.Contracts.Drift;

namespace EdgeFleet.Drift;

/// <summary>
/// One numeric feature over one window, in fixed memory: counts over the reference bins, a reservoir sample
/// (Algorithm R) for KS and Wasserstein, Welford mean/variance, min/max and the lag-1 autocorrelation sums that
/// give the effective sample size. Adding a value never allocates; memory does not grow with uptime.
/// </summary>
public sealed class NumericAccumulator
{
    private readonly double[] _reservoir;
    private double[] _edges = [];
    private long[] _counts = [1];
    private ulong _random;
    private int _filled;
    private long _n;
    private double _mean;
    private double _m2;
    private double _min = double.PositiveInfinity;
    private double _max = double.NegativeInfinity;
    private double _sum;
    private double _sumSquares;
    private double _lagProducts;
    private double _first;
    private double _last;

    public NumericAccumulator(string name, int reservoirSize, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(reservoirSize, 8);
        Name = name;
        _reservoir = new double[reservoirSize];
        _random = seed | 1;
    }

    public string Name { get; }

    public long Count => _n;

    /// <summary>Sets the bins values are counted into (the reference's edges); clears the counts.</summary>
    public void SetEdges(IReadOnlyList<double> edges)
    {
        _edges = [.. edges];
        _counts = new long[_edges.Length + 1];
    }

    public void Add(double value)
    {
        if (!double.IsFinite(value))
        {
            return; // a NaN feature (e.g. no boxes to average) carries no information
        }

        _n++;
        var delta = value - _mean;
        _mean += delta / _n;
        _m2 += delta * (value - _mean);
        _min = Math.Min(_min, value);
        _max = Math.Max(_max, value);
        _sum += value;
        _sumSquares += value * value;
        if (_n == 1)
        {
            _first = value;
        }
        else
        {
            _lagProducts += value * _last;
        }

        _last = value;
        _counts[DriftStatistics.BinOf(_edges, value)]++;

        if (_filled < _reservoir.Length)
        {
            _reservoir[_filled++] = value;
        }
        else
        {
            var j = (long)(Next() % (ulong)_n);
            if (j < _reservoir.Length)
            {
                _reservoir[j] = value;
            }
        }
    }

    public void Reset()
    {
        _filled = 0;
        _n = 0;
        _mean = _m2 = _sum = _sumSquares = _lagProducts = _first = _last = 0;
        _min = double.PositiveInfinity;
        _max = double.NegativeInfinity;
        Array.Clear(_counts);
    }

    public double Mean => _n == 0 ? double.NaN : _mean;

    public double Std => _n == 0 ? double.NaN : Math.Sqrt(_m2 / _n);

    /// <summary>Lag-1 autocorrelation of the values in arrival order (NaN when they do not vary).</summary>
    public double Lag1Autocorrelation
    {
        get
        {
            if (_n < 3)
            {
                return double.NaN;
            }

            var mean = _sum / _n;
            var denominator = _sumSquares - _n * mean * mean;
            if (denominator <= 1e-12 * Math.Max(1, _sumSquares))
            {
                return double.NaN;
            }

            var numerator = _lagProducts - mean * (_sum - _first) - mean * (_sum - _last) + (_n - 1) * mean * mean;
            return numerator / denominator;
        }
    }

    public double EffectiveCount => DriftStatistics.EffectiveSampleSize(_n, Lag1Autocorrelation);

    /// <summary>This window as the "current" side of a comparison.</summary>
    public NumericData ToCurrent()
    {
        var sorted = _reservoir.AsSpan(0, _filled).ToArray();
        Array.Sort(sorted);
        return new NumericData
        {
            Name = Name,
            Sorted = sorted,
            Count = _n,
            EffectiveCount = EffectiveCount,
            BinCounts = _edges.Length > 0 ? [.. _counts] : null,
        };
    }

    /// <summary>This window as a reference profile feature (edges are the quantiles of its sample).</summary>
    public ProfileFeature ToProfile(int bins)
    {
        var sorted = _reservoir.AsSpan(0, _filled).ToArray();
        Array.Sort(sorted);
        var edges = sorted.Length == 0 ? [] : DriftStatistics.QuantileEdges(sorted, bins);
        var counts = new long[edges.Length + 1];
        foreach (var v in sorted)
        {
            counts[DriftStatistics.BinOf(edges, v)]++;
        }

        return new ProfileFeature
        {
            Name = Name,
            Kind = "numeric",
            Count = _n,
            EffectiveCount = Math.Round(EffectiveCount, 1),
            Mean = Mean,
            Std = Std,
            Min = _n == 0 ? double.NaN : _min,
            Max = _n == 0 ? double.NaN : _max,
            Edges = edges,
            Proportions = counts.Select(c => sorted.Length == 0 ? 0 : c / (double)sorted.Length).ToArray(),
            Sample = sorted,
        };
    }

    private ulong Next()
    {
        // xorshift64*: cheap and allocation-free
        _random ^= _random >> 12;
        _random ^= _random << 25;
        _random ^= _random >> 27;
        return _random * 2685821657736338717UL;
    }
}

/// <summary>
/// One categorical feature over one window: counts per category code 0 … capacity−1 (codes beyond go to the
/// last slot, "other"), plus lag-1 agreement for the effective sample size.
/// </summary>
public sealed class CategoricalAccumulator
{
    private readonly long[] _counts;
    private long _n;
    private long _repeats;
    private int _previous = -1;

    public CategoricalAccumulator(string name, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        Name = name;
        _counts = new long[capacity];
    }

    public string Name { get; }

    public long Count => _n;

    public void Add(int code)
    {
        var slot = code < 0 || code >= _counts.Length ? _counts.Length - 1 : code;
        _counts[slot]++;
        _n++;
        if (slot == _previous)
        {
            _repeats++;
        }

        _previous = slot;
    }

    public void Reset()
    {
        Array.Clear(_counts);
        _n = 0;
        _repeats = 0;
        _previous = -1;
    }

    /// <summary>
    /// Effective size: consecutive observations that repeat the previous category beyond what independent draws
    /// would repeat count as correlated (a Markov-chain analogue of the AR(1) correction).
    /// </summary>
    public double EffectiveCount
    {
        get
        {
            if (_n < 3)
            {
                return _n;
            }

            double chance = 0;
            foreach (var c in _counts)
            {
                var p = c / (double)_n;
                chance += p * p;
            }

            var observed = _repeats / (double)(_n - 1);
            if (chance >= 1 || observed <= chance)
            {
                return _n;
            }

            var rho = (observed - chance) / (1 - chance);
            return DriftStatistics.EffectiveSampleSize(_n, rho);
        }
    }

    public CategoricalData ToCurrent() => new(Name, Snapshot()) { EffectiveCount = EffectiveCount };

    public ProfileFeature ToProfile() =>
        new() { Name = Name, Kind = "categorical", Count = _n, EffectiveCount = Math.Round(EffectiveCount, 1), Categories = Snapshot() };

    private Dictionary<string, long> Snapshot()
    {
        var counts = new Dictionary<string, long>();
        for (var i = 0; i < _counts.Length; i++)
        {
            if (_counts[i] > 0)
            {
                counts[i == _counts.Length - 1 ? "other" : i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = _counts[i];
            }
        }

        return counts;
    }
}
