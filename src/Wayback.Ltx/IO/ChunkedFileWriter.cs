using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Wayback.Ltx.IO;

/// <summary>
/// A write-only stream that appends to a file at increasing offsets in writes of 1 MiB (a pooled buffer; size adjustable),
/// for many small files written back to back (a batch of transactions): each small write would cost a
/// <c>write(2)</c>, and the kernel zeroes the rest of every block that a short write starts.
/// <see cref="Drain"/> writes what is left; nothing is durable until the caller syncs the file.
/// </summary>
public sealed class ChunkedFileWriter : Stream
{
    private readonly SafeFileHandle _file;
    private byte[]? _buffer;
    private int _count;
    private long _start;

    /// <summary>Writes go to <paramref name="file"/> from offset <paramref name="start"/> on, <paramref name="chunkSize"/> bytes at a time.</summary>
    public ChunkedFileWriter(SafeFileHandle file, long start = 0, int chunkSize = 1 << 20)
    {
        _file = file;
        _start = start;
        _buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _start + _count;

    /// <summary>The file offset the next byte goes to.</summary>
    public override long Position { get => _start + _count; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> data)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(ChunkedFileWriter));
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, buffer.Length - _count);
            data[..n].CopyTo(buffer.AsSpan(_count));
            _count += n;
            data = data[n..];
            if (_count == buffer.Length)
                Drain();
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        Write(data.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    /// <summary>Overwrites bytes already written at <paramref name="offset"/> (still buffered or not).</summary>
    public void Patch(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset + data.Length > Position)
            throw new ArgumentOutOfRangeException(nameof(offset), "only bytes already written can be patched");
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(ChunkedFileWriter));
        int inFile = (int)Math.Clamp(_start - offset, 0, data.Length);
        if (inFile > 0)
            RandomAccess.Write(_file, data[..inFile], offset);
        if (inFile < data.Length)
            data[inFile..].CopyTo(buffer.AsSpan((int)(offset + inFile - _start)));
    }

    /// <summary>Writes the buffered bytes to the file.</summary>
    public void Drain()
    {
        if (_count == 0 || _buffer is null)
            return;
        RandomAccess.Write(_file, _buffer.AsSpan(0, _count), _start);
        _start += _count;
        _count = 0;
    }

    /// <summary>Forgets what is buffered and continues at <paramref name="start"/>.</summary>
    public void Reset(long start)
    {
        _count = 0;
        _start = start;
    }

    // Writers flush after each small file; the batch goes out in chunks and at Drain.
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken ct) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (_buffer is not null)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
        base.Dispose(disposing);
    }
}
