using Wayback.Agent.Journal;
using Wayback.Agent.Shipping;
using Wayback.Ltx.Native;

namespace Wayback.Agent.Restore;

/// <summary>
/// Journal entries an in-place restore overtook (committed on the state it replaced, after the server took it): the
/// restore overwrites them in the live database, so they leave the journal, but first they are copied durably into
/// <c>app.db-wayback/branches/</c>, and from there sent to the server (<c>POST /db/branch</c>) until it holds them as
/// a side branch of the history. Only then are they deleted: nothing the application committed vanishes.
/// </summary>
public sealed class SideBranchOutbox
{
    private const string TempSuffix = ".tmp";
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(1);

    private readonly string _name;
    private readonly IAgentLog _log;
    private readonly Lock _lock = new();
    private volatile bool _pending;
    private DateTime _nextAttempt;
    private TimeSpan _backoff = TimeSpan.FromSeconds(1);
    private string? _lastError;

    public SideBranchOutbox(string journalDirectory, string name, IAgentLog log)
    {
        _name = name;
        _log = log;
        Directory = Path.Combine(journalDirectory, "branches");
        // Kept before a restart and not yet acknowledged: sent again.
        _pending = Pending().Count > 0;
    }

    /// <summary>Where the overtaken entries wait: one directory per restore, named by its TXID range.</summary>
    public string Directory { get; }

    /// <summary>Batches waiting for the server, oldest first.</summary>
    public IReadOnlyList<string> Pending() =>
        System.IO.Directory.Exists(Directory)
            ? System.IO.Directory.GetDirectories(Directory).Where(d => !d.EndsWith(TempSuffix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>
    /// Copies <paramref name="entries"/> (consecutive journal files) into the outbox: written and fsync'd in a
    /// temporary directory, renamed into place, the parent fsync'd. Throws <see cref="IOException"/> when it cannot,
    /// and then the entries must stay in the journal.
    /// </summary>
    public void Keep(IReadOnlyList<JournalEntry> entries)
    {
        if (entries.Count == 0)
            return;
        string final = Path.Combine(Directory, $"{entries[0].MinTxid:x16}-{entries[^1].MaxTxid:x16}");
        lock (_lock)
        {
            // Kept already by a run that stopped before the journal let them go.
            if (!System.IO.Directory.Exists(final))
            {
                string temp = final + TempSuffix;
                if (System.IO.Directory.Exists(temp))
                    System.IO.Directory.Delete(temp, recursive: true);
                System.IO.Directory.CreateDirectory(temp);
                foreach (var e in entries)
                {
                    using var source = e.OpenRead();
                    using var file = new FileStream(Path.Combine(temp, JournalEntry.FileName(e.MinTxid, e.MaxTxid)), FileMode.CreateNew, FileAccess.Write);
                    source.CopyTo(file);
                    file.Flush(flushToDisk: true);
                }
                DirectorySync.Fsync(temp);
                System.IO.Directory.Move(temp, final);
                DirectorySync.Fsync(Directory);
            }
            _pending = true;
            _nextAttempt = default;
            _backoff = TimeSpan.FromSeconds(1);
        }
    }

    /// <summary>
    /// Sends what waits, oldest first, and deletes each batch the server acknowledged. A failure is logged (once per
    /// message) and retried later with a growing pause; it never stops shipping.
    /// </summary>
    public async Task SendAsync(ServerClient client, CancellationToken ct)
    {
        if (!_pending || DateTime.UtcNow < _nextAttempt)
            return;
        foreach (var dir in Pending())
        {
            var files = Files(dir);
            string range = Path.GetFileName(dir);
            if (files.Count == 0)
            {
                System.IO.Directory.Delete(dir, recursive: true);
                continue;
            }
            try
            {
                string id = await client.KeepBranchAsync(_name, files, ct).ConfigureAwait(false);
                System.IO.Directory.Delete(dir, recursive: true);
                _log.Info($"{_name}: the server keeps the overtaken TXIDs {files[0].MinTxid}-{files[^1].MaxTxid} as side branch {id} (`wayback history {_name}` lists it)");
                _lastError = null;
                _backoff = TimeSpan.FromSeconds(1);
            }
            catch (Exception e) when (e is HttpRequestException or ServerException or IOException || e is TaskCanceledException && !ct.IsCancellationRequested)
            {
                if (_lastError != e.Message)
                    _log.Warn($"{_name}: the server does not hold the overtaken TXIDs {range} yet ({e.Message}); they stay in {dir} and are sent again");
                _lastError = e.Message;
                _nextAttempt = DateTime.UtcNow + _backoff;
                _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
                return;
            }
        }
        lock (_lock)
            _pending = Pending().Count > 0;
    }

    /// <summary>A batch's files as journal entries; only their bytes are sent, so the checksums are not needed here.</summary>
    private static List<JournalEntry> Files(string dir)
    {
        var files = new List<JournalEntry>();
        foreach (var path in System.IO.Directory.GetFiles(dir, "*.ltx").Order(StringComparer.Ordinal))
            if (JournalEntry.TryParseName(Path.GetFileName(path), out ulong min, out ulong max))
                files.Add(new JournalEntry(min, max, new FileInfo(path).Length, 0, 0, 0, path));
        return files;
    }
}
