using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeFleet.Agent.Capture;

public enum SourceKind
{
    TestPattern,
    File,
    V4l2,
    Rtsp,
    GStreamer,
}

/// <summary>
/// A parsed frame-source URI. Supported forms (query parameters optional):
/// <list type="bullet">
/// <item><c>testsrc://640x480@30?realtime=false&amp;frames=30&amp;filter=eq=brightness=0.2</c> — ffmpeg's test pattern</item>
/// <item><c>file:///videos/line.mp4?loop=true&amp;realtime=true</c> — a video file</item>
/// <item><c>v4l2:///dev/video0?size=1280x720&amp;fps=30&amp;format=mjpeg</c> — a USB/CSI camera through V4L2</item>
/// <item><c>rtsp://user:pass@host:554/stream</c> — an IP camera (TCP transport)</item>
/// <item><c>gst://nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080 ! nvvidconv</c> — a GStreamer pipeline</item>
/// </list>
/// </summary>
public sealed partial record SourceUri
{
    public required SourceKind Kind { get; init; }

    /// <summary>The original text, with any password masked (safe to log).</summary>
    public required string Display { get; init; }

    /// <summary>File path, device path, RTSP URL or GStreamer pipeline.</summary>
    public required string Target { get; init; }

    public int Width { get; init; }

    public int Height { get; init; }

    public double Fps { get; init; }

    /// <summary>Deliver frames at the source's own rate and drop what inference cannot keep up with.</summary>
    public bool Realtime { get; init; } = true;

    public bool Loop { get; init; }

    /// <summary>An extra ffmpeg filter applied before fitting to the model (test pattern and files).</summary>
    public string? Filter { get; init; }

    /// <summary>V4L2 input format (mjpeg, yuyv422, …).</summary>
    public string? InputFormat { get; init; }

    /// <summary>ffmpeg lavfi pattern for testsrc (testsrc2, testsrc, smptebars, mandelbrot, …).</summary>
    public string Pattern { get; init; } = "testsrc2";

    /// <summary>testsrc: frames rendered once and then replayed in a loop (0: render every frame).</summary>
    public int PatternFrames { get; init; } = 30;

    /// <summary>RTSP transport: tcp or udp.</summary>
    public string Transport { get; init; } = "tcp";

