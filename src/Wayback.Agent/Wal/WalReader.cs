using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Wayback.Agent.Wal;

/// <summary>
/// Where reading a WAL stopped: the generation (salts), the offset of the next frame, and the running
/// checksum at that offset, which the next frame's checksum must continue from.
/// </summary>
public readonly record struct WalCursor(uint Salt1, uint Salt2, long Offset, uint S1, uint S2)
{
    /// <summary>The cursor at the first frame of a WAL generation.</summary>
    public static WalCursor Start(WalHeader h) => new(h.Salt1, h.Salt2, WalHeader.Size, h.Checksum1, h.Checksum2);

    public bool SameGeneration(WalHeader h) => h.Salt1 == Salt1 && h.Salt2 == Salt2;

    public override string ToString() => $"salts {Salt1:x8}/{Salt2:x8} offset {Offset}";
}

/// <summary>One committed transaction in the WAL: its frames and, for each page, its newest frame.</summary>
public sealed class WalTransaction
{
    public required long StartOffset { get; init; }

    /// <summary>The cursor just after the commit frame.</summary>
    public required WalCursor End { get; init; }

    /// <summary>The database size in pages after the commit.</summary>
    public required uint Commit { get; init; }

    public required int FrameCount { get; init; }

    /// <summary>Page number → file offset of the newest frame holding it in this transaction.</summary>
    public required Dictionary<uint, long> Pages { get; init; }
}

/// <summary>What one scan of the WAL found.</summary>
public sealed class WalScan
{
    public List<WalTransaction> Transactions { get; } = [];

    /// <summary>The cursor after the last commit frame read (or the start cursor if none).</summary>
    public WalCursor End { get; set; }

    /// <summary>Frames read after the last commit frame (an open or torn transaction, re-read later).</summary>
    public int UncommittedFrames { get; set; }

    /// <summary>True if the scan stopped because it reached its frame budget, not the end of the log.</summary>
    public bool MoreAvailable { get; set; }

    private byte[]? _buffer;
    private long _bufferOffset;
    private int _bufferBytes;

    internal void Keep(byte[] buffer, long offset, int bytes) => (_buffer, _bufferOffset, _bufferBytes) = (buffer, offset, bytes);

    /// <summary>True if every page of every transaction found is in the scan's buffer (none needs reading again).</summary>
    public bool AllPagesBuffered(int frameSize)
    {
        foreach (var tx in Transactions)
            foreach (long at in tx.Pages.Values)
                if (Page(at, frameSize) is null)
                    return false;
        return true;
    }

    /// <summary>
    /// The page of the frame at <paramref name="frameOffset"/> as the scan read and checked it, if the
    /// caller's buffer still holds it (the scan's last read); null otherwise. Valid until the buffer is reused.
    /// </summary>
    public ReadOnlyMemory<byte>? Page(long frameOffset, int frameSize)
    {
        if (_buffer is null || frameOffset < _bufferOffset || frameOffset + frameSize > _bufferOffset + _bufferBytes)
            return null;
        return _buffer.AsMemory((int)(frameOffset - _bufferOffset) + WalHeader.FrameHeaderSize, frameSize - WalHeader.FrameHeaderSize);
    }
}

/// <summary>
/// Reads committed transactions out of a live WAL file. Every frame is checked against the header's
/// salts and the running checksum; the first frame that fails ends the log (that is how SQLite itself
/// finds the end). Frames after the last commit frame are never returned: the writer may still change them.
/// </summary>
public static class WalReader
{
    /// <summary>Reads the WAL header, or null if the file is missing, short or not a valid header.</summary>
    public static WalHeader? ReadHeader(SafeFileHandle wal)
    {
        Span<byte> b = stackalloc byte[WalHeader.Size];
        int n = RandomAccess.Read(wal, b, 0);
        return n < WalHeader.Size ? null : WalHeader.TryRead(b);
    }

