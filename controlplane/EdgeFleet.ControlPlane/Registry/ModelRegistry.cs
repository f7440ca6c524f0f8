using System.Data.Common;
using System.Text;
using System.Text.Json;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Drift;
using EdgeFleet.Contracts.Models;
using EdgeFleet.Contracts.Serialization;
using EdgeFleet.ControlPlane.Domain;
using EdgeFleet.ControlPlane.Security;
using EdgeFleet.ControlPlane.Storage;
using EdgeFleet.ModelFormat;

namespace EdgeFleet.ControlPlane.Registry;

/// <summary>Models, their semver versions, signed manifests, stages with history, metadata and drift profiles.</summary>
public sealed class ModelRegistry(Database database, ArtifactStore artifacts, RegistryKey key, AuditLog audit, TimeProvider time, Live.LiveEvents? live = null)
{
    private const string VersionColumns =
        "name, version, stage, task, description, sha256, size, created_by, created_at, metadata, drift_profile IS NOT NULL";

    public static void ValidateName(string? name, string field = "name")
    {
        if (!ManifestFile.IsValidName(name))
        {
            throw new InvalidInputException(field, $"'{Input.Quote(name)}' is not a valid model name (1–64 of a-z 0-9 . _ -, starting with a letter or digit)");
        }
    }

    public static SemVer ValidateVersion(string? version, string field = "version") =>
        SemVer.TryParse(version, out var v) ? v : throw new InvalidInputException(field, $"'{Input.Quote(version)}' is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])");

    private static void CheckKey(string key, string field)
    {
        if (string.IsNullOrWhiteSpace(key))
        {
            throw new InvalidInputException(field, "has an empty name; every entry needs a name");
        }

        Input.Text(key, $"{field} (a name)", 200);
    }


    public static ModelManifest ParseManifest(ReadOnlySpan<byte> json)
    {
        // Read once here first, for the JSON path of a type error and for null list elements, which the manifest's
        // own validation (shared with the agent and the CLI) does not expect.
        try
        {
            if (JsonSerializer.Deserialize(json, ContractsJsonContext.Default.ModelManifest) is { } raw && NullElements(raw).ToList() is { Count: > 0 } nulls)
            {
                throw new ValidationException("invalid manifest", nulls, "manifest.");
            }
        }
        catch (JsonException ex)
        {
            throw new MalformedDocumentException("invalid manifest", "manifest", ContractsJsonContext.Default.ModelManifest, ex);
        }

        try
        {
            return ManifestFile.Parse(json, "manifest");
        }
        catch (ManifestException ex)
        {
            throw new ValidationException("invalid manifest", ex.Errors, "manifest.");
        }
    }

    /// <summary>A reference drift profile as it may be attached: the shared checks plus the nulls JSON can put anywhere.</summary>
    public static void ValidateDriftProfile(DriftProfile? profile)
    {
        if (profile is null)
        {
            throw new InvalidInputException("body", "is required: a drift profile object, not null");
        }

        var errors = new List<string>();
        Input.Text(profile.Id, "id", 200);
        Input.Text(profile.Source, "source", 2000);
        if (profile.Features is { } features)
        {
            for (var i = 0; i < features.Count; i++)
            {
                var f = features[i];
                var at = $"features[{i}]";
                if (f is null)
                {
                    errors.Add($"{at}: must be an object, not null");
                    continue;
                }

                if (string.IsNullOrWhiteSpace(f.Name) || f.Name.Length > 200)
                {
                    errors.Add($"{at}.name: is required, at most 200 characters");
                }

                if (f.Kind is null)
                {
                    errors.Add($"{at}.kind: is required (numeric or categorical)");
                }

                foreach (var (name, values) in new[] { ("edges", f.Edges), ("proportions", f.Proportions), ("sample", f.Sample) })
                {
                    if (values is null)
                    {
                        errors.Add($"{at}.{name}: must be an array of numbers (it may be empty), not null");
                    }
                    else if (values.Any(v => !double.IsFinite(v)))
                    {
                        errors.Add($"{at}.{name}: must hold finite numbers");
                    }
                }

                if (f.Categories is null)
                {
                    errors.Add($"{at}.categories: must be an object (it may be empty), not null");
                }

                if (!double.IsFinite(f.Mean) || !double.IsFinite(f.Std) || !double.IsFinite(f.Min) || !double.IsFinite(f.Max) || f.EffectiveCount is { } n && !double.IsFinite(n))
                {
                    errors.Add($"{at}: mean, std, min, max and effectiveCount must be finite numbers");
                }
            }
        }

        if (errors.Count == 0)
        {
            errors.AddRange(EdgeFleet.Drift.DriftProfiles.Validate(profile));
        }

        if (errors.Count > 0)
        {
            throw new ValidationException("invalid drift profile", errors);
        }
    }

