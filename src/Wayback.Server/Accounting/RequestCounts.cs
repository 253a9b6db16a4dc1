using Wayback.Storage;

namespace Wayback.Server.Accounting;

/// <summary>Store requests by kind over some stretch of time.</summary>
internal sealed record RequestTally(long Put, long Get, long Stat, long List, long Delete)
{
    public static RequestTally Zero { get; } = new(0, 0, 0, 0, 0);

    /// <summary>All requests, of every kind.</summary>
    public long Total => Put + Get + Stat + List + Delete;

    public long this[StoreRequestKind kind] => kind switch
    {
        StoreRequestKind.Put => Put,
        StoreRequestKind.Get => Get,
        StoreRequestKind.Stat => Stat,
        StoreRequestKind.List => List,
        _ => Delete,
    };

    public RequestTally Plus(RequestTally other) =>
        new(Put + other.Put, Get + other.Get, Stat + other.Stat, List + other.List, Delete + other.Delete);

    internal static RequestTally From(long[] byKind) =>
        new(byKind[(int)StoreRequestKind.Put], byKind[(int)StoreRequestKind.Get], byKind[(int)StoreRequestKind.Stat],
            byKind[(int)StoreRequestKind.List], byKind[(int)StoreRequestKind.Delete]);
}

/// <summary>
/// One owner's requests: in the last hour, the last day, and since the counts began (<c>SinceStart</c>: since this
/// server first counted them; its <see cref="RequestRecords"/> carry them over a restart).
/// </summary>
internal sealed record RequestWindows(RequestTally LastHour, RequestTally LastDay, RequestTally SinceStart)
{
    public static RequestWindows Zero { get; } = new(RequestTally.Zero, RequestTally.Zero, RequestTally.Zero);

    public RequestWindows Plus(RequestWindows other) =>
        new(LastHour.Plus(other.LastHour), LastDay.Plus(other.LastDay), SinceStart.Plus(other.SinceStart));

    public static RequestWindows Sum(IEnumerable<RequestWindows> all) => all.Aggregate(Zero, (a, b) => a.Plus(b));
}

/// <summary>The counts of one period (a minute, or ten minutes, since the Unix epoch) as a record keeps them.</summary>
internal sealed record PeriodTally(long Period, long Put, long Get, long Stat, long List, long Delete)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public RequestTally Tally => new(Put, Get, Stat, List, Delete);

    public static PeriodTally Of(long period, RequestTally t) => new(period, t.Put, t.Get, t.Stat, t.List, t.Delete);
}

/// <summary><see cref="RequestCounts"/> as a record keeps them: the periods still in their window, and the total.</summary>
internal sealed record CountsState(IReadOnlyList<PeriodTally> Minutes, IReadOnlyList<PeriodTally> TenMinutes, RequestTally Total);

/// <summary>
/// Rolling request counts of one owner in fixed memory: 60 one-minute buckets for the last hour and 144 ten-minute
/// buckets for the last day. A bucket is reused (cleared) when its slot comes round again, so "the last hour" is the
/// current minute and the 59 before it, and "the last day" the current ten minutes and the 143 before them.
/// Thread-safe.
/// </summary>
internal sealed class RequestCounts
{
    private static readonly int KindCount = Enum.GetValues<StoreRequestKind>().Length;
    private const int HourSlots = 60;
    private const int DaySlots = 144;
    private const int MinutesPerDaySlot = 10;

    private readonly Buckets _hour = new(HourSlots);
    private readonly Buckets _day = new(DaySlots);
    private readonly long[] _total = new long[KindCount];
    private readonly Lock _lock = new();

    public void Record(StoreRequestKind kind, DateTimeOffset now)
    {
        long minute = MinuteOf(now);
        lock (_lock)
        {
            _hour.Add(minute, kind);
            _day.Add(minute / MinutesPerDaySlot, kind);
            _total[(int)kind]++;
        }
    }

    public RequestWindows Read(DateTimeOffset now)
    {
        long minute = MinuteOf(now);
        lock (_lock)
            return new RequestWindows(_hour.Sum(minute), _day.Sum(minute / MinutesPerDaySlot), RequestTally.From((long[])_total.Clone()));
    }

