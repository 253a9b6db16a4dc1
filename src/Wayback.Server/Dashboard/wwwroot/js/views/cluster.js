// One cluster: its databases with position, size, last write, HWM lag and storage; for the admin token,
// its retention policy (shown and changed) and its tokens (create one, shown once; revoke).

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox, heading, loading, refreshInPlace, secretField, stat, title } from "../ui.js";
import { retentionSection } from "./retention.js";

export const dbHref = (cluster, db) => `#/c/${encodeURIComponent(cluster)}/db/${encodeURIComponent(db)}`;

/** "0 (all stored)" / "12 transactions": what the object store does not hold yet. */
export function lagText(lag) {
  if (lag === null || lag === undefined) return "–";
  if (lag === 0) return "0 (all stored)";
  return `${fmt.count(lag)} transaction${lag === 1 ? "" : "s"}`;
}

const FAULT_NAMES = {
  seal: "sealing fails",
  compaction: "compaction fails",
  damaged: "damaged object",
  orphan: "buffer set aside",
};

/** A fault of a database in a few words ("compaction fails"). */
export function faultName(kind) {
  return FAULT_NAMES[kind] || kind;
}

/** The status cell of a database: "OK", or what is wrong (the last error in the title). */
export function statusCell(d) {
  const faults = d.faults || [];
  if (faults.length === 0) return h("td", { "data-label": "Status" }, "OK");
  return h("td", { class: "error", "data-label": "Status", title: faults.map((f) => f.error).join("\n") },
    faults.map((f) => faultName(f.kind)).join(", "));
}

