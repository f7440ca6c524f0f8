using System.CommandLine;
using EdgeFleet.Agent.Commands;

var configOption = new Option<string>("--config", "-c")
{
    Description = "Agent configuration (JSON); EDGEFLEET_Agent__Section__Key environment variables override it",
    Required = true,
};
var run = new Command("run", "Run the agent as a long-lived service: camera → model → results, telemetry, updates") { configOption };
run.SetAction((parse, _) => RunCommand.ExecuteAsync(parse.GetValue(configOption), Console.Error));

var modelOption = new Option<string>("--model") { Description = "ONNX model (its NAME.manifest.json beside it)", Required = true };
var sourceOption = new Option<string>("--source") { Description = "Frame source URI, e.g. testsrc://640x480@30", Required = true };
var framesOption = new Option<int>("--frames") { Description = "Frames to measure", DefaultValueFactory = _ => 500 };
var warmupOption = new Option<int>("--warmup") { Description = "Frames to run before measuring", DefaultValueFactory = _ => 50 };
var threadsOption = new Option<int?>("--threads") { Description = "ONNX Runtime intra-op threads (0: one per CPU this process may use; default: Agent:Inference:IntraOpThreads, 0)" };
var roundsOption = new Option<int>("--rounds") { Description = "Alternate pipeline and bare-ORT runs this many times", DefaultValueFactory = _ => 20 };
var noDriftOption = new Option<bool>("--no-drift") { Description = "Leave the drift monitor out of the pipeline" };
var jsonOption = new Option<bool>("--json") { Description = "Print exactly one JSON object on stdout" };
var toolConfigOption = new Option<string?>("--config", "-c")
{
    Description = "Agent configuration: its Agent:Source (ffmpeg, gst-launch, capture) and Agent:Inference keys apply; the options below override them",
};
var ortLibOption = new Option<string?>("--ort-lib") { Description = "libonnxruntime.so to load instead of the packaged one (default: Agent:Inference:OrtLibraryPath, else EDGEFLEET_ORT_LIB)" };
var ffmpegOption = new Option<string?>("--ffmpeg") { Description = "ffmpeg executable (default: Agent:Source:FfmpegPath, ffmpeg)" };
var gstOption = new Option<string?>("--gst-launch") { Description = "gst-launch-1.0 executable for gst:// sources (default: Agent:Source:GstLaunchPath)" };
var providersOption = new Option<string?>("--providers")
{
    Description = "Execution providers in order of preference, e.g. tensorrt,cuda,cpu (default: Agent:Inference:Providers with --config, else cpu)",
};
static string[]? SplitList(string? text) =>
    text?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
var bench = new Command("bench", "Measure the full pipeline against bare ONNX Runtime on the same model and input")
{
    modelOption, sourceOption, framesOption, warmupOption, threadsOption, roundsOption, noDriftOption, jsonOption,
    toolConfigOption, ortLibOption, providersOption, ffmpegOption, gstOption,
};
bench.SetAction((parse, ct) => BenchCommand.ExecuteAsync(new BenchOptions
{
    ModelPath = parse.GetValue(modelOption)!,
    SourceUri = parse.GetValue(sourceOption)!,
    Frames = parse.GetValue(framesOption),
    Warmup = parse.GetValue(warmupOption),
    Threads = parse.GetValue(threadsOption),
    Rounds = parse.GetValue(roundsOption),
    Drift = !parse.GetValue(noDriftOption),
    Json = parse.GetValue(jsonOption),
    ConfigPath = parse.GetValue(toolConfigOption),
    OrtLibraryPath = parse.GetValue(ortLibOption),
    Providers = SplitList(parse.GetValue(providersOption)),
    FfmpegPath = parse.GetValue(ffmpegOption),
    GstLaunchPath = parse.GetValue(gstOption),
}, Console.Out, Console.Error, ct));

var enrollServer = new Option<string>("--server") { Description = "Control plane URL, e.g. https://cp.example:8080", Required = true };
var enrollToken = new Option<string>("--token") { Description = "Enrollment token (edgefleet enroll create)", Required = true };
var enrollDevice = new Option<string?>("--device-id") { Description = "Ask for this device id (default: the control plane assigns one)" };
var enrollConfig = new Option<string?>("--config", "-c") { Description = "Agent configuration, to find Agent:StateDirectory" };
var enrollState = new Option<string?>("--state-dir") { Description = "Where to store the identity (default: Agent:StateDirectory)" };
var enrollForce = new Option<bool>("--force") { Description = "Replace an existing identity" };
var enroll = new Command("enroll", "Enroll this device with the control plane and store its identity and broker login (mode 0600)")
{
    enrollServer, enrollToken, enrollDevice, enrollConfig, enrollState, enrollForce,
};
enroll.SetAction((parse, ct) => EnrollCommand.ExecuteAsync(new EnrollCommand.Options(parse.GetValue(enrollServer)!, parse.GetValue(enrollToken)!,
    parse.GetValue(enrollDevice), parse.GetValue(enrollConfig), parse.GetValue(enrollState), parse.GetValue(enrollForce)), Console.Out, Console.Error, null, ct));