    /// <summary>
    /// Salt-1 as SQLite's shared WAL index (<c>-shm</c>) holds it: that of the next generation once a TRUNCATE
    /// or RESTART checkpoint has emptied the WAL. Null if its two header copies differ (a writer is updating
    /// them). The handle must stay open as long as the process has SQLite connections to the database:
    /// closing any descriptor of the file would drop every POSIX lock the process holds on it, SQLite's too.
    /// </summary>
    public static uint? ReadSharedIndexSalt1(SafeFileHandle shm)
    {
        const int headerCopy = 48, salt1At = 32;
        Span<byte> b = stackalloc byte[2 * headerCopy];
        if (RandomAccess.Read(shm, b, 0) < b.Length || !b[..headerCopy].SequenceEqual(b[headerCopy..]))
            return null;
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[salt1At..]);
    }

    private const int InitialReadFrames = 64;

    /// <summary>
    /// Scans from <paramref name="from"/> (whole transactions only, so a budget may be exceeded by one) (which must be in <paramref name="header"/>'s generation and on a
    /// frame boundary) and returns the committed transactions found, at most about
    /// <paramref name="maxFrames"/> frames' worth.
    /// </summary>
    public static WalScan Scan(SafeFileHandle wal, WalHeader header, WalCursor from, int maxFrames = 1 << 16, int maxTransactions = int.MaxValue,
        byte[]? buffer = null, CancellationToken ct = default)
    {
        if (!from.SameGeneration(header))
            throw new ArgumentException($"cursor ({from}) is not in the WAL's generation (salts {header.Salt1:x8}/{header.Salt2:x8})");
        int frameSize = header.FrameSize;
        if ((from.Offset - WalHeader.Size) % frameSize != 0)
            throw new ArgumentException($"cursor offset {from.Offset} is not on a frame boundary");
        var scan = new WalScan { End = from };
        int perRead = Math.Max(1, (1 << 20) / frameSize);
        bool rented = buffer is null || buffer.Length < frameSize;
        if (rented)
            buffer = ArrayPool<byte>.Shared.Rent(perRead * frameSize);
        else
            perRead = buffer!.Length / frameSize;
        try
        {
            long offset = from.Offset;
            uint s1 = from.S1, s2 = from.S2;
            var pages = new Dictionary<uint, long>();
            long txStart = offset;
            int txFrames = 0;
            int frames = 0;
            bool big = header.BigEndianChecksum;
            // A restarted WAL keeps its old frames past the new end, so a read of the whole buffer would mostly
            // copy stale bytes: reads start small and double while every frame they bring is valid. Each read
            // goes after the previous one in the buffer, so the scan's pages stay there for the caller.
            int want = Math.Min(perRead, InitialReadFrames);
            long bufferStart = offset;
            int used = 0;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                // A read takes what is left of the buffer before it starts over at its beginning: starting over
                // drops the pages of the scan's first transactions, which the caller then reads again one by one.
                if (used == perRead * frameSize)
                {
                    bufferStart = offset;
                    used = 0;
                }
                want = Math.Min(want, perRead - used / frameSize);
                int got = RandomAccess.Read(wal, buffer!.AsSpan(used, want * frameSize), offset);
                int whole = got / frameSize;
                if (!rented)
                    scan.Keep(buffer!, bufferStart, used + whole * frameSize);
                if (whole == 0)
                    break;
                bool stop = false;
                for (int i = 0; i < whole; i++)
                {
                    var frame = buffer!.AsSpan(used + i * frameSize, frameSize);
                    var fh = WalFrameHeader.Read(frame);
                    if (fh.Salt1 != header.Salt1 || fh.Salt2 != header.Salt2 || fh.Pgno == 0)
                    {
                        stop = true;
                        break;
                    }
                    var (c1, c2) = WalChecksum.Compute(frame[..8], big, s1, s2);
                    (c1, c2) = WalChecksum.Compute(frame[WalHeader.FrameHeaderSize..], big, c1, c2);
                    if (c1 != fh.Checksum1 || c2 != fh.Checksum2)
                    {
                        stop = true;
                        break;
                    }
                    s1 = c1;
                    s2 = c2;
                    pages[fh.Pgno] = offset;
                    offset += frameSize;
                    txFrames++;
                    frames++;
                    if (fh.IsCommit)
                    {
                        var end = new WalCursor(header.Salt1, header.Salt2, offset, s1, s2);
                        scan.Transactions.Add(new WalTransaction
                        {
                            StartOffset = txStart,
                            End = end,
                            Commit = fh.Commit,
                            FrameCount = txFrames,
                            Pages = pages,
                        });
                        scan.End = end;
                        pages = new Dictionary<uint, long>();
                        txStart = offset;
                        txFrames = 0;
                        if (frames >= maxFrames || scan.Transactions.Count >= maxTransactions)
                        {
                            scan.MoreAvailable = true;
                            return scan;
                        }
                    }
                }
                if (stop || got < want * frameSize)
                    break;
                used += whole * frameSize;
                want = Math.Min(want * 2, perRead);
            }
            scan.UncommittedFrames = txFrames;
            return scan;
        }
        finally
        {
            if (rented)
                ArrayPool<byte>.Shared.Return(buffer!);
        }
    }
}
