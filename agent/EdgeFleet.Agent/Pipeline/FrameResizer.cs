using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Pipeline;

/// <summary>
/// Our own resize stage: interleaved RGB of one size → another, with a manifest's resize mode (stretch, letterbox
/// with grey 114 padding, center-crop), bilinear in fixed point. It serves a model whose input differs from what the
/// capture delivers (right after a swap, and the shadow candidate). The coordinate tables are built once per pair of
/// sizes; a resize allocates nothing. Bilinear from a frame that is already small: fine for nearby sizes, blurrier
/// than the capture's own area scaling for large factors.
/// </summary>
public sealed class FrameResizer
{
    private const byte Pad = 114;

    private int _sw, _sh, _dw, _dh;
    private ResizeMode _mode;
    private int[] _x0 = [], _x1 = [], _wx = [];
    private int[] _y0 = [], _y1 = [], _wy = [];

    public void Resize(ReadOnlySpan<byte> source, int sourceWidth, int sourceHeight, Span<byte> destination, int width, int height,
        ResizeMode mode)
    {
        if (source.Length < sourceWidth * sourceHeight * 3 || destination.Length < width * height * 3)
        {
            throw new ArgumentException($"buffers do not fit {sourceWidth}×{sourceHeight} → {width}×{height}");
        }

        if (sourceWidth != _sw || sourceHeight != _sh || width != _dw || height != _dh || mode != _mode || _x0.Length == 0)
        {
            Prepare(sourceWidth, sourceHeight, width, height, mode);
        }

        var srcStride = sourceWidth * 3;
        for (var y = 0; y < height; y++)
        {
            var row = destination.Slice(y * width * 3, width * 3);
            var wy = _wy[y];
            if (wy < 0)
            {
                row.Fill(Pad);
                continue;
            }

            var top = source.Slice(_y0[y] * srcStride, srcStride);
            var bottom = source.Slice(_y1[y] * srcStride, srcStride);
            var iy = 256 - wy;
            for (var x = 0; x < width; x++)
            {
                var wx = _wx[x];
                var d = x * 3;
                if (wx < 0)
                {
                    row[d] = row[d + 1] = row[d + 2] = Pad;
                    continue;
                }

                var a = _x0[x];
                var b = _x1[x];
                var ix = 256 - wx;
                for (var c = 0; c < 3; c++)
                {
                    var t = top[a + c] * ix + top[b + c] * wx;
                    var u = bottom[a + c] * ix + bottom[b + c] * wx;
                    row[d + c] = (byte)((t * iy + u * wy + 32768) >> 16);
                }
            }
        }
    }

    /// <summary>
    /// How fitting <paramref name="sw"/>×<paramref name="sh"/> to <paramref name="dw"/>×<paramref name="dh"/> maps
    /// coordinates: a point x of the fitted picture is <c>x / ScaleX + OffsetX</c> in the source (the same for y).
    /// </summary>
    public static (double ScaleX, double ScaleY, double OffsetX, double OffsetY) Mapping(int sw, int sh, int dw, int dh, ResizeMode mode)
    {
        var (scaleX, scaleY, offsetX, offsetY, _, _, _, _) = Fit(sw, sh, dw, dh, mode);
        return (scaleX, scaleY, offsetX, offsetY);
    }

    private static (double ScaleX, double ScaleY, double OffsetX, double OffsetY, int X0, int X1, int Y0, int Y1) Fit(int sw, int sh, int dw, int dh,
        ResizeMode mode)
    {
        double scaleX, scaleY, offsetX = 0, offsetY = 0;
        int coveredX0 = 0, coveredX1 = dw, coveredY0 = 0, coveredY1 = dh;
        switch (mode)
        {
            case ResizeMode.Letterbox:
            {
                var s = Math.Min(dw / (double)sw, dh / (double)sh);
                scaleX = scaleY = s;
                var nw = (int)Math.Round(sw * s);
                var nh = (int)Math.Round(sh * s);
                coveredX0 = (dw - nw) / 2;
                coveredX1 = coveredX0 + nw;
                coveredY0 = (dh - nh) / 2;
                coveredY1 = coveredY0 + nh;
                offsetX = -coveredX0 / s;
                offsetY = -coveredY0 / s;
                break;
            }

            case ResizeMode.CenterCrop:
            {
                var s = Math.Max(dw / (double)sw, dh / (double)sh);
                scaleX = scaleY = s;
                offsetX = (sw - dw / s) / 2;
                offsetY = (sh - dh / s) / 2;
                break;
            }

            default:
                scaleX = dw / (double)sw;
                scaleY = dh / (double)sh;
                break;
        }

        return (scaleX, scaleY, offsetX, offsetY, coveredX0, coveredX1, coveredY0, coveredY1);
    }

    private void Prepare(int sw, int sh, int dw, int dh, ResizeMode mode)
    {
        var (scaleX, scaleY, offsetX, offsetY, coveredX0, coveredX1, coveredY0, coveredY1) = Fit(sw, sh, dw, dh, mode);
        (_x0, _x1, _wx) = Axis(dw, sw, scaleX, offsetX, coveredX0, coveredX1, 3);
        (_y0, _y1, _wy) = Axis(dh, sh, scaleY, offsetY, coveredY0, coveredY1, 1);
        (_sw, _sh, _dw, _dh, _mode) = (sw, sh, dw, dh, mode);
    }

    /// <summary>Per destination index: the two source indices (times <paramref name="step"/>) and the weight of the second, −1 for padding.</summary>
    private static (int[] I0, int[] I1, int[] W) Axis(int dst, int src, double scale, double offset, int covered0, int covered1, int step)
    {
        var i0 = new int[dst];
        var i1 = new int[dst];
        var w = new int[dst];
        for (var d = 0; d < dst; d++)
        {
            if (d < covered0 || d >= covered1)
            {
                w[d] = -1;
                continue;
            }

            var s = Math.Clamp((d + 0.5) / scale + offset - 0.5, 0, src - 1);
            var lo = (int)Math.Floor(s);
            var hi = Math.Min(lo + 1, src - 1);
            i0[d] = lo * step;
            i1[d] = hi * step;
            w[d] = (int)Math.Round((s - lo) * 256);
        }

        return (i0, i1, w);
    }
}
