namespace EdgeFleet.Contracts.Models;

/// <summary>
/// The self-test input: an interleaved RGB image (height × width × 3 bytes) whose bytes are the low 8 bits of
/// successive SplitMix64 outputs. Defined here so the model builder, the agent and other tools agree exactly.
/// </summary>
public static class SelfTestImage
{
    /// <summary>Fills <paramref name="rgb"/> (length height × width × 3) from <paramref name="seed"/>.</summary>
    public static void Fill(ulong seed, Span<byte> rgb)
    {
        var state = seed;
        for (var i = 0; i < rgb.Length; i++)
        {
            rgb[i] = (byte)NextSplitMix64(ref state);
        }
    }

    /// <summary>Returns a new image of the given size.</summary>
    public static byte[] Create(ulong seed, int width, int height)
    {
        var rgb = new byte[checked(width * height * 3)];
        Fill(seed, rgb);
        return rgb;
    }

    /// <summary>One step of SplitMix64 (Steele, Lea, Flood 2014).</summary>
    public static ulong NextSplitMix64(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        var z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
