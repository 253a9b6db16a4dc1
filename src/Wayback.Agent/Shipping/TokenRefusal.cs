namespace Wayback.Agent.Shipping;

/// <summary>
/// How long the server has refused one database's token (401) without a break. A server restarting or a token
/// being rotated refuses for moments; one that refuses for
/// <see cref="Replication.AgentOptions.GiveUpOnRefusedTokenAfter"/> means the token is wrong or revoked, and
/// the agent stops rather than retry forever unnoticed.
/// </summary>
public sealed class TokenRefusal(string database, Uri server, string token, TimeSpan giveUpAfter)
{
    private long? _since;

    /// <summary>The server took the token: the count starts again.</summary>
    public void Accepted() => _since = null;

    /// <summary>Records a failed call: true if it was a refusal of the token (then the count goes on).</summary>
    public bool Record(Exception e)
    {
        if (e is not ServerException { Status: 401 })
        {
            _since = null;
            return false;
        }
        _since ??= Environment.TickCount64;
        return true;
    }

    /// <summary>True once refusals have lasted the whole period (never with a zero period).</summary>
    public bool Exhausted => _since is { } since && giveUpAfter > TimeSpan.Zero && Environment.TickCount64 - since >= (long)giveUpAfter.TotalMilliseconds;

    /// <summary>The log line for a refusal (at error: someone must fix the token).</summary>
    public string LogLine(string error) =>
        $"{database}: the server at {server} refuses {Name(token)}: {error}; " +
        (giveUpAfter > TimeSpan.Zero ? $"retrying for {giveUpAfter.TotalSeconds:0} s, then stopping" : "retrying") + " (capture goes on into the journal)";

    /// <summary>What stops the agent: which token and database, and that the journal keeps everything.</summary>
    public TokenRefusedException Stop(string journalDirectory, ulong localTxid) => new(
        $"{database}: the server at {server} has refused {Name(token)} (401: wrong or revoked) for {giveUpAfter.TotalSeconds:0} s; stopped. " +
        $"Nothing is lost: the journal in {journalDirectory} keeps every transaction the server has not acknowledged (local TXID {localTxid}); " +
        "start the agent again with a valid --token or WAYBACK_TOKEN (`wayback tokens create CLUSTER` makes one) and it ships them");

    /// <summary>
    /// The token as a user can find it without the secret: a cluster token's id (<c>wayback tokens list</c>),
    /// or for another kind only its length.
    /// </summary>
    public static string Name(string token)
    {
        string t = token.Trim();
        int space = t.LastIndexOf(' ');
        if (space >= 0)
            t = t[(space + 1)..]; // "Bearer T" or LiteFS's "FlyV1 T"
        return t.StartsWith("wb_", StringComparison.Ordinal) && t.Length > 16 && t[15] == '_'
            ? $"token id {t[3..15]} (wb_{t[3..15]}_...)"
            : $"the {t.Length}-character token given (not a wayback cluster token: those start wb_)";
    }
}

/// <summary>The server kept refusing the agent's token; the agent stopped. The journal keeps every transaction.</summary>
public sealed class TokenRefusedException(string message) : Exception(message);
