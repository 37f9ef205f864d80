// An audit entry in words: the history of a user or group, and the audit log. The words come
// from the server (each entry's `view`: labels, values, counts; unit-tested in Rust); this
// file only lays them out.

import { h, when } from "./lib.js";

/** Member lists longer than this are collapsed behind "show". */
const SHOWN_MEMBERS = 3;

export function historyTable(entries) {
  if (entries.length === 0) return h("p", { class: "empty" }, "No recorded changes.");
  return h("div", { class: "table-wrap" }, h("table", { class: "history" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Details"))),
    h("tbody", {}, entries.map(row))));
}

function row(e) {
  const action = e.view?.action || e.action;
  return h("tr", {},
    h("td", {}, when(e.at)),
    h("td", { class: "wrap" }, e.actor || e.actorKind),
    h("td", { class: "wrap" }, h("span", { class: "action" }, action), " ", resourceLink(e),
      e.outcome === "failure" ? [" ", h("span", { class: "badge bad" }, String(e.status))] : null),
    h("td", { class: "wrap" }, describe(e)));
}

/** The user or group an entry is about, linking to its page. */
function resourceLink(e) {
  const name = e.resourceName || e.resourceId;
  if (!name) return null;
  const page = { User: "/users/", Group: "/groups/" }[e.resourceType];
  if (!page || !e.resourceId) return h("span", { class: "muted" }, name);
  return h("a", { href: page + encodeURIComponent(e.resourceId), "data-link": true }, name);
}

/** What an entry changed, in words. */
export function describe(e) {
  const v = e.view;
  if (!v) return "—";
  const items = [];
  for (const l of v.lines) items.push(line(l));
  for (const m of v.members) items.push(members(m));
  for (const n of v.notes) items.push(h("li", {}, n));
  const parts = [];
  if (items.length) parts.push(h("ul", { class: "changes tight" }, items));
  if (v.summary || v.more.length) {
    const label = v.summary ? `${v.summary} · show all` : `${v.more.length} more · show`;
    if (v.more.length) parts.push(h("details", {}, h("summary", {}, label), h("ul", { class: "tight" }, v.more.map(line))));
    else parts.push(h("p", { class: "muted tight" }, v.summary));
  }
  return parts.length ? parts : "—";
}

/** "Department: Finance → Sales"; a custom extension attribute by its own name, its schema
 * on hover (the full URN would fill the column). */
function line(l) {
  const label = l.schema ? h("abbr", { class: "ext-attr", title: l.schema }, l.label) : l.label;
  return h("li", {}, label, `: ${l.text}`);
}

/** "added ana, bo" or, for a long list, "added 30 members · show" with the names inside. */
function members(m) {
  const links = m.items.flatMap((it, i) => [i ? ", " : "", memberLink(it)]);
  const rest = m.count > m.items.length ? ` and ${m.count - m.items.length} more` : "";
  if (m.count <= SHOWN_MEMBERS) return h("li", {}, `${m.verb} `, links, rest);
  return h("li", {}, h("details", {},
    h("summary", {}, `${m.verb} ${m.count} members · show`),
    h("p", { class: "tight" }, links, rest)));
}

function memberLink(it) {
  const page = it.kind === "Group" ? "/groups/" : "/users/";
  return h("a", { href: page + encodeURIComponent(it.id), "data-link": true }, it.name);
}
