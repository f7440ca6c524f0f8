using System.Runtime.Versioning;
using EdgeFleet.Cli.Configuration;
using EdgeFleet.Testing;

namespace EdgeFleet.Cli.Tests;

[Trait("Category", "Unit")]
public sealed class CliConfigTests
{
    private static Func<string, string?> Env(params (string Key, string Value)[] values) =>
        key => values.FirstOrDefault(v => v.Key == key).Value;

    [Fact]
    public void DefaultPath_XdgConfigHomeSet_UsesIt()
    {
        Assert.Equal("/etc/xdg-test/edgefleet/config.json", CliConfig.DefaultPath(Env(("XDG_CONFIG_HOME", "/etc/xdg-test"), ("HOME", "/home/op"))));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("relative/dir")]
    public void DefaultPath_XdgConfigHomeUnsetOrRelative_UsesDotConfigInHome(string? xdg)
    {
        var env = xdg is null ? Env(("HOME", "/home/op")) : Env(("HOME", "/home/op"), ("XDG_CONFIG_HOME", xdg));

        Assert.Equal("/home/op/.config/edgefleet/config.json", CliConfig.DefaultPath(env));
    }

    [Fact]
    public void Resolve_BothVariablesSet_UsesThemWithoutReadingTheFile()
    {
        var settings = CliConfig.Resolve(Env(("EDGEFLEET_SERVER", "https://fleet.example.com"), ("EDGEFLEET_TOKEN", "t0k")), "/nonexistent/dir/config.json");

        Assert.Equal(new CliSettings(new Uri("https://fleet.example.com/"), "t0k"), settings);
    }

    [Fact]
    public void Resolve_NothingSetAndNoFile_FailsWithLoginHint()
    {
        var ex = Assert.Throws<CliConfigException>(() => CliConfig.Resolve(Env(), "/nonexistent/dir/config.json"));

        Assert.Contains("run edgefleet login", ex.Message, StringComparison.Ordinal);
        Assert.Contains("EDGEFLEET_SERVER/EDGEFLEET_TOKEN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_OnlyServerSet_NamesTheMissingToken()
    {
        var ex = Assert.Throws<CliConfigException>(() => CliConfig.Resolve(Env(("EDGEFLEET_SERVER", "http://h")), "/nonexistent/dir/config.json"));

        Assert.Contains("no API token", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://fleet:8080", "http://fleet:8080/")]
    [InlineData("https://example.com/edgefleet", "https://example.com/edgefleet/")]
    [InlineData("  https://example.com/  ", "https://example.com/")]
    public void ParseServer_HttpUrl_EndsWithSlash(string value, string expected)
    {
        Assert.Equal(expected, CliConfig.ParseServer(value).AbsoluteUri);
    }

    [Theory]
    [InlineData("fleet.example.com")]
    [InlineData("ftp://fleet.example.com")]
    [InlineData("https://fleet.example.com/?x=1")]
    public void ParseServer_NotAnHttpUrl_Throws(string value)
    {
        var ex = Assert.Throws<CliConfigException>(() => CliConfig.ParseServer(value));

        Assert.Contains(value, ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>The config file on a real file system.</summary>
[Trait("Category", "Integration")]
[UnsupportedOSPlatform("windows")]
public sealed class CliConfigFileTests
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public void Save_NewDirectory_FileIs0600AndDirectory0700()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "edgefleet", "config.json");

        CliConfig.Save(path, new CliConfigFile { Server = "http://h/", Token = "secret" });

        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
        Assert.Equal(OwnerReadWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        Assert.Equal(new CliConfigFile { Server = "http://h/", Token = "secret" }, CliConfig.Load(path));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void Save_ExistingWorldReadableFile_BecomesOwnerOnly()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        File.WriteAllText(path, "{}");
        File.SetUnixFileMode(path, OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        CliConfig.Save(path, new CliConfigFile { Server = "http://h/", Token = "secret" });

        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Resolve_TokenVariableAndFile_VariableWinsAndFileGivesServer()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        CliConfig.Save(path, new CliConfigFile { Server = "http://saved:5000/", Token = "saved-token" });

        var settings = CliConfig.Resolve(key => key == "EDGEFLEET_TOKEN" ? "ci-token" : null, path);

        Assert.Equal(new CliSettings(new Uri("http://saved:5000/"), "ci-token"), settings);
    }

    [Fact]
    public void Load_BrokenJson_FailsNamingTheFile()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        File.WriteAllText(path, "{ server: ");

        var ex = Assert.Throws<CliConfigException>(() => CliConfig.Load(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }
}
