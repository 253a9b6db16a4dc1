using Wayback.Agent.Native;

namespace Wayback.Agent.Journal;

/// <summary>Thrown when another agent already replicates the database.</summary>
public sealed class AgentLockedException(string message) : Exception(message);

/// <summary>
/// The local journal <c>&lt;db&gt;-wayback/</c>: every captured transaction as an LTX file inside a segment
/// (one per capture batch), fsync'd before it counts, kept until the server's HWM covers it; the agent's
/// own state (position, WAL cursor, page checksums); and a lock file so two agents never capture the same
/// database.
/// </summary>
public sealed class AgentJournal : IDisposable
{
    private const string LockName = "lock";
    private const string OwnerName = "owner";
    private readonly FileStream _lock;
    private readonly Lock _gate = new();
    private readonly List<JournalEntry> _entries = [];
    private readonly Dictionary<string, (ulong MaxTxid, long Bytes)> _segments = [];
    // Acknowledged segment files kept for the next batches to overwrite: creating a file per capture pass and
    // deleting it soon after made ext4 search its inode bitmap each time (a fifth of the agent's CPU at 20k
    // transactions/s; on ext4 without a journal each new inode skips every one freed in the last minutes, a
    // few milliseconds a file). Segments are acknowledged about once a second, and a writer flat out makes
    // a segment every millisecond or two, so up to 4,096 are kept - and at most MaxSpareBytes of disk.
    private readonly Stack<(string Path, long Bytes)> _spare = new();
    private const int MaxSpare = 4096;
    private const long MaxSpareBytes = 64L << 20;
    private long _spareBytes;
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

    /// <summary>Total bytes of journal segment files.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Transactions in the journal.</summary>
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

    /// <summary>Every entry of a journal directory, oldest first, read without taking the lock (tests, tools).</summary>
    public static List<JournalEntry> ReadEntries(string journalDirectory)
    {
        var list = new List<JournalEntry>();
        string ltx = System.IO.Path.Combine(journalDirectory, "ltx");
        if (!System.IO.Directory.Exists(ltx))
            return list;
        foreach (var f in System.IO.Directory.EnumerateFiles(ltx, "*" + JournalSegment.Extension))
        {
            try
            {
                list.AddRange(JournalSegment.Read(f));
            }
            catch (FileNotFoundException)
            {
                // deleted by the agent while we looked (the server acknowledged it)
            }
        }
        list.Sort((a, b) => a.MaxTxid.CompareTo(b.MaxTxid));
        return list;
    }

    private void Load()
    {
        foreach (var f in System.IO.Directory.EnumerateFiles(LtxDirectory))
        {
            if (f.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(f); // a segment whose write a crash interrupted; it never counted
                continue;
            }
            if (!f.EndsWith(JournalSegment.Extension, StringComparison.Ordinal))
                continue;
            var entries = JournalSegment.Read(f);
            if (entries.Count == 0)
            {
                File.Delete(f);
                continue;
            }
            long bytes = new FileInfo(f).Length;
            _entries.AddRange(entries);
            _segments[f] = (entries[^1].MaxTxid, bytes);
            _bytes += bytes;
        }
        _entries.Sort((a, b) => a.MaxTxid != b.MaxTxid ? a.MaxTxid.CompareTo(b.MaxTxid) : a.MinTxid.CompareTo(b.MinTxid));
    }

    /// <summary>A copy of the entries, oldest first.</summary>
    public IReadOnlyList<JournalEntry> Entries()
    {
        lock (_gate)
            return _entries.ToArray();
    }

