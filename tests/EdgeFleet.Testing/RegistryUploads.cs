using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ModelFormat;
using Xunit;

namespace EdgeFleet.Testing;

/// <summary>Pushes generated models to a real control plane's registry (what <c>edgefleet models push</c> does).</summary>
public static class RegistryUploads
{
    /// <summary>Pushes the model built from <paramref name="options"/> as <paramref name="name"/> <paramref name="version"/>.</summary>
    public static async Task<ModelVersionInfo> PushAsync(HttpClient client, string name, string version, SampleModelOptions options,
        Func<ModelManifest, ModelManifest>? change = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        var path = TestModels.Get(options);
        using var content = new MultipartFormDataContent();
        var manifest = ManifestFile.Load(ManifestFile.PathFor(path)) with { Name = name, Version = version };
        manifest = change?.Invoke(manifest) ?? manifest;
        var m = new ByteArrayContent(ManifestFile.Serialize(manifest));
        m.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Add(m, "manifest", "manifest.json");
        var f = new ByteArrayContent(await File.ReadAllBytesAsync(path));
        f.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(f, "model", "model.onnx");
        using var response = await client.PostAsync(new Uri($"api/v1/models/{name}/versions/{version}", UriKind.Relative), content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.ModelVersionInfo))!;
    }

    /// <summary>
    /// Downloads a registered version (artifact and manifest) into <paramref name="directory"/> the way a device gets it,
    /// and returns the model's path: for an agent that starts on exactly that version.
    /// </summary>
    public static async Task<string> DownloadAsync(HttpClient client, string name, string version, string directory)
    {
        ArgumentNullException.ThrowIfNull(client);
        var path = Path.Combine(directory, $"{name}-{version}.onnx");
        await File.WriteAllBytesAsync(path, await client.GetByteArrayAsync(new Uri($"api/v1/models/{name}/versions/{version}/artifact", UriKind.Relative)));
        await File.WriteAllBytesAsync(ManifestFile.PathFor(path),
            await client.GetByteArrayAsync(new Uri($"api/v1/models/{name}/versions/{version}/manifest", UriKind.Relative)));
        return path;
    }
}
