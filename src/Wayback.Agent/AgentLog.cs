namespace Wayback.Agent;

/// <summary>Where the agent says what it does: one line per notable event, never one per transaction.</summary>
public interface IAgentLog
{
    void Info(string message);
    void Warn(string message);
    void Error(string message);
}

/// <summary>Timestamped lines on a writer (stderr for the CLI).</summary>
public sealed class TextAgentLog(TextWriter writer) : IAgentLog
{
    private readonly Lock _lock = new();

    public void Info(string message) => Write("info", message);
    public void Warn(string message) => Write("warn", message);
    public void Error(string message) => Write("error", message);

    private void Write(string level, string message)
    {
        lock (_lock)
        {
            writer.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {message}");
            writer.Flush();
        }
    }
}

/// <summary>Discards everything (benchmarks, tests that do not look).</summary>
public sealed class NullAgentLog : IAgentLog
{
    public static readonly NullAgentLog Instance = new();
    public void Info(string message) { }
    public void Warn(string message) { }
    public void Error(string message) { }
}
