using System.CommandLine;
using EdgeFleet.Cli.Commands;

var root = new RootCommand(
    "edgefleet: operate an EdgeFleet control plane, its models and devices.\n" +
    "Exit codes: 0 ok, 1 the server said no, 2 usage or configuration error, 3 server unreachable.")
{
    LoginCommand.Create(),
    ModelsCommand.Create(),
    DevicesCommand.Create(),
    RolloutsCommand.Create(),
    EnrollCommand.Create(),
    SampleModelCommand.Create(),
    DriftCommand.Create(),
    EdgeFleet.Cli.Sim.SimCommand.Create(),
};
var parse = root.Parse(args);
var exitCode = await parse.InvokeAsync().ConfigureAwait(false);

// System.CommandLine reports its own parse errors with 1, which scripts would take for "the server said no".
return parse.Errors.Count > 0 ? ExitCodes.Usage : exitCode;
