using EdgeFleet.Agent.Capture;
using EdgeFleet.Contracts.Models;

namespace EdgeFleet.Agent.Tests;

[Trait("Category", "Unit")]
public sealed class SourceUriTests
{
    [Fact]
    public void Parse_TestPattern_ReadsSizeRateAndOptions()
    {
        var s = SourceUri.Parse("testsrc://640x480@25?realtime=false&frames=0&filter=eq=brightness=0.2&pattern=smptebars");

        Assert.Equal(SourceKind.TestPattern, s.Kind);
        Assert.Equal((640, 480, 25.0), (s.Width, s.Height, s.Fps));
        Assert.False(s.Realtime);
        Assert.Equal(0, s.PatternFrames);
        Assert.Equal("eq=brightness=0.2", s.Filter);
        Assert.Equal("smptebars", s.Pattern);
    }

    [Fact]
    public void Parse_TestPatternDefaults_AreRealtimeAndLooped()
    {
        var s = SourceUri.Parse("testsrc://320x240@30");

        Assert.True(s.Realtime);
        Assert.Equal(30, s.PatternFrames);
    }

    [Fact]
    public void Parse_File_KeepsPathAndLoop()
    {
        var s = SourceUri.Parse("file:///videos/line%201.mp4?loop=true");

        Assert.Equal(SourceKind.File, s.Kind);
        Assert.Equal("/videos/line 1.mp4", s.Target);
        Assert.True(s.Loop);
    }

    [Fact]
    public void Parse_V4l2_ReadsDeviceAndFormat()
    {
        var s = SourceUri.Parse("v4l2:///dev/video2?size=1280x720&fps=30&format=mjpeg");

        Assert.Equal("/dev/video2", s.Target);
        Assert.Equal((1280, 720, 30.0, "mjpeg"), (s.Width, s.Height, s.Fps, s.InputFormat));
    }

    [Fact]
    public void Parse_RtspWithPassword_MasksItInDisplay()
    {
        var s = SourceUri.Parse("rtsp://admin:s3cret@10.0.0.5:554/stream1");

        Assert.Equal(SourceKind.Rtsp, s.Kind);
        Assert.Equal("rtsp://admin:s3cret@10.0.0.5:554/stream1", s.Target);
        Assert.DoesNotContain("s3cret", s.Display, StringComparison.Ordinal);
        Assert.Contains("admin:***@", s.Display, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("/dev/video0", "no scheme")]
    [InlineData("http://camera/stream", "not supported")]
    [InlineData("testsrc://640x480", "testsrc://640x480@30")]
    [InlineData("testsrc://640x480@0", "frame rate")]
    [InlineData("testsrc://99999x480@30", "frame size")]
    [InlineData("testsrc://640x480@30?realtime=maybe", "true or false")]
    [InlineData("testsrc://640x480@30?frames=9999", "frames")]
    [InlineData("file://relative/path.mp4", "absolute path")]
    [InlineData("v4l2://video0", "device")]
    [InlineData("gst://", "needs a pipeline")]
    [InlineData("gst://videotestsrc ! fdsink", "appends")]
    public void TryParse_BadUri_ExplainsWhy(string text, string expected)
    {
        Assert.False(SourceUri.TryParse(text, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ResizeMode.Stretch, "scale=224:160")]
    [InlineData(ResizeMode.Letterbox, "scale=224:160:force_original_aspect_ratio=decrease,pad=224:160:(ow-iw)/2:(oh-ih)/2:color=0x727272")]
    [InlineData(ResizeMode.CenterCrop, "scale=224:160:force_original_aspect_ratio=increase,crop=224:160")]
    public void FitFilter_EachResizeMode_FitsExactlyTheModelSize(ResizeMode mode, string expected)
    {
        Assert.Equal(expected, CaptureCommand.FitFilter(224, 160, mode));
    }

    [Fact]
    public void Create_RtspCommand_MasksThePasswordWhenPrinted()
    {
        var command = CaptureCommand.Create(SourceUri.Parse("rtsp://u:pw@cam/s"), 64, 64, ResizeMode.Stretch, "ffmpeg", "gst-launch-1.0");

        Assert.Contains("rtsp://u:pw@cam/s", command.Arguments);
        Assert.DoesNotContain(":pw@", command.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Create_GStreamer_AppendsConversionAndSink()
    {
        var command = CaptureCommand.Create(SourceUri.Parse("gst://videotestsrc"), 64, 48, ResizeMode.Letterbox, "ffmpeg", "gst-launch-1.0");

        Assert.Equal("gst-launch-1.0", command.FileName);
        Assert.Equal(["-q", "-e", "videotestsrc", "!", "videoconvert"], command.Arguments.Take(5));
        Assert.Contains("video/x-raw,format=RGB,width=64,height=48,pixel-aspect-ratio=1/1", command.Arguments);
        Assert.Equal(["fdsink", "fd=1", "sync=false"], command.Arguments.TakeLast(3));
    }

    [Fact]
    public void Tokenize_QuotedParts_StayTogether()
    {
        Assert.Equal(["filesrc", "location=/videos/my clip.mp4", "!", "decodebin"],
            CaptureCommand.Tokenize("filesrc location=\"/videos/my clip.mp4\"  ! decodebin"));
    }
}
