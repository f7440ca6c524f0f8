using System.CommandLine;
using System.Net;
using EdgeFleet.Cli.Api;
using EdgeFleet.Contracts.Api;
using EdgeFleet.Contracts.Models;
using Spectre.Console;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet models</c>: the model registry (list, show, push, promote, history).</summary>
internal static class ModelsCommand
{
    public static Command Create() => new("models", "The model registry: push ONNX models, list them, move versions between stages")
    {
        List(), Show(), PushCommand.Create(), Promote(), History(),
    };

    private static Command List()
    {
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("list", "Every model with its latest, production and staging versions") { json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.ListModelsAsync(cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            if (response.Value.Count == 0)
            {
                Render.Line("no models yet: edgefleet models push FILE.onnx");
                return ExitCodes.Ok;
            }

            var table = Render.Table("model", "task", "versions", "latest", "production", "staging", "updated");
            foreach (var m in response.Value)
            {
                Render.Row(table, m.Name, m.Task, m.VersionCount.ToString(System.Globalization.CultureInfo.InvariantCulture), m.LatestVersion,
                    m.ProductionVersion, Render.List(m.StagingVersions), Render.Time(m.UpdatedAt));
            }

            Render.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Show()
    {
        var name = new Argument<string>("NAME") { Description = "Model name" };
        var version = new Option<string?>("--version") { HelpName = "VERSION", Description = "Show this version in detail instead of the model's versions" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("show", "A model and its versions, or one version with --version") { name, version, json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var modelName = parse.GetValue(name)!;
            if (parse.GetValue(version) is { } v)
            {
                var response = await client.GetModelVersionAsync(modelName, v, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                }
                else
                {
                    Render.Write(Render.Properties(Render.VersionProperties(response.Value)));
                }

                return ExitCodes.Ok;
            }

            var model = await client.GetModelAsync(modelName, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(model.Body);
                return ExitCodes.Ok;
            }

            var m = model.Value;
            Render.Write(Render.Properties(
            [
                ("model", m.Name), ("task", m.Task), ("description", m.Description), ("production", m.ProductionVersion),
                ("staging", Render.List(m.StagingVersions)), ("created", Render.Time(m.CreatedAt)), ("updated", Render.Time(m.UpdatedAt)),
            ]));
            var table = Render.Table("version", "stage", "size", "sha256", "pushed", "by");
            foreach (var ver in m.Versions ?? [])
            {
                Render.Row(table, ver.Version, ver.Stage, Render.Bytes(ver.Size), Render.Short(ver.Sha256), Render.Time(ver.CreatedAt), ver.CreatedBy);
            }

            Render.Write(table);
            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(name))));
        return command;
    }

    private static Command Promote()
    {
        var name = new Argument<string>("NAME") { Description = "Model name" };
        var version = new Argument<string>("VERSION") { Description = "Version to move" };
        var stage = new Option<string>("--stage") { HelpName = "STAGE", Description = $"Target stage: {string.Join(", ", Stages.All)}", Required = true };
        stage.AcceptOnlyFromAmong([.. Stages.All]);
        var reason = new Option<string?>("--reason") { HelpName = "TEXT", Description = "Why (kept in the stage history and the audit log)" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("promote", "Move a version to another stage (production replaces the current production version)")
        {
            name, version, stage, reason, json,
        };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var request = new StageChangeRequest { Stage = parse.GetValue(stage)!, Reason = parse.GetValue(reason) };
            var response = await client.ChangeStageAsync(parse.GetValue(name)!, parse.GetValue(version)!, request, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
            }
            else
            {
                Render.Line($"{response.Value.Name} {response.Value.Version} is now in stage {response.Value.Stage}");
            }

            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(name))));
        return command;
    }

