using Wayback.Ltx;
using Wayback.Server.Tests;

namespace Wayback.Fuzz;

public sealed partial class HttpFuzzer
{
    /// <summary>
    /// Writes one database's chain: mostly mutants of the next transaction (alone, or in a batch with
    /// valid files before it), valid bodies with lying headers, and every fourth request the valid
    /// transaction itself, which must be accepted. A refused mutant rewinds the model; an accepted one
    /// is judged (the same transaction in another encoding is fine; anything else is a finding) and,
    /// if the position no longer matches the model, the database is retired and a new one started.
    /// </summary>
    private async Task TxWorkerAsync(int w, Random r)
    {
        const string target = "http-tx";
        int gen = 0;
        string db = $"tx{w}-{gen}";
        var model = await NewDatabaseAsync(target, db, r);
        while (Take())
        {
            if (model is null)
            {
                db = $"tx{w}-{++gen}";
                model = await NewDatabaseAsync(target, db, r);
                continue;
            }
            ulong before = model.Txid;
            foreach (var t in model.ImageAt.Keys.Where(t => t + 1 < before).ToList())
                model.ImageAt.Remove(t);
            var format = r.Next(2) == 0 ? LtxFormat.V1 : LtxFormat.V3;
            int kind = r.Next(20);
            if (kind < 5)
            {
                var valid = model.Tx(r.Next(1, 4), format, grow: r.Next(10) == 0);
                var c = Write(target, db, valid, $"valid transaction {model.Txid} of {db}");
                var a = await SendAsync(c);
                int status = Judge(c, a);
                if (status != 200)
                {
                    if (status != 0 && status != 503)
                        _findings.Fail(c, FailureKind.RefusedValid, $"a valid transaction to {db} was refused: {a.Status} {Short(a.Body)}");
                    model = status == 503 ? Rewound(model, before) : null;
                }
                continue;
            }
            // The next transaction, a mutant of it, and possibly valid files ahead of it in one batch.
            var files = new List<byte[]>();
            int ahead = r.Next(4) == 0 ? r.Next(1, 4) : 0;
            for (int i = 0; i < ahead; i++)
                files.Add(model.Tx(r.Next(1, 3), LtxFormat.V3));
            var next = model.Tx(r.Next(1, 4), format, grow: r.Next(6) == 0);
            var seed = await Seed.DecodeAsync($"{db} txid {model.Txid}", next);
            var headers = new Dictionary<string, string>();
            string what;
            byte[] last;
            if (kind < 17)
            {
                var m = Mutator.Mutate(r, seed);
                last = m.Bytes;
                what = $"{db}: {(ahead > 0 ? $"after {ahead} valid file(s), " : "")}mutant of txid {model.Txid} ({format.Name()}): {m.What}";
            }
            else
            {
                // A valid body whose headers lie: the wrong format forced, or lengths that do not add up.
                last = next;
                if (r.Next(2) == 0)
                    headers["Wayback-Ltx-Format"] = format == LtxFormat.V1 ? "v3" : "v1";
                else
                    headers["Wayback-Ltx-Lengths"] = OddLengths(r, files.Append(next).Select(f => f.Length).ToList());
                what = $"{db}: valid txid {model.Txid} with {string.Join(", ", headers.Select(h => $"{h.Key}: {Short(h.Value)}"))}";
            }
            files.Add(last);
            if ((files.Count > 1 || r.Next(3) == 0) && !headers.ContainsKey("Wayback-Ltx-Lengths"))
                headers["Wayback-Ltx-Lengths"] = string.Join(',', files.Select(f => f.Length));
            var body = files.SelectMany(f => f).ToArray();
            var mc = Write(target, db, body, what, headers) with { Context = [await StateSnapshotAsync(model, before)] };
            var ma = await SendAsync(mc);
            string known = KnownForWrite(last, seed);
            int ms = Judge(mc, ma, known);
            if (ms is >= 200 and < 300)
            {
                await JudgeAcceptedAsync(mc, last, seed, db);
                var pos = await PositionAsync(db);
                if (pos != (model.Txid, model.Checksum))
                {
                    _serve.Note($"http-tx: retiring {db}: position {pos} after an accepted mutant, model {model.Txid:x16}/{model.Checksum:x16}");
                    model = null;
                }
            }
            else
            {
                model = Rewound(model, before);
            }
        }
    }

