using System.Runtime.InteropServices;

namespace EdgeFleet.Mqtt.Native;

/// <summary>
/// P/Invoke declarations for libmosquitto 2.0 (<c>libmosquitto.so.1</c>, Debian package libmosquitto1), as
/// declared in mosquitto.h. C <c>bool</c> is one byte.
/// </summary>
internal static unsafe partial class Mosquitto
{
    public const string Library = "libmosquitto.so.1";

    public const int ErrSuccess = 0;
    public const int ErrNoConn = 4;
    public const int ErrConnLost = 7;
    public const int OptProtocolVersion = 1;
    public const int OptReceiveMaximum = 4;
    public const int OptSendMaximum = 5;
    public const int OptTcpNodelay = 11;
    public const int ProtocolV5 = 5;
    public const int ReasonDisconnectWithWill = 0x04;

    [LibraryImport(Library, EntryPoint = "mosquitto_lib_init")]
    public static partial int LibInit();

    [LibraryImport(Library, EntryPoint = "mosquitto_lib_version")]
    public static partial int LibVersion(out int major, out int minor, out int revision);

    [LibraryImport(Library, EntryPoint = "mosquitto_new", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint New(string? id, [MarshalAs(UnmanagedType.U1)] bool cleanSession, nint obj);

    [LibraryImport(Library, EntryPoint = "mosquitto_destroy")]
    public static partial void Destroy(nint mosq);

    [LibraryImport(Library, EntryPoint = "mosquitto_int_option")]
    public static partial int IntOption(nint mosq, int option, int value);

    [LibraryImport(Library, EntryPoint = "mosquitto_username_pw_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UsernamePwSet(nint mosq, string? username, string? password);

    [LibraryImport(Library, EntryPoint = "mosquitto_will_set_v5", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int WillSetV5(nint mosq, string topic, int payloadLength, byte* payload, int qos,
        [MarshalAs(UnmanagedType.U1)] bool retain, nint properties);

    [LibraryImport(Library, EntryPoint = "mosquitto_tls_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int TlsSet(nint mosq, string? caFile, string? caPath, string? certFile, string? keyFile, nint passwordCallback);

    [LibraryImport(Library, EntryPoint = "mosquitto_tls_insecure_set")]
    public static partial int TlsInsecureSet(nint mosq, [MarshalAs(UnmanagedType.U1)] bool insecure);

    [LibraryImport(Library, EntryPoint = "mosquitto_reconnect_delay_set")]
    public static partial int ReconnectDelaySet(nint mosq, uint delay, uint delayMax, [MarshalAs(UnmanagedType.U1)] bool exponential);

    [LibraryImport(Library, EntryPoint = "mosquitto_connect_async", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ConnectAsync(nint mosq, string host, int port, int keepalive);

    [LibraryImport(Library, EntryPoint = "mosquitto_loop_start")]
    public static partial int LoopStart(nint mosq);

    [LibraryImport(Library, EntryPoint = "mosquitto_loop_stop")]
    public static partial int LoopStop(nint mosq, [MarshalAs(UnmanagedType.U1)] bool force);

    [LibraryImport(Library, EntryPoint = "mosquitto_disconnect_v5")]
    public static partial int DisconnectV5(nint mosq, int reasonCode, nint properties);

    [LibraryImport(Library, EntryPoint = "mosquitto_publish_v5")]
    public static partial int PublishV5(nint mosq, out int mid, byte* topic, int payloadLength, byte* payload, int qos,
        [MarshalAs(UnmanagedType.U1)] bool retain, nint properties);

    [LibraryImport(Library, EntryPoint = "mosquitto_subscribe_v5", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SubscribeV5(nint mosq, out int mid, string filter, int qos, int options, nint properties);

    [LibraryImport(Library, EntryPoint = "mosquitto_strerror")]
    public static partial nint StrError(int error);

    [LibraryImport(Library, EntryPoint = "mosquitto_reason_string")]
    public static partial nint ReasonString(int reasonCode);

    [LibraryImport(Library, EntryPoint = "mosquitto_connect_v5_callback_set")]
    public static partial void ConnectV5CallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, nint, void> callback);

    [LibraryImport(Library, EntryPoint = "mosquitto_disconnect_v5_callback_set")]
    public static partial void DisconnectV5CallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, nint, void> callback);

    [LibraryImport(Library, EntryPoint = "mosquitto_publish_v5_callback_set")]
    public static partial void PublishV5CallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, nint, void> callback);

    [LibraryImport(Library, EntryPoint = "mosquitto_message_v5_callback_set")]
    public static partial void MessageV5CallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, MosquittoMessage*, nint, void> callback);

    [LibraryImport(Library, EntryPoint = "mosquitto_subscribe_v5_callback_set")]
    public static partial void SubscribeV5CallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, int, int*, nint, void> callback);

    [LibraryImport(Library, EntryPoint = "mosquitto_log_callback_set")]
    public static partial void LogCallbackSet(nint mosq, delegate* unmanaged[Cdecl]<nint, nint, int, byte*, void> callback);

    public static string ErrorText(int error) => Marshal.PtrToStringUTF8(StrError(error)) ?? $"error {error}";

    public static string ReasonText(int reason) => Marshal.PtrToStringUTF8(ReasonString(reason)) ?? $"reason {reason}";
}

/// <summary><c>struct mosquitto_message</c> (LP64: 40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MosquittoMessage
{
    public int Mid;
    public byte* Topic;
    public byte* Payload;
    public int PayloadLength;
    public int Qos;
    public byte Retain;
}

/// <summary>Loads libmosquitto once, with a clear message when it is missing.</summary>
internal static class MosquittoLibrary
{
    private static readonly Lock InitLock = new();
    private static bool s_initialised;

    public static (int Major, int Minor, int Revision) EnsureLoaded()
    {
        lock (InitLock)
        {
            if (!NativeLibrary.TryLoad(Mosquitto.Library, typeof(MosquittoLibrary).Assembly, DllImportSearchPath.SafeDirectories, out _))
            {
                throw new MqttLibraryNotFoundException(
                    $"{Mosquitto.Library} (the Eclipse Mosquitto client library) could not be loaded. Install the Debian " +
                    "package libmosquitto1 (sudo apt install libmosquitto1; deploy/bootstrap.sh does it).");
            }

            if (!s_initialised)
            {
                Mosquitto.LibInit(); // not thread safe: guarded by the lock
                s_initialised = true;
            }

            Mosquitto.LibVersion(out var major, out var minor, out var revision);
            if (major < 2 && (major < 1 || minor < 6))
            {
                throw new MqttLibraryNotFoundException($"libmosquitto {major}.{minor}.{revision} is too old: MQTT 5 needs 1.6 or newer");
            }

            return (major, minor, revision);
        }
    }
}
