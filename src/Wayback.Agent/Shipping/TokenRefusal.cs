namespace Wayback.Agent.Shipping;

/// <summary>
/// How long the server has refused the agent's token (401) without a break. A server restarting or a token
/// being rotated refuses for moments; one that refuses for <see cref="Replication.AgentOptions.GiveUpOnRefusedTokenAfter"/>
/// means the token is wrong or revoked, and the agent stops rather than retry forever unnoticed.
/// </summary>
public sealed class TokenRefusal(TimeSpan giveUpAfter)
{
    private long? _since;

    /// <summary>The server took the token: the count starts again.</summary>
    public void Accepted() => _since = null;

    /// <summary>Records a refusal; true once refusals have lasted the whole period.</summary>
    public bool Refused()
    {
        long now = Environment.TickCount64;
        _since ??= now;
        return giveUpAfter > TimeSpan.Zero && now - _since.Value >= (long)giveUpAfter.TotalMilliseconds;
    }

    /// <summary>
    /// The token as a user can find it without the secret: a cluster token's id (<c>wayback tokens list</c>),
    /// or for another kind only its length.
    /// </summary>
    public static string Describe(string token)
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
