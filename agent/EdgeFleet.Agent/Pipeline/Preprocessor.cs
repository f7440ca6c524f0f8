using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// Interleaved uint8 RGB (height × width × 3) → planar float32 NCHW, <c>(pixel × scale − mean) / std</c> per
/// channel, optionally swapping to BGR. One pass, 16 pixels at a time: a byte shuffle (SSSE3 PSHUFB / NEON TBL)
/// splits the channels, then they are widened to float and scaled with one (fused where the CPU has it) multiply-add per 4 values.
/// </summary>
public sealed class Preprocessor
{
    private static readonly Vector128<byte>[] Masks = BuildMasks();

    private readonly float[] _multiplier = new float[3];
    private readonly float[] _offset = new float[3];
    private readonly bool _bgr;

    public Preprocessor(int width, int height, float scale, IReadOnlyList<float> mean, IReadOnlyList<float> std, bool bgr)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        Width = width;
        Height = height;
        _bgr = bgr;
        for (var c = 0; c < 3; c++)
        {
            // (p·scale − mean)/std = p·(scale/std) + (−mean/std)
            _multiplier[c] = scale / std[c];
            _offset[c] = -mean[c] / std[c];
        }
    }

    public static Preprocessor For(ManifestInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Preprocessor(input.Width, input.Height, input.Scale, input.Mean, input.Std, input.ColorOrder == "BGR");
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Whether the SIMD path runs on this machine (else a scalar loop does the same).</summary>
    public static bool IsVectorized => Ssse3.IsSupported || AdvSimd.Arm64.IsSupported;

    public void Run(ReadOnlySpan<byte> rgb, Span<float> nchw)
    {
        var plane = Width * Height;
        if (rgb.Length < plane * 3 || nchw.Length < plane * 3)
        {
            throw new ArgumentException($"Frame of {rgb.Length} bytes or tensor of {nchw.Length} floats does not fit {Width}×{Height}×3");
        }

        // Model channel c reads source channel c (RGB) or 2 − c (BGR).
        var r = _bgr ? 2 : 0;
        var b = _bgr ? 0 : 2;
        Convert(rgb, nchw.Slice(r * plane, plane), nchw.Slice(plane, plane), nchw.Slice(b * plane, plane),
            _multiplier[r], _offset[r], _multiplier[1], _offset[1], _multiplier[b], _offset[b]);
    }

    private static void Convert(ReadOnlySpan<byte> src, Span<float> rOut, Span<float> gOut, Span<float> bOut,
        float rm, float ro, float gm, float go, float bm, float bo)
    {
        var n = rOut.Length;
        var i = 0;
        if (IsVectorized && n >= 16)
        {
            ref var s = ref MemoryMarshal.GetReference(src);
            ref var rd = ref MemoryMarshal.GetReference(rOut);
            ref var gd = ref MemoryMarshal.GetReference(gOut);
            ref var bd = ref MemoryMarshal.GetReference(bOut);
            var rmv = Vector128.Create(rm);
            var rov = Vector128.Create(ro);
            var gmv = Vector128.Create(gm);
            var gov = Vector128.Create(go);
            var bmv = Vector128.Create(bm);
            var bov = Vector128.Create(bo);
            var masks = Masks;
            for (; i <= n - 16; i += 16)
            {
                var offset = (nuint)(i * 3);
                var v0 = Vector128.LoadUnsafe(ref s, offset);
                var v1 = Vector128.LoadUnsafe(ref s, offset + 16);
                var v2 = Vector128.LoadUnsafe(ref s, offset + 32);
                var red = Shuffle(v0, masks[0]) | Shuffle(v1, masks[1]) | Shuffle(v2, masks[2]);
                var green = Shuffle(v0, masks[3]) | Shuffle(v1, masks[4]) | Shuffle(v2, masks[5]);
                var blue = Shuffle(v0, masks[6]) | Shuffle(v1, masks[7]) | Shuffle(v2, masks[8]);
                Store(red, rmv, rov, ref rd, (nuint)i);
                Store(green, gmv, gov, ref gd, (nuint)i);
                Store(blue, bmv, bov, ref bd, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            rOut[i] = src[i * 3] * rm + ro;
            gOut[i] = src[i * 3 + 1] * gm + go;
            bOut[i] = src[i * 3 + 2] * bm + bo;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Shuffle(Vector128<byte> value, Vector128<byte> mask)
    {
        if (Ssse3.IsSupported)
        {
            return Ssse3.Shuffle(value, mask); // mask bytes with the high bit set give 0
        }

        if (AdvSimd.Arm64.IsSupported)
        {
            return AdvSimd.Arm64.VectorTableLookup(value, mask); // indices ≥ 16 give 0
        }

        return Vector128.Shuffle(value, mask);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector128<byte> bytes, Vector128<float> multiplier, Vector128<float> offset, ref float destination, nuint index)
    {
        var (lo, hi) = Vector128.Widen(bytes);
        var (a, b) = Vector128.Widen(lo);
        var (c, d) = Vector128.Widen(hi);
        Scale(a, multiplier, offset).StoreUnsafe(ref destination, index);
        Scale(b, multiplier, offset).StoreUnsafe(ref destination, index + 4);
        Scale(c, multiplier, offset).StoreUnsafe(ref destination, index + 8);
        Scale(d, multiplier, offset).StoreUnsafe(ref destination, index + 12);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Scale(Vector128<uint> value, Vector128<float> multiplier, Vector128<float> offset) =>
        Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(value.AsInt32()), multiplier, offset);

    /// <summary>For channel c and input vector k: byte 3p + c − 16k of vector k lands in lane p, or 0x80 (zero).</summary>
    private static Vector128<byte>[] BuildMasks()
    {
        var masks = new Vector128<byte>[9];
        Span<byte> lanes = stackalloc byte[16];
        for (var c = 0; c < 3; c++)
        {
            for (var k = 0; k < 3; k++)
            {
                for (var p = 0; p < 16; p++)
                {
                    var index = 3 * p + c - 16 * k;
                    lanes[p] = index is >= 0 and < 16 ? (byte)index : (byte)0x80;
                }

                masks[c * 3 + k] = Vector128.Create<byte>(lanes);
            }
        }

        return masks;
    }
}
