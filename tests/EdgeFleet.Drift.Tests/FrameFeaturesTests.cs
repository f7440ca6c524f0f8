namespace EdgeFleet.Drift.Tests;

[Trait("Category", "Unit")]
public sealed class FrameFeaturesTests
{
    private static double[] Features(byte[] rgb, int w, int h)
    {
        var f = new double[FrameFeatures.Names.Count];
        new FrameFeatures().Compute(rgb, w, h, f);
        return f;
    }

    private static byte[] Solid(int w, int h, byte r, byte g, byte b)
    {
        var rgb = new byte[w * h * 3];
        for (var i = 0; i < w * h; i++)
        {
            rgb[i * 3] = r;
            rgb[i * 3 + 1] = g;
            rgb[i * 3 + 2] = b;
        }

        return rgb;
    }

    [Fact]
    public void SolidGrey_HasItsLumaAndNoContrastOrSaturation()
    {
        var f = Features(Solid(64, 64, 128, 128, 128), 64, 64);

        Assert.Equal(128, f[FrameFeatures.LumaMean], 9); // (77 + 150 + 29)·128 >> 8: the weights sum to 256
        Assert.Equal(0, f[FrameFeatures.LumaStd]);
        Assert.Equal(0, f[FrameFeatures.Sharpness]);
        Assert.Equal(0, f[FrameFeatures.SaturationMean]);
        Assert.Equal(128, f[FrameFeatures.RedMean]);
        Assert.Equal((0.0, 0.0), (f[FrameFeatures.DarkFraction], f[FrameFeatures.BrightFraction]));
    }

    [Fact]
    public void BlackAndWhite_AreClipped()
    {
        Assert.Equal(1, Features(Solid(32, 32, 0, 0, 0), 32, 32)[FrameFeatures.DarkFraction]);
        Assert.Equal(1, Features(Solid(32, 32, 255, 255, 255), 32, 32)[FrameFeatures.BrightFraction]);
    }

    [Fact]
    public void PureRed_IsFullySaturated()
    {
        Assert.Equal(1, Features(Solid(32, 32, 255, 0, 0), 32, 32)[FrameFeatures.SaturationMean], 2);
    }

    [Fact]
    public void Checkerboard_IsSharperThanAFlatImage()
    {
        const int size = 96;
        var rgb = new byte[size * size * 3];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var v = (byte)((x / 6 + y / 6) % 2 == 0 ? 230 : 20);
                rgb[(y * size + x) * 3] = rgb[(y * size + x) * 3 + 1] = rgb[(y * size + x) * 3 + 2] = v;
            }
        }

        var f = Features(rgb, size, size);
        Assert.True(f[FrameFeatures.Sharpness] > 1000, $"sharpness {f[FrameFeatures.Sharpness]}");
        Assert.True(f[FrameFeatures.LumaStd] > 90);
    }

    [Fact]
    public void Step_KeepsAboutTheTargetNumberOfSamples()
    {
        Assert.Equal(3, FrameFeatures.Step(224, 224));
        Assert.Equal(1, FrameFeatures.Step(64, 64));
        Assert.Equal(9, FrameFeatures.Step(640, 640));
    }
}