    /// <summary>The periods still in their windows at <paramref name="now"/>, and the total: what a record keeps.</summary>
    public CountsState Export(DateTimeOffset now)
    {
        long minute = MinuteOf(now);
        lock (_lock)
            return new CountsState(_hour.Periods(minute), _day.Periods(minute / MinutesPerDaySlot), RequestTally.From((long[])_total.Clone()));
    }

    /// <summary>
    /// Adds counts kept in a record (of an earlier run of this server, or another server's): periods that have left
    /// their window by <paramref name="now"/> are dropped, so the windows stay what they say.
    /// </summary>
    public void Add(CountsState state, DateTimeOffset now)
    {
        long minute = MinuteOf(now);
        lock (_lock)
        {
            foreach (var p in state.Minutes)
                _hour.Add(p.Period, p.Tally, minute);
            foreach (var p in state.TenMinutes)
                _day.Add(p.Period, p.Tally, minute / MinutesPerDaySlot);
            for (int k = 0; k < KindCount; k++)
                _total[k] += state.Total[(StoreRequestKind)k];
        }
    }

    /// <summary>Counts made from a record alone.</summary>
    public static RequestCounts From(CountsState state, DateTimeOffset now)
    {
        var counts = new RequestCounts();
        counts.Add(state, now);
        return counts;
    }

    /// <summary>True when nothing was counted in the last day (a forgotten owner loses only its since-start total).</summary>
    public bool IdleForADay(DateTimeOffset now) => Read(now).LastDay.Total == 0;

    private static long MinuteOf(DateTimeOffset now) => now.ToUnixTimeSeconds() / 60;

    /// <summary>A ring of buckets, each stamped with the period (minute, or ten minutes) it counts.</summary>
    private sealed class Buckets(int slots)
    {
        private readonly long[] _period = Enumerable.Repeat(-1L, slots).ToArray();
        private readonly long[,] _counts = new long[slots, KindCount];

        public void Add(long period, StoreRequestKind kind)
        {
            int slot = (int)(period % slots);
            if (_period[slot] != period)
            {
                _period[slot] = period;
                for (int k = 0; k < KindCount; k++)
                    _counts[slot, k] = 0;
            }
            _counts[slot, (int)kind]++;
        }

        /// <summary>Adds whole counts of <paramref name="period"/>, unless it is outside the window ending at <paramref name="now"/>.</summary>
        public void Add(long period, RequestTally tally, long now)
        {
            if (period <= now - slots || period > now)
                return;
            int slot = (int)(period % slots);
            if (_period[slot] > period)
                return; // the slot already counts a newer period: this one has left the window
            if (_period[slot] != period)
            {
                _period[slot] = period;
                for (int k = 0; k < KindCount; k++)
                    _counts[slot, k] = 0;
            }
            for (int k = 0; k < KindCount; k++)
                _counts[slot, k] += tally[(StoreRequestKind)k];
        }

        /// <summary>The periods in the window ending at <paramref name="now"/> that counted anything, oldest first.</summary>
        public List<PeriodTally> Periods(long now)
        {
            var result = new List<PeriodTally>();
            for (int slot = 0; slot < slots; slot++)
            {
                if (_period[slot] <= now - slots || _period[slot] > now)
                    continue;
                var counts = new long[KindCount];
                for (int k = 0; k < KindCount; k++)
                    counts[k] = _counts[slot, k];
                var tally = RequestTally.From(counts);
                if (tally.Total > 0)
                    result.Add(PeriodTally.Of(_period[slot], tally));
            }
            return result.OrderBy(p => p.Period).ToList();
        }

        /// <summary>Counts of the periods <paramref name="now"/> and the slots - 1 before it.</summary>
        public RequestTally Sum(long now)
        {
            var sum = new long[KindCount];
            for (int slot = 0; slot < slots; slot++)
            {
                if (_period[slot] <= now - slots || _period[slot] > now)
                    continue;
                for (int k = 0; k < KindCount; k++)
                    sum[k] += _counts[slot, k];
            }
            return RequestTally.From(sum);
        }
    }
}
