using Wayback.Agent.Wal;

namespace Wayback.Agent.Capture;

/// <summary>
/// The normal path of a pass: reads the WAL from the captured cursor, a scan at a time, journals what it reads
/// (<see cref="JournalBatches"/>) and moves the read hold on by the rules of docs/agent.md ("Holding the WAL").
/// What it cannot follow - a restart it did not watch, a cursor the WAL no longer has, a page size change - it
/// leaves in the <see cref="CaptureState"/> as a reason to compare pages.
/// </summary>
internal sealed class WalCapture
{
    private readonly CaptureState _state;
    private readonly CaptureCounters _counters;
    private readonly DatabaseFiles _files;
    private readonly JournalBatches _batches;
    private readonly CaptureOptions _options;
    private readonly byte[] _scanBuffer;

    public WalCapture(CaptureState state, CaptureCounters counters, DatabaseFiles files, JournalBatches batches, CaptureOptions options, byte[] scanBuffer)
    {
        _state = state;
        _counters = counters;
        _files = files;
        _batches = batches;
        _options = options;
        _scanBuffer = scanBuffer;
    }

    /// <summary>
    /// Reads and journals what the WAL holds beyond the cursor. <paramref name="pipelined"/>: the last batch's
    /// fsync may still be running on return (the main loop's passes, which drain it in time); otherwise every
    /// batch is durable and published when this returns.
    /// </summary>
    public async Task<int> CaptureWalAsync(CancellationToken ct, bool pipelined = false)
    {
        try
        {
            return await CaptureWalBatchesAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            if (!pipelined)
                _batches.CompleteCommit();
        }
    }

    private async Task<int> CaptureWalBatchesAsync(CancellationToken ct)
    {
        var session = _files.Session!;
        if (!session.Holding)
        {
            session.EnsureHold();
            _state.GenTrusted = false;
            _state.HoldReadToEnd = false;
        }
        _files.EnsureWalHandle();
        var header = _files.Wal is null ? null : WalReader.ReadHeader(_files.Wal);
        _counters.WalBytes = _files.Wal is null ? 0 : RandomAccess.GetLength(_files.Wal);
        if (header is null)
        {
            if (_state.Cursor is null || _state.TruncatedByUs)
            {
                // The WAL is empty, as it was at the captured state, and the hold keeps it from being
                // filled and emptied again unseen: whatever appears next is read from its first frame.
                _state.GenTrusted = true;
                _state.HoldReadToEnd = true;
                return 0;
            }
            _state.ResyncReason = "the WAL was emptied (truncated) while the agent was not watching";
            _counters.MissedWalRestarts++;
            return 0;
        }
        if (_state.Pages is not null && header.Value.PageSize != _state.Pages.PageSize)
        {
            _state.ResyncReason = $"the page size changed from {_state.Pages.PageSize} to {header.Value.PageSize}";
            return 0;
        }

        if (_state.Cursor is not { } cursor || !cursor.SameGeneration(header.Value))
        {
            // Each restart adds one to salt-1, which lives in the shared WAL index (the checkpoint sequence in
            // the header does not: each connection writes its own count, so it cannot tell restarts apart).
            bool restartWeSaw = _state.GenTrusted && (_state.Cursor is null || header.Value.Salt1 == unchecked(_state.Cursor.Value.Salt1 + 1) || _state.TruncatedByUs && _state.TruncatedClean);
            if (!restartWeSaw)
            {
                _state.ResyncReason = $"the WAL was restarted while the agent was not watching (salt-1 {_state.Cursor?.Salt1:x8} -> {header.Value.Salt1:x8}" +
                    $"{(_state.GenTrusted ? "" : ", not held")})";
                _counters.MissedWalRestarts++;
                return 0;
            }
            _state.Cursor = WalCursor.Start(header.Value);
            _state.CursorVerified = true;
            _state.TruncatedByUs = false;
            _state.TruncatedClean = false;
            _counters.WalRestarts++;
        }
        else if (!_state.CursorVerified)
        {
            // After a restart of the agent: the stored cursor must be a commit boundary of this generation.
            var all = WalReader.Scan(_files.Wal!, header.Value, WalCursor.Start(header.Value), int.MaxValue, buffer: _scanBuffer, ct: ct);
            WalCursor? found = cursor.Offset == WalHeader.Size ? WalCursor.Start(header.Value) : null;
            foreach (var tx in all.Transactions)
                if (tx.End.Offset == cursor.Offset)
                    found = tx.End;
            if (found is null)
            {
                _state.ResyncReason = "the WAL no longer matches the agent's stored position";
                return 0;
            }
            _state.Cursor = found;
            _state.CursorVerified = true;
        }

        int captured = 0;
        long sinceHold;
        while (true)
        {
            // One scan is one journal segment (one file, one fsync): up to CheckpointFrames frames, as many as fit the buffer.
            var scan = WalReader.Scan(_files.Wal!, header.Value, _state.Cursor!.Value, maxFrames: Math.Max(1, Math.Min(_options.CheckpointFrames, _scanBuffer.Length / header.Value.FrameSize)),
                maxTransactions: 1024, buffer: _scanBuffer, ct: ct);
            if (scan.Transactions.Count > 0)
                captured += await _batches.WriteTransactionsAsync(scan, header.Value, ct).ConfigureAwait(false);
            if (_state.ResyncReason is not null)
                return captured;
            sinceHold = FramesSinceHold(header.Value);
            // A pass ends when it has caught up - or, while the application writes as fast as the agent reads,
            // once the hold is due to move: a pass that never ended would pin the WAL and let it grow without
            // bound.
            _state.CaughtUp = !scan.MoreAvailable;
            if (_state.CaughtUp)
                _state.HoldReadToEnd = true;
            if (_state.CaughtUp || sinceHold >= _options.CheckpointFrames || session.HeldForMs >= _options.HoldInterval.TotalMilliseconds)
                break;
        }
        // Once everything up to the current hold's snapshot has been read, a restart seen from then on is one
        // we can follow. Handing over to a fresh hold lets checkpoints copy what was read - and costs the
        // application a checkpoint (two fsyncs) in its next commit - so while commits keep coming the hold
        // moves on every CheckpointFrames frames or HoldInterval; once a pass finds nothing new, at once. But
        // only after a scan under this hold read to the end of the WAL: an agent that is behind keeps its hold
        // (the WAL grows meanwhile, bounded by the write-locked catch-up of CheckpointRound).
        var c = _state.Cursor!.Value;
        if (_state.HoldReadToEnd && (sinceHold >= _options.CheckpointFrames || sinceHold > 0 && (captured == 0 || session.HeldForMs >= _options.HoldInterval.TotalMilliseconds)))
        {
            session.RotateHold();
            _state.HeldAt = (c.Salt1, c.Salt2, c.Offset);
            _state.HoldReadToEnd = false;
        }
        if (_state.HoldReadToEnd)
            _state.GenTrusted = true;
        return captured;
    }

    /// <summary>Frames the agent has read since its current read hold was taken.</summary>
    private long FramesSinceHold(WalHeader header)
    {
        var c = _state.Cursor!.Value;
        return (c.Offset - (_state.HeldAt.Salt1 == c.Salt1 && _state.HeldAt.Salt2 == c.Salt2 ? _state.HeldAt.Offset : WalHeader.Size)) / header.FrameSize;
    }
}
