using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Wayback.Storage.Encryption;

/// <summary>
/// The sealed object format: a header, then the content in chunks of <see cref="ChunkSize"/> bytes, each encrypted and
/// authenticated with AES-256-GCM under a data key of its own object.
/// </summary>
/// <remarks>
/// <para>Header (<see cref="HeaderSize"/> bytes): magic <c>WBSEAL01</c>, the chunk size (uint32 BE), the key id's length
/// (1 byte) and ASCII id (zero-padded to <see cref="KeyRing.MaxKeyIdLength"/>), and 32 random bytes of salt.</para>
/// <para>Data key = HKDF-SHA256(master key, salt, "wayback sealed object v1"): every object has its own, so chunk
/// nonces (the chunk index, 12 bytes BE) never repeat under one key.</para>
/// <para>Each chunk is its ciphertext and a 16-byte tag; all are full but the last, which may be short (and is empty
/// only for an empty object). Its associated data is the whole header, the object's key (UTF-8), the chunk index
/// (uint64 BE) and a final-chunk flag, so a chunk cannot be moved, an object cannot be cut at a chunk boundary or
/// put under another key, and the key id cannot be changed, without failing authentication.</para>
/// </remarks>
public static class SealedFormat
{
    public static ReadOnlySpan<byte> Magic => "WBSEAL01"u8;

    public const int MagicOffset = 0;
    public const int MagicLength = 8;
    public const int ChunkSizeOffset = MagicOffset + MagicLength;
    public const int ChunkSizeLength = 4;
    public const int KeyIdLengthOffset = ChunkSizeOffset + ChunkSizeLength;
    public const int KeyIdOffset = KeyIdLengthOffset + 1;
    public const int SaltOffset = KeyIdOffset + KeyRing.MaxKeyIdLength;
    public const int SaltLength = 32;
    public const int HeaderSize = SaltOffset + SaltLength;

    public const int TagSize = 16;
    public const int NonceSize = 12;

    /// <summary>The plaintext bytes of every chunk but the last: 64 KiB, so a ranged read decrypts at most 64 KiB it does not return at each end.</summary>
    public const int ChunkSize = 64 << 10;

    /// <summary>Chunk sizes a reader accepts from a header (a writer always uses <see cref="ChunkSize"/>).</summary>
    public const int MinChunkSize = 1 << 10, MaxChunkSize = 16 << 20;

    internal static ReadOnlySpan<byte> KdfInfo => "wayback sealed object v1"u8;

    /// <summary>Whether <paramref name="head"/> (an object's first bytes) starts like a sealed object.</summary>
    public static bool IsSealed(ReadOnlySpan<byte> head) => head.Length >= MagicLength && head[..MagicLength].SequenceEqual(Magic);

    /// <summary>The stored size of a sealed object of <paramref name="plainSize"/> bytes.</summary>
    public static long StoredSize(long plainSize, int chunkSize = ChunkSize)
    {
        long chunks = Math.Max(1, (plainSize + chunkSize - 1) / chunkSize);
        return HeaderSize + plainSize + chunks * TagSize;
    }

    /// <summary>The content size of a sealed object stored in <paramref name="storedSize"/> bytes, or null when no sealed object has that size (it was cut).</summary>
    public static long? PlainSize(long storedSize, int chunkSize)
    {
        long body = storedSize - HeaderSize;
        if (body < TagSize)
            return null;
        long full = chunkSize + TagSize;
        long chunks = (body + full - 1) / full;
        long last = body - (chunks - 1) * full;
        if (last < TagSize || (last == TagSize && chunks > 1))
            return null;
        return body - chunks * TagSize;
    }

    /// <summary>A new header for an object sealed with <paramref name="key"/>, with fresh salt.</summary>
    public static SealedHeader NewHeader(EncryptionKey key)
    {
        var raw = new byte[HeaderSize];
        Magic.CopyTo(raw);
        BinaryPrimitives.WriteUInt32BigEndian(raw.AsSpan(ChunkSizeOffset), ChunkSize);
        raw[KeyIdLengthOffset] = (byte)key.Id.Length;
        Encoding.ASCII.GetBytes(key.Id, raw.AsSpan(KeyIdOffset));
        RandomNumberGenerator.Fill(raw.AsSpan(SaltOffset, SaltLength));
        return new SealedHeader(raw, key.Id, ChunkSize);
    }

