using System.CommandLine;
using EdgeFleet.Cli.Commands;

var root = new RootCommand("edgefleet: operate an EdgeFleet control plane, its models and devices")
{
    SampleModelCommand.Create(),
    DriftCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
