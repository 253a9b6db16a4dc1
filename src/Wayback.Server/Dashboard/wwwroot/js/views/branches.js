// The side branches of a database (docs/restore.md): transactions a writer committed that an in-place restore
// overtook, kept apart from the history. Each can be downloaded as the database it leads to.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox, saveBlob } from "../ui.js";

/** "app.db", branch "20261204-180741-21" → "app.branch-20261204-180741-21.db". */
export function branchFileName(db, id) {
  const dot = db.lastIndexOf(".");
  const stem = dot > 0 ? db.slice(0, dot) : db;
  const ext = dot > 0 ? db.slice(dot) : ".db";
  return `${stem}.branch-${id}${ext}`;
}

/** The card: hidden while the database has no side branch; `render(branches)` with the history's `branches`. */
export function branchesCard(cluster, db) {
  const list = h("div");
  const status = h("div", { class: "branch-status", "aria-live": "polite" });
  const element = h("section", { "aria-labelledby": "branches-h", class: "card", hidden: true },
    h("h2", { id: "branches-h" }, "Side branches"),
    h("p", null, "Transactions a writer committed on a state that an in-place restore then replaced. They are not in the history (the writer resynced to the restored state), but they are kept, for the cluster's retention: download one as the database it leads to."),
    list,
    status);
  let downloading = null;
  let shown = "";

  async function save(branch) {
    if (downloading) return;
    downloading = new AbortController();
    replace(status, h("p", { role: "status" }, `Downloading side branch ${branch.id}…`));
    try {
      const result = await api.downloadBranch(cluster, db, branch.id, null, downloading.signal);
      const name = branchFileName(db, branch.id);
      saveBlob(result.blob, name);
      replace(status, h("p", { class: "notice ok", role: "status" },
        `Saved ${name}: ${fmt.bytes(result.bytes)}, TXID ${fmt.count(branch.baseTxid)} with TXIDs ${fmt.count(branch.minTxid)}-${fmt.count(branch.maxTxid)} applied.`));
    } catch (e) {
      if (e.name !== "AbortError") replace(status, errorBox(e, { title: "The download failed." }));
    } finally {
      downloading = null;
    }
  }

  function render(branches) {
    element.hidden = branches.length === 0;
    // The page refreshes every 10 s: keep the table (and focus) as it is unless a branch changed.
    const key = JSON.stringify(branches.map((b) => [b.id, b.maxTxid]));
    if (key === shown) return;
    shown = key;
    const rows = branches.map((b) => {
      const button = h("button", { type: "button", class: "button", "aria-label": `Download side branch ${b.id}` }, "Download");
      button.addEventListener("click", () => save(b));
      return h("tr", { "data-branch": b.id },
        h("th", { scope: "row", "data-label": "ID" }, h("code", null, b.id)),
        h("td", { "data-label": "TXIDs", class: "num" }, `${fmt.count(b.minTxid)}-${fmt.count(b.maxTxid)}`),
        h("td", { "data-label": "On" }, `TXID ${fmt.count(b.baseTxid)}`),
        h("td", { "data-label": "Kept" }, fmt.timeElement(b.receivedMs, { relative: true })),
        h("td", { "data-label": "Why" }, b.reason + (b.liteFsClusterId ? ` (LiteFS node ${b.liteFsClusterId})` : "")),
        h("td", null, button));
    });
    replace(list, h("div", { class: "table-wrap" }, h("table", { class: "data compact branches" },
      h("thead", null, h("tr", null, ...["ID", "TXIDs", "On", "Kept", "Why"].map((t) => h("th", { scope: "col" }, t)),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Download")))),
      h("tbody", null, ...rows))));
  }

  return {
    element,
    render,
    dispose() {
      if (downloading) downloading.abort();
    },
  };
}
