// One database: where it stands, its history as a chart, restore to a point in time (shown first, confirmed by
// typing "cluster/database", then undoable), and downloading a copy at a point in time.

import * as api from "../api.js";
import { HistoryChart } from "../chart.js";
import { h, replace, s, uid } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox, heading, loading, refreshInPlace, saveBlob, stat, title } from "../ui.js";
import { branchesCard } from "./branches.js";
import { faultName, lagText } from "./cluster.js";
import { previewPanel } from "./preview.js";
import { storageCard } from "./storage.js";
import { tierNote, tiersTable } from "./tiers.js";

const LOOKUP_DELAY_MS = 300;

/** "app.db" at TXID 12 → "app.txid-12.db". */
export function downloadName(db, txid) {
  const dot = db.lastIndexOf(".");
  const stem = dot > 0 ? db.slice(0, dot) : db;
  const ext = dot > 0 ? db.slice(dot) : ".db";
  return `${stem}.txid-${txid}${ext}`;
}

/** How far before the chosen time a transaction was committed, in words. */
export function beforeText(requestedMs, committedMs) {
  const diff = requestedMs - committedMs;
  if (Math.abs(diff) < 1) return "exactly at the chosen time";
  if (diff < 0) return `${fmt.duration(-diff)} after the chosen time`;
  return `${fmt.duration(diff)} before the chosen time`;
}

function outOfRangeText(error) {
  const b = error.body || {};
  const when = (v) => (v && typeof v === "object" ? v.timestampMs : typeof v === "number" ? v : null);
  const first = when(b.first);
  const last = when(b.last);
  if (first && last) {
    return `That time is outside the restorable window, which runs from ${fmt.local(first)} to ${fmt.local(last)} (local time). Pick a time in between.`;
  }
  return error.message;
}

