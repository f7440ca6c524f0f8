using System.CommandLine;
using EdgeFleet.Cli.Commands;

var root = new RootCommand("edgefleet: operate an EdgeFleet control plane, its models and devices")
{
    SampleModelCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
