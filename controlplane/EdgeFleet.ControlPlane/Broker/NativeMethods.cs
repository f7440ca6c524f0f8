using System.Runtime.InteropServices;

namespace EdgeFleet.ControlPlane.Broker;

/// <summary>libc's <c>kill(2)</c>: mosquitto reloads its files on SIGHUP and saves its queue on SIGTERM.</summary>
internal static class NativeMethods
{
    public const int SigHup = 1;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>0 on success; -1 with the errno in <see cref="Marshal.GetLastPInvokeError"/> otherwise.</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int Kill(int pid, int signal);
}