export function databaseView(main, app, cluster, db) {
  title(db, cluster);
  const isAdmin = app.me.role === "admin";
  app.setCrumbs([...(isAdmin ? [{ label: "Clusters", href: "#/" }] : []), { label: cluster, href: `#/c/${encodeURIComponent(cluster)}` }, { label: db }]);
  const expected = `${cluster}/${db}`;
  const zone = fmt.zone();
  let disposed = false;
  let info = null;
  let history = null;
  let point = null; // the resolved restore point {txid, timestampMs, postApplyChecksum, requestedMs}
  let busy = false; // a restore is running
  let lookupSeq = 0;
  let lookupTimer = null;

  // --- where it stands -----------------------------------------------------------------------------------
  const stats = h("dl", { class: "stats" });
  // What is wrong with this database (a seal or compaction that keeps failing, a damaged object), in words.
  const faultsBox = h("div", { class: "faults", "aria-live": "polite" });
  function renderFaults() {
    const faults = (info && info.faults) || [];
    if (faults.length === 0) {
      refreshInPlace(faultsBox);
      return;
    }
    refreshInPlace(faultsBox, h("div", { class: "notice error", role: "alert" },
      h("p", null, h("strong", null, "This database has a fault. "), "Its other restore points, and every other database, are not affected; run ",
        h("code", null, `wayback verify ${db}`), " for a full report."),
      h("ul", null, faults.map((f) => h("li", { "data-fault": f.kind },
        h("strong", null, faultName(f.kind)), " since ", fmt.timeElement(f.sinceMs, { relative: true }),
        f.count > 1 ? ` (${fmt.count(f.count)} times)` : "", ": ", f.error)))));
  }
  function renderStats() {
    if (!info) return;
    renderFaults();
    refreshInPlace(stats,
      stat("Current TXID", fmt.count(info.txid)),
      stat("Size", fmt.bytes(info.sizeBytes)),
      stat("Last write", fmt.timeElement(info.lastWriteMs, { relative: true })),
      stat("HWM lag", lagText(info.hwmLag)),
      stat("Storage used", fmt.bytes(info.storageBytes)));
  }

  // --- history ----------------------------------------------------------------------------------------------
  const windowText = h("p", { id: "window-text", class: "window-text" });
  const chartBox = h("div", { class: "chart-box", "data-describedby": "window-text chart-help" });
  const chart = new HistoryChart(chartBox, {
    label: "History: pick a point in time",
    onPick: (ms) => {
      setInputs(ms);
      scheduleLookup({ timestampMs: ms }, LOOKUP_DELAY_MS);
    },
  });
  const levels = h("div", { class: "levels" });
  const tiersBox = h("div", { class: "tiers-box" });
  const tierSwatch = h("li", { hidden: true }, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("rect", { x: 0, y: 9, width: 14, height: 5, class: "tier-swatch" })), "Coarser retention tier");
  const legend = h("ul", { class: "legend", "aria-label": "Legend" },
    h("li", null, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("rect", { x: 2, y: 3, width: 10, height: 11, class: "bar" })), "Transactions committed"),
    h("li", null, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("path", { d: "M7 1l6 6-6 6-6-6z", class: "snapshot-mark" })), "Snapshot (full copy)"),
    h("li", null, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("line", { x1: 7, x2: 7, y1: 0, y2: 14, class: "restore-swatch" })), "Earlier restore"),
    h("li", null, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("line", { x1: 7, x2: 7, y1: 0, y2: 14, class: "point-swatch" })), "Restore point"),
    h("li", null, s("svg", { viewBox: "0 0 14 14", "aria-hidden": "true" }, s("line", { x1: 7, x2: 7, y1: 0, y2: 14, class: "requested-swatch" })), "Time you chose"),
    tierSwatch);

  // What a restore point is here: every transaction (the agent sends each on its own), or one of LiteFS's uploads.
  function pointsText(hist) {
    const n = hist.restorePoints;
    if (typeof n !== "number") return "Every transaction in between is a restore point.";
    if (hist.source === "litefs")
      return `${fmt.count(n)} restore points for ${fmt.count(hist.transactions)} transactions: this database is backed up by LiteFS, ` +
        "which uploads about one file a second of up to 256 transactions, and each upload is a restore point.";
    if ((hist.tiers || []).length > 1)
      return `${fmt.count(n)} restore points: every transaction of the newest stretch, fewer further back (the retention tiers below).`;
    return `Every transaction in between is a restore point (${fmt.count(n)}).`;
  }

  function renderHistory() {
    if (!history) return;
    const span = history.last.timestampMs - history.first.timestampMs;
    replace(windowText,
      "Restorable from ", h("strong", null, `TXID ${fmt.count(history.first.txid)}`), ", ", fmt.timeElement(history.first.timestampMs),
      " to ", h("strong", null, `TXID ${fmt.count(history.last.txid)}`), ", ", fmt.timeElement(history.last.timestampMs),
      ` (${fmt.duration(span)}; local time, ${zone.name}). `, pointsText(history));
    replace(txidHelp, history.source === "litefs"
      ? "The last transaction of each LiteFS upload is a restore point; leave empty to restore by time."
      : "Every transaction is a restore point; leave empty to restore by time.");
    chart.setHistory(history);
    refreshInPlace(tiersBox, tiersTable(history.tiers));
    tierSwatch.hidden = (history.tiers || []).length < 2;
    const rows = (history.levels || []).filter((l) => l.files > 0);
    const snaps = history.snapshots || [];
    refreshInPlace(levels, h("details", null,
      h("summary", null, "What stores this history"),
      h("div", { class: "table-wrap" }, h("table", { class: "data compact" },
        h("thead", null, h("tr", null,
          h("th", { scope: "col" }, "Kind"), h("th", { scope: "col", class: "num" }, "Files"),
          h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "TXIDs"))),
        h("tbody", null,
          snaps.length ? h("tr", null, h("th", { scope: "row", "data-label": "Kind" }, "Snapshots"),
            h("td", { class: "num", "data-label": "Files" }, fmt.count(snaps.length)),
            h("td", { class: "num", "data-label": "Size" }, fmt.bytes(snaps.reduce((a, x) => a + (x.bytes || 0), 0))),
            h("td", { "data-label": "TXIDs" }, snaps.map((x) => fmt.count(x.txid)).join(", "))) : null,
          rows.map((l) => h("tr", null,
            h("th", { scope: "row", "data-label": "Kind" }, levelName(l.level)),
            h("td", { class: "num", "data-label": "Files" }, fmt.count(l.files)),
            h("td", { class: "num", "data-label": "Size" }, fmt.bytes(l.bytes)),
            h("td", { "data-label": "TXIDs" }, l.files ? `${fmt.count(l.minTxid)} – ${fmt.count(l.maxTxid)}` : "–"))))))));
  }

  function levelName(level) {
    return { l1: "L1 (10 s windows)", l2: "L2 (compacted)", l3: "L3 (compacted)", log: "Transaction log", buffer: "Buffer (not yet in the object store)" }[level] || level;
  }

  // --- choosing the point ---------------------------------------------------------------------------------
  const dateId = uid("date");
  const timeId = uid("time");
  const txidId = uid("txid");
  const dateInput = h("input", { id: dateId, type: "date", name: "date", required: true });
  const timeInput = h("input", { id: timeId, type: "time", name: "time", step: "1", required: true, "aria-describedby": `${timeId}-utc` });
  const utcText = h("p", { id: `${timeId}-utc`, class: "help" }, `Times are in your local time zone (${zone.name}, ${zone.offset}).`);
  const txidInput = h("input", { id: txidId, type: "text", inputmode: "numeric", name: "txid", autocomplete: "off", pattern: "[0-9]*", "aria-describedby": `${txidId}-help` });
  const findButton = h("button", { type: "submit", class: "button" }, "Show the transaction");
  const pointBox = h("div", { class: "point-box", "aria-live": "polite", "aria-atomic": "true" },
    h("p", { class: "muted" }, "Pick a date and time (or click the chart) to see the transaction a restore would use."));
  let pickedMs = null; // a time picked on the chart, more precise than the inputs show

  function setInputs(ms) {
    const v = fmt.toInputs(ms);
    dateInput.value = v.date;
    timeInput.value = v.time;
    txidInput.value = "";
    pickedMs = ms;
    showUtc(ms);
  }

  function showUtc(ms) {
    utcText.textContent = ms === null
      ? `Times are in your local time zone (${zone.name}, ${zone.offset}).`
      : `Local time (${zone.name}, ${fmt.offset(ms)}); sent to the server as ${fmt.rfc3339(ms)} (UTC).`;
  }

  function chosenFromInputs() {
    const ms = fmt.fromInputs(dateInput.value, timeInput.value);
    if (ms === null) return null;
    // Keep the chart's milliseconds while the inputs still show the same second.
    if (pickedMs !== null && Math.floor(pickedMs / 1000) === Math.floor(ms / 1000)) return pickedMs;
    return ms;
  }

  for (const input of [dateInput, timeInput]) {
    input.addEventListener("input", () => {
      txidInput.value = "";
      const ms = chosenFromInputs();
      pickedMs = ms === pickedMs ? pickedMs : null;
      showUtc(ms);
      if (ms !== null) scheduleLookup({ timestampMs: ms }, 600);
      else invalidatePoint();
    });
  }
  txidInput.addEventListener("input", () => {
    const t = txidInput.value.trim();
    if (/^\d+$/.test(t) && Number(t) > 0) scheduleLookup({ txid: Number(t) }, 600);
    else invalidatePoint();
  });

  const txidHelp = h("p", { id: `${txidId}-help`, class: "help" }, "Every transaction is a restore point; leave empty to restore by time.");
  const pickForm = h("form", { class: "pick", novalidate: true },
    h("div", { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: dateId }, "Date"), dateInput),
      h("div", { class: "field" }, h("label", { for: timeId }, "Time (local)"), timeInput)),
    utcText,
    h("div", { class: "field narrow-field" },
      h("label", { for: txidId }, "Or a transaction ID"),
      txidInput,
      txidHelp),
    h("div", { class: "actions" }, findButton));
  pickForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = txidInput.value.trim();
    if (t) {
      if (!/^\d+$/.test(t) || Number(t) < 1) {
        showPointError(new Error("A transaction ID is a whole number from 1 up."));
        return;
      }
      scheduleLookup({ txid: Number(t) }, 0);
      return;
    }
    const ms = chosenFromInputs();
    if (ms === null) {
      showPointError(new Error("Pick both a date and a time (hours, minutes and seconds)."));
      (dateInput.value ? timeInput : dateInput).focus();
      return;
    }
    scheduleLookup({ timestampMs: ms }, 0);
  });

  /** No point is chosen any more: what the box shows is greyed until a new answer replaces it. */
  function invalidatePoint() {
    lookupSeq += 1;
    clearTimeout(lookupTimer);
    point = null;
    if (pointBox.querySelector(".point-card")) pointBox.classList.add("stale");
    preview.setPoint(null);
    updateActions();
  }

  function scheduleLookup(target, delay) {
    invalidatePoint();
    const seq = lookupSeq;
    lookupTimer = setTimeout(() => lookup(target, seq), delay);
  }

  async function lookup(target, seq) {
    replace(pointBox, h("p", { class: "loading" }, "Finding the transaction…"));
    pointBox.classList.remove("stale");
    try {
      const p = await api.restorePoint(cluster, db, target);
      if (seq !== lookupSeq || disposed) return;
      point = { ...p, requestedMs: p.requestedMs ?? target.timestampMs ?? null };
      showPoint();
    } catch (e) {
      if (seq !== lookupSeq || disposed || e.kind === "unauthorized") return;
      showPointError(e.code === "EOUTOFRANGE" ? new Error(outOfRangeText(e)) : e);
      chart.setSelection({ requestedMs: target.timestampMs ?? null });
    }
    updateActions();
  }

  function showPointError(e) {
    point = null;
    replace(pointBox, errorBox(e));
    updateActions();
  }

  function showPoint() {
    const p = point;
    const byTime = p.requestedMs !== null && p.requestedMs !== undefined;
    const isCurrent = info && p.txid === info.txid;
    replace(pointBox, h("div", { class: "point-card", "data-txid": String(p.txid) },
      h("p", { class: "point-main" },
        "A restore ", byTime ? "to this time " : "", "uses ", h("strong", { class: "point-txid" }, `transaction ${fmt.count(p.txid)}`), ", committed ",
        h("strong", null, fmt.timeElement(p.timestampMs, { millis: true })), ` local time (${fmt.utc(p.timestampMs, { millis: true })} UTC)`,
        byTime ? [", ", h("strong", { class: "point-before" }, beforeText(p.requestedMs, p.timestampMs)), "."] : "."),
      h("p", { class: "help" }, "Database checksum after it: ", h("code", null, p.postApplyChecksum),
        isCurrent ? ". This is the database's current state: restoring to it changes nothing." : "."),
      tierNote(p)));
    chart.setSelection({ requestedMs: byTime ? p.requestedMs : null, pointMs: p.timestampMs, txid: p.txid });
    preview.setPoint(p);
  }

  // The bisect's answer becomes the chosen point: the transaction just before the change.
  const preview = previewPanel({
    cluster, db, onFound: (txid) => {
      txidInput.value = String(txid);
      scheduleLookup({ txid }, 0);
    },
  });

  // --- restore ----------------------------------------------------------------------------------------------
  const restoreAction = confirmAction({
    expected,
    buttonLabel: () => (point ? `Restore to TXID ${fmt.count(point.txid)}` : "Restore"),
    ready: () => point !== null && !busy,
    notReady: () => (point ? null : "First pick a time or a transaction above."),
    run: () => runRestore(point.txid, point.timestampMs, false),
  });
  const results = h("div", { class: "results" });

  function updateActions() {
    restoreAction.update();
    downloadPointButton.disabled = !point;
    downloadPointButton.textContent = point ? `Download at TXID ${fmt.count(point.txid)}` : "Download at the chosen point";
  }

  /** Restores to a TXID; shows progress, then the result with its undo. */
  async function runRestore(txid, timestampMs, isUndo) {
    busy = true;
    updateActions();
    const started = Date.now();
    const elapsed = h("span", { class: "elapsed", "aria-hidden": "true" });
    const progress = h("div", { class: "progress-box" },
      h("p", { role: "status" }, isUndo ? `Undoing: restoring ${expected} to TXID ${fmt.count(txid)}…` : `Restoring ${expected} to TXID ${fmt.count(txid)}…`),
      h("progress", { "aria-label": "Restore in progress" }), elapsed);
    replace(results, progress);
    const tick = setInterval(() => { elapsed.textContent = `${fmt.duration(Date.now() - started)} so far`; }, 250);
    try {
      const r = await api.restore(cluster, db, txid, expected);
      clearInterval(tick);
      if (disposed) return;
      const took = Date.now() - started;
      restoreAction.reset();
      showResult(r, isUndo, took);
      refresh();
    } catch (e) {
      clearInterval(tick);
      if (disposed || e.kind === "unauthorized") return;
      const box = errorBox(e.code === "ECONFIRM" ? new Error(`The server refused the confirmation: ${e.message}`) : e,
        { title: isUndo ? "The undo did not happen." : "The restore did not happen." });
      box.tabIndex = -1;
      replace(results, box);
      box.focus();
    } finally {
      busy = false;
      updateActions();
    }
  }

  function showResult(r, wasUndo, took) {
    const restoredTo = r.restoredTo || {};
    const undoTxid = r.undoTxid ?? r.txid - 1;
    const head = h("h3", { tabindex: "-1" }, wasUndo ? `Undone: ${expected} is back at the state of TXID ${fmt.count(restoredTo.txid)}` : `Restored ${expected} to TXID ${fmt.count(restoredTo.txid)}`);
    const undoArea = h("div", { class: "undo-area" });
    const undoButton = h("button", { type: "button", class: "button" }, wasUndo ? "Undo this undo" : "Undo this restore");
    undoButton.addEventListener("click", async () => {
      undoButton.hidden = true;
      let when = null;
      try {
        when = (await api.restorePoint(cluster, db, { txid: undoTxid })).timestampMs;
      } catch {
        when = null;
      }
      const action = confirmAction({
        expected,
        intro: h("p", null, `Undo restores TXID ${fmt.count(undoTxid)}, the state just before this ${wasUndo ? "undo" : "restore"}`,
          when ? [" (committed ", fmt.timeElement(when, { millis: true }), ")"] : "", ". It is recorded as a new transaction too."),
        buttonLabel: () => `Undo: restore TXID ${fmt.count(undoTxid)}`,
        ready: () => !busy,
        notReady: () => null,
        run: () => runRestore(undoTxid, when, true),
      });
      replace(undoArea, action.element);
      action.focus();
    });
    const card = h("div", { class: "notice ok result", "data-new-txid": String(r.txid) },
      head,
      h("p", null, `${expected} is at `, h("strong", { class: "result-txid" }, `TXID ${fmt.count(r.txid)}`), " now: a new transaction holding the state of ",
        `TXID ${fmt.count(restoredTo.txid)}`, restoredTo.timestampMs ? [" (committed ", fmt.timeElement(restoredTo.timestampMs, { millis: true }), ")"] : "",
        `. It took ${fmt.duration(took)}. Agents replicating this database apply it to the live database within seconds; no write by the application is needed.`),
      h("p", { class: "help" }, `The TXID before it, ${fmt.count(undoTxid)}, is the state to go back to.`),
      undoButton,
      undoArea);
    replace(results, card);
    head.focus();
  }

  // --- download ---------------------------------------------------------------------------------------------
  const downloadStatus = h("div", { class: "download-status", "aria-live": "polite" });
  const downloadPointButton = h("button", { type: "button", class: "button", disabled: true }, "Download at the chosen point");
  const downloadLatestButton = h("button", { type: "button", class: "button" }, "Download the latest");
  downloadPointButton.addEventListener("click", () => point && runDownload(point.txid));
  downloadLatestButton.addEventListener("click", () => runDownload(null));
  let downloading = null;

  async function runDownload(txid) {
    if (downloading) return;
    downloading = new AbortController();
    downloadPointButton.disabled = true;
    downloadLatestButton.disabled = true;
    const bar = h("progress", { "aria-label": "Download progress" });
    const text = h("span", { "aria-hidden": "true" }, "starting…");
    replace(downloadStatus, h("p", { role: "status" }, txid ? `Downloading ${db} at TXID ${fmt.count(txid)}…` : `Downloading the latest ${db}…`), bar, text);
    try {
      const result = await api.download(cluster, db, txid, (received, total) => {
        if (total) {
          bar.max = total;
          bar.value = received;
        }
        text.textContent = `${fmt.bytes(received)}${total ? ` of ${fmt.bytes(total)}` : ""}`;
      }, downloading.signal);
      if (disposed) return;
      const name = downloadName(db, result.txid);
      saveBlob(result.blob, name);
      replace(downloadStatus, h("p", { class: "notice ok", role: "status" },
        `Saved ${name}: ${fmt.bytes(result.bytes)}, the database at TXID ${fmt.count(result.txid)}. Check it with `,
        h("code", null, `sqlite3 ${name} 'PRAGMA integrity_check'`), "."));
    } catch (e) {
      if (disposed || e.kind === "unauthorized") return;
      replace(downloadStatus, errorBox(e, { title: "The download failed." }));
    } finally {
      downloading = null;
      downloadLatestButton.disabled = false;
      updateActions();
    }
  }

  // --- side branches: what in-place restores overtook ------------------------------------------------------------
  const branches = branchesCard(cluster, db);

  // --- the page ---------------------------------------------------------------------------------------------
  const storage = storageCard(cluster, db);
  const body = h("div", { class: "db-body", hidden: true },
    faultsBox,
    stats,
    h("section", { "aria-labelledby": "history-h", class: "card" },
      h("h2", { id: "history-h" }, "History"),
      windowText,
      tiersBox,
      chartBox,
      h("p", { id: "chart-help", class: "help" }, "Click the chart, or focus it and use the arrow keys (Home and End: first and last transaction), to pick a time."),
      legend,
      levels),
    h("section", { "aria-labelledby": "restore-h", class: "card" },
      h("h2", { id: "restore-h" }, "Restore to a point in time"),
      h("p", null, "Replaces the database's contents with its state at a past transaction. The server records the restore as a new transaction, so history stays one line and the restore can be undone; every agent replicating the database applies it to the live file."),
      pickForm,
      pointBox,
      preview.element,
      restoreAction.element,
      results),
    h("section", { "aria-labelledby": "download-h", class: "card" },
      h("h2", { id: "download-h" }, "Download a copy"),
      h("p", null, "A SQLite file of the database at the chosen point, or as it is now. Nothing changes on the server or in the live database."),
      h("div", { class: "actions" }, downloadPointButton, downloadLatestButton),
      downloadStatus),
    storage.element,
    branches.element);
  const status = h("div", { class: "region" }, loading(`Loading ${db}…`));
  replace(main, heading(db, h("span", { class: "kind" }, ` in ${cluster}`)), status, body);

  async function refresh() {
    try {
      const [dbs, hist] = await Promise.all([api.databases(cluster), api.history(cluster, db, buckets())]);
      if (disposed) return;
      info = dbs.find((d) => d.name === db) || null;
      if (!info) {
        replace(status, errorBox(new Error(`There is no database “${db}” in cluster ${cluster}.`)));
        body.hidden = true;
        return;
      }
      history = hist;
      replace(status);
      body.hidden = false;
      renderStats();
      renderHistory();
      branches.render(history.branches || []);
      // The rest of the page does not wait for it, nor fail with it (a server before storage accounting has none).
      storage.refresh().then(() => { storage.element.hidden = false; }, () => { storage.element.hidden = true; });
      app.setBanner(null);
      if (!dateInput.value && !timeInput.value && history) {
        dateInput.value = fmt.toInputs(history.last.timestampMs).date;
      }
    } catch (e) {
      if (disposed || e.kind === "unauthorized") return;
      if (!history) {
        replace(status, errorBox(e, { retry: refresh }));
      } else {
        // The page keeps what it showed; the banner says why it is not current.
        app.setBanner(e, refresh);
      }
    }
  }

  function buckets() {
    const width = chartBox.clientWidth || main.clientWidth || 600;
    return Math.max(20, Math.min(240, Math.floor(width / 5)));
  }

  refresh();
  const timer = setInterval(() => { if (!document.hidden && !busy) refresh(); }, 10000);
  updateActions();
  return {
    dispose() {
      disposed = true;
      clearInterval(timer);
      clearTimeout(lookupTimer);
      chart.dispose();
      if (downloading) downloading.abort();
      branches.dispose();
    },
  };
}

