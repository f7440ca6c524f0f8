using System.Globalization;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Capture;

/// <summary>
/// The child process that turns a source into raw RGB frames already fitted to the model input: ffmpeg for
/// everything but gst:// pipelines, which run in gst-launch-1.0. Frames arrive on stdout, width × height × 3 bytes each.
/// </summary>
public sealed record CaptureCommand(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>Grey used to pad letterboxed frames (114, as YOLO models are trained).</summary>
    public const string LetterboxColor = "0x727272";

    public static CaptureCommand Create(SourceUri source, int width, int height, ResizeMode resize, string ffmpegPath,
        string gstLaunchPath)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.Kind == SourceKind.GStreamer
            ? GStreamer(source, width, height, resize, gstLaunchPath)
            : Ffmpeg(source, width, height, resize, ffmpegPath);
    }

    /// <summary>ffmpeg's -vf chain that fits any frame to width × height.</summary>
    public static string FitFilter(int width, int height, ResizeMode resize)
    {
        var w = width.ToString(CultureInfo.InvariantCulture);
        var h = height.ToString(CultureInfo.InvariantCulture);
        return resize switch
        {
            ResizeMode.Letterbox =>
                $"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color={LetterboxColor}",
            ResizeMode.CenterCrop => $"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}",
            _ => $"scale={w}:{h}",
        };
    }

    private static CaptureCommand Ffmpeg(SourceUri source, int width, int height, ResizeMode resize, string ffmpeg)
    {
        var args = new List<string> { "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning" };
        switch (source.Kind)
        {
            case SourceKind.TestPattern:
                // Paced by the realtime filter at the end of the chain (see below), not by -re.
                args.AddRange(["-f", "lavfi", "-i",
                    string.Create(CultureInfo.InvariantCulture, $"{source.Pattern}=size={source.Width}x{source.Height}:rate={source.Fps}")]);
                break;
            case SourceKind.File:
                if (source.Realtime)
                {
                    args.Add("-re");
                }

                if (source.Loop)
                {
                    args.AddRange(["-stream_loop", "-1"]);
                }

                args.AddRange(["-i", source.Target]);
                break;
            case SourceKind.V4l2:
                args.AddRange(["-f", "v4l2"]);
                if (source.InputFormat is { } format)
                {
                    args.AddRange(["-input_format", format]);
                }

                if (source.Width > 0)
                {
                    args.AddRange(["-video_size", string.Create(CultureInfo.InvariantCulture, $"{source.Width}x{source.Height}")]);
                }

                if (source.Fps > 0)
                {
                    args.AddRange(["-framerate", source.Fps.ToString(CultureInfo.InvariantCulture)]);
                }

                args.AddRange(["-i", source.Target]);
                break;
            case SourceKind.Rtsp:
                // Low-latency input: no demuxer buffering, TCP so a lossy network does not smear frames.
                args.AddRange(["-rtsp_transport", source.Transport, "-fflags", "nobuffer", "-flags", "low_delay",
                    "-timeout", "5000000", "-i", source.Target]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(source), source.Kind, "not an ffmpeg source");
        }

        var filter = FitFilter(width, height, resize);
        if (source.Filter is { Length: > 0 } extra)
        {
            filter = extra + "," + filter;
        }

        if (source.Kind == SourceKind.TestPattern && source.PatternFrames > 0)
        {
            // Render the pattern once for N frames, already fitted, then replay them: a synthetic camera whose frames
            // cost almost nothing, so the CPU goes to the pipeline being measured.
            filter += string.Create(CultureInfo.InvariantCulture, $",format=rgb24,loop=loop=-1:size={source.PatternFrames}");
        }

        if (source.Kind == SourceKind.TestPattern && source.Realtime)
        {
            // limit: the realtime filter ignores gaps above it (default 2 s), which slow patterns have between frames.
            filter += string.Create(CultureInfo.InvariantCulture, $",realtime=limit={Math.Max(2, 2 / source.Fps):0.###}");
        }

        // area: good quality for the usual downscale, cheaper than the default bicubic.
        args.AddRange(["-an", "-sn", "-sws_flags", "area", "-vf", filter, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]);
        return new CaptureCommand(ffmpeg, args);
    }

    private static CaptureCommand GStreamer(SourceUri source, int width, int height, ResizeMode resize, string gstLaunch)
    {
        var fit = resize switch
        {
            // videoscale's add-borders keeps the aspect ratio with black borders (GStreamer cannot choose the colour).
            ResizeMode.Letterbox => "videoscale add-borders=true",
            ResizeMode.CenterCrop => string.Create(CultureInfo.InvariantCulture, $"aspectratiocrop aspect-ratio={width}/{height} ! videoscale add-borders=false"),
            _ => "videoscale add-borders=false",
        };
        var caps = string.Create(CultureInfo.InvariantCulture, $"video/x-raw,format=RGB,width={width},height={height},pixel-aspect-ratio=1/1");
        var pipeline = $"{source.Target} ! videoconvert ! {fit} ! videoconvert ! {caps} ! fdsink fd=1 sync=false";
        // gst-launch parses its arguments as separate tokens (one argument with spaces is a syntax error).
        return new CaptureCommand(gstLaunch, ["-q", "-e", .. Tokenize(pipeline)]);
    }

    /// <summary>Splits on whitespace, keeping "double" or 'single' quoted parts (quotes removed) together.</summary>
    internal static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var current = new System.Text.StringBuilder();
        char? quote = null;
        var inToken = false;
        foreach (var c in text)
        {
            if (quote is { } q)
            {
                if (c == q)
                {
                    quote = null;
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inToken = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inToken)
                {
                    tokens.Add(current.ToString());
                    current.Clear();
                    inToken = false;
                }
            }
            else
            {
                current.Append(c);
                inToken = true;
            }
        }

        if (inToken)
        {
            tokens.Add(current.ToString());
        }

        return tokens;
    }

    /// <summary>The command line with any RTSP password masked (safe to log).</summary>
    public override string ToString() =>
        FileName + " " + string.Join(' ', Arguments.Select(SourceUri.Mask)
            .Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
}
