using EdgeFleet.Contracts.Messaging;
using EdgeFleet.ControlPlane.Registry;
using EdgeFleet.ControlPlane.Security;

namespace EdgeFleet.ControlPlane.Fleet;

/// <summary>Builds the <c>desired</c> message for a registered model version: artifact, manifest and signature URLs, hash, size, detached signature.</summary>
public sealed class DesiredFactory(ModelRegistry models, IModelLinks links, TimeProvider time)
{
    /// <summary>The message, or null when the model version (or its signed manifest) does not exist.</summary>
    public async Task<DesiredMessage?> BuildAsync(string model, string version, string mode, string baseUrl, ProbationOverrides? probation = null,
        string? rolloutId = null, string? id = null)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var info = await models.GetVersionAsync(model, version).ConfigureAwait(false);
        var signed = info is null ? null : await models.GetSignedManifestAsync(model, version).ConfigureAwait(false);
        if (info is null || signed is null)
        {
            return null;
        }

        baseUrl = baseUrl.TrimEnd('/');
        return new DesiredMessage
        {
            Id = id ?? Secrets.NewId(),
            RolloutId = rolloutId,
            IssuedAt = time.GetUtcNow(),
            Model = model,
            Version = version,
            Mode = mode,
            ArtifactUrl = baseUrl + links.Artifact(info.Name, info.Version),
            Sha256 = info.Sha256,
            Size = info.Size,
            ManifestUrl = baseUrl + links.Manifest(info.Name, info.Version),
            Signature = Convert.ToBase64String(signed.Signature),
            SignatureUrl = baseUrl + links.Signature(info.Name, info.Version),
            KeyId = signed.KeyId,
            Probation = probation,
        };
    }
}
