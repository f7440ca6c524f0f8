using System.Text;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// Reads mosquitto's log file while mosquitto appends to it: the lines written since a given moment (to see it
/// report "running" or "Reloading config.") and the last lines (for error messages).
/// </summary>
internal sealed class BrokerLog
{
    private const int MaxReadPerCall = 1 << 20;
    private const int RecentLinesKept = 20;

    private readonly string _path;
    private readonly Queue<string> _recent = new();
    private readonly StringBuilder _partial = new();
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder(); // a read may end inside a character
    private long _offset;

    /// <summary>Follows <paramref name="path"/> from its current end: only lines written from now on are seen.</summary>
    public BrokerLog(string path)
    {
        _path = path;
        _offset = File.Exists(path) ? new FileInfo(path).Length : 0;
    }

    /// <summary>The last lines seen since following started.</summary>
    public IReadOnlyList<string> Recent => [.. _recent];

    /// <summary>Reads what was appended since the last call; true if a complete new line satisfies <paramref name="match"/>.</summary>
    public bool Saw(Func<string, bool> match)
    {
        var seen = false;
        foreach (var line in ReadNewLines())
        {
            _recent.Enqueue(line);
            if (_recent.Count > RecentLinesKept)
            {
                _recent.Dequeue();
            }

            seen |= match(line);
        }

        return seen;
    }

    /// <summary>The last <paramref name="count"/> lines of the file (none if it does not exist).</summary>
    public static IReadOnlyList<string> ReadLastLines(string path, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0)
        {
            return [];
        }

        try
        {
            using var stream = OpenShared(path);
            var window = 16 * 1024L;
            while (true)
            {
                var start = Math.Max(0, stream.Length - window);
                stream.Position = start;
                var buffer = new byte[stream.Length - start];
                stream.ReadExactly(buffer);
                var lines = Encoding.UTF8.GetString(buffer).Split('\n');
                // The first piece may be a cut line unless the window reached the start of the file.
                var complete = start == 0 ? lines : lines[1..];
                var nonEmpty = complete.Where(l => l.Length > 0).ToArray();
                if (nonEmpty.Length > count || start == 0)
                {
                    return nonEmpty.TakeLast(count).ToArray();
                }

                window *= 4;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return []; // not there (yet), or not a readable file: no lines to show
        }
    }

    private List<string> ReadNewLines()
    {
        List<string> lines = [];
        try
        {
            using var stream = OpenShared(_path);
            if (stream.Length < _offset)
            {
                _offset = 0; // replaced or truncated: read the new file from its start
                _partial.Clear();
                _decoder.Reset();
            }

            stream.Position = _offset;
            var buffer = new byte[(int)Math.Min(MaxReadPerCall, stream.Length - _offset)];
            stream.ReadExactly(buffer);
            _offset += buffer.Length;
            var chars = new char[_decoder.GetCharCount(buffer, flush: false)];
            _decoder.GetChars(buffer, chars, flush: false);
            _partial.Append(chars);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return lines;
        }

        var text = _partial.ToString();
        var end = text.LastIndexOf('\n');
        if (end < 0)
        {
            return lines;
        }

        lines.AddRange(text[..end].Split('\n').Where(l => l.Length > 0));
        _partial.Clear().Append(text.AsSpan(end + 1));
        return lines;
    }

    private static FileStream OpenShared(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
}
