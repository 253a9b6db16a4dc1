namespace Wayback.Protocol;

/// <summary>The <c>code</c> of an error body (LiteFS reads it; only EPOSMISMATCH changes what it does).</summary>
public static class ErrorCodes
{
    public const string PositionMismatch = "EPOSMISMATCH";
    public const string BadChecksum = "EBADCHECKSUM";
    public const string BadLtx = "EBADLTX";
    public const string BadName = "EBADNAME";
    public const string BadRequest = "EBADREQUEST";
    public const string Unauthorized = "EUNAUTHORIZED";
    public const string Forbidden = "EFORBIDDEN";
    public const string NotFound = "ENOTFOUND";
    public const string Exists = "EEXISTS";
    public const string TooLarge = "ETOOLARGE";
    public const string Storage = "ESTORAGE";
    public const string Internal = "EINTERNAL";
    public const string OutOfRange = "EOUTOFRANGE";
    public const string Confirm = "ECONFIRM";
    public const string Trashed = "ETRASHED";
    public const string QueryRefused = "EQUERYREFUSED";
    public const string BadQuery = "EBADQUERY";
    public const string QueryLimit = "EQUERYLIMIT";

    /// <summary>A stored object is encrypted with a key the server does not have; the message names the key id.</summary>
    public const string KeyMissing = "EKEYMISSING";

    /// <summary>A stored, encrypted object failed authentication (changed, cut short, or swapped for another).</summary>
    public const string Tampered = "ETAMPERED";

    /// <summary>With two servers on one bucket: no leader takes writes now (one is being chosen); try again after <c>Retry-After</c>.</summary>
    public const string NoLeader = "ENOLEADER";
}
