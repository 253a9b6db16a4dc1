using Wayback.Agent.Native;
using Wayback.Ltx;

namespace Wayback.Agent.Journal;

/// <summary>Thrown when another agent already replicates the database.</summary>
public sealed class AgentLockedException(string message) : Exception(message);

/// <summary>
/// The local journal <c>&lt;db&gt;-wayback/</c>: every captured transaction as an LTX file, fsync'd before it
/// counts, kept until the server's HWM covers it; the agent's own state (position, WAL cursor, page
/// checksums); and a lock file so two agents never capture the same database.
/// </summary>
public sealed class AgentJournal : IDisposable
{
    private const string LockName = "lock";
    private const string OwnerName = "owner";
    private readonly FileStream _lock;
    private readonly Lock _gate = new();
    private readonly List<JournalEntry> _entries = [];
    private readonly List<(string Temp, JournalEntry Entry)> _staged = [];
    private long _bytes;

    private AgentJournal(string databasePath, string directory, FileStream lockFile)
    {
        DatabasePath = databasePath;
        Directory = directory;
        LtxDirectory = System.IO.Path.Combine(directory, "ltx");
        _lock = lockFile;
    }

    public string DatabasePath { get; }
    public string Directory { get; }
    public string LtxDirectory { get; }
    public string StatePath => System.IO.Path.Combine(Directory, AgentState.FileName);

    /// <summary>Total bytes of journal LTX files.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    public int Count { get { lock (_gate) return _entries.Count; } }

    /// <summary>The journal directory of a database: <c>app.db-wayback</c> next to it.</summary>
    public static string DirectoryFor(string databasePath) => System.IO.Path.GetFullPath(databasePath) + "-wayback";

