// The control plane runs on Linux (it supervises mosquitto and sets Unix file modes on its secrets).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
