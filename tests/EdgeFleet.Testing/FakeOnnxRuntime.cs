using System.Diagnostics;

namespace EdgeFleet.Testing;

/// <summary>
/// A tiny C shared library, compiled with gcc into a directory of the test's, that looks like ONNX Runtime from
/// outside: it exports <c>OrtGetApiBase</c>, whose <c>GetVersionString</c> reports <paramref name="version"/> and whose
/// <c>GetApi</c> returns NULL (no C API at all). Stands in for an old JetPack build.
/// </summary>
public static class FakeOnnxRuntime
{
    public static string Build(string directory, string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        var source = Path.Combine(directory, "fake_ort.c");
        var library = Path.Combine(directory, "libonnxruntime.so.1");
        File.WriteAllText(source, $$"""
            #include <stddef.h>
            typedef struct OrtApiBase {
              const void* (*GetApi)(unsigned int version);
              const char* (*GetVersionString)(void);
            } OrtApiBase;
            static const void* get_api(unsigned int version) { (void)version; return NULL; }
            static const char* get_version(void) { return "{{version}}"; }
            static const OrtApiBase api_base = { get_api, get_version };
            const OrtApiBase* OrtGetApiBase(void) { return &api_base; }
            """);
        var psi = new ProcessStartInfo("gcc", ["-shared", "-fPIC", "-O1", "-o", library, source])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var gcc = Process.Start(psi) ?? throw new InvalidOperationException("gcc did not start (deploy/bootstrap.sh installs it)");
        var stderr = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0)
        {
            throw new InvalidOperationException($"gcc failed ({gcc.ExitCode}): {stderr}");
        }

        return library;
    }
}
