using EdgeFleet.Agent.Pipeline;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class PreprocessorTests
{
    [Theory]
    [InlineData(224, 224, false)]
    [InlineData(17, 5, false)]   // pixel count not a multiple of 16: the scalar tail runs too
    [InlineData(64, 48, true)]
    [InlineData(3, 3, true)]     // smaller than one vector
    public void Run_RandomImage_MatchesScalarReference(int width, int height, bool bgr)
    {
        var rgb = new byte[width * height * 3];
        new Random(width * 31 + height).NextBytes(rgb);
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        const float scale = 1f / 255f;
        var actual = new float[3 * width * height];

        new Preprocessor(width, height, scale, mean, std, bgr).Run(rgb, actual);

        var plane = width * height;
        for (var c = 0; c < 3; c++)
        {
            var source = bgr ? 2 - c : c;
            for (var p = 0; p < plane; p++)
            {
                var expected = (rgb[p * 3 + source] * scale - mean[c]) / std[c];
                Assert.True(Math.Abs(expected - actual[c * plane + p]) <= 1e-5f * Math.Max(1, Math.Abs(expected)),
                    $"channel {c} pixel {p}: expected {expected}, got {actual[c * plane + p]}");
            }
        }
    }

    [Fact]
    public void Run_ExtremePixels_MapToTheExpectedRange()
    {
        var rgb = new byte[16 * 3 * 2];
        for (var i = 0; i < 16 * 3; i++)
        {
            rgb[i] = 255;
        }

        var tensor = new float[rgb.Length];
        new Preprocessor(32, 1, 1f / 255f, [0f, 0f, 0f], [1f, 1f, 1f], bgr: false).Run(rgb, tensor);

        Assert.All(tensor.Where((_, i) => i % 32 < 16), v => Assert.Equal(1f, v, 6));
        Assert.All(tensor.Where((_, i) => i % 32 >= 16), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Run_BufferTooSmall_Throws()
    {
        var p = new Preprocessor(8, 8, 1, [0f, 0f, 0f], [1f, 1f, 1f], false);
        Assert.Throws<ArgumentException>(() => p.Run(new byte[10], new float[192]));
    }

    [Fact]
    public void Run_SteadyState_AllocatesNothing()
    {
        var p = new Preprocessor(224, 224, 1f / 255f, [0f, 0f, 0f], [1f, 1f, 1f], false);
        var rgb = new byte[224 * 224 * 3];
        var tensor = new float[rgb.Length];
        p.Run(rgb, tensor);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            p.Run(rgb, tensor);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
