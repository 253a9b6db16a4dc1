// Retention tiers (README, "Retention policies"): which stretch of a database's history keeps which granularity,
// in words, and what a restore to a time inside a coarse tier uses.

import { h } from "../dom.js";
import * as fmt from "../format.js";

export const EVERY_TX = "every-tx";

/** "every transaction" / "one point per 5m". */
export function granularityText(granularity) {
  return granularity === EVERY_TX ? "every transaction" : `one point per ${granularity}`;
}

/** "every-tx" → "Every transaction", "5m" → "One point per 5m". */
function granularityTitle(granularity) {
  const t = granularityText(granularity);
  return t[0].toUpperCase() + t.slice(1);
}

/** The history's `tiers` as a table, newest stretch first; null for a plain retention (one every-tx tier). */
export function tiersTable(tiers) {
  if (!tiers || tiers.length < 2) return null;
  return h("div", { class: "tiers" },
    h("p", { class: "help" }, "This cluster's retention keeps older history coarser: each stretch keeps the restore points below."),
    h("div", { class: "table-wrap" }, h("table", { class: "data compact tiers-table" },
      h("caption", { class: "visually-hidden" }, "Retention tiers of this history"),
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, "Restore points"), h("th", { scope: "col" }, "Committed from"),
        h("th", { scope: "col" }, "To"), h("th", { scope: "col" }, "TXIDs stored"))),
      h("tbody", null, tiers.map((t, i) => h("tr", { "data-tier": t.granularity },
        h("th", { scope: "row", "data-label": "Restore points" }, granularityTitle(t.granularity)),
        h("td", { "data-label": "Committed from" }, fmt.timeElement(t.fromMs)),
        h("td", { "data-label": "To" }, i === 0 ? "now" : fmt.timeElement(t.toMs)),
        h("td", { "data-label": "TXIDs stored" }, t.maxTxid ? `${fmt.count(t.minTxid)} – ${fmt.count(t.maxTxid)}` : "none")))))));
}

/** For the restore panel: what a restore to a time in a coarse tier uses; null in the every-tx tier. */
export function tierNote(point) {
  if (!point.tier || point.tier === EVERY_TX) return null;
  const byTime = point.requestedMs !== null && point.requestedMs !== undefined;
  return h("p", { class: "point-tier", "data-tier": point.tier },
    byTime
      ? `That time is in the ${point.tier} retention tier (${granularityText(point.tier)}): the point used is the last kept point of that tier at or before the chosen time.`
      : `This transaction is in the ${point.tier} retention tier (${granularityText(point.tier)}), a point it keeps.`);
}
