using Wayback.Ltx;
using Wayback.Server.Hosting;

namespace Wayback.Server.Databases;

/// <summary>
/// What a file must be for the server to take it into a database's history, which may only ever hold files
/// that leave a complete database. The header is checked here, before any page is read or anything is sized
/// from it; the pages by the decoder once it knows the size before the file (<see cref="LtxDecoder.BaseCommit"/>:
/// every page the file grows the database by must be in it, the lock page never, and a snapshot holds every
/// page); the post-apply checksum by <see cref="ProvePostApply"/> from the page checksums the file leaves.
/// </summary>
internal static class IngestRules
{
    /// <summary>
    /// The largest TXID taken: 2^53 - 1. TXIDs reach the dashboard's JavaScript as JSON numbers, exact only up to
    /// there (285 years at a million transactions a second), and a TXID near 2^64 would leave no next one.
    /// </summary>
    public const ulong MaxTxid = (1UL << 53) - 1;

    /// <summary>How far ahead of the server's clock a commit timestamp may be (clocks drift; a year does not).</summary>
    public static readonly TimeSpan MaxClockAhead = TimeSpan.FromDays(1);

    /// <summary>
    /// Checks the header of file <paramref name="index"/> of a request against the position <paramref name="cur"/>
    /// the files before it left (with <paramref name="pages"/> its page checksums, null for a database with no
    /// data yet). Returns the database size the file starts from, for <see cref="LtxDecoder.BaseCommit"/>.
    /// </summary>
    public static uint CheckHeader(in LtxHeader h, string fileName, int index, Position cur, PageChecksums? pages, ServerOptions options, long nowMs)
    {
        if (!h.HasChecksums)
            throw BadLtx($"{fileName} has no database checksums (flag 0x2); the server tracks positions by checksum");
        if (h.MaxTxid > MaxTxid)
            throw BadLtx($"{fileName}: max TXID {h.MaxTxid} is beyond {MaxTxid} (2^53 - 1), the largest the server takes (TXIDs must stay exact as JSON numbers)");
        if (h.TimestampMs < 0)
            throw BadLtx($"{fileName}: timestamp {h.TimestampMs} ms is before 1970");
        if (h.TimestampMs > nowMs + (long)MaxClockAhead.TotalMilliseconds)
            throw BadLtx($"{fileName}: timestamp {h.TimestampMs} ms is more than {MaxClockAhead.TotalHours:0} hours ahead of the server's clock ({nowMs} ms)");
        long bytes = (long)h.Commit * h.PageSize;
        if (bytes > options.MaxDatabaseBytes || h.Commit > PageChecksums.MaxPageCount)
            throw new BadInputException(
                $"{fileName}: commit {h.Commit} pages of {h.PageSize} bytes is a {bytes}-byte database; the server takes databases up to {Math.Min(options.MaxDatabaseBytes, (long)PageChecksums.MaxPageCount * h.PageSize)} bytes (max-db-size)", BadInputKind.TooLarge);
        if (h.IsSnapshot)
        {
            if (index > 0)
                throw new BadInputException($"{fileName} is a snapshot; a snapshot must be the first file of a request");
            if (cur.Txid > 0 && h.MaxTxid <= cur.Txid)
                throw new PositionMismatchException($"snapshot up to TXID {h.MaxTxid} is not ahead of the position {cur}", cur);
            return 0;
        }
        ulong expected = cur.Txid == 0 ? 0 : cur.Checksum;
        if (h.MinTxid != cur.Txid + 1 || h.PreApplyChecksum != expected)
            throw new PositionMismatchException($"{fileName} (TXID {h.MinTxid}, pre-apply {h.PreApplyChecksum:x16}) does not follow the position {cur}", cur);
        if (pages is null || pages.PageSize != h.PageSize)
            throw BadLtx($"{fileName} has page size {h.PageSize}, the database {pages?.PageSize}");
        return pages.PageCount;
    }

    /// <summary>The file's claimed post-apply checksum must be what applying it gave.</summary>
    public static void ProvePostApply(LtxDecoder decoder, ulong computed, string fileName)
    {
        ulong claimed = decoder.Trailer.PostApplyChecksum;
        if (claimed != computed)
            throw BadInputException.Checksum($"{fileName}: post-apply checksum {claimed:x16} is wrong; applying the file gives {computed:x16}");
    }

    public static BadInputException BadLtx(string message) => BadInputException.Ltx(message);
}
