namespace EdgeFleet.Drift;

/// <summary>
/// Cheap per-frame input features, computed on the model-sized RGB frame (DESIGN.md §8): luma mean and standard
/// deviation (brightness, contrast), sharpness (variance of the 4-neighbour Laplacian of luma), per-channel means,
/// mean saturation and the fractions of clipped-dark and clipped-bright pixels. To keep the cost a small, fixed
/// fraction of inference whatever the input size, a regular grid of about <see cref="TargetSamples"/> pixels is
/// read (every 3rd pixel of every 3rd row at 224×224); the features are averages, so the grid changes them little.
/// Integer arithmetic, one pass, no allocation after the first frame.
/// </summary>
public sealed class FrameFeatures
{
    public const int LumaMean = 0;
    public const int LumaStd = 1;
    public const int Sharpness = 2;
    public const int RedMean = 3;
    public const int GreenMean = 4;
    public const int BlueMean = 5;
    public const int SaturationMean = 6;
    public const int DarkFraction = 7;
    public const int BrightFraction = 8;

    /// <summary>Pixels read per frame (approximately).</summary>
    public const int TargetSamples = 6000;

    /// <summary>Luma at or below this is "clipped dark"; at or above 255 − this, "clipped bright".</summary>
    public const int ClipMargin = 16;

    /// <summary>Feature names, by index.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "luma_mean", "luma_std", "sharpness", "red_mean", "green_mean", "blue_mean", "saturation_mean", "dark_fraction",
        "bright_fraction",
    ];

    // saturation = (max − min) / max, in 1/256 units via a reciprocal table
    private static readonly int[] Reciprocal = Enumerable.Range(0, 256).Select(m => m == 0 ? 0 : (1 << 16) / m).ToArray();

    private int[] _luma = [];

    /// <summary>The grid step used for a frame of this size.</summary>
    public static int Step(int width, int height) => Math.Max(1, (int)Math.Ceiling(Math.Sqrt(width * (double)height / TargetSamples)));

    /// <summary>Computes every feature of an interleaved RGB frame into <paramref name="features"/> (length ≥ 9).</summary>
    public void Compute(ReadOnlySpan<byte> rgb, int width, int height, Span<double> features)
    {
        if (rgb.Length < width * height * 3 || features.Length < Names.Count)
        {
            throw new ArgumentException("frame or feature buffer too small");
        }

        var step = Step(width, height);
        var cols = (width + step - 1) / step;
        var rows = (height + step - 1) / step;
        if (_luma.Length < cols * rows)
        {
            _luma = new int[cols * rows];
        }

        var luma = _luma.AsSpan(0, cols * rows);
        long sumY = 0, sumY2 = 0, sumR = 0, sumG = 0, sumB = 0, sumS = 0, dark = 0, bright = 0;
        var stride = width * 3;
        var k = 0;
        for (var y = 0; y < height; y += step)
        {
            var row = rgb.Slice(y * stride, stride);
            for (var x = 0; x < width; x += step, k++)
            {
                int r = row[x * 3], g = row[x * 3 + 1], b = row[x * 3 + 2];
                var l = (77 * r + 150 * g + 29 * b) >> 8; // BT.601 luma, 0–255
                luma[k] = l;
                sumY += l;
                sumY2 += l * l;
                sumR += r;
                sumG += g;
                sumB += b;
                int max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b));
                sumS += (max - min) * Reciprocal[max]; // × 2^16
                dark += l <= ClipMargin ? 1 : 0;
                bright += l >= 255 - ClipMargin ? 1 : 0;
            }
        }

        long sumL = 0, sumL2 = 0, laplacians = 0;
        for (var gy = 1; gy < rows - 1; gy++)
        {
            var up = luma.Slice((gy - 1) * cols, cols);
            var mid = luma.Slice(gy * cols, cols);
            var down = luma.Slice((gy + 1) * cols, cols);
            for (var gx = 1; gx < cols - 1; gx++)
            {
                long lap = up[gx] + down[gx] + mid[gx - 1] + mid[gx + 1] - 4 * mid[gx];
                sumL += lap;
                sumL2 += lap * lap;
            }

            laplacians += cols - 2;
        }

        double n = k;
        var meanY = sumY / n;
        features[LumaMean] = meanY;
        features[LumaStd] = Math.Sqrt(Math.Max(0, sumY2 / n - meanY * meanY));
        var meanL = laplacians == 0 ? 0 : sumL / (double)laplacians;
        features[Sharpness] = laplacians == 0 ? 0 : Math.Max(0, sumL2 / (double)laplacians - meanL * meanL);
        features[RedMean] = sumR / n;
        features[GreenMean] = sumG / n;
        features[BlueMean] = sumB / n;
        features[SaturationMean] = sumS / n / 65536.0;
        features[DarkFraction] = dark / n;
        features[BrightFraction] = bright / n;
    }
}