    /// <summary>Entries whose TXIDs come after <paramref name="txid"/>, oldest first, up to the limits.</summary>
    public List<JournalEntry> After(ulong txid, int maxFiles, long maxBytes)
    {
        var list = new List<JournalEntry>();
        long bytes = 0;
        lock (_gate)
        {
            // Entries are sorted by TXID and the shipper asks for the first ones the server lacks: a journal
            // that a slow server let grow to hundreds of thousands of entries must not be scanned each time.
            int lo = 0, hi = _entries.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_entries[mid].MaxTxid > txid) hi = mid; else lo = mid + 1;
            }
            for (int i = lo; i < _entries.Count; i++)
            {
                var e = _entries[i];
                if (list.Count > 0 && (list.Count >= maxFiles || bytes + e.Length > maxBytes))
                    break;
                list.Add(e);
                bytes += e.Length;
            }
        }
        return list;
    }

    /// <summary>Starts a segment file for a batch of <paramref name="count"/> transactions (in a spare file if there is one).</summary>
    public JournalSegment.Writer BeginSegment(int count)
    {
        string? spare = null;
        lock (_gate)
        {
            if (_spare.TryPop(out var s))
            {
                spare = s.Path;
                _spareBytes -= s.Bytes;
            }
        }
        return new(LtxDirectory, count, spare);
    }

    /// <summary>Test seam: a failure (a full disk, say) that <see cref="Commit"/> throws instead of making a segment durable.</summary>
    internal Func<Exception?>? CommitFault { get; set; }

    /// <summary>
    /// Makes a written segment durable and publishes its entries: one fsync of the file, a rename into
    /// place and one fsync of the directory, for the whole batch.
    /// </summary>
    public IReadOnlyList<JournalEntry> Commit(JournalSegment.Writer segment)
    {
        if (CommitFault?.Invoke() is { } fault)
            throw fault;
        var (path, entries, bytes) = segment.Finish();
        Wayback.Ltx.Native.DirectorySync.Fsync(LtxDirectory);
        lock (_gate)
        {
            _segments[path] = (entries[^1].MaxTxid, bytes);
            _bytes += bytes;
            _entries.AddRange(entries);
        }
        return entries;
    }

    /// <summary>Deletes the segments whose TXIDs are all at or below <paramref name="txid"/>; returns how many.</summary>
    public int DeleteThrough(ulong txid)
    {
        List<string> drop;
        lock (_gate)
        {
            drop = _segments.Where(s => s.Value.MaxTxid <= txid).Select(s => s.Key).ToList();
            if (drop.Count == 0)
                return 0;
            var set = drop.ToHashSet();
            foreach (var d in drop)
            {
                _bytes -= _segments[d].Bytes;
                _segments.Remove(d);
            }
            // Segments hold consecutive TXIDs, so the dropped ones are the oldest: their entries lead the list.
            int n = 0;
            while (n < _entries.Count && set.Contains(_entries[n].Path))
                n++;
            _entries.RemoveRange(0, n);
            if (n < _entries.Count && set.Contains(_entries[n].Path))
                _entries.RemoveAll(e => set.Contains(e.Path)); // not expected; keep the list right anyway
        }
        foreach (var d in drop)
            Retire(d);
        return drop.Count;
    }

    /// <summary>
    /// Takes an acknowledged segment out of the journal: renamed to a <c>.tmp</c> name for a later batch to
    /// overwrite (not emptied: freeing its blocks and allocating them again cost more than the overwrite; the
    /// writer trims a stale tail only past 1 MiB), or deleted when enough are spare (4,096, or 64 MiB). Nothing reads an
    /// acknowledged segment any more, and a <c>.tmp</c> file found at start is deleted, so a crash never lets a
    /// spare count.
    /// </summary>
    private void Retire(string path)
    {
        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return;
        }
        lock (_gate)
        {
            if (_spare.Count >= MaxSpare || _spareBytes + length > MaxSpareBytes)
            {
                TryDelete(path);
                return;
            }
            _spareBytes += length; // reserved now, so concurrent retirements respect the limit
        }
        string spare = System.IO.Path.Combine(LtxDirectory, "spare-" + Guid.NewGuid().ToString("n") + JournalSegment.Extension + ".tmp");
        try
        {
            File.Move(path, spare);
        }
        catch (IOException)
        {
            lock (_gate)
                _spareBytes -= length;
            TryDelete(path);
            return;
        }
        lock (_gate)
            _spare.Push((spare, length));
    }

    /// <summary>
    /// Deletes the entries after <paramref name="txid"/> that the server never accepted and never will (a
    /// resync replaces them with one transaction or a snapshot that carries their changes). A segment with
    /// entries on both sides is rewritten without the later ones.
    /// </summary>
    public int DeleteAfter(ulong txid)
    {
        List<JournalEntry> drop;
        var keepBySegment = new Dictionary<string, List<JournalEntry>>();
        lock (_gate)
        {
            drop = _entries.Where(e => e.MaxTxid > txid).ToList();
            if (drop.Count == 0)
                return 0;
            foreach (var path in drop.Select(e => e.Path).Distinct())
            {
                keepBySegment[path] = _entries.Where(e => e.Path == path && e.MaxTxid <= txid).ToList();
                _bytes -= _segments[path].Bytes;
                _segments.Remove(path);
            }
            _entries.RemoveAll(e => keepBySegment.ContainsKey(e.Path));
        }
        foreach (var (path, keep) in keepBySegment)
        {
            if (keep.Count > 0)
            {
                var w = BeginSegment(keep.Count);
                foreach (var e in keep)
                {
                    using var src = e.OpenRead();
                    w.Add(src, e);
                }
                var (newPath, entries, bytes) = w.Finish();
                lock (_gate)
                {
                    _segments[newPath] = (entries[^1].MaxTxid, bytes);
                    _bytes += bytes;
                    _entries.AddRange(entries);
                    _entries.Sort((a, b) => a.MaxTxid.CompareTo(b.MaxTxid));
                }
                if (newPath == path)
                    continue;
            }
            TryDelete(path);
        }
        Wayback.Ltx.Native.DirectorySync.Fsync(LtxDirectory);
        return drop.Count;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            while (_spare.TryPop(out var spare))
                TryDelete(spare.Path);
            _spareBytes = 0;
        }
        _lock.Dispose();
    }
}