/**
 * The typed confirmation in front of a destructive action: the button stays disabled until the text is exactly
 * `expected` (and `ready()` holds).
 */
function confirmAction({ expected, intro, buttonLabel, ready, notReady, run }) {
  const id = uid("confirm");
  const input = h("input", {
    id, type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off", class: "confirm-input",
    "aria-describedby": `${id}-help`,
  });
  const help = h("p", { id: `${id}-help`, class: "help" });
  const button = h("button", { type: "button", class: "button danger", disabled: true }, buttonLabel());
  function update() {
    const matches = input.value === expected;
    const reason = notReady();
    button.textContent = buttonLabel();
    button.disabled = !(matches && ready());
    help.textContent = reason
      ? reason
      : matches
        ? "Confirmed."
        : `The button stays disabled until you type ${expected} exactly.`;
  }
  input.addEventListener("input", update);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !button.disabled) {
      e.preventDefault();
      button.click();
    }
  });
  button.addEventListener("click", () => {
    if (button.disabled || input.value !== expected) return;
    run();
  });
  const element = h("div", { class: "confirm" },
    intro || h("p", { class: "warning" }, h("strong", null, "This changes the live database. "), "Applications reading it see the restored state as soon as their agent applies it."),
    h("label", { for: id }, "Type ", h("code", { class: "expected" }, expected), " to confirm"),
    input,
    help,
    h("div", { class: "actions" }, button));
  update();
  return {
    element,
    update,
    focus: () => input.focus(),
    reset() {
      input.value = "";
      update();
    },
  };
}
