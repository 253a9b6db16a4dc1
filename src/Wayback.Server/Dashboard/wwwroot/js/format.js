// Numbers, sizes and times as people read them. Times are shown in the browser's local time zone, always with
// the zone named, and sent to the server in UTC.

const pad = (n, w = 2) => String(n).padStart(w, "0");

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i += 1;
  } while (v >= 1024 && i < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

export function count(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

/** "2 h 13 min", "4.2 s", "350 ms": for differences of time. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(a)} ms`;
  if (a < 60_000) return `${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  const totalSeconds = Math.round(a / 1000);
  const d = Math.floor(totalSeconds / 86400);
  const hh = Math.floor((totalSeconds % 86400) / 3600);
  const mm = Math.floor((totalSeconds % 3600) / 60);
  const ss = totalSeconds % 60;
  if (d > 0) return hh ? `${d} d ${hh} h` : `${d} d`;
  if (hh > 0) return mm ? `${hh} h ${mm} min` : `${hh} h`;
  return ss ? `${mm} min ${ss} s` : `${mm} min`;
}

/** A retention given in seconds, as the server's own settings write it ("720h" reads as "30 days"). */
export function retention(seconds) {
  if (!seconds && seconds !== 0) return "–";
  if (seconds % 86400 === 0) return seconds === 86400 ? "1 day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "1 hour" : `${seconds / 3600} hours`;
  return duration(seconds * 1000);
}

/** "12 s ago", "3 min ago", "in the future" for clock skew. */
export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const diff = now - ms;
  if (diff < -2000) return "just now";
  if (diff < 1000) return "just now";
  return `${duration(diff)} ago`;
}

/** The browser's time zone: its IANA name and its current offset ("Europe/Berlin, UTC+01:00"). */
export function zone(at = Date.now()) {
  let name = "local time";
  try {
    name = Intl.DateTimeFormat().resolvedOptions().timeZone || name;
  } catch {
    /* an old browser: the offset is enough */
  }
  return { name, offset: offset(at) };
}

/** "UTC+05:30" for the local offset at a moment. */
export function offset(at = Date.now()) {
  const minutes = -new Date(at).getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const a = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** "2025-03-04 15:04:05.123" in local time (milliseconds only when asked for). */
export function local(ms, { millis = false } = {}) {
  const d = new Date(ms);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** The same in UTC, with the Z. */
export function utc(ms, { millis = false } = {}) {
  const iso = new Date(ms).toISOString();
  return millis ? iso.replace("T", " ") : `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

/** RFC 3339 in UTC, as the API takes it: 2025-03-04T15:04:05Z (or .123Z when there are milliseconds). */
export function rfc3339(ms) {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, 19)}Z` : iso;
}

/** Values for <input type="date"> and <input type="time" step="1"> holding a moment in local time. */
export function toInputs(ms) {
  const d = new Date(ms);
  return {
    date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  };
}

/**
 * The moment that date and time inputs name in local time, in Unix milliseconds; null if incomplete. Accepts
 * "HH:MM", "HH:MM:SS" and "HH:MM:SS.mmm" (browsers drop the seconds when they are zero).
 */
export function fromInputs(date, time) {
  const dm = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(date || "");
  const tm = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(time || "");
  if (!dm || !tm) return null;
  const d = new Date(
    Number(dm[1]), Number(dm[2]) - 1, Number(dm[3]),
    Number(tm[1]), Number(tm[2]), Number(tm[3] || 0), Number((tm[4] || "0").padEnd(3, "0")));
  const ms = d.getTime();
  return Number.isNaN(ms) ? null : ms;
}

/** A <time> element: local time as text, UTC in its datetime attribute and tooltip. */
export function timeElement(ms, { millis = false, relative = false } = {}) {
  const el = document.createElement("time");
  if (!ms) {
    el.textContent = "never";
    return el;
  }
  el.dateTime = new Date(ms).toISOString();
  el.title = `${utc(ms, { millis: true })} (UTC)`;
  el.textContent = relative ? ago(ms) : local(ms, { millis });
  return el;
}
