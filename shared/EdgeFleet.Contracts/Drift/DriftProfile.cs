namespace EdgeFleet.Contracts.Drift;

/// <summary>
/// A reference drift profile: what a model's inputs and outputs looked like on the data it was validated on.
/// Attached to a model version; the agent compares each window against it.
/// </summary>
public sealed record DriftProfile
{
    /// <summary>Schema identifier, <c>ef.drift-profile/1</c>.</summary>
    public string Schema { get; set; } = Messaging.Schemas.DriftProfile;

    /// <summary>Identifies the profile (reports name it as their reference).</summary>
    public required string Id { get; init; }

    /// <summary>The model version the profile belongs to, if any.</summary>
    public Messaging.ModelRef? Model { get; init; }

    /// <summary>When it was built.</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>What it was built from (a source URI, a CSV file, …).</summary>
    public string? Source { get; init; }

    /// <summary>Per-feature reference.</summary>
    public required IReadOnlyList<ProfileFeature> Features { get; init; }
}

/// <summary>The reference of one feature.</summary>
public sealed record ProfileFeature
{
    /// <summary>Feature name.</summary>
    public required string Name { get; init; }

    /// <summary><c>numeric</c> or <c>categorical</c>.</summary>
    public string Kind { get; set; } = "numeric";

    /// <summary>Observations the reference saw.</summary>
    public required long Count { get; init; }

    /// <summary>Effective number of independent observations (consecutive frames are correlated); null: <see cref="Count"/>.</summary>
    public double? EffectiveCount { get; init; }

    /// <summary>Mean (numeric).</summary>
    public double Mean { get; init; }

    /// <summary>Population standard deviation (numeric).</summary>
    public double Std { get; init; }

    /// <summary>Minimum (numeric).</summary>
    public double Min { get; init; }

    /// <summary>Maximum (numeric).</summary>
    public double Max { get; init; }

    /// <summary>Interior bin edges: the reference's equal-frequency quantiles (numeric).</summary>
    public IReadOnlyList<double> Edges { get; set; } = [];

    /// <summary>Share of observations in each bin (edges.Count + 1 values).</summary>
    public IReadOnlyList<double> Proportions { get; set; } = [];

    /// <summary>A uniform random sample of the reference values, for KS and Wasserstein (numeric).</summary>
    public IReadOnlyList<double> Sample { get; set; } = [];

    /// <summary>Category code → count (categorical).</summary>
    public IReadOnlyDictionary<string, long> Categories { get; set; } = new Dictionary<string, long>();
}
