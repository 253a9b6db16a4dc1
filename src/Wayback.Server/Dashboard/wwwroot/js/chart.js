// The history chart: the restorable window on a local-time axis, write activity as bars, snapshots as
// markers, and the chosen restore point. Drawn as SVG from /api/history. It is also a slider: click or
// use the arrow keys to pick a time (Home/End: first/last transaction, PageUp/PageDown: ten steps).

import { s } from "./dom.js";
import * as fmt from "./format.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND, MINUTE, 2 * MINUTE, 5 * MINUTE,
  10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];

const pad = (n) => String(n).padStart(2, "0");

function localMidnight(ms) {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

function tickLabel(ms, step) {
  const d = new Date(ms);
  if (step >= DAY) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (step < MINUTE) return `${hm}:${pad(d.getSeconds())}`;
  return d.getHours() === 0 && d.getMinutes() === 0 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())}` : hm;
}

/** Ticks at round local times, about one per 90 pixels. */
export function ticks(t0, t1, width) {
  const span = Math.max(t1 - t0, 1);
  const wanted = Math.max(3, Math.floor(width / 80));
  const step = STEPS.find((st) => span / st <= wanted) || Math.ceil(span / wanted / DAY) * DAY;
  let first = localMidnight(t0);
  if (step < DAY) first += Math.ceil((t0 - first) / step) * step;
  else while (first < t0) first = localMidnight(first + DAY + HOUR);
  const out = [];
  for (let t = first; t <= t1 && out.length < 200; ) {
    out.push({ ms: t, label: tickLabel(t, step) });
    t = step < DAY ? t + step : localMidnight(t + step + HOUR);
  }
  return { step, ticks: out };
}

export class HistoryChart {
  /**
   * @param {HTMLElement} container
   * @param {{onPick: (ms: number) => void, label: string}} options
   */
  constructor(container, { onPick, label }) {
    this.container = container;
    this.onPick = onPick;
    this.history = null;
    this.selection = null;
    this.hoverMs = null;
    this.cursorMs = null;
    this.svg = s("svg", {
      class: "chart", role: "slider", tabindex: "0", "aria-label": label,
      "aria-describedby": container.dataset.describedby || null, preserveAspectRatio: "none",
    });
    this.svg.addEventListener("click", (e) => this.pickAt(e.clientX));
    this.svg.addEventListener("pointermove", (e) => {
      this.hoverMs = this.timeAt(e.clientX);
      this.drawHover();
    });
    this.svg.addEventListener("pointerleave", () => {
      this.hoverMs = null;
      this.drawHover();
    });
    this.svg.addEventListener("keydown", (e) => this.key(e));
    container.append(this.svg);
    this.resize = new ResizeObserver(() => this.render());
    this.resize.observe(container);
  }

  dispose() {
    this.resize.disconnect();
  }

  setHistory(history) {
    this.history = history;
    this.render();
  }

  /** {requestedMs, pointMs, txid}: the time asked for and the transaction a restore would use. */
  setSelection(selection) {
    this.selection = selection;
    if (selection && selection.requestedMs !== undefined && selection.requestedMs !== null) this.cursorMs = selection.requestedMs;
    this.render();
  }

  get domain() {
    const h = this.history;
    let t0 = h.first.timestampMs;
    let t1 = h.last.timestampMs;
    for (const b of h.activity || []) {
      t0 = Math.min(t0, b.startMs);
      t1 = Math.max(t1, b.endMs);
    }
    if (t1 - t0 < 2 * SECOND) {
      const mid = (t0 + t1) / 2;
      t0 = mid - SECOND;
      t1 = mid + SECOND;
    }
    // A little room at both ends, so the first and last transaction are not drawn on the frame.
    const margin = (t1 - t0) * 0.02;
    return [t0 - margin, t1 + margin];
  }

  get layout() {
    const width = Math.max(240, Math.floor(this.container.clientWidth || 600));
    const height = width < 480 ? 170 : 210;
    return { width, height, left: 8, right: 8, top: 26, bottom: 30 };
  }

  x(ms) {
    const [t0, t1] = this.domain;
    const { width, left, right } = this.layout;
    return left + ((ms - t0) / (t1 - t0)) * (width - left - right);
  }

  timeAt(clientX) {
    const rect = this.svg.getBoundingClientRect();
    const { width, left, right } = this.layout;
    const px = ((clientX - rect.left) / rect.width) * width;
    const [t0, t1] = this.domain;
    const ms = t0 + ((px - left) / (width - left - right)) * (t1 - t0);
    return Math.round(Math.min(Math.max(ms, this.history.first.timestampMs), this.history.last.timestampMs));
  }

  pickAt(clientX) {
    if (!this.history) return;
    this.pick(this.timeAt(clientX));
  }

  pick(ms) {
    const h = this.history;
    const clamped = Math.min(Math.max(ms, h.first.timestampMs), h.last.timestampMs);
    this.cursorMs = clamped;
    this.updateAria();
    this.onPick(clamped);
  }

  key(e) {
    if (!this.history) return;
    const h = this.history;
    const [t0, t1] = this.domain;
    const buckets = (h.activity && h.activity.length) || 60;
    const step = Math.max(SECOND, (t1 - t0) / buckets);
    const now = this.cursorMs ?? h.last.timestampMs;
    let next = null;
    switch (e.key) {
      case "ArrowLeft":
      case "ArrowDown":
        next = now - step;
        break;
      case "ArrowRight":
      case "ArrowUp":
        next = now + step;
        break;
      case "PageDown":
        next = now - 10 * step;
        break;
      case "PageUp":
        next = now + 10 * step;
        break;
      case "Home":
        next = h.first.timestampMs;
        break;
      case "End":
        next = h.last.timestampMs;
        break;
      default:
        return;
    }
    e.preventDefault();
    this.pick(Math.round(next));
  }

  updateAria() {
    const h = this.history;
    if (!h) return;
    this.svg.setAttribute("aria-valuemin", String(h.first.timestampMs));
    this.svg.setAttribute("aria-valuemax", String(h.last.timestampMs));
    const now = this.cursorMs ?? h.last.timestampMs;
    this.svg.setAttribute("aria-valuenow", String(now));
    this.svg.setAttribute("aria-valuetext", `${fmt.local(now)} local time`);
  }

  drawHover() {
    const g = this.svg.querySelector(".hover");
    if (!g || !this.history) return;
    g.replaceChildren();
    if (this.hoverMs === null) return;
    const { height, top, bottom, width } = this.layout;
    const x = this.x(this.hoverMs);
    g.append(s("line", { x1: x, x2: x, y1: top, y2: height - bottom, class: "hover-line" }));
    const label = fmt.local(this.hoverMs).slice(11);
    const tx = Math.min(Math.max(x, 34), width - 34);
    g.append(s("text", { x: tx, y: top - 6, class: "hover-label", "text-anchor": "middle" }, label));
  }

  render() {
    const svg = this.svg;
    if (!this.history) {
      svg.replaceChildren();
      return;
    }
    const h = this.history;
    const { width, height, left, right, top, bottom } = this.layout;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    const plotBottom = height - bottom;
    const plotHeight = plotBottom - top;
    const parts = [];

    // The restorable window.
    const wx0 = this.x(h.first.timestampMs);
    const wx1 = Math.max(this.x(h.last.timestampMs), wx0 + 2);
    parts.push(s("rect", { x: wx0, y: top, width: wx1 - wx0, height: plotHeight, class: "window" },
      s("title", null, `Restorable: ${fmt.local(h.first.timestampMs)} to ${fmt.local(h.last.timestampMs)} local time`)));

    // Coarse retention tiers (README, "Retention policies"): where the history keeps one point per window only.
    const [d0, d1] = this.domain;
    for (const t of (h.tiers || []).slice(1)) {
      const from = Math.max(t.fromMs, d0);
      const to = Math.min(t.toMs, d1);
      if (to <= from) continue;
      const x0 = this.x(from);
      const x1 = this.x(to);
      parts.push(s("g", { class: "tier-band", "data-tier": t.granularity },
        s("rect", { x: x0, y: plotBottom - 6, width: Math.max(1, x1 - x0), height: 6, class: "tier-rect" }),
        x1 - x0 > 36 ? s("text", { x: x0 + 3, y: plotBottom - 9, class: "tier-label" }, `1 per ${t.granularity}`) : null,
        s("title", null, `One restore point per ${t.granularity}: commits from ${fmt.local(t.fromMs)} to ${fmt.local(t.toMs)} local time`)));
    }

    // Gridlines and the time axis.
    const { step, ticks: marks } = ticks(...this.domain, width - left - right);
    for (const t of marks) {
      const x = this.x(t.ms);
      parts.push(s("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: "grid" }));
      parts.push(s("text", { x, y: height - 10, class: "tick", "text-anchor": "middle" }, t.label));
    }
    parts.push(s("line", { x1: left, x2: width - right, y1: plotBottom, y2: plotBottom, class: "axis" }));

    // Write activity.
    const activity = h.activity || [];
    const most = activity.reduce((m, b) => Math.max(m, b.transactions), 0);
    for (const b of activity) {
      if (!b.transactions) continue;
      const x0 = this.x(b.startMs);
      const x1 = this.x(b.endMs);
      const barHeight = Math.max(2, (b.transactions / most) * (plotHeight - 6));
      // Narrow buckets still get a bar one can see (and hover).
      const barWidth = Math.max(3, x1 - x0 - 1);
      parts.push(s("rect", {
        x: (x0 + x1) / 2 - barWidth / 2, y: plotBottom - barHeight, width: barWidth, height: barHeight, class: "bar",
      }, s("title", null, `${fmt.count(b.transactions)} transaction${b.transactions === 1 ? "" : "s"}, ${fmt.local(b.startMs).slice(11)} to ${fmt.local(b.endMs).slice(11)}`)));
    }
    if (most > 0) {
      parts.push(s("text", { x: width - right - 4, y: top + 12, class: "scale", "text-anchor": "end" }, `tallest bar: ${fmt.count(most)} tx`));
    }

    // Snapshots: full copies a restore starts from.
    for (const snap of h.snapshots || []) {
      const x = this.x(snap.timestampMs);
      parts.push(s("g", { class: "snapshot" },
        s("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: "snapshot-line" }),
        s("path", { d: `M${x} ${top - 14} l6 6 l-6 6 l-6 -6 z`, class: "snapshot-mark" }),
        s("title", null, `Snapshot at TXID ${fmt.count(snap.txid)}, ${fmt.local(snap.timestampMs)}, ${fmt.bytes(snap.bytes)}`)));
    }

    // In-place restores: each is a transaction that brought back an older state.
    for (const r of h.restores || []) {
      const x = this.x(r.timestampMs);
      const back = this.x(Math.max(r.restoredToTimestampMs || r.timestampMs, this.domain[0]));
      // An arrow curving back from the restore to the state it brought back.
      const y = top + 24;
      const lift = Math.min(22, 6 + (x - back) / 8);
      parts.push(s("g", { class: "restore" },
        s("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: "restore-line" }),
        back < x - 4 ? s("path", { d: `M${x} ${y} C ${x - (x - back) / 4} ${y - lift}, ${back + (x - back) / 4} ${y - lift}, ${back} ${y}`, class: "restore-arc" }) : null,
        s("path", { d: `M${back} ${y} l1 -7 m-1 7 l6 -3`, class: "restore-arc" }),
        s("title", null, `Restore at TXID ${fmt.count(r.txid)} (${fmt.local(r.timestampMs)}): back to the state of TXID ${fmt.count(r.restoredTo)}`)));
    }

    // The chosen time and the transaction a restore would use.
    const sel = this.selection;
    if (sel && sel.requestedMs !== null && sel.requestedMs !== undefined) {
      const x = this.x(Math.min(Math.max(sel.requestedMs, this.domain[0]), this.domain[1]));
      parts.push(s("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: "requested" }));
    }
    if (sel && sel.pointMs) {
      const x = this.x(sel.pointMs);
      const labelX = Math.min(Math.max(x, 40), width - 40);
      parts.push(s("g", { class: "point" },
        s("line", { x1: x, x2: x, y1: top, y2: plotBottom }),
        s("circle", { cx: x, cy: plotBottom, r: 5 }),
        s("text", { x: labelX, y: top + 12, "text-anchor": "middle", class: "point-label" }, `TXID ${fmt.count(sel.txid)}`),
        s("title", null, `Restore point: TXID ${fmt.count(sel.txid)}, committed ${fmt.local(sel.pointMs, { millis: true })}`)));
    }

    parts.push(s("g", { class: "hover", "aria-hidden": "true" }));
    svg.replaceChildren(...parts);
    svg.dataset.step = String(step);
    this.updateAria();
    this.drawHover();
  }
}
