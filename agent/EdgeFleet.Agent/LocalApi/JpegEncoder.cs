using StbImageWriteSharp;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>
/// Baseline JPEG through StbImageWriteSharp (a managed port of stb_image_write, public domain, no native code): no
/// process per snapshot, nothing to install on a device.
/// </summary>
public static class JpegEncoder
{
    public static byte[] Encode(byte[] rgb, int width, int height, int quality)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WriteJpg(rgb, width, height, ColorComponents.RedGreenBlue, stream, quality);
        return stream.ToArray();
    }
}
