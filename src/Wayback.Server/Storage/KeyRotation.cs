using Microsoft.Extensions.Logging;
using Wayback.Server.Databases;
using Wayback.Storage;
using Wayback.Storage.Encryption;

namespace Wayback.Server.Storage;

/// <summary>Where a key rotation stands: what it found and did, and whether it is done.</summary>
public sealed record RotationStatus(bool Running, string? Key, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt,
    long Examined, long Rewritten, long Current, long Skipped, long Failed, string? LastError);

/// <summary>
/// <c>wayback keys rotate</c>: rewrites, in the background, every object under <c>clusters/</c> that is plain or sealed
/// with an older key, sealed with the newest. One object at a time, each read whole to a temporary file and put back
/// only if it is still the version that was read (If-Match), so a file retention deleted meanwhile is not brought back.
/// </summary>
/// <remarks>
/// An object a restore, verify or compaction is reading (it holds a lease) is left for a later pass, so no reader sees
/// it change under it; one still held after the last pass is counted as skipped, and the next rotation takes it.
/// </remarks>
internal sealed class KeyRotation(EncryptedObjectStore store, Engine engine)
{
    private const int Passes = 5;
    private static readonly TimeSpan PassDelay = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private RotationStatus _status = new(false, null, null, null, 0, 0, 0, 0, 0, null);
    private Task? _running;

    public RotationStatus Status
    {
        get
        {
            lock (_lock)
                return _status;
        }
    }

    /// <summary>The task of the rotation in progress or last finished (tests wait on it).</summary>
    public Task Completion
    {
        get
        {
            lock (_lock)
                return _running ?? Task.CompletedTask;
        }
    }

    /// <summary>Starts a rotation to the newest key unless one is running; returns its status.</summary>
    /// <exception cref="BadInputException">The server has no key file.</exception>
    public RotationStatus Start(CancellationToken stopping)
    {
        var newest = store.Keys.Newest ?? throw new BadInputException("this server has no encryption key file: start it with --encryption-key-file, then rotate");
        lock (_lock)
        {
            if (_status.Running)
                return _status;
            _status = new RotationStatus(true, newest.Id, DateTimeOffset.UtcNow, null, 0, 0, 0, 0, 0, null);
            _running = Task.Run(() => RunAsync(newest.Id, stopping), CancellationToken.None);
            return _status;
        }
    }

    private async Task RunAsync(string newest, CancellationToken ct)
    {
        try
        {
            var held = new List<(string Key, string? ETag)>();
            await foreach (var (info, seal) in store.ListSealsAsync(StoreKeys.ClustersPrefix, ct).ConfigureAwait(false))
            {
                Update(s => s with { Examined = s.Examined + 1 });
                if (seal.KeyId == newest)
                    Update(s => s with { Current = s.Current + 1 });
                else if (engine.Leases.IsLeased(info.Key))
                    held.Add((info.Key, seal.ETag));
                else
                    await RewriteAsync(info.Key, seal.ETag, ct).ConfigureAwait(false);
            }
            for (int pass = 1; pass < Passes && held.Count > 0; pass++)
            {
                await Task.Delay(PassDelay, ct).ConfigureAwait(false);
                var again = new List<(string, string?)>();
                foreach (var (key, etag) in held)
                {
                    if (engine.Leases.IsLeased(key))
                        again.Add((key, etag));
                    else
                        await RewriteAsync(key, etag, ct).ConfigureAwait(false);
                }
                held = again;
            }
            Update(s => s with { Skipped = s.Skipped + held.Count });
            var done = Status;
            engine.Log.LogInformation("key rotation to '{Key}' done: {Rewritten} objects rewritten, {Current} already current, {Skipped} skipped, {Failed} failed",
                newest, done.Rewritten, done.Current, done.Skipped, done.Failed);
        }
        catch (Exception e) when (e is StorageException or IOException or OperationCanceledException)
        {
            Update(s => s with { Failed = s.Failed + 1, LastError = e.Message });
            engine.Log.LogError("key rotation to '{Key}' stopped: {Error}", newest, e.Message);
        }
        finally
        {
            Update(s => s with { Running = false, FinishedAt = DateTimeOffset.UtcNow });
        }
    }

    private async Task RewriteAsync(string key, string? etag, CancellationToken ct)
    {
        Directory.CreateDirectory(engine.TempDirectory);
        string temp = engine.TempPath("rotate");
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            await using (var body = await store.GetAsync(key, null, ct).ConfigureAwait(false))
                await body.CopyToAsync(file, ct).ConfigureAwait(false);
            await store.PutFileAsync(key, temp, etag is null ? null : PutOptions.IfMatchPut(etag), ct).ConfigureAwait(false);
            Update(s => s with { Rewritten = s.Rewritten + 1 });
        }
        catch (Exception e) when (e is ObjectNotFoundException or PreconditionFailedException)
        {
            // Deleted or replaced since it was listed: whatever is there now was written with the newest key.
            Update(s => s with { Skipped = s.Skipped + 1 });
        }
        catch (SealedObjectException e)
        {
            Update(s => s with { Failed = s.Failed + 1, LastError = e.Message });
            engine.Log.LogError("key rotation: {Error}", e.Message);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private void Update(Func<RotationStatus, RotationStatus> change)
    {
        lock (_lock)
            _status = change(_status);
    }
}
