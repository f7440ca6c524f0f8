using System.Collections.Concurrent;
using System.Net;

namespace EdgeFleet.Testing;

/// <summary>
/// A plain HTTP server (HttpListener) on a free loopback port that serves fixed bytes at fixed paths: for documents a
/// test crafts on purpose (a manifest signed over a model the registry would refuse, for example). 404 elsewhere.
/// </summary>
public sealed class StaticHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly Task _loop;

    public StaticHttpServer()
    {
        var port = FreePort.Next();
        Url = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Url.ToString());
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public Uri Url { get; }

    /// <summary>Serves <paramref name="content"/> at <paramref name="path"/> (no leading '/'); returns its absolute URL.</summary>
    public string Add(string path, byte[] content)
    {
        _files[path] = content;
        return new Uri(Url, path).ToString();
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                if (_files.TryGetValue(context.Request.Url!.AbsolutePath.TrimStart('/'), out var content))
                {
                    context.Response.ContentType = "application/octet-stream";
                    context.Response.ContentLength64 = content.Length;
                    await context.Response.OutputStream.WriteAsync(content).ConfigureAwait(false);
                }
                else
                {
                    context.Response.StatusCode = 404;
                }
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException)
            {
                // the client went away
            }
            finally
            {
                context.Response.Close();
            }
        }
    }
}
