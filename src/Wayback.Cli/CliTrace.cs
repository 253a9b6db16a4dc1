using System.Diagnostics;
using System.Runtime;

namespace Wayback.Cli;

/// <summary>
/// <c>WAYBACK_TRACE=1</c> prints to stderr how long after the process started each step of a command ended, so
/// the fixed cost of a short command (process start, parsing, the first request) can be told from its work; and
/// how many methods the JIT has compiled by then and in how long, which is what ReadyToRun did not cover.
/// </summary>
internal static class CliTrace
{
    private static readonly bool On = Environment.GetEnvironmentVariable("WAYBACK_TRACE") == "1";

    public static void Mark(string step)
    {
        if (!On)
            return;
        double ms = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        Console.Error.WriteLine($"trace: {ms,7:F1} ms  {step}  (jit: {JitInfo.GetCompiledMethodCount()} methods, {JitInfo.GetCompilationTime().TotalMilliseconds:F0} ms)");
    }
}
