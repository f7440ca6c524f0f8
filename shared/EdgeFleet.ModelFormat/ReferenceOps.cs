namespace EdgeFleet.ModelFormat;

/// <summary>
/// Plain, obviously-correct implementations of the few operators the sample models use. They compute the
/// self-test's expected outputs independently of ONNX Runtime, so a test that compares the two checks both the
/// graph we write and the runtime that executes it.
/// </summary>
internal static class ReferenceOps
{
    /// <summary>2-D convolution, NCHW with N = 1, square kernel, symmetric padding, group 1.</summary>
    public static float[] Conv(float[] x, int cIn, int h, int w, float[] weights, float[] bias, int cOut, int k, int stride,
        int pad, out int outH, out int outW)
    {
        var oh = (h + 2 * pad - k) / stride + 1;
        var ow = (w + 2 * pad - k) / stride + 1;
        var y = new float[cOut * oh * ow];
        Parallel.For(0, cOut, co =>
        {
            for (var oy = 0; oy < oh; oy++)
            {
                for (var ox = 0; ox < ow; ox++)
                {
                    double acc = bias[co];
                    for (var ci = 0; ci < cIn; ci++)
                    {
                        for (var ky = 0; ky < k; ky++)
                        {
                            var iy = oy * stride + ky - pad;
                            if (iy < 0 || iy >= h)
                            {
                                continue;
                            }

                            for (var kx = 0; kx < k; kx++)
                            {
                                var ix = ox * stride + kx - pad;
                                if (ix < 0 || ix >= w)
                                {
                                    continue;
                                }

                                acc += (double)x[(ci * h + iy) * w + ix] * weights[((co * cIn + ci) * k + ky) * k + kx];
                            }
                        }
                    }

                    y[(co * oh + oy) * ow + ox] = (float)acc;
                }
            }
        });
        outH = oh;
        outW = ow;
        return y;
    }

    public static void Relu(float[] x)
    {
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = Math.Max(0f, x[i]);
        }
    }

    public static void Sigmoid(float[] x)
    {
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)(1.0 / (1.0 + Math.Exp(-x[i])));
        }
    }

    public static float[] GlobalAveragePool(float[] x, int c, int h, int w)
    {
        var y = new float[c];
        for (var ch = 0; ch < c; ch++)
        {
            double sum = 0;
            for (var i = 0; i < h * w; i++)
            {
                sum += x[ch * h * w + i];
            }

            y[ch] = (float)(sum / (h * w));
        }

        return y;
    }

    /// <summary>y = x · Bᵀ + c for a single row x (Gemm with transB = 1).</summary>
    public static float[] Gemm(float[] x, float[] b, float[] c, int outputs)
    {
        var y = new float[outputs];
        for (var o = 0; o < outputs; o++)
        {
            double acc = c[o];
            for (var i = 0; i < x.Length; i++)
            {
                acc += (double)x[i] * b[o * x.Length + i];
            }

            y[o] = (float)acc;
        }

        return y;
    }

    public static void Softmax(float[] x)
    {
        var max = x.Max();
        double sum = 0;
        var e = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            e[i] = Math.Exp(x[i] - max);
            sum += e[i];
        }

        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)(e[i] / sum);
        }
    }

    /// <summary>The manifest's preprocessing, one pixel at a time: interleaved RGB bytes to planar normalised floats.</summary>
    public static float[] Preprocess(ReadOnlySpan<byte> rgb, int width, int height, float scale, IReadOnlyList<float> mean,
        IReadOnlyList<float> std, bool bgr)
    {
        var plane = width * height;
        var y = new float[3 * plane];
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                var source = bgr ? 2 - c : c;
                y[c * plane + p] = (rgb[p * 3 + source] * scale - mean[c]) / std[c];
            }
        }

        return y;
    }
}
