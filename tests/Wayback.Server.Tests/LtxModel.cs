using Wayback.Ltx;

namespace Wayback.Server.Tests;

/// <summary>
/// A database in memory that produces the LTX files a client would send: a snapshot, then transactions
/// changing a few pages, each with the right checksums. It remembers the checksum after every TXID.
/// </summary>
public sealed class LtxModel(uint pageSize = 4096, int seed = 1)
{
    private readonly List<byte[]> _pages = [];
    private readonly Random _random = new(seed);
    private PageChecksums _checksums = new(pageSize);

    public uint PageSize => pageSize;
    public ulong Txid { get; private set; }
    public ulong Checksum => _checksums.Checksum;
    public Dictionary<ulong, ulong> ChecksumAt { get; } = [];
    public Dictionary<ulong, byte[]> ImageAt { get; } = [];
    public bool KeepImages { get; set; }

    public byte[] Image()
    {
        var b = new byte[_pages.Count * pageSize];
        for (int i = 0; i < _pages.Count; i++)
            _pages[i].CopyTo(b, i * pageSize);
        return b;
    }

    private byte[] RandomPage()
    {
        var p = new byte[pageSize];
        _random.NextBytes(p.AsSpan(0, (int)pageSize / 4));
        return p;
    }

    /// <summary>A snapshot of <paramref name="pages"/> pages up to TXID <paramref name="txid"/> (default: next).</summary>
    public byte[] Snapshot(int pages, LtxFormat format = LtxFormat.V1, ulong? txid = null)
    {
        _pages.Clear();
        _checksums.Clear();
        for (int i = 0; i < pages; i++)
            _pages.Add(RandomPage());
        Txid = txid ?? Txid + 1;
        var header = new LtxHeader
        {
            Flags = format == LtxFormat.V1 ? LtxHeader.FlagCompressLz4 : 0,
            PageSize = pageSize,
            Commit = (uint)pages,
            MinTxid = 1,
            MaxTxid = Txid,
            TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        var bytes = Encode(header, Enumerable.Range(1, pages).Select(p => (uint)p), format, null);
        return bytes;
    }

    /// <summary>The next transaction: changes <paramref name="changed"/> random pages (may grow the database by one).</summary>
    public byte[] Tx(int changed = 1, LtxFormat format = LtxFormat.V1, bool grow = false, ulong? wrongChecksum = null)
    {
        if (grow)
            _pages.Add(RandomPage());
        var set = new SortedSet<uint>();
        if (grow)
            set.Add((uint)_pages.Count);
        while (set.Count < Math.Min(changed, _pages.Count))
            set.Add((uint)_random.Next(1, _pages.Count + 1));
        foreach (var p in set)
            _pages[(int)p - 1] = RandomPage();
        ulong pre = Checksum;
        Txid++;
        var header = new LtxHeader
        {
            Flags = format == LtxFormat.V1 ? LtxHeader.FlagCompressLz4 : 0,
            PageSize = pageSize,
            Commit = (uint)_pages.Count,
            MinTxid = Txid,
            MaxTxid = Txid,
            TimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            PreApplyChecksum = pre,
        };
        return Encode(header, set, format, wrongChecksum);
    }

    private byte[] Encode(LtxHeader header, IEnumerable<uint> pages, LtxFormat format, ulong? wrongChecksum)
    {
        using var ms = new MemoryStream();
        var enc = LtxEncoder.CreateAsync(ms, header, format, leaveOpen: true).AsTask().GetAwaiter().GetResult();
        foreach (var p in pages)
        {
            enc.WritePageAsync(p, _pages[(int)p - 1]).AsTask().GetAwaiter().GetResult();
            _checksums.Update(p, _pages[(int)p - 1]);
        }
        _checksums.Resize(header.Commit);
        enc.FinishAsync(header.IsSnapshot ? null : wrongChecksum ?? Checksum).AsTask().GetAwaiter().GetResult();
        enc.DisposeAsync().AsTask().GetAwaiter().GetResult();
        ChecksumAt[Txid] = Checksum;
        if (KeepImages)
            ImageAt[Txid] = Image();
        return ms.ToArray();
    }

    /// <summary>Goes back to the state after <paramref name="txid"/> (needs <see cref="KeepImages"/>).</summary>
    public void RewindTo(ulong txid)
    {
        var image = ImageAt[txid];
        _pages.Clear();
        _checksums = new PageChecksums(pageSize);
        for (int i = 0; i < image.Length / pageSize; i++)
        {
            _pages.Add(image.AsSpan(i * (int)pageSize, (int)pageSize).ToArray());
            _checksums.Update((uint)i + 1, _pages[i]);
        }
        foreach (var t in ImageAt.Keys.Where(t => t > txid).ToList())
        {
            ImageAt.Remove(t);
            ChecksumAt.Remove(t);
        }
        Txid = txid;
    }

    /// <summary>
    /// Goes back to the state after <paramref name="state"/> and continues from TXID <paramref name="txid"/>
    /// with it: what an in-place restore to <paramref name="state"/> appended as <paramref name="txid"/>.
    /// </summary>
    public void RestoredAs(ulong state, ulong txid)
    {
        var image = ImageAt[state];
        _pages.Clear();
        _checksums = new PageChecksums(pageSize);
        for (int i = 0; i < image.Length / pageSize; i++)
        {
            _pages.Add(image.AsSpan(i * (int)pageSize, (int)pageSize).ToArray());
            _checksums.Update((uint)i + 1, _pages[i]);
        }
        Txid = txid;
        ChecksumAt[txid] = Checksum;
        if (KeepImages)
            ImageAt[txid] = image;
    }

    /// <summary>Runs <paramref name="make"/> and then puts the model back as it was: for files the server must refuse.</summary>
    public byte[] Discarded(Func<LtxModel, byte[]> make)
    {
        var pages = _pages.ToList();
        var checksums = _checksums.Clone();
        ulong txid = Txid;
        var result = make(this);
        _pages.Clear();
        _pages.AddRange(pages);
        _checksums = checksums;
        ChecksumAt.Remove(Txid);
        ImageAt.Remove(Txid);
        Txid = txid;
        return result;
    }
}
