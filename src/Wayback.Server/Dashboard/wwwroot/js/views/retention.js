// For the admin token: a cluster's retention policy (README, "Retention policies"), its tiers in words, and a
// form that changes it (PATCH /admin/clusters/NAME); the server's refusal of a bad policy is shown as it says it.

import * as api from "../api.js";
import { h, replace, uid } from "../dom.js";
import * as fmt from "../format.js";
import { errorBox, loading, refreshInPlace } from "../ui.js";
import { granularityText } from "./tiers.js";

/** A tier's age: whole hours as days or hours ("30 days"), shorter ones as the policy writes them ("90s", "10m"). */
function ageText(seconds) {
  if (seconds % 3600 === 0) return fmt.retention(seconds);
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

/** "every transaction for 7 days, then one point per 5m up to 30 days". */
export function tiersText(tiers) {
  return (tiers || []).map((t, i) => `${i === 0 ? "" : "then "}${granularityText(t.granularity)} ${i === 0 ? "for" : "up to"} ${ageText(t.ageSeconds)}`).join(", ");
}

/** The card; `onChanged()` is called after the server took a new policy. */
export function retentionSection(cluster, isDisposed, onChanged) {
  const current = h("div", { class: "retention-current", "aria-live": "polite" }, loading("Loading the retention policy…"));
  const inputId = uid("policy");
  const input = h("input", {
    id: inputId, name: "retention", type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "off",
    required: true, "aria-describedby": `${inputId}-help`,
  });
  const status = h("div", { class: "retention-status", "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "button" }, "Change retention");
  let shown = null; // the policy the input was last filled with, so a refresh does not overwrite typing

  function render(c) {
    const source = c.retentionSource === "server" ? " (the server's default, --retention; setting one here gives the cluster its own)" : "";
    refreshInPlace(current, h("p", null, "Policy ", h("code", { class: "policy" }, c.retention), source, ": ", tiersText(c.tiers), "."));
    if (input.value === "" || input.value === shown) input.value = c.retention;
    shown = c.retention;
  }

  async function load() {
    try {
      const c = (await api.adminClusters()).find((x) => x.name === cluster);
      if (isDisposed()) return;
      if (c) render(c);
      else refreshInPlace(current, errorBox(new Error(`There is no cluster “${cluster}”.`)));
    } catch (e) {
      if (isDisposed() || e.kind === "unauthorized") return;
      refreshInPlace(current, errorBox(e, { retry: load }));
    }
  }

  const form = h("form", { novalidate: true, "aria-labelledby": "retention-h" },
    h("div", { class: "field" },
      h("label", { for: inputId }, "New retention"),
      input,
      h("p", { id: `${inputId}-help`, class: "help" },
        "A duration (", h("code", null, "720h"), ", ", h("code", null, "30d"), ") keeps every transaction that long; a policy of tiers such as ",
        h("code", null, "every-tx:7d,5m:30d,1h:90d"), " keeps older history coarser. Maintenance applies a change within seconds; points a coarser policy drops are gone for good.")),
    status,
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    replace(status);
    const policy = input.value.trim();
    if (!policy) {
      replace(status, errorBox(new Error("Type a retention: a duration such as 720h, or a policy such as every-tx:7d,5m:30d.")));
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const c = await api.setRetention(cluster, policy);
      if (isDisposed()) return;
      input.value = "";
      render(c);
      replace(status, h("p", { class: "notice ok", role: "status" }, `Retention of ${cluster} is now ${c.retention}.`));
      onChanged();
    } catch (err) {
      if (err.kind === "unauthorized") return;
      replace(status, errorBox(err, { title: "The retention did not change." }));
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });

  load();
  return {
    element: h("section", { "aria-labelledby": "retention-h", class: "card retention" },
      h("h2", { id: "retention-h" }, "Retention"),
      current,
      form),
  };
}
