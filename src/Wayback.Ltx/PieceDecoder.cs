using System.Buffers;
using System.Buffers.Binary;

namespace Wayback.Ltx;

/// <summary>
/// Decodes the pieces of a streamed restore on the thread pool while the restore gathers the next: the restore
/// reads each piece's frames (every file forwards, on its own task: the readers' streams are not shared) into a
/// <see cref="Piece"/>, and the piece's pages are decompressed and checksummed on another core, up to
/// <see cref="Depth"/> pieces ahead of the one handed out. Pieces are handed out in order, so what the receiver
/// gets is exactly what one thread decoding them would give; decoding is most of a restore's CPU, and a second
/// core halves it.
/// </summary>
internal sealed class PieceDecoder(uint pageSize, int capacity) : IAsyncDisposable
{
    /// <summary>Pieces submitted and not yet handed out: enough to keep two cores decoding while one is emitted.</summary>
    private const int Depth = 4;

    private readonly Queue<Piece> _inFlight = new();
    private readonly Stack<Piece> _free = new();
    private readonly List<Piece> _all = [];

    /// <summary>A piece to fill, starting at page <paramref name="firstPgno"/>.</summary>
    public Piece Next(uint firstPgno)
    {
        if (!_free.TryPop(out var piece))
        {
            piece = new Piece(pageSize, capacity);
            _all.Add(piece);
        }
        piece.Begin(firstPgno);
        return piece;
    }

    /// <summary>
    /// Starts decoding <paramref name="piece"/>; then, while more than <see cref="Depth"/> are in flight, waits for
    /// the oldest and hands it to <paramref name="complete"/>. A decoding failure is thrown when its piece's turn comes.
    /// </summary>
    public async ValueTask SubmitAsync(Piece piece, Func<Piece, ValueTask> complete)
    {
        piece.Decoding = piece.Pending == 0 ? Task.CompletedTask : Task.Run(piece.Decode);
        _inFlight.Enqueue(piece);
        while (_inFlight.Count > Depth)
            await CompleteOldestAsync(complete).ConfigureAwait(false);
    }

    /// <summary>Hands every piece in flight to <paramref name="complete"/>, in order.</summary>
    public async ValueTask DrainAsync(Func<Piece, ValueTask> complete)
    {
        while (_inFlight.Count > 0)
            await CompleteOldestAsync(complete).ConfigureAwait(false);
    }

    private async ValueTask CompleteOldestAsync(Func<Piece, ValueTask> complete)
    {
        var piece = _inFlight.Peek();
        await piece.Decoding!.ConfigureAwait(false);
        _inFlight.Dequeue();
        await complete(piece).ConfigureAwait(false);
        _free.Push(piece);
    }

    /// <summary>Waits for decodes still running (after a failure) before their buffers go back to the pool.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var piece in _inFlight)
        {
            try
            {
                await piece.Decoding!.ConfigureAwait(false);
            }
            catch
            {
                // The failure that stopped the restore is already on its way; a later piece's is not news.
            }
        }
        _inFlight.Clear();
        foreach (var piece in _all)
            piece.Dispose();
        _all.Clear();
    }

    /// <summary>
    /// Up to <c>capacity</c> consecutive pages of the database: the frames gathered for them (block frames, copied
    /// out of their file's read-ahead), then their decoded bytes and page checksums.
    /// </summary>
    internal sealed class Piece : IDisposable
    {
        private readonly int _pageSize;
        private readonly int[] _offset;
        private readonly int[] _length; // 0: the page is decoded already (the lock page, a legacy frame)
        private readonly LtxPageReader?[] _reader;
        private readonly ulong[] _checksums;
        private byte[] _output;
        private byte[] _frames;
        private int _framesLength;

        public Piece(uint pageSize, int capacity)
        {
            _pageSize = (int)pageSize;
            _offset = new int[capacity];
            _length = new int[capacity];
            _reader = new LtxPageReader?[capacity];
            _checksums = new ulong[capacity];
            _output = ArrayPool<byte>.Shared.Rent(capacity * _pageSize);
            _frames = ArrayPool<byte>.Shared.Rent(capacity * _pageSize / 2);
        }

        public uint FirstPgno { get; private set; }
        public int Count { get; private set; }
        public bool Full => Count == _offset.Length;

        /// <summary>Pages whose frames wait for <see cref="Decode"/>.</summary>
        public int Pending { get; private set; }

        public Task? Decoding { get; set; }

        /// <summary>The piece's bytes, once decoded.</summary>
        public ReadOnlyMemory<byte> Bytes => _output.AsMemory(0, Count * _pageSize);

        /// <summary>The checksum of the piece's <paramref name="i"/>-th page (0 for the lock page).</summary>
        public ulong Checksum(int i) => _checksums[i];

        public void Begin(uint firstPgno)
        {
            FirstPgno = firstPgno;
            Count = Pending = _framesLength = 0;
            Decoding = null;
        }

        /// <summary>The lock page: zeros, never checksummed.</summary>
        public void AddZero()
        {
            _output.AsSpan(Count * _pageSize, _pageSize).Clear();
            _length[Count] = 0;
            _checksums[Count] = 0;
            _reader[Count] = null;
            Count++;
        }

        /// <summary>The next page's frame from <paramref name="reader"/>: a block frame is copied for <see cref="Decode"/>; any other is decoded here.</summary>
        public void AddFrame(LtxPageReader reader, ReadOnlySpan<byte> frame)
        {
            uint pgno = FirstPgno + (uint)Count;
            if (frame.Length < LtxDecoder.V3PageHeaderSize || BinaryPrimitives.ReadUInt16BigEndian(frame[4..]) != LtxDecoder.V3PageFlagBlock)
            {
                // A legacy frame needs its reader's LZ4 frame decoder, which is not shareable between threads (and
                // a frame that is neither fails here, naming the page).
                var slot = _output.AsSpan(Count * _pageSize, _pageSize);
                reader.DecodeFrame(frame, pgno, slot);
                _checksums[Count] = LtxChecksum.Page(pgno, slot);
                _length[Count] = 0;
                _reader[Count] = null;
                Count++;
                return;
            }
            if (_frames.Length < _framesLength + frame.Length)
            {
                var grown = ArrayPool<byte>.Shared.Rent(Math.Max(_frames.Length * 2, _framesLength + frame.Length));
                _frames.AsSpan(0, _framesLength).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(_frames);
                _frames = grown;
            }
            frame.CopyTo(_frames.AsSpan(_framesLength));
            _offset[Count] = _framesLength;
            _length[Count] = frame.Length;
            _reader[Count] = reader;
            _framesLength += frame.Length;
            Pending++;
            Count++;
        }

        /// <summary>Decompresses and checksums the copied frames (block frames decode with no per-reader state).</summary>
        public void Decode()
        {
            for (int i = 0; i < Count; i++)
            {
                if (_length[i] == 0)
                    continue;
                uint pgno = FirstPgno + (uint)i;
                var slot = _output.AsSpan(i * _pageSize, _pageSize);
                _reader[i]!.DecodeFrame(_frames.AsSpan(_offset[i], _length[i]), pgno, slot);
                _checksums[i] = LtxChecksum.Page(pgno, slot);
            }
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_output);
            ArrayPool<byte>.Shared.Return(_frames);
            _output = _frames = [];
        }
    }
}
