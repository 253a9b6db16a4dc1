using Microsoft.Extensions.Logging;

namespace Wayback.Agent.Hosting;

/// <summary>The agent's events through the application's <see cref="ILogger"/> (category <c>Wayback.Agent</c>).</summary>
internal sealed class LoggerAgentLog(ILogger logger) : IAgentLog
{
    public void Info(string message) => logger.LogInformation("{Message}", message);
    public void Warn(string message) => logger.LogWarning("{Message}", message);
    public void Error(string message) => logger.LogError("{Message}", message);
}
