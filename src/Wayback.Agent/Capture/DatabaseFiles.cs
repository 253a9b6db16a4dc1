using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using Wayback.Agent.Native;

namespace Wayback.Agent.Capture;

/// <summary>
/// The agent's handles on one database - its SQLite connections, its one descriptor on the database file, the
/// WAL, the -shm lock bytes - and the checks a pass starts with: the database file is there, is the file the
/// agent has open, and is in WAL mode. What they find that capture cannot follow is left in the
/// <see cref="CaptureState"/> as a reason to compare pages.
/// </summary>
internal sealed class DatabaseFiles
{
    private readonly string _walPath;
    private readonly CaptureState _state;
    private readonly CaptureCounters _counters;
    private readonly CaptureOptions _options;
    private readonly IAgentLog _log;
    private readonly string _name;
    private (ulong Dev, ulong Ino)? _walId;
    private bool _missingLogged;
    private bool _wasMissing;
    private bool _modeLogged;

    public DatabaseFiles(string databasePath, CaptureState state, CaptureCounters counters, CaptureOptions options, IAgentLog log)
    {
        DatabasePath = Path.GetFullPath(databasePath);
        _walPath = DatabasePath + "-wal";
        _name = Path.GetFileName(DatabasePath);
        _state = state;
        _counters = counters;
        _options = options;
        _log = log;
        Locks = new ShmLocks(DatabasePath, _options.OwnProcess, _options.WriteLockTimeoutMs);
    }

    /// <summary>The database file's full path.</summary>
    public string DatabasePath { get; }

    /// <summary>The database's file name, as log messages name it.</summary>
    public string Name => _name;

    /// <summary>The agent's connections to the database, while it is open.</summary>
    public SqliteSession? Session { get; private set; }

    /// <summary>
    /// The agent's one descriptor on the database file, open as long as its SQLite connections are: closing
    /// any descriptor of a file drops every POSIX lock this process holds on it - SQLite's included.
    /// </summary>
    public SafeFileHandle? Db { get; private set; }

    /// <summary>The WAL, while there is one (see <see cref="EnsureWalHandle"/>).</summary>
    public SafeFileHandle? Wal { get; private set; }

    /// <summary>SQLite's lock bytes in -shm that the agent takes itself (closed with the connections).</summary>
    public ShmLocks Locks { get; }

    /// <summary>The reason capture is currently degraded (not WAL mode, database missing), or null.</summary>
    public string? Problem { get; private set; }

    /// <summary>
    /// Whether the database file is there (and not empty); (re)opens the connections, and notices a file that
    /// was replaced, which leaves a reason to compare pages.
    /// </summary>
    public bool EnsureDatabase()
    {
        var id = Posix.FileId(DatabasePath);
        if (id is null || new FileInfo(DatabasePath).Length == 0 && !File.Exists(_walPath))
        {
            if (!_missingLogged)
            {
                _log.Warn(id is null
                    ? $"{_name}: the database file is gone (deleted or moved away); waiting for it to come back"
                    : $"{_name}: the database file is empty; waiting for the first write");
                _missingLogged = true;
            }
            Problem = id is null ? "database missing" : "database empty";
            Close();
            _wasMissing = true;
            return false;
        }
        if (_missingLogged)
        {
            _log.Info($"{_name}: the database file is back");
            _missingLogged = false;
            Problem = null;
        }
        if (Session is null)
        {
            OpenSession();
            _state.GenTrusted = false;
            // A file that came back after being gone is another file, even if the kernel reused its inode number.
            if (_wasMissing || _state.FileId is not null && _state.FileId != id || _state.FileId is null && _state.StateFileId is not null && _state.StateFileId != id)
            {
                _log.Warn($"{_name}: the database file was replaced (deleted and recreated, or another file put in its place); comparing it with the last captured state");
                _state.ResyncReason ??= "the database file was replaced";
                _counters.Replacements++;
            }
            _state.FileId = id;
            _wasMissing = false;
            return true;
        }
        if (id != _state.FileId)
        {
            _log.Warn($"{_name}: the database file was replaced (deleted and recreated, or another file put in its place); comparing it with the last captured state");
            Close();
            OpenSession();
            _state.FileId = id;
            _state.ResyncReason ??= "the database file was replaced";
            _counters.Replacements++;
        }
        return true;
    }

    /// <summary>Whether the database is in WAL mode; switches it back if it is not and the options allow.</summary>
    public bool EnsureWalMode()
    {
        if (IsWalModeOnDisk())
        {
            if (_modeLogged)
            {
                _log.Info($"{_name}: back in WAL mode; capturing every transaction again");
                _modeLogged = false;
                Problem = null;
            }
            return true;
        }
        string mode = SafeJournalMode();
        if (!_modeLogged)
        {
            _log.Error($"{_name}: the database is not in WAL mode (journal_mode={mode}) - the application switched it out of WAL, or it was never in it. " +
                "Wayback captures each transaction only in WAL mode; until it is back, changes are captured by comparing pages, merged into one transaction per pass");
            _modeLogged = true;
            Problem = $"journal_mode={mode}";
        }
        if (_options.SwitchToWal)
        {
            try
            {
                Session!.ReleaseHold();
                string now = Session.SetWalMode();
                if (now == "wal")
                {
                    _log.Warn($"{_name}: switched the database back to WAL mode (PRAGMA journal_mode=WAL)");
                    _state.ResyncReason ??= "the database was out of WAL mode";
                    _state.GenTrusted = false;
                    return true;
                }
            }
            catch (SqliteException e)
            {
                _log.Warn($"{_name}: could not switch the database to WAL mode yet ({e.Message}); will retry");
            }
        }
        return false;
    }

    private string SafeJournalMode()
    {
        try
        {
            return Session!.JournalMode();
        }
        catch (SqliteException)
        {
            return "unknown";
        }
    }

    /// <summary>The file format bytes at offsets 18 and 19 of the database header are 2 in WAL mode.</summary>
    private bool IsWalModeOnDisk()
    {
        Span<byte> h = stackalloc byte[20];
        int n = RandomAccess.Read(Db!, h, 0);
        if (n < 20)
            return File.Exists(_walPath); // a new database whose first pages are still only in the WAL
        return h[18] == 2 && h[19] == 2;
    }

    /// <summary>Opens the WAL again if it was created or replaced since it was opened.</summary>
    public void EnsureWalHandle()
    {
        var id = Posix.FileId(_walPath);
        if (Wal is not null && id == _walId)
            return;
        Wal?.Dispose();
        Wal = null;
        _walId = id;
        if (id is not null)
            Wal = File.OpenHandle(_walPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
    }

    private void OpenSession()
    {
        Db = File.OpenHandle(DatabasePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        Session = SqliteSession.Open(DatabasePath);
    }

    /// <summary>Closes the connections and every descriptor together (see <see cref="Db"/>).</summary>
    public void Close()
    {
        Session?.Dispose();
        Session = null;
        Db?.Dispose();
        Db = null;
        Locks.Close();
        Wal?.Dispose();
        Wal = null;
        _walId = null;
        _state.GenTrusted = false;
    }
}
