using Wayback.Ltx;

namespace Wayback.Cli;

/// <summary>Turns the errors a command can expect into one line on stderr and an exit code.</summary>
internal static class CliErrors
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    /// <summary><c>replicate</c>: the server kept refusing the token (401); the journal keeps everything.</summary>
    public const int TokenRefused = 3;

    public static async Task<int> RunAsync(TextWriter stderr, Func<Task<int>> work)
    {
        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (LtxException e)
        {
            await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
            return Failed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
            return Failed;
        }
        catch (ArgumentException e)
        {
            await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
            return Usage;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
    }
}
