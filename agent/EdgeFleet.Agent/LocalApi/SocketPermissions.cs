using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace EdgeFleet.Agent.LocalApi;

/// <summary>Socket mode 0660 and group <c>edgefleet</c> when that group exists, so members can use the CLI without root.</summary>
internal static partial class SocketPermissions
{
    public const string Group = "edgefleet";

    public static void Apply(string path, ILogger logger)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogMode(logger, path, ex.Message);
        }

        if (GroupId(Group) is not { } gid)
        {
            return;
        }

        if (Chown(path, -1, gid) != 0)
        {
            LogChown(logger, path, Group, Marshal.GetLastPInvokeErrorMessage());
        }
    }

    /// <summary>The group's id from /etc/group; null when there is no such group.</summary>
    internal static int? GroupId(string name)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/group"))
            {
                var parts = line.Split(':');
                if (parts.Length >= 3 && parts[0] == name && int.TryParse(parts[2], out var gid))
                {
                    return gid;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return null;
    }

    [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int owner, int group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Local API: cannot set mode 0660 on {Socket}: {Reason}")]
    private static partial void LogMode(ILogger logger, string socket, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Local API: cannot give {Socket} to group {Group} ({Reason}); only the agent's user can use it. Run the agent as a member of that group")]
    private static partial void LogChown(ILogger logger, string socket, string group, string reason);
}
