// Every cluster (the admin token), and creating one: its first token is shown once, with a copy button.

import * as api from "../api.js";
import { h, replace, uid } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox, heading, loading, refreshInPlace, secretField, title } from "../ui.js";
import { tiersText } from "./retention.js";

export function clustersView(main, app) {
  title("Clusters");
  app.setCrumbs(null);
  const list = h("div", { class: "region", "aria-busy": "true" }, loading("Loading clusters…"));
  const created = h("div", { class: "created", "aria-live": "polite" });
  let disposed = false;

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      // The policy itself (e.g. every-tx:7d,5m:30d) is only in the admin's list; /api/clusters has the storage.
      const [clusters, admin] = await Promise.all([api.clusters(), api.adminClusters()]);
      const policies = new Map(admin.map((c) => [c.name, c]));
      if (disposed) return;
      refreshInPlace(list, clusters.length === 0
        ? h("p", { class: "empty" }, "No clusters yet. Create one below; its token is what an agent or a LiteFS node uses to back up.")
        : table(clusters, policies));
    } catch (e) {
      if (disposed || e.kind === "unauthorized") return;
      replace(list, errorBox(e, { retry: load }));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function table(clusters, policies) {
    return h("div", { class: "table-wrap" },
      h("table", { class: "data clusters" },
        h("caption", { class: "visually-hidden" }, "Clusters"),
        h("thead", null, h("tr", null,
          h("th", { scope: "col" }, "Cluster"),
          h("th", { scope: "col", class: "num" }, "Databases"),
          h("th", { scope: "col" }, "Retention"),
          h("th", { scope: "col", class: "num" }, "Storage used"))),
        h("tbody", null, clusters.map((c) => h("tr", null,
          h("th", { scope: "row", "data-label": "Cluster" }, h("a", { href: `#/c/${encodeURIComponent(c.name)}` }, c.name)),
          h("td", { class: "num", "data-label": "Databases" }, fmt.count(c.databases)),
          h("td", { "data-label": "Retention" }, retentionCell(c, policies.get(c.name))),
          h("td", { class: "num", "data-label": "Storage used" }, fmt.bytes(c.storageBytes)))))));
  }

  function retentionCell(c, policy) {
    const source = c.retentionSource === "server" ? " (server default)" : null;
    if (!policy || (policy.tiers || []).length < 2) return h("span", null, fmt.retention(c.retentionSeconds), source);
    return h("span", { title: tiersText(policy.tiers) }, h("code", null, policy.retention), source);
  }

  // Creating a cluster.
  const nameId = uid("cluster-name");
  const retentionId = uid("retention");
  const nameInput = h("input", {
    id: nameId, name: "name", type: "text", required: true, autocomplete: "off", spellcheck: "false",
    pattern: "[A-Za-z0-9_\\-][A-Za-z0-9._\\-]{0,254}", "aria-describedby": `${nameId}-help`,
  });
  const retentionInput = h("input", {
    id: retentionId, name: "retention", type: "text", placeholder: "720h", autocomplete: "off",
    "aria-describedby": `${retentionId}-help`,
  });
  const formError = h("div", { class: "form-error", "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "button primary" }, "Create cluster");
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "create-cluster-h" },
    h("h2", { id: "create-cluster-h" }, "Create a cluster"),
    h("div", { class: "field-row" },
      h("div", { class: "field" },
        h("label", { for: nameId }, "Name"),
        nameInput,
        h("p", { id: `${nameId}-help`, class: "help" }, "Letters, digits, dot, dash and underscore; not starting with a dot.")),
      h("div", { class: "field" },
        h("label", { for: retentionId }, "Retention (optional)"),
        retentionInput,
        h("p", { id: `${retentionId}-help`, class: "help" }, "How far back restores reach, e.g. 720h or 7d, or a policy of tiers such as every-tx:7d,5m:30d. Empty: the server's default."))),
    formError,
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(formError);
    const name = nameInput.value.trim();
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/.test(name)) {
      replace(formError, errorBox(new Error("A cluster name is 1 to 255 letters, digits, dots, dashes or underscores, and does not start with a dot.")));
      nameInput.focus();
      return;
    }
    submit.disabled = true;
    try {
      const c = await api.createCluster(name, retentionInput.value.trim() || undefined);
      nameInput.value = "";
      retentionInput.value = "";
      const done = h("div", { class: "notice ok", tabindex: "-1" },
        h("h3", null, `Cluster ${c.cluster} created`),
        h("p", null, "Its token is shown only this once; the server keeps just a hash of it. Copy it now into your agent's or LiteFS's configuration (",
          h("code", null, "WAYBACK_TOKEN"), " or ", h("code", null, "LITEFS_CLOUD_TOKEN"), ")."),
        secretField(`Token for ${c.cluster}`, c.token),
        h("p", null, h("a", { href: `#/c/${encodeURIComponent(c.cluster)}` }, `Open ${c.cluster}`)));
      replace(created, done);
      done.focus();
      load();
    } catch (err) {
      if (err.kind === "unauthorized") return;
      replace(formError, errorBox(err));
    } finally {
      submit.disabled = false;
    }
  });

  replace(main,
    heading("Clusters"),
    h("p", { class: "lead" }, "Each cluster has its own databases and tokens. Open one to see its databases and restore them."),
    list,
    created,
    form);
  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 15000);
  return {
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
}
