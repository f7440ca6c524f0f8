using System.CommandLine;
using System.Globalization;
using EdgeFleet.Contracts.Api;

namespace EdgeFleet.Cli.Commands;

/// <summary><c>edgefleet enroll create</c>: enrollment tokens that let new devices join the fleet.</summary>
internal static class EnrollCommand
{
    public static Command Create()
    {
        var tags = new Option<string[]>("--tags") { HelpName = "TAGS", Description = "Tags every device enrolling with the token gets: TAG[,TAG…]" };
        var expires = new Option<double?>("--expires-in-hours") { HelpName = "HOURS", Description = "Hours until the token expires (server default: 24)" };
        var maxUses = new Option<int?>("--max-uses") { HelpName = "N", Description = "How many devices may use it (default: any number until it expires)" };
        var description = new Option<string?>("--description") { HelpName = "TEXT", Description = "A note for operators" };
        var json = ControlPlaneCommand.JsonOption();
        var create = new Command("create", "Create an enrollment token; the secret is shown once")
        {
            tags, expires, maxUses, description, json,
        };
        create.SetAction((parse, cancellationToken) =>
        {
            var request = new EnrollmentTokenRequest
            {
                Tags = ControlPlaneCommand.SplitList(parse.GetValue(tags)),
                ExpiresInHours = parse.GetValue(expires),
                MaxUses = parse.GetValue(maxUses),
                Description = parse.GetValue(description),
            };
            if (request.ExpiresInHours is { } h && (!double.IsFinite(h) || h <= 0) || request.MaxUses is < 1)
            {
                return Task.FromResult(ControlPlaneCommand.Fail("--expires-in-hours must be positive and --max-uses at least 1", ExitCodes.Usage));
            }

            return ControlPlaneCommand.RunAsync(async (client, settings) =>
            {
                var response = await client.CreateEnrollmentTokenAsync(request, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    ControlPlaneCommand.WriteJson(response.Body);
                    return ExitCodes.Ok;
                }

                var t = response.Value;
                var uses = t.MaxUses is { } max ? max.ToString(CultureInfo.InvariantCulture) : "any number of";

                // Plain lines, not a table: the token must come out whole for copy and paste, whatever the width.
                Render.Line($"enrollment token {t.Id}: {uses} device(s) until {Render.Time(t.ExpiresAt)}" +
                    (Render.List(t.Tags) is { Length: > 0 } tags ? $", tags {tags}" : ""));
                Console.Out.WriteLine();
                Console.Out.WriteLine(t.Token ?? "(the server did not return the secret)");
                Console.Out.WriteLine();
                Console.Out.WriteLine("It is shown only this once. On the device (use the address the device reaches the control plane at):");
                Console.Out.WriteLine($"  edgefleet-agent enroll --server {settings.Server.AbsoluteUri.TrimEnd('/')} --token {t.Token ?? "TOKEN"}");
                return ExitCodes.Ok;
            });
        });
        return new Command("enroll", "Enrollment tokens: how new devices join the fleet") { create };
    }
}