    public static bool TryParse(string? text, [NotNullWhen(true)] out SourceUri? source, [NotNullWhen(false)] out string? error)
    {
        source = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty";
            return false;
        }

        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            error = $"'{text}' has no scheme; {Supported}";
            return false;
        }

        var scheme = text[..schemeEnd].ToLowerInvariant();
        var rest = text[(schemeEnd + 3)..];
        try
        {
            source = scheme switch
            {
                "testsrc" => ParseTestSource(text, rest),
                "file" => ParseFile(text, rest),
                "v4l2" => ParseV4l2(text, rest),
                "rtsp" or "rtsps" => ParseRtsp(text),
                "gst" => ParseGst(text, rest),
                _ => throw new FormatException($"scheme '{scheme}' is not supported; {Supported}"),
            };
            return true;
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return false;
        }
    }

    public static SourceUri Parse(string text) =>
        TryParse(text, out var source, out var error) ? source : throw new FormatException($"Source URI {error}");

    public const string Supported =
        "use testsrc://WIDTHxHEIGHT@FPS, file:///path/video.mp4, v4l2:///dev/videoN, rtsp://host/path or gst://PIPELINE";

    private static SourceUri ParseTestSource(string text, string rest)
    {
        var (body, query) = SplitQuery(rest);
        var m = SizeAtFps().Match(body);
        if (!m.Success)
        {
            throw new FormatException($"'{text}' must look like testsrc://640x480@30");
        }

        var width = ParseDimension(m.Groups[1].Value, text);
        var height = ParseDimension(m.Groups[2].Value, text);
        var fps = ParseFps(m.Groups[3].Value, text);
        var pattern = query.GetValueOrDefault("pattern", "testsrc2");
        if (!PatternName().IsMatch(pattern))
        {
            throw new FormatException($"'{text}': pattern '{pattern}' is not a lavfi source name");
        }

        var frames = 30;
        if (query.TryGetValue("frames", out var framesText)
            && (!int.TryParse(framesText, NumberStyles.None, CultureInfo.InvariantCulture, out frames) || frames > 600))
        {
            throw new FormatException($"'{text}': frames={framesText} must be between 0 (render every frame) and 600");
        }

        return new SourceUri
        {
            Kind = SourceKind.TestPattern,
            PatternFrames = frames,
            Display = text,
            Target = body,
            Width = width,
            Height = height,
            Fps = fps,
            Realtime = ParseBool(query, "realtime", true, text),
            Filter = query.GetValueOrDefault("filter"),
            Pattern = pattern,
        };
    }

    private static SourceUri ParseFile(string text, string rest)
    {
        var (path, query) = SplitQuery(rest);
        path = Uri.UnescapeDataString(path);
        if (!path.StartsWith('/'))
        {
            throw new FormatException($"'{text}' needs an absolute path: file:///path/to/video.mp4");
        }

        return new SourceUri
        {
            Kind = SourceKind.File,
            Display = text,
            Target = path,
            Realtime = ParseBool(query, "realtime", true, text),
            Loop = ParseBool(query, "loop", false, text),
            Filter = query.GetValueOrDefault("filter"),
        };
    }

    private static SourceUri ParseV4l2(string text, string rest)
    {
        var (device, query) = SplitQuery(rest);
        if (!V4l2Device().IsMatch(device))
        {
            throw new FormatException($"'{text}' must name a device like v4l2:///dev/video0");
        }

        int width = 0, height = 0;
        if (query.TryGetValue("size", out var size))
        {
            var m = Size().Match(size);
            if (!m.Success)
            {
                throw new FormatException($"'{text}': size must look like 1280x720");
            }

            width = ParseDimension(m.Groups[1].Value, text);
            height = ParseDimension(m.Groups[2].Value, text);
        }

        var format = query.GetValueOrDefault("format");
        if (format is not null && !PatternName().IsMatch(format))
        {
            throw new FormatException($"'{text}': format '{format}' is not a pixel format name");
        }

        return new SourceUri
        {
            Kind = SourceKind.V4l2,
            Display = text,
            Target = device,
            Width = width,
            Height = height,
            Fps = query.TryGetValue("fps", out var fps) ? ParseFps(fps, text) : 0,
            InputFormat = format,
        };
    }

    private static SourceUri ParseRtsp(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new FormatException($"'{Mask(text)}' is not a valid RTSP URL (rtsp://[user:pass@]host[:port]/path)");
        }

        return new SourceUri { Kind = SourceKind.Rtsp, Display = Mask(text), Target = text };
    }

    private static SourceUri ParseGst(string text, string rest)
    {
        var pipeline = rest.Trim();
        if (pipeline.Length == 0)
        {
            throw new FormatException("gst:// needs a pipeline, for example gst://videotestsrc ! video/x-raw,width=640,height=480");
        }

        if (pipeline.Contains("fdsink", StringComparison.Ordinal) || pipeline.TrimEnd().EndsWith('!'))
        {
            throw new FormatException($"'{text}': give the pipeline up to the raw video; EdgeFleet appends the conversion and the sink");
        }

        return new SourceUri { Kind = SourceKind.GStreamer, Display = text, Target = pipeline };
    }

    /// <summary>Replaces the password of user:pass@host with ***.</summary>
    public static string Mask(string text) => UserInfo().Replace(text, m => $"{m.Groups[1].Value}:***@");

    private static (string Body, Dictionary<string, string> Query) SplitQuery(string rest)
    {
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        var query = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (q < 0)
        {
            return (rest, query);
        }

        foreach (var pair in rest[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            query[key] = value;
        }

        return (rest[..q], query);
    }

    private static bool ParseBool(Dictionary<string, string> query, string key, bool fallback, string text)
    {
        if (!query.TryGetValue(key, out var value))
        {
            return fallback;
        }

        return value.ToLowerInvariant() switch
        {
            "true" or "1" or "yes" or "" => true,
            "false" or "0" or "no" => false,
            _ => throw new FormatException($"'{text}': {key}={value} must be true or false"),
        };
    }

    private static int ParseDimension(string value, string text)
    {
        var n = int.Parse(value, CultureInfo.InvariantCulture);
        return n is >= 8 and <= 8192 ? n : throw new FormatException($"'{text}': {n} is not a frame size between 8 and 8192");
    }

    private static double ParseFps(string value, string text)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var fps) || fps is <= 0 or > 1000)
        {
            throw new FormatException($"'{text}': frame rate '{value}' must be a number between 0 and 1000");
        }

        return fps;
    }

    [GeneratedRegex(@"^(\d{1,5})x(\d{1,5})@([0-9.]+)$")]
    private static partial Regex SizeAtFps();

    [GeneratedRegex(@"^(\d{1,5})x(\d{1,5})$")]
    private static partial Regex Size();

    [GeneratedRegex("^[a-z0-9_]{1,32}$")]
    private static partial Regex PatternName();

    [GeneratedRegex(@"^/dev/[A-Za-z0-9_./-]+$")]
    private static partial Regex V4l2Device();

    [GeneratedRegex(@"(//[^:/@]+):[^@/]*@")]
    private static partial Regex UserInfo();
}
