using Wayback.Ltx;

namespace Wayback.Fuzz;

public sealed partial class HttpFuzzer
{
    /// <summary>
    /// Writes databases along one of the prepared SQLite chains: mostly mutants of the next file (alone,
    /// or in a batch after valid files), valid files with lying headers, and every fourth request the next
    /// file itself, which must be accepted. A refused mutant leaves the position where it was; an accepted
    /// one is judged (the same transaction in another encoding is fine; anything else is a finding) and,
    /// if the position is not the one the chain expects, the database is retired and a new one started.
    /// </summary>
    private async Task TxWorkerAsync(int w, Random r)
    {
        const string target = "http-tx";
        int gen = 0;
        string db = "";
        SqliteChain chain = _chains[0];
        int k = -1; // the last file of the chain the database holds; -1: start a new database
        while (Take())
        {
            if (k < 0 || k + 1 >= chain.Count)
            {
                db = $"tx{w}-{gen++}";
                chain = _chains[r.Next(_chains.Count)];
                k = await StartAsync(target, db, chain, r) ? 0 : -1;
                continue;
            }
            var format = r.Next(2) == 0 ? LtxFormat.V1 : LtxFormat.V3;
            int kind = r.Next(20);
            if (kind < 5)
            {
                var c = Write(target, db, chain.File(k + 1, format), $"valid file {k + 1} of {db}");
                var a = await SendAsync(c);
                int status = Judge(c, a);
                if (status == 200)
                    k++;
                else if (status != 503)
                {
                    if (status != 0)
                        Fail(c, FailureKind.RefusedValid, $"a valid transaction to {db} was refused: {a.Status} {Short(a.Body)}");
                    k = -1;
                }
                continue;
            }
            // Valid files ahead of the mutant in one batch: the batch must be refused whole.
            int ahead = r.Next(4) == 0 ? Math.Min(r.Next(1, 4), chain.Count - k - 2) : 0;
            var files = new List<byte[]>();
            for (int i = 1; i <= ahead; i++)
                files.Add(chain.V3[k + i]);
            var next = chain.File(k + ahead + 1, format);
            var seed = await Seed.DecodeAsync($"{db} file {k + ahead + 1}", next);
            var headers = new Dictionary<string, string>();
            string what;
            byte[] last;
            if (kind < 17)
            {
                var m = Mutator.Mutate(r, seed);
                for (int tries = 0; _o.SkipKnown && KnownForWrite(m.Bytes, seed) != "" && tries < 100; tries++)
                    m = Mutator.Mutate(r, seed);
                last = m.Bytes;
                what = $"{db}: {(ahead > 0 ? $"after {ahead} valid file(s), " : "")}mutant of TXID {seed.Header.MaxTxid} ({format.Name()}): {m.What}";
            }
            else
            {
                // A valid body whose headers lie: the wrong format forced, or lengths that do not add up.
                last = next;
                if (r.Next(2) == 0)
                    headers["Wayback-Ltx-Format"] = format == LtxFormat.V1 ? "v3" : "v1";
                else
                    headers["Wayback-Ltx-Lengths"] = OddLengths(r, files.Append(next).Select(f => f.Length).ToList());
                what = $"{db}: valid TXID {seed.Header.MaxTxid} with {string.Join(", ", headers.Select(h => $"{h.Key}: {Short(h.Value)}"))}";
            }
            files.Add(last);
            if ((files.Count > 1 || r.Next(3) == 0) && !headers.ContainsKey("Wayback-Ltx-Lengths"))
                headers["Wayback-Ltx-Lengths"] = string.Join(',', files.Select(f => f.Length));
            int at = k;
            var chainNow = chain;
            var mc = Write(target, db, files.SelectMany(f => f).ToArray(), what, headers) with
            {
                MakeContext = async () => [await chainNow.StateAsync(at, _scratch)],
            };
            var ma = await SendAsync(mc);
            int ms = Judge(mc, ma, KnownForWrite(last, seed));
            if (ms is >= 200 and < 300)
            {
                bool poisoned = await JudgeAcceptedAsync(mc, last, seed, db);
                var pos = await PositionAsync(db);
                if (!poisoned && pos == (seed.Header.MaxTxid, seed.PostApply))
                {
                    k += ahead + 1;
                }
                else
                {
                    _serve.Note($"http-tx: retiring {db}: position {pos} after an accepted mutant");
                    k = -1;
                }
            }
        }
    }

    /// <summary>Starts <paramref name="db"/> with the chain's snapshot; false (and a finding) if it is refused.</summary>
    private async Task<bool> StartAsync(string target, string db, SqliteChain chain, Random r)
    {
        _databases.TryAdd(db, "");
        var c = Write(target, db, chain.File(0, r.Next(2) == 0 ? LtxFormat.V1 : LtxFormat.V3), $"the snapshot that starts {db}");
        var a = await SendAsync(c);
        int status = Judge(c, a);
        if (status != 200 && status != 0 && status != 503)
            Fail(c, FailureKind.RefusedValid, $"a valid snapshot for {db} was refused: {a.Status} {Short(a.Body)}");
        return status == 200;
    }

    private static string OddLengths(Random r, List<int> real) => r.Next(6) switch
    {
        0 => string.Join(',', real.Select(n => n + 1)),
        1 => string.Join(',', real.Take(Math.Max(1, real.Count - 1))) + (real.Count == 1 ? ",100" : ""),
        2 => string.Join(',', real.Append(100)),
        3 => string.Join(',', real) + ",",
        4 => "-" + string.Join(',', real),
        _ => string.Join(',', real.Select(n => n.ToString("x") + "h")),
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
    /// Returns true if the database is poisoned (a finding was recorded).
    /// </summary>
    private async Task<bool> JudgeAcceptedAsync(FuzzCase c, byte[] mutant, Seed valid, string db)
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
            return true;
        }
        var h = m.Header;
        var v = valid.Header;
        bool samePages = m.Pages.Count == valid.Pages.Count
            && m.Pages.Zip(valid.Pages).All(p => p.First.Pgno == p.Second.Pgno && p.First.Data.AsSpan().SequenceEqual(p.Second.Data));
        bool sameState = samePages && m.PostApply == valid.PostApply && h.PageSize == v.PageSize && h.Commit == v.Commit
            && h.MinTxid == v.MinTxid && h.PreApplyChecksum == v.PreApplyChecksum && h.Flags == v.Flags;
        if (known == "" && sameState)
            return false;
        Poisoned(c, db, $"{c.What}: accepted (commit {h.Commit} vs {v.Commit}, TXIDs {h.MinTxid}-{h.MaxTxid} vs {v.MinTxid}-{v.MaxTxid}, " +
            $"timestamp {h.TimestampMs}, {m.Pages.Count} pages vs {valid.Pages.Count}, same pages {samePages})", known);
        return true;
    }

    private void Poisoned(FuzzCase c, string db, string detail, string known)
    {
        _databases[db] = known == "" ? "poisoned by an accepted mutant" : known;
        Fail(c, FailureKind.Accepted, detail, known);
    }
}
