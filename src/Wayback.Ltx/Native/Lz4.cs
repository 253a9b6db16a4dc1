using System.Runtime.InteropServices;

namespace Wayback.Ltx.Native;

/// <summary>
/// The system's liblz4 (block and frame APIs) behind safe span-based wrappers. Nothing else in the
/// project calls native LZ4.
/// </summary>
internal static unsafe partial class Lz4
{
    private const string Library = "liblz4.so.1";
    private const uint FrameVersion = 100;

    /// <summary>The largest compressed size of a block of <paramref name="length"/> bytes.</summary>
    public static int BlockBound(int length) => LZ4_compressBound(length);

    /// <summary>
    /// Compresses one block; returns the compressed length. <paramref name="acceleration"/> is liblz4's: 1
    /// (its default) compresses best, higher values trade ratio for speed; every value gives a valid block.
    /// </summary>
    public static int CompressBlock(ReadOnlySpan<byte> source, Span<byte> destination, int acceleration = 1)
    {
        fixed (byte* s = source)
        fixed (byte* d = destination)
        {
            int n = acceleration <= 1
                ? LZ4_compress_default(s, d, source.Length, destination.Length)
                : LZ4_compress_fast(s, d, source.Length, destination.Length, acceleration);
            if (n <= 0)
                throw new InvalidOperationException("LZ4 block compression failed (destination too small).");
            return n;
        }
    }