    /// <summary>Opens (creating if needed) the journal and takes its lock; throws <see cref="AgentLockedException"/> if held.</summary>
    public static AgentJournal Open(string databasePath)
    {
        databasePath = System.IO.Path.GetFullPath(databasePath);
        string dir = DirectoryFor(databasePath);
        System.IO.Directory.CreateDirectory(System.IO.Path.Combine(dir, "ltx"));
        FileStream lockFile;
        try
        {
            // On Unix, FileShare.None is an advisory flock(LOCK_EX|LOCK_NB): released by the kernel when the
            // process dies, even by kill -9, so a crashed agent never leaves a stale lock behind.
            lockFile = new FileStream(System.IO.Path.Combine(dir, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            string owner = "";
            try { owner = File.ReadAllText(System.IO.Path.Combine(dir, OwnerName)).Trim(); } catch (IOException) { }
            throw new AgentLockedException($"{databasePath} is already being replicated by another wayback agent{(owner.Length > 0 ? $" ({owner})" : "")}: " +
                "two agents would fork its history; stop the other one first");
        }
        File.WriteAllText(System.IO.Path.Combine(dir, OwnerName), $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTimeOffset.UtcNow:O}\n");
        var journal = new AgentJournal(databasePath, dir, lockFile);
        journal.Load();
        return journal;
    }

    private void Load()
    {
        foreach (var f in System.IO.Directory.EnumerateFiles(LtxDirectory))
        {
            string name = System.IO.Path.GetFileName(f);
            if (name.Contains(".tmp", StringComparison.Ordinal))
            {
                File.Delete(f); // a file whose write a crash interrupted; it never counted
                continue;
            }
            if (!JournalEntry.TryParseName(name, out _, out _))
                continue;
            var header = ReadHeader(f, out var trailer, out long length);
            if (header is null)
            {
                File.Delete(f);
                continue;
            }
            _entries.Add(new JournalEntry(header.Value.MinTxid, header.Value.MaxTxid, length, header.Value.PreApplyChecksum,
                trailer.PostApplyChecksum, header.Value.TimestampMs, f));
            _bytes += length;
        }
        _entries.Sort((a, b) => a.MaxTxid != b.MaxTxid ? a.MaxTxid.CompareTo(b.MaxTxid) : a.MinTxid.CompareTo(b.MinTxid));
    }

    private static LtxHeader? ReadHeader(string path, out LtxTrailer trailer, out long length)
    {
        trailer = default;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        length = fs.Length;
        if (length < LtxHeader.Size + LtxTrailer.Size)
            return null;
        var head = new byte[LtxHeader.Size];
        fs.ReadExactly(head);
        var tail = new byte[LtxTrailer.Size];
        fs.Position = length - LtxTrailer.Size;
        fs.ReadExactly(tail);
        trailer = new LtxTrailer(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(tail),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(tail.AsSpan(8)));
        try
        {
            return LtxHeader.Read(head, LtxFormat.V3, path);
        }
        catch (LtxException)
        {
            return null;
        }
    }

    /// <summary>A copy of the entries, oldest first.</summary>
    public IReadOnlyList<JournalEntry> Entries()
    {
        lock (_gate)
            return _entries.ToArray();
    }

    /// <summary>The newest entry, or null.</summary>
    public JournalEntry? Last
    {
        get { lock (_gate) return _entries.Count == 0 ? null : _entries[^1]; }
    }

    /// <summary>Entries whose TXIDs come after <paramref name="txid"/>, oldest first, up to the limits.</summary>
    public List<JournalEntry> After(ulong txid, int maxFiles, long maxBytes)
    {
        var list = new List<JournalEntry>();
        long bytes = 0;
        lock (_gate)
        {
            foreach (var e in _entries)
            {
                if (e.MaxTxid <= txid)
                    continue;
                if (list.Count > 0 && (list.Count >= maxFiles || bytes + e.Length > maxBytes))
                    break;
                list.Add(e);
                bytes += e.Length;
            }
        }
        return list;
    }

    /// <summary>A temporary file to write one transaction's LTX into; <see cref="Stage"/> it when written.</summary>
    public (string TempPath, FileStream Stream) CreateTemp(ulong min, ulong max)
    {
        string temp = System.IO.Path.Combine(LtxDirectory, JournalEntry.FileName(min, max) + ".tmp");
        var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.None);
        return (temp, fs);
    }

    /// <summary>Closes a written file; it becomes durable and counts once <see cref="CommitStaged"/> returns.</summary>
    public void Stage(string tempPath, FileStream stream, LtxHeader header, LtxTrailer trailer)
    {
        stream.Flush();
        long length = stream.Length;
        stream.Dispose();
        string final = System.IO.Path.Combine(LtxDirectory, JournalEntry.FileName(header.MinTxid, header.MaxTxid));
        lock (_gate)
            _staged.Add((tempPath, new JournalEntry(header.MinTxid, header.MaxTxid, length, header.PreApplyChecksum,
                trailer.PostApplyChecksum, header.TimestampMs, final)));
    }

    /// <summary>
    /// Makes the staged files durable and publishes them: every file fsync'd (in parallel, which the file
    /// system turns into one journal commit instead of one per file), renamed into place, then one fsync
    /// of the directory for the whole batch.
    /// </summary>
    public IReadOnlyList<JournalEntry> CommitStaged()
    {
        List<(string Temp, JournalEntry Entry)> staged;
        lock (_gate)
            staged = [.. _staged];
        if (staged.Count == 0)
            return [];
        if (staged.Count == 1)
            Fsync(staged[0].Temp);
        else
            Parallel.ForEach(staged, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(staged.Count, 16) }, s => Fsync(s.Temp));
        foreach (var (temp, entry) in staged)
            File.Move(temp, entry.Path, overwrite: true);
        Posix.FsyncDirectory(LtxDirectory);
        var done = staged.Select(s => s.Entry).ToList();
        lock (_gate)
        {
            _staged.Clear();
            foreach (var e in done)
            {
                foreach (var old in _entries.Where(x => x.MinTxid == e.MinTxid && x.MaxTxid == e.MaxTxid))
                    _bytes -= old.Length;
                _entries.RemoveAll(x => x.MinTxid == e.MinTxid && x.MaxTxid == e.MaxTxid);
                _entries.Add(e);
                _bytes += e.Length;
            }
        }
        return done;
    }

    private static void Fsync(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Abandons staged files (a capture that failed half-way); they never counted.</summary>
    public void DropStaged()
    {
        List<JournalEntry> drop;
        lock (_gate)
        {
            drop = _staged.Select(s => s.Entry).ToList();
            _staged.Clear();
        }
        foreach (var e in drop)
            TryDelete(e.Path + ".tmp");
    }

    /// <summary>Deletes the files whose TXIDs are all at or below <paramref name="txid"/>; returns how many.</summary>
    public int DeleteThrough(ulong txid)
    {
        List<JournalEntry> drop;
        lock (_gate)
        {
            drop = _entries.Where(e => e.MaxTxid <= txid).ToList();
            _entries.RemoveAll(e => e.MaxTxid <= txid);
            _bytes -= drop.Sum(e => e.Length);
        }
        foreach (var e in drop)
            TryDelete(e.Path);
        return drop.Count;
    }

    /// <summary>
    /// Deletes files after <paramref name="txid"/> that the server never accepted and never will (a resync
    /// replaces them with one transaction or a snapshot that carries their changes).
    /// </summary>
    public int DeleteAfter(ulong txid)
    {
        List<JournalEntry> drop;
        lock (_gate)
        {
            drop = _entries.Where(e => e.MaxTxid > txid).ToList();
            _entries.RemoveAll(e => e.MaxTxid > txid);
            _bytes -= drop.Sum(e => e.Length);
        }
        foreach (var e in drop)
            TryDelete(e.Path);
        if (drop.Count > 0)
            Posix.FsyncDirectory(LtxDirectory);
        return drop.Count;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }

    public void Dispose() => _lock.Dispose();
}