export function clusterView(main, app, cluster) {
  title(cluster);
  const isAdmin = app.me.role === "admin";
  app.setCrumbs(isAdmin ? [{ label: "Clusters", href: "#/" }, { label: cluster }] : null);
  const summary = h("dl", { class: "stats" });
  const list = h("div", { class: "region", "aria-busy": "true" }, loading("Loading databases…"));
  const updated = h("p", { class: "updated muted" });
  let disposed = false;

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const [clusters, dbs] = await Promise.all([api.clusters(), api.databases(cluster)]);
      if (disposed) return;
      const info = clusters.find((c) => c.name === cluster);
      if (info) {
        refreshInPlace(summary,
          stat("Databases", fmt.count(dbs.length)),
          stat("Retention", fmt.retention(info.retentionSeconds)),
          stat("Storage used", fmt.bytes(info.storageBytes)));
      }
      refreshInPlace(list, dbs.length === 0 ? empty() : table(dbs));
      updated.textContent = `Updated ${fmt.local(Date.now()).slice(11)}; refreshes every 5 seconds.`;
    } catch (e) {
      if (disposed || e.kind === "unauthorized") return;
      refreshInPlace(list, errorBox(e, { retry: load }));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function empty() {
    return h("div", { class: "empty" },
      h("p", null, "No databases in this cluster yet. Start an agent next to the application's database:"),
      h("pre", null, h("code", null,
        `WAYBACK_SERVER=${api.serverRoot.origin} WAYBACK_TOKEN=<token of ${cluster}> \\\n  wayback replicate /path/to/app.db`)),
      h("p", null, "or point a LiteFS node at this server (", h("code", null, "LITEFS_CLOUD_ENDPOINT"), ", ", h("code", null, "LITEFS_CLOUD_TOKEN"), ")."));
  }

  function table(dbs) {
    return h("div", { class: "table-wrap" },
      h("table", { class: "data databases" },
        h("caption", { class: "visually-hidden" }, `Databases in ${cluster}`),
        h("thead", null, h("tr", null,
          h("th", { scope: "col" }, "Database"),
          h("th", { scope: "col", class: "num" }, "TXID"),
          h("th", { scope: "col", class: "num" }, "Size"),
          h("th", { scope: "col" }, "Last write"),
          h("th", { scope: "col", class: "num" }, h("abbr", { title: "Transactions not yet in the object store (position minus high-water mark)" }, "HWM lag")),
          h("th", { scope: "col", class: "num" }, "Storage used"),
          h("th", { scope: "col" }, "Status"))),
        h("tbody", null, dbs.map((d) => h("tr", { "data-db": d.name },
          h("th", { scope: "row", "data-label": "Database" }, h("a", { href: dbHref(cluster, d.name) }, d.name)),
          h("td", { class: "num", "data-label": "TXID" }, fmt.count(d.txid)),
          h("td", { class: "num", "data-label": "Size" }, fmt.bytes(d.sizeBytes)),
          h("td", { "data-label": "Last write" }, fmt.timeElement(d.lastWriteMs, { relative: true })),
          h("td", { class: ["num", d.hwmLag > 0 ? "warn" : null], "data-label": "HWM lag" }, lagText(d.hwmLag)),
          h("td", { class: "num", "data-label": "Storage used" }, fmt.bytes(d.storageBytes)),
          statusCell(d))))));
  }

  const sections = [
    heading(cluster, h("span", { class: "kind" }, " cluster")),
    summary,
    h("section", { "aria-labelledby": "dbs-h" }, h("h2", { id: "dbs-h" }, "Databases"), list, updated),
  ];
  if (isAdmin) sections.push(retentionSection(cluster, () => disposed, () => load()).element);
  const tokensView = isAdmin ? tokensSection(cluster, () => disposed) : null;
  if (tokensView) sections.push(tokensView.element);
  replace(main, ...sections);
  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return {
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
}

function tokensSection(cluster, isDisposed) {
  const list = h("div", { class: "region" }, loading("Loading tokens…"));
  const created = h("div", { "aria-live": "polite" });
  const error = h("div", { "aria-live": "assertive" });
  const createButton = h("button", { type: "button", class: "button" }, "Create a token");

  async function load() {
    try {
      const tokens = await api.tokens(cluster);
      if (isDisposed()) return;
      refreshInPlace(list, tokens.length === 0
        ? h("p", { class: "empty" }, "No tokens: nothing can back up to this cluster until you create one.")
        : h("ul", { class: "tokens" }, tokens.map((t) => tokenItem(t))));
    } catch (e) {
      if (isDisposed() || e.kind === "unauthorized") return;
      replace(list, errorBox(e, { retry: load }));
    }
  }

  function tokenItem(t) {
    const row = h("li", { class: "token" });
    const revoke = h("button", { type: "button", class: "button subtle danger", "data-key": `revoke-${t.id}` }, "Revoke…");
    const info = h("span", { class: "token-info" }, h("code", null, t.id), " created ", fmt.timeElement(Date.parse(t.createdAt)));
    revoke.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button danger" }, `Revoke ${t.id}`);
      const no = h("button", { type: "button", class: "button subtle" }, "Keep it");
      const ask = h("span", { class: "inline-confirm", role: "group", "aria-label": `Revoke token ${t.id}?` },
        h("span", null, "Agents using it stop backing up. "), yes, no);
      no.addEventListener("click", () => {
        replace(row, info, revoke);
        revoke.focus();
      });
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        try {
          await api.revokeToken(cluster, t.id);
          replace(error, h("p", { class: "notice ok", role: "status" }, `Token ${t.id} revoked: it opens nothing from now on.`));
          await load();
          createButton.focus();
        } catch (e) {
          if (e.kind === "unauthorized") return;
          yes.disabled = false;
          replace(error, errorBox(e));
        }
      });
      replace(row, info, ask);
      no.focus();
    });
    replace(row, info, revoke);
    return row;
  }

  createButton.addEventListener("click", async () => {
    createButton.disabled = true;
    replace(error);
    try {
      const t = await api.createToken(cluster);
      const done = h("div", { class: "notice ok", tabindex: "-1" },
        h("h3", null, `New token ${t.id}`),
        h("p", null, "Shown only this once: copy it now."),
        secretField(`Token ${t.id} for ${cluster}`, t.token));
      replace(created, done);
      done.focus();
      load();
    } catch (e) {
      if (e.kind === "unauthorized") return;
      replace(error, errorBox(e));
    } finally {
      createButton.disabled = false;
    }
  });

  load();
  return {
    element: h("section", { "aria-labelledby": "tokens-h", class: "card" },
      h("h2", { id: "tokens-h" }, "Tokens"),
      h("p", { class: "help" }, "A token opens this cluster only: agents and LiteFS nodes back up with it, and it signs in here. The server keeps only a hash, so a token is shown once, when it is created."),
      list, error, created,
      h("div", { class: "actions" }, createButton)),
  };
}
