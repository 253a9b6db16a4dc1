using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Wayback.Ltx;
using Wayback.Ltx.IO;
using Wayback.Server.Storage;

namespace Wayback.Server.Databases;

/// <summary>Test seam: makes buffer writes fail the way a full disk does.</summary>
public sealed class BufferFaults
{
    /// <summary>Called before each append and sync; a returned exception is thrown instead of writing.</summary>
    public Func<Exception?>? OnWrite { get; set; }

    internal void Check()
    {
        if (OnWrite?.Invoke() is { } e)
            throw e;
    }
}

/// <summary>
/// One append-only file of the local write buffer: the transactions a database received since the last
/// seal, each stored as a v3 LTX file behind its length. A transaction counts once the file has been
/// fdatasync'd; opening a file after a crash verifies every record and cuts off a torn tail.
/// </summary>
/// <remarks>Layout: <c>"WBBUF001"</c> | u64 start TXID | records of (u64 length | v3 LTX file).</remarks>
internal sealed partial class BufferSegment : IDisposable
{
    public const int HeaderSize = 16;
    private const int RecordHeaderSize = 8;
    private static ReadOnlySpan<byte> Magic => "WBBUF001"u8;

    private readonly FileStream _file;
    private readonly BufferFaults? _faults;
    private readonly List<LogEntry> _entries = [];

    private BufferSegment(string path, ulong start, FileStream file, BufferFaults? faults)
    {
        Path = path;
        Start = start;
        _file = file;
        _faults = faults;
    }

    public string Path { get; }

    /// <summary>The first TXID this file holds in the log.</summary>
    public ulong Start { get; }

    /// <summary>The bytes that are durable (every record up to here has been synced).</summary>
    public long Length { get; private set; }

    public IReadOnlyList<LogEntry> Entries => _entries;

    public ulong MaxTxid => _entries.Count == 0 ? Start - 1 : _entries[^1].MaxTxid;

    /// <summary>When the first record was appended (for the L1 window), by this process's clock.</summary>
    public DateTime? FirstAppendUtc { get; private set; }

    public static string FileName(ulong start) => $"{start:x16}.buf";

