using EdgeFleet.ControlPlane;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, ControlPlaneHosting.Switches.ToDictionary());
builder.AddEdgeFleetControlPlane();
var app = builder.Build();
app.MapEdgeFleetControlPlane();
app.Run();

/// <summary>The entry point, visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
