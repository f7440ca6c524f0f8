using EdgeFleet.Contracts.Api;
using EdgeFleet.ControlPlane.Fleet;

namespace EdgeFleet.ControlPlane.Apis;

/// <summary>The routes of a model version under /api/v1, the one place that knows them; the registry returns versions without links.</summary>
public static class ModelUrls
{
    public static string Version(string name, string version) => $"/api/v1/models/{name}/versions/{Uri.EscapeDataString(version)}";

    public static string Artifact(string name, string version) => Version(name, version) + "/artifact";

    public static string Manifest(string name, string version) => Version(name, version) + "/manifest";

    public static string Signature(string name, string version) => Version(name, version) + "/manifest.sig";

    /// <summary>The version as the API returns it: with the URLs of its artifact, manifest and signature.</summary>
    public static ModelVersionInfo WithUrls(this ModelVersionInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return info with
        {
            ArtifactUrl = Artifact(info.Name, info.Version),
            ManifestUrl = Manifest(info.Name, info.Version),
            SignatureUrl = Signature(info.Name, info.Version),
        };
    }

    public static ModelSummary WithUrls(this ModelSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        return summary.Versions is { } versions ? summary with { Versions = versions.Select(WithUrls).ToList() } : summary;
    }

    /// <summary>The same routes for the services that need them (the desired message).</summary>
    public sealed class Links : IModelLinks
    {
        public string Artifact(string name, string version) => ModelUrls.Artifact(name, version);

        public string Manifest(string name, string version) => ModelUrls.Manifest(name, version);

        public string Signature(string name, string version) => ModelUrls.Signature(name, version);
    }
}