    public static BufferSegment Create(string directory, ulong start, BufferFaults? faults)
    {
        faults?.Check();
        Directory.CreateDirectory(directory);
        var path = System.IO.Path.Combine(directory, FileName(start));
        var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        try
        {
            Span<byte> head = stackalloc byte[HeaderSize];
            Magic.CopyTo(head);
            BinaryPrimitives.WriteUInt64BigEndian(head[8..], start);
            file.Write(head);
            DataSync(file);
            Wayback.Ltx.Native.DirectorySync.Fsync(directory);
            return new BufferSegment(path, start, file, faults) { Length = HeaderSize };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a buffer file left by an earlier run: verifies every record (file checksum and chain) and cuts
    /// the file after the last good one. Returns null for a file whose header itself is torn.
    /// </summary>
    public static async Task<(BufferSegment? Segment, long CutBytes)> RecoverAsync(string path, BufferFaults? faults, CancellationToken ct)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        try
        {
            long size = file.Length;
            var head = new byte[HeaderSize];
            if (size < HeaderSize || await file.ReadAtLeastAsync(head, HeaderSize, false, ct).ConfigureAwait(false) < HeaderSize || !head.AsSpan(0, 8).SequenceEqual(Magic))
            {
                file.Dispose();
                return (null, size);
            }
            var segment = new BufferSegment(path, BinaryPrimitives.ReadUInt64BigEndian(head.AsSpan(8)), file, faults);
            long pos = HeaderSize;
            var lenBytes = new byte[RecordHeaderSize];
            while (pos + RecordHeaderSize <= size)
            {
                file.Position = pos;
                await file.ReadExactlyAsync(lenBytes, ct).ConfigureAwait(false);
                long len = (long)BinaryPrimitives.ReadUInt64BigEndian(lenBytes);
                if (len < LtxHeader.Size || len > size - pos - RecordHeaderSize)
                    break;
                var entry = await TryVerifyAsync(file, pos + RecordHeaderSize, len, segment, ct).ConfigureAwait(false);
                if (entry is null)
                    break;
                segment._entries.Add(entry);
                pos += RecordHeaderSize + len;
            }
            segment.Length = pos;
            if (pos < size)
            {
                file.SetLength(pos);
                DataSync(file);
            }
            if (segment._entries.Count > 0)
                segment.FirstAppendUtc = DateTime.UtcNow;
            return (segment, size - pos);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static async Task<LogEntry?> TryVerifyAsync(FileStream file, long offset, long length, BufferSegment segment, CancellationToken ct)
    {
        try
        {
            await using var decoder = await LtxDecoder.OpenAsync(new SubStream(file, offset, length, leaveOpen: true), LtxFormat.V3, segment.Path, ct: ct).ConfigureAwait(false);
            var trailer = await decoder.VerifyAsync(ct).ConfigureAwait(false);
            var h = decoder.Header;
            var prev = segment._entries.Count > 0 ? segment._entries[^1] : null;
            ulong start = prev is null ? segment.Start : prev.MaxTxid + 1;
            if (prev is not null && (h.IsSnapshot || h.MinTxid != start || h.PreApplyChecksum != prev.PostApply))
                return null;
            if (prev is null && !h.IsSnapshot && h.MinTxid != start)
                return null;
            return new LogEntry(offset, length, start, h.MinTxid, h.MaxTxid, h.TimestampMs, h.PreApplyChecksum, trailer.PostApplyChecksum, h.Commit, h.PageSize);
        }
        catch (LtxException)
        {
            return null;
        }
    }

    /// <summary>
    /// Appends one LTX file written by <paramref name="write"/> (which gets the stream positioned where the
    /// file goes and returns its entry, offsets relative to that start). Not durable until <see cref="SyncAsync"/>;
    /// not counted until <see cref="Commit"/>.
    /// </summary>
    public async Task<LogEntry> AppendAsync(Func<Stream, Task<LogEntry>> write)
    {
        _faults?.Check();
        long at = _tail;
        var batch = _batch ??= new ChunkedFileWriter(_file.SafeFileHandle, at);
        if (batch.Position != at)
            throw new InvalidOperationException($"buffer batch at {batch.Position}, expected {at}");
        var lenBytes = _recordHeader;
        lenBytes.AsSpan().Clear();
        batch.Write(lenBytes);
        var entry = await write(batch).ConfigureAwait(false);
        long len = batch.Position - at - RecordHeaderSize;
        BinaryPrimitives.WriteUInt64BigEndian(lenBytes, (ulong)len);
        batch.Patch(at, lenBytes);
        _tail = at + RecordHeaderSize + len;
        entry = entry with { Offset = at + RecordHeaderSize, Length = len };
        _uncommitted.Add(entry);
        return entry;
    }

    private long _tail = -1;
    private readonly List<LogEntry> _uncommitted = [];

    private readonly byte[] _recordHeader = new byte[RecordHeaderSize];

    /// <summary>A batch's appends, gathered into large writes (a request carries many small files).</summary>
    private ChunkedFileWriter? _batch;

    /// <summary>Begins a batch of appends at the durable end.</summary>
    public void Begin()
    {
        _tail = Length;
        _uncommitted.Clear();
        _batch?.Reset(Length);
    }

    /// <summary>Writes and fdatasyncs everything appended (on a sync thread, so no request thread blocks on the disk).</summary>
    public Task SyncAsync()
    {
        _faults?.Check();
        var batch = _batch;
        return SyncThreads.RunAsync(() =>
        {
            batch?.Drain();
            DataSync(_file);
        });
    }

    /// <summary>The appended records are durable: count them.</summary>
    public void Commit()
    {
        if (_uncommitted.Count > 0 && FirstAppendUtc is null)
            FirstAppendUtc = DateTime.UtcNow;
        _entries.AddRange(_uncommitted);
        _uncommitted.Clear();
        Length = _tail;
    }

    /// <summary>Drops what was appended since <see cref="Begin"/>.</summary>
    public void Rollback()
    {
        _uncommitted.Clear();
        _tail = Length;
        _batch?.Reset(Length);
        _file.SetLength(Length);
    }

    /// <summary>Opens a separate read handle (readers never move the writer's position).</summary>
    public FileStream OpenRead() =>
        new(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.Asynchronous | FileOptions.RandomAccess);

    public void Dispose()
    {
        _batch?.Dispose();
        _file.Dispose();
    }

    public void Delete()
    {
        _file.Dispose();
        File.Delete(Path);
    }

    private static void DataSync(FileStream file)
    {
        if (!OperatingSystem.IsLinux())
        {
            file.Flush(flushToDisk: true);
            return;
        }
        int fd = (int)file.SafeFileHandle.DangerousGetHandle();
        int rc;
        do
        {
            rc = FDataSync(fd);
        }
        while (rc != 0 && Marshal.GetLastPInvokeError() == 4 /* EINTR */);
        if (rc != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);
}
