using System.Text.Json;
using Wayback.Server.Clusters;
using Wayback.Server.Storage;
using Wayback.Storage;

namespace Wayback.Server.Databases;

/// <summary>A database in the trash: deleted, invisible and refusing writes, with every object kept until it is purged.</summary>
internal sealed partial class Database
{
    /// <summary>When the database was deleted into the trash; null while it is live.</summary>
    public DateTimeOffset? TrashedAt { get; private set; }

    /// <summary>Startup: the listing found the database's trash marker.</summary>
    internal async Task LoadTrashMarkerAsync(string key, CancellationToken ct)
    {
        TrashMarker? marker = null;
        try
        {
            await using var s = await _engine.Store.GetAsync(key, null, ct).ConfigureAwait(false);
            marker = await JsonSerializer.DeserializeAsync<TrashMarker>(s, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JsonException or ObjectNotFoundException)
        {
            // An unreadable marker still means "deleted": keeping the database in the trash loses nothing.
        }
        TrashedAt = marker?.DeletedAt ?? DateTimeOffset.UtcNow;
    }

    /// <summary>Moves the database to the trash. Under the lock, so a write in flight finishes first and the next one is refused.</summary>
    public async Task<DateTimeOffset> TrashAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Deleted || !Exists)
                throw new NotFoundException($"database '{Name}' not found in cluster '{Cluster}'");
            if (TrashedAt is not null)
                throw new ConflictException($"database '{Name}' is already in the trash", ConflictKind.Trashed);
            var at = DateTimeOffset.UtcNow;
            using var body = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new TrashMarker(at)));
            await _engine.Store.PutAsync(StoreKeys.DatabaseTrash(Cluster, Name), body, null, ct).ConfigureAwait(false);
            TrashedAt = at;
            SignalChanged();
            return at;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Brings the database back from the trash with every restore point it had.</summary>
    public async Task RestoreFromTrashAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Deleted || TrashedAt is null)
                throw new NotFoundException($"database '{Name}' is not in the trash of cluster '{Cluster}'");
            await _engine.Store.DeleteAsync(StoreKeys.DatabaseTrash(Cluster, Name), ct).ConfigureAwait(false);
            TrashedAt = null;
            SignalChanged();
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Refuses a write to a database in the trash (see docs/server.md, "The trash").</summary>
    private void ThrowIfTrashed()
    {
        if (TrashedAt is { } at)
            throw new ConflictException(
                $"database '{Name}' is in the trash since {at:u}; restore it with `wayback databases restore {Name}` before writing to it", ConflictKind.Trashed);
    }

    /// <summary>Forgets the database and deletes its buffer files (the caller deletes its objects).</summary>
    public async Task MarkDeletedAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            Deleted = true;
            _engine.Disk.SealDone(Label);
            SignalChanged();
            foreach (var b in BufferSegments().ToList())
                b.Delete();
            _pending.Clear();
            _open = null;
            if (Directory.Exists(BufferDirectory))
                Directory.Delete(BufferDirectory, recursive: true);
        }
        finally
        {
            _lock.Release();
        }
    }
}