var profileModel = new Option<string>("--model") { Description = "ONNX model (its NAME.manifest.json beside it)", Required = true };
var profileSource = new Option<string>("--source") { Description = "Frames that look like what the model should see", Required = true };
var profileFrames = new Option<int>("--frames") { Description = "Frames to profile", DefaultValueFactory = _ => 1000 };
var profileOut = new Option<string>("--out") { Description = "Where to write the profile JSON", Required = true };
var profileBins = new Option<int>("--bins") { Description = "Quantile bins per feature", DefaultValueFactory = _ => 10 };
var profile = new Command("profile", "Build a reference drift profile by running the real pipeline on a source")
{
    profileModel, profileSource, profileFrames, profileOut, profileBins, toolConfigOption, ortLibOption, providersOption, ffmpegOption, gstOption,
};
profile.SetAction((parse, ct) => ProfileCommand.ExecuteAsync(new ProfileOptions
{
    ModelPath = parse.GetValue(profileModel)!,
    SourceUri = parse.GetValue(profileSource)!,
    Frames = parse.GetValue(profileFrames),
    OutPath = parse.GetValue(profileOut)!,
    Bins = parse.GetValue(profileBins),
    ConfigPath = parse.GetValue(toolConfigOption),
    OrtLibraryPath = parse.GetValue(ortLibOption),
    Providers = SplitList(parse.GetValue(providersOption)),
    FfmpegPath = parse.GetValue(ffmpegOption),
    GstLaunchPath = parse.GetValue(gstOption),
}, Console.Out, Console.Error, ct));

var statusConfig = new Option<string?>("--config", "-c") { Description = "Agent configuration, to find Agent:StateDirectory" };
var statusState = new Option<string?>("--state-dir") { Description = "The agent's state directory (default: Agent:StateDirectory)" };
var statusJson = new Option<bool>("--json") { Description = "Print JSON: the live status, or the state file when the agent does not answer" };
var socketOption = new Option<string?>("--socket") { Description = "The agent's local API socket (default: Agent:LocalApi:Socket, else $RUNTIME_DIRECTORY/agent.sock, /run/edgefleet/agent.sock, or agent.sock in the state directory)" };
var status = new Command("status", "Show the running model, live counters, the over-the-air update in progress and the last failure")
{
    statusConfig, statusState, statusJson, socketOption,
};
status.SetAction((parse, ct) => StatusCommand.ExecuteAsync(parse.GetValue(statusConfig), parse.GetValue(statusState), parse.GetValue(socketOption),
    parse.GetValue(statusJson), Console.Out, Console.Error, ct));

var apiConfig = new Option<string?>("--config", "-c") { Description = "Agent configuration, to find Agent:LocalApi:Socket" };
var followOption = new Option<bool>("--follow", "-f") { Description = "Keep streaming until Ctrl-C (the only mode)" };
var resultsJson = new Option<bool>("--json") { Description = "One JSON object per line" };
var results = new Command("results", "Stream inference results from the running agent, one line each") { followOption, resultsJson, socketOption, apiConfig };
results.SetAction((parse, ct) => LocalApiCommands.ResultsAsync(EdgeFleet.Agent.LocalApi.LocalApiClient.Locate(parse.GetValue(socketOption), parse.GetValue(apiConfig)),
    parse.GetValue(resultsJson), Console.Out, Console.Error, ct));
var snapshotOut = new Option<string>("--out", "-o") { Description = "JPEG file to write", Required = true };
var snapshot = new Command("snapshot", "Save the next frame the model sees as JPEG, with its result") { snapshotOut, socketOption, apiConfig };
snapshot.SetAction((parse, ct) => LocalApiCommands.SnapshotAsync(EdgeFleet.Agent.LocalApi.LocalApiClient.Locate(parse.GetValue(socketOption), parse.GetValue(apiConfig)),
    parse.GetValue(snapshotOut)!, Console.Out, Console.Error, ct));

var root = new RootCommand("EdgeFleet agent: runs ONNX models on camera frames at the edge") { run, bench, profile, enroll, status, results, snapshot };
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);

/// <summary>
/// The agent's entry point stays internal: with the ASP.NET Core framework reference (the local API) .NET would
/// otherwise make <c>Program</c> public, and test projects referencing both the agent and the control plane would see two.
/// </summary>
internal sealed partial class Program;