    /// <summary>Parses a header; <paramref name="objectKey"/> names the object in the error when it is malformed.</summary>
    public static SealedHeader ParseHeader(ReadOnlySpan<byte> raw, string objectKey)
    {
        if (raw.Length < HeaderSize || !IsSealed(raw))
            throw new ObjectTamperedException(objectKey, "its sealed header is cut short");
        uint chunk = BinaryPrimitives.ReadUInt32BigEndian(raw[ChunkSizeOffset..]);
        int idLength = raw[KeyIdLengthOffset];
        if (chunk is < MinChunkSize or > MaxChunkSize)
            throw new ObjectTamperedException(objectKey, $"its header names a chunk size of {chunk} bytes");
        if (idLength is 0 or > KeyRing.MaxKeyIdLength)
            throw new ObjectTamperedException(objectKey, $"its header names a key id of {idLength} characters");
        string id = Encoding.ASCII.GetString(raw.Slice(KeyIdOffset, idLength));
        if (KeyRing.IdProblem(id) is not null)
            throw new ObjectTamperedException(objectKey, "its header names a key id that no key file can hold");
        return new SealedHeader(raw[..HeaderSize].ToArray(), id, (int)chunk);
    }
}

/// <summary>A sealed object's parsed header; <see cref="Raw"/> is authenticated with every chunk.</summary>
public sealed record SealedHeader(byte[] Raw, string KeyId, int ChunkSize)
{
    public ReadOnlySpan<byte> Salt => Raw.AsSpan(SealedFormat.SaltOffset, SealedFormat.SaltLength);
}

/// <summary>
/// Seals or opens the chunks of one object: its data key and associated-data prefix, derived once. Not thread-safe;
/// one per stream.
/// </summary>
internal sealed class ChunkCipher : IDisposable
{
    private readonly AesGcm _aes;
    private readonly byte[] _aad;
    private readonly int _prefix;
    private readonly byte[] _nonce = new byte[SealedFormat.NonceSize];
    private readonly string _objectKey;
    private readonly string _keyId;

    public ChunkCipher(SealedHeader header, EncryptionKey key, string objectKey)
    {
        Span<byte> dataKey = stackalloc byte[KeyRing.KeySize];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key.Bytes, dataKey, header.Salt, SealedFormat.KdfInfo);
        _aes = new AesGcm(dataKey, SealedFormat.TagSize);
        CryptographicOperations.ZeroMemory(dataKey);
        int keyLength = Encoding.UTF8.GetByteCount(objectKey);
        _prefix = SealedFormat.HeaderSize + keyLength;
        _aad = new byte[_prefix + 9];
        header.Raw.CopyTo(_aad, 0);
        Encoding.UTF8.GetBytes(objectKey, _aad.AsSpan(SealedFormat.HeaderSize));
        _objectKey = objectKey;
        _keyId = header.KeyId;
        ChunkSize = header.ChunkSize;
    }

    public int ChunkSize { get; }

    /// <summary>Encrypts <paramref name="plain"/> as chunk <paramref name="index"/> into <paramref name="sealedChunk"/> (its length + 16 bytes).</summary>
    public void Seal(long index, bool final, ReadOnlySpan<byte> plain, Span<byte> sealedChunk)
    {
        Prepare(index, final);
        _aes.Encrypt(_nonce, plain, sealedChunk[..plain.Length], sealedChunk.Slice(plain.Length, SealedFormat.TagSize), _aad);
    }

    /// <summary>Decrypts chunk <paramref name="index"/> (ciphertext and tag) into <paramref name="plain"/>; throws <see cref="ObjectTamperedException"/> when it fails authentication.</summary>
    public void Open(long index, bool final, ReadOnlySpan<byte> sealedChunk, Span<byte> plain)
    {
        int length = sealedChunk.Length - SealedFormat.TagSize;
        if (length < 0)
            throw new ObjectTamperedException(_objectKey, $"chunk {index} is cut short");
        Prepare(index, final);
        try
        {
            _aes.Decrypt(_nonce, sealedChunk[..length], sealedChunk[length..], plain[..length], _aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new ObjectTamperedException(_objectKey,
                $"chunk {index}{(final ? " (the last)" : "")} fails authentication: its bytes were changed, the object was cut short or extended, or it is another object's copy (or the key file's key '{_keyId}' is not the key it was sealed with)");
        }
    }

    private void Prepare(long index, bool final)
    {
        BinaryPrimitives.WriteInt64BigEndian(_nonce.AsSpan(SealedFormat.NonceSize - 8), index);
        BinaryPrimitives.WriteInt64BigEndian(_aad.AsSpan(_prefix), index);
        _aad[_prefix + 8] = final ? (byte)1 : (byte)0;
    }

    public void Dispose() => _aes.Dispose();
}
