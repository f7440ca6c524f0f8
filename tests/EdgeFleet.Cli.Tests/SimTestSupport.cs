using Microsoft.Extensions.Logging;

namespace EdgeFleet.Cli.Tests;

/// <summary>Collects what the simulator logs at warning or above; a test that expects none asserts the list is empty.</summary>
internal sealed class SimLog : ILogger
{
    private readonly List<string> _warnings = [];

    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (_warnings)
            {
                return [.. _warnings];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            lock (_warnings)
            {
                _warnings.Add($"{formatter(state, exception)} {exception}");
            }
        }
    }
}
