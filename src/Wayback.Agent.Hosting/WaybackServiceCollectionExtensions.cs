using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Wayback.Agent.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

public static class WaybackServiceCollectionExtensions
{
    /// <summary>
    /// Replicates SQLite databases of this application to a Wayback server for as long as the host runs:
    /// <c>builder.Services.AddWayback(o => { o.Server = new Uri("http://backup:20202"); o.Token = ...; o.Database("app.db"); })</c>.
    /// Adds <see cref="WaybackAgent"/> (hosted; resolve it for metrics) and a health check named <c>wayback</c>.
    /// </summary>
    public static IServiceCollection AddWayback(this IServiceCollection services, Action<WaybackAgentOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<WaybackAgentOptions>().Configure(configure);
        services.AddSingleton<WaybackAgent>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<WaybackAgent>());
        services.AddHealthChecks().AddCheck<WaybackHealthCheck>("wayback", HealthStatus.Unhealthy, ["wayback"]);
        return services;
    }
}
