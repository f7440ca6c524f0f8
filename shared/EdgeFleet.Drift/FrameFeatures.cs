namespace EdgeFleet.Drift;

/// <summary>
/// Cheap per-frame input features, computed on the model-sized RGB frame (DESIGN.md §8). To keep the cost a small
/// fraction of inference, every second pixel of every second row is read (a quarter of the frame; the features are
/// averages, so this changes them very little).
/// </summary>
public static class FrameFeatures
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

    /// <summary>Feature names, by index.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "luma_mean", "luma_std", "sharpness", "red_mean", "green_mean", "blue_mean", "saturation_mean", "dark_fraction",
        "bright_fraction",
    ];

    /// <summary>Luma at or below this is "clipped dark"; at or above 255 − this, "clipped bright".</summary>
    public const int ClipMargin = 16;

    /// <summary>
    /// Computes every feature of an interleaved RGB frame into <paramref name="features"/> (length ≥ 9).
    /// Sharpness is the variance of the 4-neighbour Laplacian of luma on the subsampled grid.
    /// </summary>
    public static void Compute(ReadOnlySpan<byte> rgb, int width, int height, Span<double> features)
    {
        if (rgb.Length < width * height * 3 || features.Length < Names.Count)
        {
            throw new ArgumentException("frame or feature buffer too small");
        }

        const int step = 2;
        long n = 0, dark = 0, bright = 0;
        double sumY = 0, sumY2 = 0, sumR = 0, sumG = 0, sumB = 0, sumS = 0, sumL = 0, sumL2 = 0;
        long laplacians = 0;
        var stride = width * 3;
        for (var y = 0; y < height; y += step)
        {
            var row = rgb.Slice(y * stride, stride);
            for (var x = 0; x < width; x += step)
            {
                int r = row[x * 3], g = row[x * 3 + 1], b = row[x * 3 + 2];
                var luma = Luma(r, g, b);
                sumY += luma;
                sumY2 += luma * luma;
                sumR += r;
                sumG += g;
                sumB += b;
                int max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b));
                sumS += max == 0 ? 0 : (max - min) / (double)max;
                if (luma <= ClipMargin)
                {
                    dark++;
                }
                else if (luma >= 255 - ClipMargin)
                {
                    bright++;
                }

                n++;
                if (x >= step && y >= step && x + step < width && y + step < height)
                {
                    var up = LumaAt(rgb, stride, x, y - step);
                    var down = LumaAt(rgb, stride, x, y + step);
                    var left = LumaAt(rgb, stride, x - step, y);
                    var right = LumaAt(rgb, stride, x + step, y);
                    var lap = up + down + left + right - 4 * luma;
                    sumL += lap;
                    sumL2 += lap * lap;
                    laplacians++;
                }
            }
        }

        var meanY = sumY / n;
        features[LumaMean] = meanY;
        features[LumaStd] = Math.Sqrt(Math.Max(0, sumY2 / n - meanY * meanY));
        var meanL = laplacians == 0 ? 0 : sumL / laplacians;
        features[Sharpness] = laplacians == 0 ? 0 : Math.Max(0, sumL2 / laplacians - meanL * meanL);
        features[RedMean] = sumR / n;
        features[GreenMean] = sumG / n;
        features[BlueMean] = sumB / n;
        features[SaturationMean] = sumS / n;
        features[DarkFraction] = dark / (double)n;
        features[BrightFraction] = bright / (double)n;
    }

    /// <summary>BT.601 luma.</summary>
    private static double Luma(int r, int g, int b) => 0.299 * r + 0.587 * g + 0.114 * b;

    private static double LumaAt(ReadOnlySpan<byte> rgb, int stride, int x, int y)
    {
        var p = y * stride + x * 3;
        return Luma(rgb[p], rgb[p + 1], rgb[p + 2]);
    }
}
