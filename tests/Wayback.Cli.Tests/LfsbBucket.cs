using System.Globalization;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Wayback.Cli.Commands.Migrate;
using Wayback.Ltx;
using Wayback.Server.Tests;

namespace Wayback.Cli.Tests;

/// <summary>
/// A real SQLite database's history (<see cref="SqliteHistory"/>: one LTX file per commit, the bytes after each) turned
/// into the files litefs-backup keeps of it: LTX v1 (what LiteFS sends it), snapshots and L1-L3 compactions made with the
/// project's own compactor, under litefs-backup's keys and with the S3 metadata its store client writes.
/// </summary>
public sealed class LfsbDatabase : IDisposable
{
    private readonly SqliteHistory _history;
    private readonly Dictionary<ulong, byte[]> _tx = [];

    public LfsbDatabase(int seed, int txids)
    {
        _history = new SqliteHistory(seed);
        _tx[1] = _history.Snapshot(rows: 50);
        while (_history.Txid < (ulong)txids)
            _tx[_history.Txid + 1] = _history.Tx();
    }

    /// <summary>The database file's bytes after each TXID.</summary>
    public IReadOnlyDictionary<ulong, byte[]> ImageAt => _history.ImageAt;

    /// <summary>The v1 file litefs-backup would hold for TXIDs <paramref name="min"/>-<paramref name="max"/> (min 1: a snapshot).</summary>
    public async Task<byte[]> FileAsync(ulong min, ulong max)
    {
        var decoders = new List<LtxDecoder>();
        try
        {
            for (ulong t = min; t <= max; t++)
                decoders.Add(await LtxDecoder.OpenAsync(new MemoryStream(_tx[t]), LtxFormat.V3));
            using var output = new MemoryStream();
            await LtxCompactor.CompactAsync(decoders, output, LtxFormat.V1);
            return output.ToArray();
        }
        finally
        {
            foreach (var d in decoders)
                await d.DisposeAsync();
        }
    }

    public void Dispose() => _history.Dispose();
}

/// <summary>
/// Writes objects into a moto bucket exactly as litefs-backup's <c>store/s3</c> client does, below <paramref name="prefix"/>
/// if one is given (litefs-backup writes at the bucket's root; a bucket shared with other data may hold it lower).
/// </summary>
public sealed class LfsbBucket(string endpoint, string bucket, string prefix = "") : IDisposable
{
    private readonly AmazonS3Client _s3 = new(new BasicAWSCredentials("wayback-test", "wayback-test-secret"),
        new AmazonS3Config { ServiceURL = endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });

    public string Bucket => bucket;

    /// <summary>What <c>--from-lfsb</c> is given.</summary>
    public string Url => prefix.Length == 0 ? $"s3://{bucket}" : $"s3://{bucket}/{prefix}";

    /// <summary>Puts the file for TXIDs min-max of <paramref name="db"/> at its key; returns the key.</summary>
    public async Task<string> PutAsync(LfsbDatabase db, string cluster, string database, int level, ulong min, ulong max)
    {
        byte[] bytes = await db.FileAsync(min, max);
        string key = LfsbLayout.Key(cluster, database, level, min, max);
        await PutAsync(key, bytes, await MetadataAsync(bytes));
        return key;
    }

    /// <summary>The metadata litefs-backup's EncodeStorageMetadata writes for an LTX file.</summary>
    public static async Task<Dictionary<string, string>> MetadataAsync(byte[] ltx)
    {
        await using var d = await LtxDecoder.OpenAsync(new MemoryStream(ltx));
        var trailer = await d.VerifyAsync();
        return new Dictionary<string, string>
        {
            ["Page-Size"] = d.Header.PageSize.ToString(CultureInfo.InvariantCulture),
            ["Commit"] = d.Header.Commit.ToString(CultureInfo.InvariantCulture),
            // ltx.FormatTimestamp: UTC, milliseconds.
            ["Timestamp"] = d.Header.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            // fmt.Sprint(ltx.Checksum): 16 lower-case hex digits.
            ["Pre-Apply-Checksum"] = d.Header.PreApplyChecksum.ToString("x16", CultureInfo.InvariantCulture),
            ["Post-Apply-Checksum"] = trailer.PostApplyChecksum.ToString("x16", CultureInfo.InvariantCulture),
        };
    }

    public async Task PutAsync(string key, byte[] bytes, IReadOnlyDictionary<string, string> metadata)
    {
        var request = new PutObjectRequest { BucketName = bucket, Key = Full(key), InputStream = new MemoryStream(bytes) };
        foreach (var (name, value) in metadata)
            request.Metadata.Add(name, value);
        await _s3.PutObjectAsync(request);
    }

    public async Task<(byte[] Bytes, Dictionary<string, string> Metadata)> GetAsync(string key)
    {
        using var response = await _s3.GetObjectAsync(bucket, Full(key));
        using var ms = new MemoryStream();
        await response.ResponseStream.CopyToAsync(ms);
        var meta = response.Metadata.Keys.ToDictionary(k => k.Replace("x-amz-meta-", "", StringComparison.OrdinalIgnoreCase), k => response.Metadata[k]);
        return (ms.ToArray(), meta);
    }

    private string Full(string key) => prefix.Length == 0 ? key : prefix + "/" + key;

    public void Dispose() => _s3.Dispose();
}
