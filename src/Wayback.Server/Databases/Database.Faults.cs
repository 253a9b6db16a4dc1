using System.Collections.Concurrent;
using Wayback.Ltx;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>What kind of fault a database has (the <c>kind</c> label of <c>wayback_db_fault</c>).</summary>
public static class FaultKinds
{
    /// <summary>Sealing the buffer into a segment failed for a reason other than a store outage (its data, the local disk).</summary>
    public const string Seal = "seal";

    /// <summary>An L2/L3 compaction or a snapshot failed on the database's stored objects.</summary>
    public const string Compaction = "compaction";

    /// <summary>A read (restore, download, page-checksum rebuild, verify) found a stored object damaged or missing.</summary>
    public const string Damaged = "damaged";

    /// <summary>Buffer files that do not continue the store's position were set aside as <c>*.orphan</c>.</summary>
    public const string Orphan = "orphan";

    public static readonly string[] All = [Seal, Compaction, Damaged, Orphan];
}

/// <summary>One open fault of one database: since when, how often, and the last error.</summary>
public sealed record DatabaseFault(string Kind, DateTimeOffset Since, DateTimeOffset LastSeen, int Count, string Error);

internal sealed partial class Database
{
    private readonly ConcurrentDictionary<string, DatabaseFault> _faults = new(StringComparer.Ordinal);

    /// <summary>The database's open faults, oldest first. They never make the server unhealthy: they are this database's.</summary>
    public IReadOnlyList<DatabaseFault> Faults => _faults.Values.OrderBy(f => f.Since).ToList();

    /// <summary>
    /// A store outage (the store is unreachable or refuses writes) is the server's problem and shows in
    /// <c>/healthz</c>; anything else - a stored object that fails verification or is missing, data that cannot
    /// be sealed or compacted - belongs to the database it happened in.
    /// </summary>
    internal static bool IsStoreOutage(Exception e) =>
        e is StorageException and not ObjectNotFoundException and not PreconditionFailedException and not Leadership.FencedException
            and not Wayback.Storage.Encryption.SealedObjectException;

    internal void ReportFault(string kind, string error)
    {
        var now = DateTimeOffset.UtcNow;
        _faults.AddOrUpdate(kind, _ => new DatabaseFault(kind, now, now, 1, error),
            (_, f) => f with { LastSeen = now, Count = f.Count + 1, Error = error });
    }

    internal void ClearFault(string kind) => _faults.TryRemove(kind, out _);

    /// <summary>Records a read that found a damaged or missing object; store outages are not this database's fault.</summary>
    internal void NoteReadFailure(Exception e)
    {
        if (e is LtxException or EndOfStreamException or ObjectNotFoundException or InvalidDataException or Wayback.Storage.Encryption.SealedObjectException)
            ReportFault(FaultKinds.Damaged, e.Message);
    }
}
