using System.Collections.Concurrent;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>
/// One dedicated thread that starts child processes and lives until disposed. Linux sends a child's parent-death
/// signal (<c>setpriv --pdeathsig</c>) when the <em>thread</em> that forked it ends, not the process: a child started
/// from a thread-pool thread would be killed whenever the pool retires that thread. Starting it here ties its life
/// to this object, and so to the control plane.
/// </summary>
internal sealed class ChildProcessThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly Thread _thread;

    public ChildProcessThread(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="start"/> (typically <c>Process.Start</c>) on the dedicated thread.</summary>
    public Task<T> RunAsync<T>(Func<T> start)
    {
        ArgumentNullException.ThrowIfNull(start);
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _work.Add(() =>
            {
                try
                {
                    completion.TrySetResult(start());
                }
                catch (Exception ex)
                {
                    completion.TrySetException(ex);
                }
            });
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(ChildProcessThread));
        }

        return completion.Task;
    }

    /// <summary>Ends the thread: any child still running with a parent-death signal gets it now.</summary>
    public void Dispose()
    {
        if (_work.IsAddingCompleted)
        {
            return;
        }

        _work.CompleteAdding();
        if (_thread != Thread.CurrentThread)
        {
            _thread.Join();
        }

        _work.Dispose();
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work();
        }
    }
}
