namespace Wayback.Protocol;

/// <summary>The HTTP headers of the protocol (docs/protocol.md).</summary>
public static class ProtocolHeaders
{
    /// <summary>On a 2xx to <c>POST /db/tx</c>: the highest TXID durable in the object store, 16 hex digits.</summary>
    public const string Hwm = "Litefs-Hwm";

    /// <summary>Sent by LiteFS nodes that have a cluster ID; the server accepts and ignores it.</summary>
    public const string ClusterId = "Litefs-Cluster-Id";

    /// <summary>On <c>POST /db/tx</c>: <c>v1</c> or <c>v3</c>, forcing the LTX format (otherwise detected).</summary>
    public const string LtxFormat = "Wayback-Ltx-Format";

    /// <summary>On <c>POST /db/tx</c>: the decimal byte lengths of the LTX files in the body, comma-separated.</summary>
    public const string LtxLengths = "Wayback-Ltx-Lengths";

    /// <summary>On a <c>/db/snapshot</c> answer: the TXID restored, 16 hex digits.</summary>
    public const string Txid = "Wayback-Txid";

    /// <summary>On a <c>/db/snapshot</c> answer: the database checksum at that TXID, 16 hex digits.</summary>
    public const string PostApplyChecksum = "Wayback-Post-Apply-Checksum";

    /// <summary>On a <c>/db/snapshot</c> answer: when that TXID was committed, decimal Unix milliseconds.</summary>
    public const string TimestampMs = "Wayback-Timestamp-Ms";
}