    /// <summary>The database as it was before this request, as one snapshot: what a replay writes first.</summary>
    private static async Task<byte[]> StateSnapshotAsync(LtxModel model, ulong txid)
    {
        var output = new MemoryStream();
        await LtxSnapshot.WriteAsync(new MemoryStream(model.ImageAt[txid]), model.PageSize, output, txid, LtxFormat.V3, timestampMs: 1);
        return output.ToArray();
    }

    private static LtxModel Rewound(LtxModel model, ulong txid)
    {
        model.RewindTo(txid);
        return model;
    }

    private static string OddLengths(Random r, List<int> real) => r.Next(6) switch
    {
        0 => string.Join(',', real.Select(n => n + 1)),
        1 => string.Join(',', real.Take(Math.Max(1, real.Count - 1))),
        2 => string.Join(',', real.Append(100)),
        3 => string.Join(',', real) + ",",
        4 => "-" + string.Join(',', real),
        _ => string.Join(',', real.Select(n => n.ToString("x"))),
    };

    /// <summary>The known defect of issue 20 a refused-with-5xx or accepted write matches, from its header.</summary>
    private static string KnownForWrite(byte[] file, Seed valid)
    {
        if (file.Length < LtxHeader.Size)
            return "";
        var span = file.AsSpan();
        uint commit = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(span[12..]);
        ulong maxTxid = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(span[24..]);
        long ts = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(span[32..]);
        if (commit > valid.Header.Commit + 1_000_000)
            return "#3 absurd commit allocates 8 x commit";
        if (ts > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds() || ts < DateTimeOffset.MinValue.ToUnixTimeMilliseconds())
            return "#6 timestamp out of range accepted";
        if (maxTxid >= 1UL << 62)
            return "#6 huge TXID accepted";
        if (commit > valid.Header.Commit)
            return "#2 grows the database without the new pages";
        return "";
    }

    /// <summary>
    /// An accepted mutant is fine only if it is the valid transaction in another encoding: the same pages
    /// and post-apply checksum, and a header that differs only where a client may write anything (WAL
    /// fields, node id, a representable timestamp, a max TXID that makes it a multi-transaction file).
    /// </summary>
    private async Task JudgeAcceptedAsync(FuzzCase c, byte[] mutant, Seed valid, string db)
    {
        string known = KnownForWrite(mutant, valid);
        Seed m;
        try
        {
            m = await Seed.DecodeAsync("accepted", mutant);
        }
        catch (Exception e) when (LtxTarget.IsDocumented(e))
        {
            Poisoned(c, db, $"{c.What}: accepted a file the decoder refuses ({e.Message})", known);
            return;
        }
        var h = m.Header;
        var v = valid.Header;
        bool samePages = m.Pages.Count == valid.Pages.Count
            && m.Pages.Zip(valid.Pages).All(p => p.First.Pgno == p.Second.Pgno && p.First.Data.AsSpan().SequenceEqual(p.Second.Data));
        bool sameState = samePages && m.PostApply == valid.PostApply && h.PageSize == v.PageSize && h.Commit == v.Commit
            && h.MinTxid == v.MinTxid && h.PreApplyChecksum == v.PreApplyChecksum && h.Flags == v.Flags;
        if (known != "" || !sameState)
            Poisoned(c, db, $"{c.What}: accepted (commit {h.Commit} vs {v.Commit}, TXIDs {h.MinTxid}-{h.MaxTxid} vs {v.MinTxid}-{v.MaxTxid}, " +
                $"timestamp {h.TimestampMs}, {m.Pages.Count} pages vs {valid.Pages.Count}, same pages {samePages})", known);
    }

    private void Poisoned(FuzzCase c, string db, string detail, string known)
    {
        _databases[db] = known == "" ? "poisoned by an accepted mutant" : known;
        _findings.Fail(c, FailureKind.Accepted, detail, known);
    }
}
