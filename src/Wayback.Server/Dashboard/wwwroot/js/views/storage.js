// A database's storage card: what it costs in the object store now (bytes per level, store requests in the last
// hour and day) and a small chart of its bytes in the store over time, from /api/storage.

import * as api from "../api.js";
import { ticks } from "../chart.js";
import { h, s } from "../dom.js";
import * as fmt from "../format.js";
import { refreshInPlace } from "../ui.js";

const WIDTH = 600;
const HEIGHT = 140;
const PAD = { left: 64, right: 8, top: 10, bottom: 22 };
/** Samples drawn as points with a tooltip each; past this the line alone. */
const MAX_POINTS = 240;
const KINDS = ["put", "get", "stat", "list", "delete"];

const LEVEL_NAMES = { snapshot: "Snapshots", 1: "L1 (segments with the transaction log)", 2: "L2", 3: "L3", other: "Other (restore records, trash marker)" };

/** The chart of stored bytes over time, as SVG: a line with one point per sample (their titles say bytes and time). */
export function storageChart(samples) {
  const svg = s("svg", { class: "storage-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  if (samples.length === 0) {
    svg.setAttribute("aria-label", "Bytes in the store over time: no sample yet");
    svg.append(s("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "empty", "text-anchor": "middle" }, "No sample yet"));
    return svg;
  }
  const t0 = samples[0].timestampMs;
  const t1 = Math.max(samples[samples.length - 1].timestampMs, t0 + 1);
  const max = Math.max(1, ...samples.map((x) => x.storedBytes));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (ms) => PAD.left + ((ms - t0) / (t1 - t0)) * plotW;
  const y = (b) => PAD.top + plotH - (b / max) * plotH;
  const last = samples[samples.length - 1];
  svg.setAttribute("aria-label", `Bytes in the store over time: ${fmt.bytes(samples[0].storedBytes)} on ${fmt.local(t0)}, ` +
    `${fmt.bytes(last.storedBytes)} on ${fmt.local(last.timestampMs)} (local time), at most ${fmt.bytes(max)}`);

  svg.append(s("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }));
  svg.append(s("text", { class: "scale", x: PAD.left - 6, y: PAD.top + 4, "text-anchor": "end" }, fmt.bytes(max)));
  svg.append(s("text", { class: "scale", x: PAD.left - 6, y: PAD.top + plotH, "text-anchor": "end" }, "0"));
  for (const t of ticks(t0, t1, plotW).ticks)
    svg.append(s("text", { class: "tick", x: x(t.ms), y: HEIGHT - 6, "text-anchor": "middle" }, t.label));

  const path = samples.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.timestampMs).toFixed(1)},${y(p.storedBytes).toFixed(1)}`).join(" ");
  svg.append(s("path", { class: "storage-area", d: `${path} L${x(last.timestampMs).toFixed(1)},${PAD.top + plotH} L${x(t0).toFixed(1)},${PAD.top + plotH} Z` }));
  svg.append(s("path", { class: "storage-line", d: path }));
  if (samples.length <= MAX_POINTS) {
    for (const p of samples)
      svg.append(s("circle", { class: "sample", cx: x(p.timestampMs), cy: y(p.storedBytes), r: 2.5, "data-bytes": p.storedBytes },
        s("title", null, `${fmt.bytes(p.storedBytes)} (${fmt.count(p.storedBytes)} bytes) on ${fmt.local(p.timestampMs)}`)));
  }
  return svg;
}

/**
 * The servers whose requests make up the day's, when another server than this one made any (two servers on one
 * bucket, or one that replaced another): each one's share. One with no request in the day (gone, or idle) gets no row.
 */
export function serversOfTheDay(usage) {
  const active = (usage.requestsByServer || []).filter((x) => x.lastDay.total > 0);
  return active.some((x) => !x.thisServer) ? active : [];
}

/** The card; `refresh()` reloads it (failures are the caller's to show). */
export function storageCard(cluster, db) {
  const summary = h("p", { class: "storage-summary" });
  const chartBox = h("div", { class: "storage-chart-box" });
  const tables = h("div", { class: "storage-tables" });
  const element = h("section", { "aria-labelledby": "storage-h", class: "card storage" },
    h("h2", { id: "storage-h" }, "Storage"),
    summary,
    chartBox,
    tables);

  function render(view) {
    const now = view.current;
    const tiers = now.tiers.map((t) => `${t.tier === "every-tx" ? "every transaction a restore point" : t.tier}: ${fmt.bytes(t.bytes)}`).join(", ");
    refreshInPlace(summary, h("strong", null, fmt.bytes(now.storedBytes)), ` in the object store (${tiers}). `,
      `Sampled every ${fmt.duration(view.intervalMs)}; ${fmt.count(view.samples.length)} samples.`);
    refreshInPlace(chartBox, storageChart(view.samples));
    const r = now.requests;
    refreshInPlace(tables,
      h("div", { class: "table-wrap" }, h("table", { class: "data compact storage-levels" },
        h("caption", null, "Bytes by level"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Level"), h("th", { scope: "col", class: "num" }, "Objects"), h("th", { scope: "col", class: "num" }, "Size"))),
        h("tbody", null, now.levels.map((l) => h("tr", { "data-level": l.level },
          h("th", { scope: "row" }, LEVEL_NAMES[l.level] || l.level),
          h("td", { class: "num" }, fmt.count(l.files)),
          h("td", { class: "num", title: `${fmt.count(l.bytes)} bytes` }, fmt.bytes(l.bytes))))))),
      h("div", { class: "table-wrap" }, h("table", { class: "data compact storage-requests" },
        h("caption", null, "Object-store requests"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "In the last"), KINDS.map((k) => h("th", { scope: "col", class: "num" }, k.toUpperCase())))),
        h("tbody", null,
          [["hour", r.lastHour], ["day", r.lastDay]].map(([label, counts]) => h("tr", { "data-window": label },
            h("th", { scope: "row" }, label),
            KINDS.map((k) => h("td", { class: "num", "data-kind": k }, fmt.count(counts[k]))))),
          serversOfTheDay(now).map((x) => h("tr", { "data-window": "day", "data-server": x.server, class: "server-share" },
            h("th", { scope: "row" }, `day, ${x.server}${x.thisServer ? " (this server)" : x.recordedAt ? ` (as of ${fmt.local(Date.parse(x.recordedAt))})` : ""}`),
            KINDS.map((k) => h("td", { class: "num", "data-kind": k }, fmt.count(x.lastDay[k])))))))));
  }

  async function refresh() {
    render(await api.storage(cluster, db));
  }

  return { element, refresh };
}
