using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EdgeFleet.ControlPlane.Tests;

[Trait("Category", "Integration")]
public sealed class HealthTests
{
    [Fact]
    public async Task Healthz_AnswersOk()
    {
        await using var factory = new WebApplicationFactory<Program>();
        using var client = factory.CreateClient();
        using var response = await client.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
