using System.Diagnostics;
using System.Globalization;

namespace EdgeFleet.Testing;

/// <summary>
/// Records what a broker delivers on a topic filter, using the real <c>mosquitto_sub</c> with a persistent session
/// (QoS 1, clean session off) so that nothing published while it is reconnecting is lost to the observer.
/// </summary>
public sealed class TopicRecorder : IDisposable
{
    private readonly Process _process;
    private readonly List<(string Topic, string Payload)> _messages = [];
    private readonly List<string> _diagnostics = [];
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TopicRecorder(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (_diagnostics)
                {
                    _diagnostics.Add(line);
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>mosquitto_sub runs with -d: its protocol trace ("Client … received SUBACK") is kept apart from messages.</summary>
    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        if (line.StartsWith("Client ", StringComparison.Ordinal) || line.StartsWith("Subscribed (mid", StringComparison.Ordinal))
        {
            lock (_diagnostics)
            {
                _diagnostics.Add(line);
                if (_diagnostics.Count > 200)
                {
                    _diagnostics.RemoveRange(0, 100);
                }
            }

            if (line.Contains("received SUBACK", StringComparison.Ordinal))
            {
                _subscribed.TrySetResult();
            }

            return;
        }

        if (line.IndexOf(' ', StringComparison.Ordinal) is var space and > 0)
        {
            lock (_messages)
            {
                _messages.Add((line[..space], line[(space + 1)..]));
            }
        }
    }

    private string Diagnostics
    {
        get
        {
            lock (_diagnostics)
            {
                return string.Join(" / ", _diagnostics.TakeLast(8));
            }
        }
    }

    public static async Task<TopicRecorder> StartAsync(MosquittoBroker broker, string filter, string? user = null, string? password = null)
    {
        ArgumentNullException.ThrowIfNull(broker);
        // stdbuf: mosquitto_sub's trace goes through stdio, which a pipe would buffer until exit.
        var psi = new ProcessStartInfo("stdbuf") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-oL", "mosquitto_sub", "-h", broker.Host, "-p", broker.Port.ToString(CultureInfo.InvariantCulture), "-t", filter, "-q", "1", "-v",
                     "-c", "-i", $"recorder-{Guid.NewGuid():N}"[..20], "-k", "5", "-d" })
        {
            psi.ArgumentList.Add(a);
        }

        if (user is not null)
        {
            psi.ArgumentList.Add("-u");
            psi.ArgumentList.Add(user);
            psi.ArgumentList.Add("-P");
            psi.ArgumentList.Add(password ?? "");
        }

        var recorder = new TopicRecorder(Process.Start(psi) ?? throw new InvalidOperationException("mosquitto_sub did not start"));
        try
        {
            await recorder._subscribed.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var trace = recorder.Diagnostics;
            recorder.Dispose();
            throw new TimeoutException($"mosquitto_sub did not subscribe to {filter} on port {broker.Port} within 30 s: {trace}");
        }

        return recorder;
    }

    public IReadOnlyList<(string Topic, string Payload)> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    public IReadOnlyList<string> Payloads(string topicSuffix) =>
        Messages.Where(m => m.Topic.EndsWith(topicSuffix, StringComparison.Ordinal)).Select(m => m.Payload).ToList();

    public async Task<string> WaitForAsync(string topicSuffix, Func<string, bool> predicate, TimeSpan timeout, Func<string>? context = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            var match = Payloads(topicSuffix).FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new TimeoutException($"no message on *{topicSuffix} matched within {timeout}; got {Messages.Count} messages: " +
            string.Join(" | ", Messages.TakeLast(5).Select(m => m.Topic + " " + m.Payload[..Math.Min(120, m.Payload.Length)])) +
            $"; mosquitto_sub: {Diagnostics}" + (_process.HasExited ? $" (exited with {_process.ExitCode})" : "") +
            (context is null ? "" : $"; {context()}"));
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(3000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        _process.Dispose();
    }
}
