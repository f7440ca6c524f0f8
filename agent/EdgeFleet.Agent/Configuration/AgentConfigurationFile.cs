using Microsoft.Extensions.Configuration;

namespace EdgeFleet.Agent.Configuration;

/// <summary>
/// The agent's configuration as <c>run</c> reads it (JSON file, then <c>EDGEFLEET_</c> environment variables), for the
/// tools (<c>bench</c>, <c>profile</c>) that build the same pipeline and so honour the same capture and runtime paths.
/// </summary>
public static class AgentConfigurationFile
{
    /// <param name="path">Null: defaults and environment only.</param>
    public static AgentOptions Load(string? path)
    {
        var builder = new ConfigurationBuilder();
        if (path is not null)
        {
            builder.AddJsonFile(Path.GetFullPath(path), optional: false, reloadOnChange: false);
        }

        builder.AddEnvironmentVariables("EDGEFLEET_");
        var options = new AgentOptions();
        builder.Build().GetSection(AgentOptions.SectionName).Bind(options);
        return options;
    }
}
