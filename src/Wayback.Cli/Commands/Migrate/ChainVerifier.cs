using System.Buffers;
using Wayback.Ltx;
using Wayback.Protocol;

namespace Wayback.Cli.Commands.Migrate;

/// <summary>A file that passed every check, and what it leaves the database at.</summary>
internal sealed record VerifiedFile(LfsbFile File, LtxHeader Header, LtxFormat Format, Position After);

/// <summary>
/// Walks a database's chain file by file, as the server would take it: each file's own checksums (the decoder), its
/// header against its key and its S3 metadata, its link to the file before (TXID and pre-apply checksum), and the
/// post-apply checksum it claims against the one its pages give (one 8-byte checksum per page is kept, as the server
/// does). The first failure is a <see cref="MigrationException"/> naming the key; nothing after it is taken.
/// </summary>
internal sealed class ChainVerifier
{
    private PageChecksums? _pages;

    /// <summary>Where the files verified so far leave the database.</summary>
    public Position Pos { get; private set; }

    /// <summary>
    /// Starts the chain from Wayback's own state at <paramref name="at"/> (a snapshot the server made of it), so that the
    /// files after it are checked against what Wayback holds: the first one's pre-apply checksum must be its checksum.
    /// </summary>
    public async Task SeedAsync(string snapshotPath, Position at, CancellationToken ct)
    {
        await using var decoder = await LtxDecoder.OpenFileAsync(snapshotPath, ct: ct).ConfigureAwait(false);
        var h = decoder.Header;
        var pages = new PageChecksums(h.PageSize);
        await ChecksumPagesAsync(decoder, pages, ct).ConfigureAwait(false);
        pages.Resize(h.Commit);
        if (h.MaxTxid != at.Txid || pages.Checksum != at.Checksum)
            throw new IOException($"the server's snapshot is at {new Position(h.MaxTxid, pages.Checksum)}, not at its position {at}");
        _pages = pages;
        Pos = at;
    }

    public async Task<VerifiedFile> VerifyAsync(LfsbFile file, string path, LfsbMetadata meta, CancellationToken ct)
    {
        string key = file.Key;
        LtxHeader h;
        LtxTrailer trailer;
        LtxFormat format;
        PageChecksums pages;
        try
        {
            await using var decoder = await LtxDecoder.OpenFileAsync(path, ct: ct).ConfigureAwait(false);
            h = decoder.Header;
            format = decoder.Format;
            if (h.MinTxid != file.Min || h.MaxTxid != file.Max)
                throw Refuse(key, $"its header holds TXIDs {h.MinTxid}-{h.MaxTxid}, its key says {file.Min}-{file.Max}");
            if (!h.HasChecksums)
                throw Refuse(key, "it carries no database checksums (flag 0x2)");
            if (h.IsSnapshot)
            {
                pages = new PageChecksums(h.PageSize);
            }
            else
            {
                if (_pages is null || Pos.Txid + 1 != h.MinTxid)
                    throw Refuse(key, $"it starts at TXID {h.MinTxid} but the chain stands at TXID {Pos.Txid}");
                if (h.PreApplyChecksum != Pos.Checksum)
                    throw Refuse(key, $"broken link: its pre-apply checksum {Hex16.Format(h.PreApplyChecksum)} is not the checksum {Hex16.Format(Pos.Checksum)} the database has at TXID {Pos.Txid}");
                if (h.PageSize != _pages.PageSize)
                    throw Refuse(key, $"page size {h.PageSize} differs from the database's {_pages.PageSize}");
                pages = _pages;
                decoder.BaseCommit = pages.PageCount;
            }
            await ChecksumPagesAsync(decoder, pages, ct).ConfigureAwait(false);
            trailer = decoder.Trailer;
        }
        catch (LtxException e)
        {
            // A half-applied file leaves the page checksums wrong: nothing may follow it.
            _pages = null;
            throw Refuse(key, e.Message.Replace(path + ": ", "", StringComparison.Ordinal));
        }
        catch (MigrationException)
        {
            _pages = null;
            throw;
        }
        pages.Resize(h.Commit);
        if (pages.Checksum != trailer.PostApplyChecksum)
        {
            _pages = null;
            throw Refuse(key, $"its post-apply checksum {Hex16.Format(trailer.PostApplyChecksum)} is wrong: its pages give {Hex16.Format(pages.Checksum)}");
        }
        CheckMetadata(key, h, trailer, meta);
        _pages = pages;
        Pos = new Position(h.MaxTxid, trailer.PostApplyChecksum);
        return new VerifiedFile(file, h, format, Pos);
    }

    private void CheckMetadata(string key, in LtxHeader h, LtxTrailer t, LfsbMetadata m)
    {
        void Same<T>(string name, T? claimed, T actual, Func<T, string> show) where T : struct
        {
            if (claimed is { } c && !c.Equals(actual))
            {
                _pages = null;
                throw Refuse(key, $"its S3 metadata says {name} {show(c)}, the file holds {show(actual)}");
            }
        }
        Same(LfsbLayout.PageSizeMeta, m.PageSize, h.PageSize, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Same(LfsbLayout.CommitMeta, m.Commit, h.Commit, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Same(LfsbLayout.PreApplyMeta, m.PreApply, h.PreApplyChecksum, Hex16.Format);
        Same(LfsbLayout.PostApplyMeta, m.PostApply, t.PostApplyChecksum, Hex16.Format);
        // litefs-backup writes the header's time to the second or the millisecond; both must name the same instant.
        if (m.Timestamp is { } ts && ts.ToUnixTimeMilliseconds() / 1000 != h.TimestampMs / 1000)
        {
            _pages = null;
            throw Refuse(key, $"its S3 metadata says timestamp {ts:O}, the file holds {h.Timestamp:O}");
        }
    }

    private static MigrationException Refuse(string key, string why) => new($"{key} is refused: {why}");

    /// <summary>Reads every page of <paramref name="decoder"/>'s file into <paramref name="pages"/>' checksums.</summary>
    private static async Task ChecksumPagesAsync(LtxDecoder decoder, PageChecksums pages, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)decoder.Header.PageSize);
        try
        {
            uint pgno;
            while ((pgno = await decoder.ReadPageAsync(buffer, ct).ConfigureAwait(false)) != 0)
                pages.Set(pgno, decoder.LastPageChecksum);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
