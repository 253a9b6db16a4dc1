namespace Wayback.Agent.Journal;

/// <summary>
/// One transaction's LTX file in the local journal: <see cref="Length"/> bytes at <see cref="Offset"/> of a
/// segment file (<see cref="Path"/>). A stand-alone LTX file is an entry at offset 0 of its own file.
/// </summary>
public sealed record JournalEntry(ulong MinTxid, ulong MaxTxid, long Length, ulong PreApplyChecksum, ulong PostApplyChecksum,
    long TimestampMs, string Path, long Offset = 0)
{
    public bool IsSnapshot => MinTxid == 1;

    /// <summary>The file name for a TXID range, as LiteFS and Litestream name LTX files.</summary>
    public static string FileName(ulong min, ulong max) => $"{min:x16}-{max:x16}.ltx";

    public static bool TryParseName(string name, out ulong min, out ulong max)
    {
        min = max = 0;
        return name.Length == 37 && name[16] == '-'
            && ulong.TryParse(name.AsSpan(0, 16), System.Globalization.NumberStyles.HexNumber, null, out min)
            && ulong.TryParse(name.AsSpan(17, 16), System.Globalization.NumberStyles.HexNumber, null, out max);
    }

    /// <summary>Opens the entry's bytes as a stream of its own.</summary>
    public Stream OpenRead()
    {
        var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        if (Offset + Length > fs.Length)
        {
            fs.Dispose();
            throw new IOException($"{Path}: the journal entry for TXID {MaxTxid} runs past the end of the file");
        }
        return new SliceStream(fs, Offset, Length);
    }

    /// <summary>Copies the entry into a stand-alone LTX file.</summary>
    public async Task ExtractAsync(string output, CancellationToken ct = default)
    {
        await using var s = OpenRead();
        await using var o = new FileStream(output, FileMode.Create, FileAccess.Write);
        await s.CopyToAsync(o, ct).ConfigureAwait(false);
    }
}

/// <summary>A read-only window onto part of a stream; owns the stream.</summary>
public sealed class SliceStream : Stream
{
    private readonly Stream _inner;
    private readonly long _start;
    private readonly long _length;
    private long _position;

    public SliceStream(Stream inner, long start, long length)
    {
        _inner = inner;
        _start = start;
        _length = length;
        _inner.Position = start;
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
            _inner.Position = _start + value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer[..(int)Math.Min(buffer.Length, _length - _position)]);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        int n = await _inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _length - _position)], ct).ConfigureAwait(false);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };
        return _position;
    }

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _inner.Dispose();
        base.Dispose(disposing);
    }
}