    private static IEnumerable<string> NullElements(ModelManifest m)
    {
        foreach (var (list, name) in new[] { (m.Outputs?.Cast<object?>(), "outputs"), (m.Labels?.Cast<object?>(), "labels"), (m.SelfTest?.Expected?.Cast<object?>(), "selfTest.expected") })
        {
            var i = 0;
            foreach (var item in list ?? [])
            {
                if (item is null)
                {
                    yield return $"{name}[{i}]: must not be null";
                }

                i++;
            }
        }

        for (var i = 0; m.SelfTest?.Expected is { } expected && i < expected.Count; i++)
        {
            if (expected[i]?.Values is { } values && values.Any(v => v is null))
            {
                yield return $"selfTest.expected[{i}].values: must not hold null";
            }
        }
    }

    public async Task<bool> ExistsAsync(string name, string version)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.ScalarAsync("SELECT 1 FROM model_versions WHERE name = @n AND version = @v", ("@n", name), ("@v", version)).ConfigureAwait(false) is not null;
    }

    /// <summary>
    /// Registers an uploaded version: the file must be ONNX, the manifest must describe it (inputs and outputs
    /// exist with the stated types and shapes), and a hash or size stated in the manifest must match what arrived.
    /// The stored manifest names the real hash and size; its exact bytes are signed by the registry (detached ES256).
    /// </summary>
    public async Task<ModelVersionInfo> PushAsync(string name, string version, ModelManifest manifest, ArtifactStore.Staged upload, string actor)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(upload);
        var semver = ValidateVersion(version);
        OnnxModelInfo info;
        try
        {
            info = OnnxModelInfo.Read(upload.TempPath);
        }
        catch (OnnxFormatException ex)
        {
            throw new InvalidInputException("model", $"the uploaded file is not an ONNX model: {ex.Message.Replace(upload.TempPath, "model", StringComparison.Ordinal)}");
        }

        var mismatches = ManifestCheck.Against(manifest, info).ToList();
        if (!string.IsNullOrEmpty(manifest.Artifact.Sha256) && !string.Equals(manifest.Artifact.Sha256, upload.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            mismatches.Add($"artifact.sha256: the manifest says {manifest.Artifact.Sha256}, the uploaded file's is {upload.Sha256}");
        }

        if (manifest.Artifact.Size > 0 && manifest.Artifact.Size != upload.Size)
        {
            mismatches.Add($"artifact.size: the manifest says {manifest.Artifact.Size} bytes, the uploaded file has {upload.Size}");
        }

        if (mismatches.Count > 0)
        {
            throw new MismatchException("the manifest does not match the model file", mismatches, "manifest.");
        }

        // What is stored is what is served, byte for byte, and what is signed: no re-serialisation anywhere after this.
        var served = manifest with
        {
            Name = name,
            Version = version,
            Artifact = manifest.Artifact with { Sha256 = upload.Sha256, Size = upload.Size },
        };
        var bytes = ManifestFile.Serialize(served);
        var signature = key.SignDetached(bytes);
        var path = artifacts.Commit(upload);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "INSERT INTO models(name, created_at, updated_at) VALUES (@n, @t, @t) ON CONFLICT(name) DO UPDATE SET updated_at = @t",
            ("@n", name), ("@t", now)).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "INSERT INTO artifacts(sha256, size, created_at) VALUES (@s, @z, @t) ON CONFLICT(sha256) DO NOTHING",
            ("@s", upload.Sha256), ("@z", upload.Size), ("@t", now)).ConfigureAwait(false);
        var inserted = await connection.ExecuteAsync(tx, """
            INSERT INTO model_versions(name, version, major, minor, patch, prerelease, stage, task, description, sha256, size, manifest, manifest_signature,
              manifest_key_id, created_by, created_at)
            VALUES (@n, @v, @major, @minor, @patch, @pre, 'none', @task, @desc, @sha, @size, @manifest, @sig, @kid, @by, @t)
            ON CONFLICT(name, version) DO NOTHING
            """,
            ("@n", name), ("@v", version), ("@major", semver.Major), ("@minor", semver.Minor), ("@patch", semver.Patch),
            ("@pre", semver.PreRelease.Length == 0 ? null : semver.PreRelease), ("@task", TaskName(served.Task)), ("@desc", served.Description),
            ("@sha", upload.Sha256), ("@size", upload.Size), ("@manifest", Encoding.UTF8.GetString(bytes)), ("@sig", Convert.ToBase64String(signature)),
            ("@kid", key.KeyId),
            ("@by", actor), ("@t", now)).ConfigureAwait(false);
        if (inserted == 0)
        {
            throw new ConflictException($"model {name} version {version} already exists; versions are immutable, push a new version");
        }

        await connection.ExecuteAsync(tx, "INSERT INTO stage_history(name, version, from_stage, to_stage, actor, reason, at) VALUES (@n, @v, '', 'none', @by, 'pushed', @t)",
            ("@n", name), ("@v", version), ("@by", actor), ("@t", now)).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, actor, "model.push", $"model/{name}/{version}", $"sha256={upload.Sha256} size={upload.Size} file={Path.GetFileName(path)}").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Models, [name]);
        return (await GetVersionAsync(name, version))!;
    }

    public async Task<IReadOnlyList<ModelSummary>> ListAsync()
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var models = await connection.QueryAsync("SELECT name, created_at, updated_at FROM models ORDER BY name",
            r => (Name: r.GetString(0), Created: r.Time(1), Updated: r.Time(2))).ConfigureAwait(false);
        var versions = await connection.QueryAsync($"SELECT {VersionColumns} FROM model_versions", ReadVersion).ConfigureAwait(false);
        var byModel = versions.ToLookup(v => v.Name, StringComparer.Ordinal);
        return models.Select(m => Summarize(m.Name, m.Created, m.Updated, byModel[m.Name].ToList(), includeVersions: false)).ToList();
    }

    public async Task<ModelSummary?> GetAsync(string name)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var model = await connection.QueryAsync("SELECT created_at, updated_at FROM models WHERE name = @n",
            r => (Created: r.Time(0), Updated: r.Time(1)), ("@n", name)).ConfigureAwait(false);
        if (model.Count == 0)
        {
            return null;
        }

        var versions = await connection.QueryAsync($"SELECT {VersionColumns} FROM model_versions WHERE name = @n", ReadVersion, ("@n", name)).ConfigureAwait(false);
        return Summarize(name, model[0].Created, model[0].Updated, versions, includeVersions: true);
    }

    public async Task<ModelVersionInfo?> GetVersionAsync(string name, string version)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QuerySingleAsync($"SELECT {VersionColumns} FROM model_versions WHERE name = @n AND version = @v", ReadVersion,
            ("@n", name), ("@v", version)).ConfigureAwait(false);
    }

    /// <summary>A manifest as served: its exact bytes, the registry's detached DER signature of them and the key's id.</summary>
    public sealed record SignedManifest(byte[] Bytes, byte[] Signature, string KeyId)
    {
        /// <summary>Strong validator of the bytes (their SHA-256).</summary>
        public string ETag => $"\"{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Bytes))}\"";
    }

    /// <summary>
    /// The manifest as stored, with its signature; a row stored before detached signatures (or signed by another key)
    /// is signed now, over exactly the stored bytes.
    /// </summary>
    public async Task<SignedManifest?> GetSignedManifestAsync(string name, string version)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        var row = await connection.QuerySingleAsync("SELECT manifest, manifest_signature, manifest_key_id FROM model_versions WHERE name = @n AND version = @v",
            r => new { Manifest = r.GetString(0), Signature = r.NullableString(1), KeyId = r.NullableString(2) }, ("@n", name), ("@v", version)).ConfigureAwait(false);
        if (row is null)
        {
            return null;
        }

        var bytes = Encoding.UTF8.GetBytes(row.Manifest);
        if (row.Signature is { } stored && row.KeyId == key.KeyId)
        {
            return new SignedManifest(bytes, Convert.FromBase64String(stored), row.KeyId);
        }

        var signature = key.SignDetached(bytes);
        await connection.ExecuteAsync("UPDATE model_versions SET manifest_signature = @s, manifest_key_id = @k WHERE name = @n AND version = @v",
            ("@s", Convert.ToBase64String(signature)), ("@k", key.KeyId), ("@n", name), ("@v", version)).ConfigureAwait(false);
        return new SignedManifest(bytes, signature, key.KeyId);
    }

    /// <summary>Signs every stored manifest that has no detached signature by the current key (at start); returns how many.</summary>
    public async Task<int> SignUnsignedAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        var rows = await connection.QueryAsync(
            "SELECT name, version, manifest FROM model_versions WHERE manifest_signature IS NULL OR manifest_key_id IS NULL OR manifest_key_id <> @k",
            r => (Name: r.GetString(0), Version: r.GetString(1), Manifest: r.GetString(2)), ("@k", key.KeyId)).ConfigureAwait(false);
        foreach (var (n, v, manifest) in rows)
        {
            var signature = key.SignDetached(Encoding.UTF8.GetBytes(manifest));
            await connection.ExecuteAsync("UPDATE model_versions SET manifest_signature = @s, manifest_key_id = @k WHERE name = @n AND version = @v",
                ("@s", Convert.ToBase64String(signature)), ("@k", key.KeyId), ("@n", n), ("@v", v)).ConfigureAwait(false);
        }

        return rows.Count;
    }

    public string ArtifactPath(ModelVersionInfo version)
    {
        ArgumentNullException.ThrowIfNull(version);
        return artifacts.PathOf(version.Sha256);
    }

    /// <summary>
    /// Moves a version to another stage. Promoting to production archives the version that was there, so a model
    /// has one production version; both moves land in the history and the audit log in one transaction.
    /// </summary>
    public async Task<ModelVersionInfo> ChangeStageAsync(string name, string version, string? stage, string? reason, string actor)
    {
        stage = Input.Required(stage, "stage", $"one of {string.Join(", ", Stages.All)}");
        if (!Stages.All.Contains(stage))
        {
            throw new InvalidInputException("stage", $"'{Input.Quote(stage)}' is not a stage ({string.Join(", ", Stages.All)})");
        }

        Input.Text(reason, "reason", 1000);

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var current = await connection.ScalarAsync("SELECT stage FROM model_versions WHERE name = @n AND version = @v", ("@n", name), ("@v", version)).ConfigureAwait(false) as string
            ?? throw new NotFoundException($"model {name} version {version}");
        if (current == stage)
        {
            throw new ConflictException($"model {name} version {version} is already in {stage}");
        }

        if (stage == Stages.Production)
        {
            var previous = await connection.QueryAsync("SELECT version FROM model_versions WHERE name = @n AND stage = 'production' AND version <> @v",
                r => r.GetString(0), ("@n", name), ("@v", version)).ConfigureAwait(false);
            foreach (var old in previous)
            {
                await MoveAsync(connection, tx, name, old, Stages.Production, Stages.Archived, $"replaced by {version}", actor, now).ConfigureAwait(false);
            }
        }

        await MoveAsync(connection, tx, name, version, current, stage, reason, actor, now).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "UPDATE models SET updated_at = @t WHERE name = @n", ("@t", now), ("@n", name)).ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Models, [name]);
        return (await GetVersionAsync(name, version))!;
    }

    public async Task<IReadOnlyList<StageHistoryEntry>> HistoryAsync(string name)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.QueryAsync("SELECT version, from_stage, to_stage, actor, at, reason FROM stage_history WHERE name = @n ORDER BY at, id",
            r => new StageHistoryEntry { Version = r.GetString(0), From = r.GetString(1), To = r.GetString(2), By = r.NullableString(3), At = r.Time(4), Reason = r.NullableString(5) },
            ("@n", name)).ConfigureAwait(false);
    }

    public async Task<ModelVersionInfo> SetMetadataAsync(string name, string version, ModelVersionMetadata metadata, string actor)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        Input.Text(metadata.DatasetVersion, "datasetVersion", 200);
        if (Input.Text(metadata.TrainingRun, "trainingRun", 2000) is { } link && !(Uri.TryCreate(link, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            throw new InvalidInputException("trainingRun", $"'{Input.Quote(link)}' is not an http(s) URL");
        }

        foreach (var (key, value) in metadata.Metrics ?? new Dictionary<string, double>())
        {
            CheckKey(key, "metrics");
            if (!double.IsFinite(value))
            {
                throw new InvalidInputException($"metrics.{key}", "must be a finite number");
            }
        }

        foreach (var (key, value) in metadata.Parameters ?? new Dictionary<string, string>())
        {
            CheckKey(key, "parameters");
            Input.Text(value ?? throw new InvalidInputException($"parameters.{key}", "must be a string, not null"), $"parameters.{key}", 10_000);
        }

        if (metadata.ParentVersion is { } parent)
        {
            ValidateVersion(parent, "parentVersion");
        }

        var json = JsonSerializer.Serialize(metadata, ApiJsonContext.Default.ModelVersionMetadata);
        if (json.Length > 256 * 1024)
        {
            throw new TooLargeException("metadata too large", "body", $"metadata may be at most 256 KiB of JSON (got {json.Length} characters)");
        }

        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (await connection.ExecuteAsync(tx, "UPDATE model_versions SET metadata = @m WHERE name = @n AND version = @v", ("@m", json), ("@n", name), ("@v", version)).ConfigureAwait(false) == 0)
        {
            throw new NotFoundException($"model {name} version {version}");
        }

        await audit.WriteAsync(connection, tx, actor, "model.metadata", $"model/{name}/{version}", json.Length > 2000 ? json[..2000] : json).ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Models, [name]);
        return (await GetVersionAsync(name, version))!;
    }

    public async Task SetDriftProfileAsync(string name, string version, DriftProfile profile, string actor)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var json = JsonSerializer.Serialize(profile, ContractsJsonContext.Default.DriftProfile);
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (await connection.ExecuteAsync(tx, "UPDATE model_versions SET drift_profile = @p WHERE name = @n AND version = @v", ("@p", json), ("@n", name), ("@v", version)).ConfigureAwait(false) == 0)
        {
            throw new NotFoundException($"model {name} version {version}");
        }

        await audit.WriteAsync(connection, tx, actor, "model.profile", $"model/{name}/{version}", $"profile {profile.Id}, {profile.Features.Count} features").ConfigureAwait(false);
        await tx.CommitAsync().ConfigureAwait(false);
        live?.Publish(Live.LiveEvents.Models, [name]);
    }

    public async Task<string?> GetDriftProfileAsync(string name, string version)
    {
        await using var connection = await database.OpenAsync().ConfigureAwait(false);
        return await connection.ScalarAsync("SELECT drift_profile FROM model_versions WHERE name = @n AND version = @v", ("@n", name), ("@v", version)).ConfigureAwait(false) as string;
    }

    private async Task MoveAsync(DbConnection connection, DbTransaction tx, string name, string version, string from, string to, string? reason, string actor, long now)
    {
        await connection.ExecuteAsync(tx, "UPDATE model_versions SET stage = @s WHERE name = @n AND version = @v", ("@s", to), ("@n", name), ("@v", version)).ConfigureAwait(false);
        await connection.ExecuteAsync(tx, "INSERT INTO stage_history(name, version, from_stage, to_stage, actor, reason, at) VALUES (@n, @v, @f, @s, @by, @r, @t)",
            ("@n", name), ("@v", version), ("@f", from), ("@s", to), ("@by", actor), ("@r", reason), ("@t", now)).ConfigureAwait(false);
        await audit.WriteAsync(connection, tx, actor, "model.stage", $"model/{name}/{version}", $"{from} -> {to}" + (reason is null ? "" : $": {reason}")).ConfigureAwait(false);
    }

    private static ModelSummary Summarize(string name, DateTimeOffset created, DateTimeOffset updated, List<ModelVersionInfo> versions, bool includeVersions)
    {
        var ordered = versions.OrderByDescending(v => SemVer.Parse(v.Version)).ToList();
        var latest = ordered.FirstOrDefault();
        return new ModelSummary
        {
            Name = name,
            Task = latest?.Task,
            Description = latest?.Description,
            VersionCount = ordered.Count,
            LatestVersion = latest?.Version,
            ProductionVersion = ordered.FirstOrDefault(v => v.Stage == Stages.Production)?.Version,
            StagingVersions = ordered.Where(v => v.Stage == Stages.Staging).Select(v => v.Version).ToList(),
            CreatedAt = created,
            UpdatedAt = updated,
            Versions = includeVersions ? ordered : null,
        };
    }

    private static ModelVersionInfo ReadVersion(DbDataReader r)
    {
        var name = r.GetString(0);
        var version = r.GetString(1);
        var metadata = r.NullableString(9) is { } json ? JsonSerializer.Deserialize(json, ApiJsonContext.Default.ModelVersionMetadata) ?? new() : new ModelVersionMetadata();
        return new ModelVersionInfo
        {
            Name = name,
            Version = version,
            Stage = r.GetString(2),
            Task = r.GetString(3),
            Description = r.NullableString(4),
            Sha256 = r.GetString(5),
            Size = r.Long(6),
            CreatedBy = r.NullableString(7),
            CreatedAt = r.Time(8),
            Metadata = metadata,
            HasDriftProfile = r.Bool(10),
        };
    }

    private static string TaskName(ModelTask task) => task == ModelTask.Classification ? "classification" : "detection";
}
