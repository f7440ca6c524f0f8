namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>Where a model version's files are served, relative to the control plane's base URL; the API layer owns the routes.</summary>
public interface IModelLinks
{
    string Artifact(string name, string version);

    string Manifest(string name, string version);

    string Signature(string name, string version);
}
