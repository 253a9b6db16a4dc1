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

/// <summary>One owner's requests: in the last hour, the last day, and since the server started.</summary>
internal sealed record RequestWindows(RequestTally LastHour, RequestTally LastDay, RequestTally SinceStart)
{
    public static RequestWindows Zero { get; } = new(RequestTally.Zero, RequestTally.Zero, RequestTally.Zero);

    public RequestWindows Plus(RequestWindows other) =>
        new(LastHour.Plus(other.LastHour), LastDay.Plus(other.LastDay), SinceStart.Plus(other.SinceStart));
}

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
