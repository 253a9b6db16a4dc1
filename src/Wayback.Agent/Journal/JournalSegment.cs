using System.Buffers.Binary;
using Wayback.Ltx;
using Wayback.Ltx.IO;

namespace Wayback.Agent.Journal;

/// <summary>
/// A journal segment: the LTX files of one capture batch, one per transaction, in one file so the batch
/// costs one fsync however many transactions it holds. Layout (big-endian): magic <c>WBSG</c>, version,
/// count, then <c>count</c> 8-byte lengths, then the LTX files back to back. Named
/// <c>&lt;min TXID&gt;-&lt;max TXID&gt;.seg</c> in 16 hex digits.
/// </summary>
public static class JournalSegment
{
    public const string Extension = ".seg";
    private static ReadOnlySpan<byte> Magic => "WBSG"u8;
    private const uint Version = 1;
    private const int MagicOffset = 0;
    private const int VersionOffset = MagicOffset + 4;
    private const int CountOffset = VersionOffset + 4;
    private const int LengthsOffset = CountOffset + 4;
    private const int MaxCount = 1 << 20;

    private static int HeaderSize(int count) => LengthsOffset + count * 8;

    /// <summary>
    /// The entries of a segment file. A segment cut short by a crash yields the entries that are whole;
    /// a file that is not a segment yields none. Each entry's LTX header and trailer are read, not its pages.
    /// </summary>
    public static List<JournalEntry> Read(string path)
    {
        var list = new List<JournalEntry>();
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long fileLength = fs.Length;
        var head = new byte[LengthsOffset];
        if (fs.ReadAtLeast(head, head.Length, false) < head.Length || !head.AsSpan(0, 4).SequenceEqual(Magic)
            || BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(VersionOffset)) != Version)
            return list;
        uint count = BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(CountOffset));
        if (count == 0 || count > MaxCount || HeaderSize((int)count) > fileLength)
            return list;
        var lengths = new byte[count * 8];
        fs.ReadExactly(lengths);
        long offset = HeaderSize((int)count);
        var ltxHead = new byte[LtxHeader.Size];
        var trailer = new byte[LtxTrailer.Size];
        for (int i = 0; i < count; i++)
        {
            long length = (long)BinaryPrimitives.ReadUInt64BigEndian(lengths.AsSpan(i * 8));
            if (length < LtxHeader.Size + LtxTrailer.Size || offset + length > fileLength)
                break;
            fs.Position = offset;
            fs.ReadExactly(ltxHead);
            fs.Position = offset + length - LtxTrailer.Size;
            fs.ReadExactly(trailer);
            LtxHeader h;
            try
            {
                h = LtxHeader.Read(ltxHead, LtxFormat.V3, path);
            }
            catch (LtxException)
            {
                break;
            }
            list.Add(new JournalEntry(h.MinTxid, h.MaxTxid, length, h.PreApplyChecksum, BinaryPrimitives.ReadUInt64BigEndian(trailer),
                h.TimestampMs, path, offset));
            offset += length;
        }
        return list;
    }

    /// <summary>Writes one segment: <see cref="Stream"/> takes each LTX file in turn, <see cref="Finish"/> seals it.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly string _dir;
        private readonly int _count;
        private readonly string _temp;
        private readonly FileStream _fs;
        private readonly List<(ulong Min, ulong Max, ulong Pre, ulong Post, long Ts, long Offset, long Length)> _items = [];
        private long _entryStart;
        private bool _done;

        /// <summary>A segment for <paramref name="count"/> entries, written into <paramref name="spare"/> (an old segment's file, overwritten) if given.</summary>
        internal Writer(string dir, int count, string? spare = null)
        {
            if (count is <= 0 or > MaxCount)
                throw new ArgumentOutOfRangeException(nameof(count));
            _dir = dir;
            _count = count;
            var reused = OpenSpare(spare);
            _temp = reused is null ? Path.Combine(dir, Guid.NewGuid().ToString("n") + ".seg.tmp") : spare!;
            _fs = reused ?? new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            // The files of a batch are small (a transaction each) and would each cost a write(2) - and the kernel
            // zeroes the rest of every block a short write starts. Gather them into large writes instead.
            _out = new ChunkedFileWriter(_fs.SafeFileHandle, chunkSize: 256 * 1024);
            _out.Write(new byte[HeaderSize(count)]);
            _entryStart = _out.Position;
        }

        private readonly ChunkedFileWriter _out;
        private const long MaxStaleTail = 1 << 20;

        private static FileStream? OpenSpare(string? spare)
        {
            if (spare is null)
                return null;
            try
            {
                return new FileStream(spare, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException)
            {
                return null;
            }
        }

        /// <summary>Where the next LTX file is written; call <see cref="Added"/> after each.</summary>
        public Stream Stream => _out;

        /// <summary>Records the LTX file just written to <see cref="Stream"/>.</summary>
        public void Added(LtxHeader header, LtxTrailer trailer)
        {
            if (_items.Count >= _count)
                throw new InvalidOperationException("more entries than the segment was begun for");
            long end = _out.Position;
            _items.Add((header.MinTxid, header.MaxTxid, header.PreApplyChecksum, trailer.PostApplyChecksum, header.TimestampMs, _entryStart, end - _entryStart));
            _entryStart = end;
        }

        /// <summary>Copies an existing journal entry into this segment.</summary>
        public void Add(Stream source, JournalEntry e)
        {
            source.CopyTo(_out);
            long end = _out.Position;
            _items.Add((e.MinTxid, e.MaxTxid, e.PreApplyChecksum, e.PostApplyChecksum, e.TimestampMs, _entryStart, end - _entryStart));
            _entryStart = end;
        }

        /// <summary>Writes the lengths, fsyncs, renames into place; the caller fsyncs the directory.</summary>
        internal (string Path, List<JournalEntry> Entries, long Bytes) Finish()
        {
            if (_items.Count != _count)
                throw new InvalidOperationException($"segment begun for {_count} entries holds {_items.Count}");
            var head = new byte[HeaderSize(_count)];
            Magic.CopyTo(head);
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(VersionOffset), Version);
            BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(CountOffset), (uint)_count);
            for (int i = 0; i < _count; i++)
                BinaryPrimitives.WriteUInt64BigEndian(head.AsSpan(LengthsOffset + i * 8), (ulong)_items[i].Length);
            _out.Drain();
            long bytes = _out.Position;
            // A spare file that was longer keeps its stale tail unless it is large: readers go by the lengths in
            // the header, and freeing blocks cost as much as writing them (ftruncate was 9% of the agent's CPU).
            if (_fs.Length > bytes + MaxStaleTail)
                _fs.SetLength(bytes);
            RandomAccess.Write(_fs.SafeFileHandle, head, 0);
            _fs.Flush(flushToDisk: true);
            _fs.Dispose();
            _out.Dispose();
            string final = Path.Combine(_dir, $"{_items[0].Min:x16}-{_items[^1].Max:x16}{Extension}");
            File.Move(_temp, final, overwrite: true);
            _done = true;
            var entries = _items.Select(i => new JournalEntry(i.Min, i.Max, i.Length, i.Pre, i.Post, i.Ts, final, i.Offset)).ToList();
            return (final, entries, bytes);
        }

        /// <summary>Abandons the segment if it was not finished: it never counted.</summary>
        public void Dispose()
        {
            _out.Dispose();
            if (_done)
                return;
            _fs.Dispose();
            try { File.Delete(_temp); } catch (IOException) { }
        }
    }
}
