// The Preview of a chosen restore point, before anyone restores to it: its tables with row counts and what
// changed since (a diff against the latest), a read-only query box, and "find when this changed" (a bisect
// that moves the restore point to just before the change).

import * as api from "../api.js";
import { h, replace, uid } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox } from "../ui.js";

/** A query result as a table; blobs as x'..', NULL as an empty cell marked for screen readers. */
export function resultTable(result) {
  const cell = (v) => {
    if (v === null || v === undefined) return h("td", { class: "null" }, h("span", { class: "visually-hidden" }, "NULL"));
    if (typeof v === "object" && v.blob !== undefined) return h("td", null, h("code", null, `x'${v.blob.length > 64 ? v.blob.slice(0, 61) + "…" : v.blob}'`));
    return h("td", { class: typeof v === "number" ? "num" : null }, String(v));
  };
  return h("div", { class: "table-wrap" },
    h("table", { class: "data compact result-table" },
      h("thead", null, h("tr", null, result.columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, result.rows.map((r) => h("tr", null, r.map(cell))))),
    result.truncated ? h("p", { class: "help" }, `Only the first ${fmt.count(result.rows.length)} rows (the row limit).`) : null);
}

export function previewPanel({ cluster, db, onFound }) {
  let point = null;
  let seq = 0;
  const summary = h("div", { class: "preview-summary", "aria-live": "polite" });

  // --- tables and the change against now ---------------------------------------------------------------------
  async function showSummary(p, mySeq) {
    replace(summary, h("p", { class: "loading" }, `Reading TXID ${fmt.count(p.txid)}…`));
    try {
      const d = await api.diff(cluster, db, p.txid, null);
      if (mySeq !== seq) return;
      const tables = d.tables || [];
      const schema = d.schema || [];
      const same = d.from.txid === d.to.txid;
      replace(summary,
        h("div", { class: "table-wrap" }, h("table", { class: "data compact preview-tables" },
          h("caption", null, same ? `Tables at TXID ${fmt.count(p.txid)} (the latest)` : `Tables at TXID ${fmt.count(p.txid)}, and what changed up to now (TXID ${fmt.count(d.to.txid)})`),
          h("thead", null, h("tr", null,
            h("th", { scope: "col" }, "Table"), h("th", { scope: "col", class: "num" }, "Rows then"),
            same ? null : [h("th", { scope: "col", class: "num" }, "Rows now"), h("th", { scope: "col", class: "num" }, "Added since"),
              h("th", { scope: "col", class: "num" }, "Removed since"), h("th", { scope: "col", class: "num" }, "Changed since")])),
          h("tbody", null, tables.map((t) => h("tr", { "data-table": t.table },
            h("th", { scope: "row", "data-label": "Table" }, t.table),
            h("td", { class: "num", "data-label": "Rows then" }, fmt.count(t.rowsBefore)),
            same ? null : [h("td", { class: "num", "data-label": "Rows now" }, fmt.count(t.rowsAfter)),
              h("td", { class: "num", "data-label": "Added since", "data-kind": "added" }, fmt.count(t.added)),
              h("td", { class: "num", "data-label": "Removed since", "data-kind": "removed" }, fmt.count(t.removed)),
              h("td", { class: "num", "data-label": "Changed since", "data-kind": "changed" }, fmt.count(t.changed))]))))),
        schema.length ? h("ul", { class: "schema-changes" }, schema.map((c) => h("li", null,
          `${c.type} ${c.name} ${c.change} since`, c.detail ? ` (${c.detail})` : ""))) : null);
    } catch (e) {
      if (mySeq !== seq || e.kind === "unauthorized") return;
      replace(summary, errorBox(e, { title: "The preview could not be read." }));
    }
  }

  // --- the query box -----------------------------------------------------------------------------------------
  const queryId = uid("query");
  const queryInput = h("textarea", { id: queryId, rows: 3, spellcheck: "false", class: "sql", "aria-describedby": `${queryId}-help` });
  const queryButton = h("button", { type: "submit", class: "button" }, "Run the query");
  const queryResult = h("div", { class: "query-result", "aria-live": "polite" });
  const queryForm = h("form", { class: "query-form", novalidate: true },
    h("label", { for: queryId }, "Query this point (read-only)"),
    queryInput,
    h("p", { id: `${queryId}-help`, class: "help" }, "One SELECT; nothing it does can change a backup or the live database. Stopped after the server's time limit."),
    h("div", { class: "actions" }, queryButton),
    queryResult);
  queryForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!point) return;
    const sql = queryInput.value.trim();
    if (!sql) {
      replace(queryResult, errorBox(new Error("Type a query first, e.g. SELECT * FROM users LIMIT 10.")));
      return;
    }
    const p = point;
    queryButton.disabled = true;
    replace(queryResult, h("p", { class: "loading" }, "Running…"));
    try {
      const r = await api.query(cluster, db, p.txid, sql);
      replace(queryResult, h("p", { class: "help" }, `${fmt.count(r.rows.length)} rows at TXID ${fmt.count(r.point.txid)}, ${r.elapsedMs} ms.`), resultTable(r));
    } catch (err) {
      if (err.kind !== "unauthorized") replace(queryResult, errorBox(err, { title: "The query did not run." }));
    } finally {
      queryButton.disabled = !point;
    }
  });

  // --- find when this changed ----------------------------------------------------------------------------------
  const bisectId = uid("bisect");
  const bisectInput = h("textarea", { id: bisectId, rows: 2, spellcheck: "false", class: "sql", "aria-describedby": `${bisectId}-help` });
  const bisectButton = h("button", { type: "submit", class: "button" }, "Find when this changed");
  const probes = h("ol", { class: "probes" });
  const bisectResult = h("div", { class: "bisect-result", "aria-live": "polite" });
  const bisectForm = h("form", { class: "bisect-form", novalidate: true },
    h("label", { for: bisectId }, "Find when a query's result changed"),
    bisectInput,
    h("p", { id: `${bisectId}-help`, class: "help" },
      "Its result at the chosen point counts as right. The server searches up to now for the first transaction after which it differs, and the restore point moves to just before it."),
    h("div", { class: "actions" }, bisectButton),
    probes,
    bisectResult);
  bisectForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const sql = bisectInput.value.trim();
    if (!sql) {
      replace(bisectResult, errorBox(new Error("Type the query whose result changed, e.g. SELECT * FROM users WHERE id = 42.")));
      return;
    }
    bisectButton.disabled = true;
    replace(probes);
    replace(bisectResult, h("p", { class: "loading" }, "Searching…"));
    try {
      const found = await api.bisect(cluster, db, sql, point ? point.txid : null, (p) => {
        probes.append(h("li", { "data-txid": String(p.txid) }, `TXID ${fmt.count(p.txid)}: `, p.same ? "same as the chosen point" : "different"));
      });
      replace(bisectResult, h("div", { class: "notice ok found", "data-first-bad": String(found.firstBad.txid), "data-last-good": String(found.lastGood.txid) },
        h("p", null, "The result first changed with ", h("strong", null, `transaction ${fmt.count(found.firstBad.txid)}`), ", committed ",
          fmt.timeElement(found.firstBad.timestampMs, { millis: true }), ` (${fmt.count(found.probes)} probes). The restore point is now TXID ${fmt.count(found.lastGood.txid)}, just before it.`),
        h("p", { class: "help" }, `Before, at TXID ${fmt.count(found.lastGood.txid)}:`), resultTable(found.before),
        h("p", { class: "help" }, `After, at TXID ${fmt.count(found.firstBad.txid)}:`), resultTable(found.after)));
      onFound(found.lastGood.txid);
    } catch (err) {
      if (err.kind !== "unauthorized") replace(bisectResult, errorBox(err, { title: "The search did not finish." }));
    } finally {
      bisectButton.disabled = false;
    }
  });

  const element = h("section", { class: "preview", "aria-labelledby": "preview-h" },
    h("h3", { id: "preview-h" }, "Preview"),
    h("p", { class: "muted preview-empty" }, "Pick a point above to look inside it before restoring."),
    summary, queryForm, bisectForm);

  function setPoint(p) {
    seq += 1;
    point = p;
    element.querySelector(".preview-empty").hidden = !!p;
    queryButton.disabled = !p;
    if (!p) {
      replace(summary);
      return;
    }
    replace(queryResult);
    showSummary(p, seq);
  }
  setPoint(null);
  return { element, setPoint };
}