    private static Command History()
    {
        var name = new Argument<string>("NAME") { Description = "Model name" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("history", "Every stage change of a model's versions, oldest first") { name, json };
        command.SetAction((parse, cancellationToken) => ControlPlaneCommand.RunAsync(async (client, _) =>
        {
            var response = await client.GetHistoryAsync(parse.GetValue(name)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                ControlPlaneCommand.WriteJson(response.Body);
                return ExitCodes.Ok;
            }

            var table = Render.Table("at", "version", "from", "to", "by", "reason");
            foreach (var e in response.Value)
            {
                Render.Row(table, Render.Time(e.At), e.Version, e.From, e.To, e.By, e.Reason);
            }

            Render.Write(table);
            return ExitCodes.Ok;
        }, NotFoundHint(parse.GetValue(name))));
        return command;
    }

    private static Func<ControlPlaneException, string?> NotFoundHint(string? name) => ex =>
        ex.StatusCode == HttpStatusCode.NotFound && ex.Problem?.Detail is null ? $"no model or version by that name ('{name}'); edgefleet models list shows them" : null;
}

/// <summary><c>edgefleet models push</c>: uploads an ONNX file with its manifest.</summary>
internal static class PushCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "The .onnx file; its manifest FILE.manifest.json is read from beside it" };
        var name = new Option<string?>("--name") { HelpName = "NAME", Description = "Register under this model name instead of the manifest's" };
        var version = new Option<string?>("--version") { HelpName = "VERSION", Description = "Register as this version instead of the manifest's" };
        var manifestOption = new Option<string?>("--manifest") { HelpName = "FILE", Description = "Manifest file (default: FILE.manifest.json beside FILE)" };
        var json = ControlPlaneCommand.JsonOption();
        var command = new Command("push", "Upload a model version (ONNX file and manifest); the version starts in stage none")
        {
            file, name, version, manifestOption, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(file)!;
            ModelManifest manifest;
            try
            {
                manifest = Prepare(path, parse.GetValue(manifestOption), parse.GetValue(name), parse.GetValue(version));
            }
            catch (ManifestException ex)
            {
                await Console.Error.WriteLineAsync($"error: {ex.Location}:").ConfigureAwait(false);
                foreach (var e in ex.Errors)
                {
                    await Console.Error.WriteLineAsync($"  {e}").ConfigureAwait(false);
                }

                return ExitCodes.Usage;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return ControlPlaneCommand.Fail($"cannot read {path}: {ex.Message}", ExitCodes.Usage);
            }

            var asJson = parse.GetValue(json);
            return await ControlPlaneCommand.RunAsync(async (client, _) =>
            {
                var response = await UploadAsync(client, manifest, path, showProgress: !asJson && !Console.IsOutputRedirected && Render.Console.Profile.Capabilities.Interactive,
                    cancellationToken).ConfigureAwait(false);
                if (asJson)
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                    return ExitCodes.Ok;
                }

                var v = response.Value;
                Render.Line($"pushed {v.Name} {v.Version} (stage {v.Stage}); edgefleet models promote {v.Name} {v.Version} --stage staging");
                Render.Write(Render.Properties(Render.VersionProperties(v)));
                return ExitCodes.Ok;
            }, ex => ex.StatusCode switch
            {
                HttpStatusCode.Conflict => $"{manifest.Name} {manifest.Version} already exists and versions are immutable: push with another --version",
                HttpStatusCode.RequestEntityTooLarge => $"{Path.GetFileName(path)} is larger than the server accepts",
                _ => null,
            }).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>
    /// Loads and checks the manifest, applies the overrides and checks the file against it, so a wrong file fails
    /// here in a second instead of after a long upload.
    /// </summary>
    /// <exception cref="ManifestException">The manifest is missing or invalid, or does not describe the file.</exception>
    internal static ModelManifest Prepare(string modelPath, string? manifestPath, string? name, string? version)
    {
        if (!File.Exists(modelPath))
        {
            throw new ManifestException(modelPath, ["file not found"]);
        }

        var source = manifestPath ?? ManifestFile.PathFor(modelPath);
        var manifest = ManifestFile.Load(source);
        if (name is not null || version is not null)
        {
            manifest = manifest with { Name = name ?? manifest.Name, Version = version ?? manifest.Version };
            var errors = ManifestFile.Validate(manifest);
            if (errors.Count > 0)
            {
                throw new ManifestException("--name/--version", errors);
            }
        }

        var (sha256, size) = ManifestFile.HashFile(modelPath);
        var mismatches = new List<string>();
        if (size != manifest.Artifact.Size)
        {
            mismatches.Add($"artifact.size: the manifest says {manifest.Artifact.Size} bytes, {Path.GetFileName(modelPath)} has {size}");
        }

        if (!string.Equals(sha256, manifest.Artifact.Sha256, StringComparison.Ordinal))
        {
            mismatches.Add($"artifact.sha256: the manifest says {manifest.Artifact.Sha256}, {Path.GetFileName(modelPath)} has {sha256}");
        }

        return mismatches.Count > 0 ? throw new ManifestException(source, mismatches) : manifest;
    }

    private static async Task<ApiResponse<ModelVersionInfo>> UploadAsync(
        ControlPlaneClient client, ModelManifest manifest, string path, bool showProgress, CancellationToken cancellationToken)
    {
        if (!showProgress)
        {
            return await client.PushModelAsync(manifest, path, null, cancellationToken).ConfigureAwait(false);
        }

        ApiResponse<ModelVersionInfo>? response = null;
        await Render.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape($"{manifest.Name} {manifest.Version}"), maxValue: new FileInfo(path).Length);

                // Reported on the upload's thread; ProgressTask locks internally, and a synchronous callback cannot
                // arrive after the bar has finished the way Progress<T>'s posted callbacks can.
                response = await client.PushModelAsync(manifest, path, new SyncProgress(sent => task.Value = sent), cancellationToken).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);
        return response!;
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
