namespace EdgeFleet.Agent.Capture;

/// <summary>
/// One RGB frame (height × width × 3 bytes, interleaved) in a pooled buffer. Whoever holds a frame returns it
/// to its pool when done; frames are never allocated per capture in steady state.
/// </summary>
public sealed class Frame
{
    internal Frame(int width, int height)
    {
        Width = width;
        Height = height;
        Data = new byte[checked(width * height * 3)];
    }

    public int Width { get; }

    public int Height { get; }

    public byte[] Data { get; }

    /// <summary>Number of the frame since the source started (1-based, keeps counting across restarts).</summary>
    public long Sequence { get; internal set; }

    /// <summary><see cref="System.Diagnostics.Stopwatch"/> timestamp of the moment the last byte arrived.</summary>
    public long CapturedAt { get; internal set; }
}

/// <summary>A small pool of equally sized frames. Allocation only happens if more frames are in flight than expected.</summary>
public sealed class FramePool
{
    private readonly Stack<Frame> _free = new();
    private readonly Lock _lock = new();
    private long _allocated;

    public FramePool(int width, int height, int initial = 4)
    {
        Width = width;
        Height = height;
        for (var i = 0; i < initial; i++)
        {
            _free.Push(new Frame(width, height));
            _allocated++;
        }
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Frames ever allocated (grows only when the pool ran dry).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    public Frame Rent()
    {
        lock (_lock)
        {
            if (_free.TryPop(out var frame))
            {
                return frame;
            }

            _allocated++;
        }

        return new Frame(Width, Height);
    }

    public void Return(Frame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (frame.Width != Width || frame.Height != Height)
        {
            return; // from a pool of another size (after a model change); let the GC have it
        }

        lock (_lock)
        {
            _free.Push(frame);
        }
    }
}

/// <summary>Numbers frames across the captures of one pipeline (a model swap may replace the capture).</summary>
public sealed class FrameSequence
{
    private long _last;

    public long Next() => Interlocked.Increment(ref _last);
}