    /// <summary>Decompresses one block; returns the decompressed length, or -1 if the block is malformed.</summary>
    public static int DecompressBlock(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* s = source)
        fixed (byte* d = destination)
        {
            int n = LZ4_decompress_safe(s, d, source.Length, destination.Length);
            return n < 0 ? -1 : n;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct FrameInfo
    {
        public int BlockSizeId;      // 4 = 64 KiB
        public int BlockMode;        // 0 = linked, 1 = independent
        public int ContentChecksum;  // 1 = on
        public int FrameType;
        public ulong ContentSize;
        public uint DictId;
        public int BlockChecksum;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Preferences
    {
        public FrameInfo Frame;
        public int CompressionLevel;
        public uint AutoFlush;
        public uint FavorDecSpeed;
        public uint Reserved0, Reserved1, Reserved2;
    }

    /// <summary>LZ4 frame settings the v1 format uses: 64 KiB independent blocks, content checksum on.</summary>
    internal static Preferences V1Preferences => new()
    {
        Frame = new FrameInfo { BlockSizeId = 4, BlockMode = 1, ContentChecksum = 1 },
    };

    internal static bool IsError(nuint code) => LZ4F_isError(code) != 0;

    internal static string ErrorName(nuint code) => Marshal.PtrToStringUTF8((IntPtr)LZ4F_getErrorName(code)) ?? "unknown LZ4 error";

    [LibraryImport(Library)] private static partial int LZ4_compressBound(int inputSize);
    [LibraryImport(Library)] private static partial int LZ4_compress_default(byte* src, byte* dst, int srcSize, int dstCapacity);
    [LibraryImport(Library)] private static partial int LZ4_compress_fast(byte* src, byte* dst, int srcSize, int dstCapacity, int acceleration);
    [LibraryImport(Library)] private static partial int LZ4_decompress_safe(byte* src, byte* dst, int compressedSize, int dstCapacity);
    [LibraryImport(Library)] private static partial uint LZ4F_isError(nuint code);
    [LibraryImport(Library)] private static partial byte* LZ4F_getErrorName(nuint code);
    [LibraryImport(Library)] internal static partial nuint LZ4F_createCompressionContext(out IntPtr cctx, uint version);
    [LibraryImport(Library)] internal static partial nuint LZ4F_freeCompressionContext(IntPtr cctx);
    [LibraryImport(Library)] internal static partial nuint LZ4F_compressBound(nuint srcSize, Preferences* prefs);
    [LibraryImport(Library)] internal static partial nuint LZ4F_compressBegin(IntPtr cctx, byte* dst, nuint dstCapacity, Preferences* prefs);
    [LibraryImport(Library)] internal static partial nuint LZ4F_compressUpdate(IntPtr cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize, void* options);
    [LibraryImport(Library)] internal static partial nuint LZ4F_compressEnd(IntPtr cctx, byte* dst, nuint dstCapacity, void* options);
    [LibraryImport(Library)] internal static partial nuint LZ4F_createDecompressionContext(out IntPtr dctx, uint version);
    [LibraryImport(Library)] internal static partial nuint LZ4F_freeDecompressionContext(IntPtr dctx);
    [LibraryImport(Library)] internal static partial nuint LZ4F_decompress(IntPtr dctx, byte* dst, nuint* dstSize, byte* src, nuint* srcSize, void* options);
    [LibraryImport(Library)] internal static partial void LZ4F_resetDecompressionContext(IntPtr dctx);

    /// <summary>Streaming LZ4 frame compressor (one frame).</summary>
    internal sealed class FrameEncoder : IDisposable
    {
        private IntPtr _ctx;
        private Preferences _prefs = V1Preferences;

        public FrameEncoder()
        {
            nuint rc = LZ4F_createCompressionContext(out _ctx, FrameVersion);
            if (IsError(rc))
                throw new InvalidOperationException("LZ4 frame context: " + ErrorName(rc));
        }

        /// <summary>Capacity a destination needs for an update of <paramref name="length"/> bytes (or for the end).</summary>
        public int Bound(int length)
        {
            fixed (Preferences* p = &_prefs)
                return checked((int)LZ4F_compressBound((nuint)length, p));
        }

        public const int HeaderMaxSize = 19;

        public int Begin(Span<byte> dst)
        {
            fixed (byte* d = dst)
            fixed (Preferences* p = &_prefs)
                return Check(LZ4F_compressBegin(_ctx, d, (nuint)dst.Length, p));
        }

        public int Update(ReadOnlySpan<byte> src, Span<byte> dst)
        {
            fixed (byte* s = src)
            fixed (byte* d = dst)
                return Check(LZ4F_compressUpdate(_ctx, d, (nuint)dst.Length, s, (nuint)src.Length, null));
        }

        public int End(Span<byte> dst)
        {
            fixed (byte* d = dst)
                return Check(LZ4F_compressEnd(_ctx, d, (nuint)dst.Length, null));
        }

        private static int Check(nuint rc) =>
            IsError(rc) ? throw new InvalidOperationException("LZ4 frame compression: " + ErrorName(rc)) : (int)rc;

        public void Dispose()
        {
            if (_ctx != IntPtr.Zero)
            {
                LZ4F_freeCompressionContext(_ctx);
                _ctx = IntPtr.Zero;
            }
        }
    }

    /// <summary>Streaming LZ4 frame decompressor that consumes exactly the bytes of one frame.</summary>
    internal sealed class FrameDecoder : IDisposable
    {
        private IntPtr _ctx;

        public FrameDecoder()
        {
            nuint rc = LZ4F_createDecompressionContext(out _ctx, FrameVersion);
            if (IsError(rc))
                throw new InvalidOperationException("LZ4 frame context: " + ErrorName(rc));
        }

        public void Reset() => LZ4F_resetDecompressionContext(_ctx);

        /// <summary>
        /// Feeds <paramref name="src"/>; writes into <paramref name="dst"/>. Returns false on a malformed frame
        /// (<paramref name="error"/> says why). <paramref name="done"/> is true once the frame has ended.
        /// </summary>
        public bool Decompress(ReadOnlySpan<byte> src, Span<byte> dst, out int consumed, out int written, out bool done, out string? error)
        {
            fixed (byte* s = src)
            fixed (byte* d = dst)
            {
                nuint srcSize = (nuint)src.Length, dstSize = (nuint)dst.Length;
                nuint rc = LZ4F_decompress(_ctx, d, &dstSize, s, &srcSize, null);
                consumed = (int)srcSize;
                written = (int)dstSize;
                if (IsError(rc))
                {
                    done = false;
                    error = ErrorName(rc);
                    return false;
                }
                done = rc == 0;
                error = null;
                return true;
            }
        }

        public void Dispose()
        {
            if (_ctx != IntPtr.Zero)
            {
                LZ4F_freeDecompressionContext(_ctx);
                _ctx = IntPtr.Zero;
            }
        }
    }
}
