using Microsoft.Extensions.Logging;

namespace EdgeFleet.ControlPlane.Tests.Broker;

/// <summary>Keeps what was logged, so a test can fail on unexpected errors or look for an expected one.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IReadOnlyList<string> Errors => [.. Entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message)];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        var message = formatter(state, exception) + (exception is null ? "" : $" {exception}");
        lock (_entries)
        {
            _entries.Add((logLevel, message));
        }
    }
}
