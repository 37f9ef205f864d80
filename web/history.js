// An audit entry in words: the history of a user or group, and the audit log.

import { fmt, h, when } from "./lib.js";

export function historyTable(entries) {
  if (entries.length === 0) return h("p", { class: "empty" }, "No recorded changes.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Details"))),
    h("tbody", {}, entries.map((e) => h("tr", {},
      h("td", {}, when(e.at)), h("td", {}, e.actor || e.actorKind),
      h("td", {}, e.action, " ", e.resourceName ? h("span", { class: "muted" }, e.resourceName) : null,
        e.outcome === "failure" ? h("span", { class: "badge bad" }, String(e.status)) : null),
      h("td", {}, describe(e)))))));
}

/** What an entry changed, in words. */
export function describe(e) {
  const d = e.detail || {};
  const parts = [];
  for (const c of d.changes || []) parts.push([pathLabel(c.path), `: ${fmt(c.before)} → ${fmt(c.after)}`]);
  const names = (list) => list.map((m) => m.display || m.value).join(", ");
  if (d.membersAdded) parts.push(`added ${names(d.membersAdded)}${d.membersAddedCount ? ` (${d.membersAddedCount} in all)` : ""}`);
  if (d.membersRemoved) parts.push(`removed ${names(d.membersRemoved)}${d.membersRemovedCount ? ` (${d.membersRemovedCount} in all)` : ""}`);
  if (d.skippedMembers) parts.push(`skipped unknown ids ${d.skippedMembers.join(", ")}`);
  if (d.ignored) parts.push(`ignored: ${d.ignored.join(", ")}${d.ignoredMore ? `, +${d.ignoredMore} more` : ""}`);
  if (d.unchanged) parts.push("nothing else changed (recorded once a day per actor and set of names)");
  if (d.error) parts.push(d.error);
  if (d.oldSecretValidUntil) parts.push(`old secret works until ${when(d.oldSecretValidUntil)}`);
  if (d.attributes) parts.push(`${d.resourceType} extension: ${d.attributes.join(", ")}${d.required ? " (required)" : ""}`);
  if (d.storedValues) parts.push(`stored values ${d.storedValues}`);
  return parts.length ? h("ul", {}, parts.map((p) => h("li", {}, p))) : "—";
}

/** An extension attribute (`urn:…:2.0:User:badgeNumber`) by its own name, its schema on hover:
 * the full URN would fill the column. Attribute names never hold a colon, so the last one ends
 * the schema's id. */
export function pathLabel(path) {
  const m = /^((?:urn:|https?:\/\/).*):([^:]+)$/i.exec(path);
  return m ? h("abbr", { class: "ext-attr", title: m[1] }, m[2]) : path;
}
