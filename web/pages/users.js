// Users: the list and a user's page (a deleted user's too).

import { api, fmt, h, show, when } from "../lib.js";
import { extensionCards } from "../extensions.js";
import { historyTable } from "../history.js";
import { activeBadge, listPage } from "../list.js";

const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

function primaryEmail(u) {
  return (u.emails || []).find((e) => e.primary)?.value || u.emails?.[0]?.value || "—";
}

/** The state badge, with when a suspended user was suspended. */
function stateCell(u) {
  if (u.active !== false || !u.suspendedSince) return activeBadge(u);
  return h("span", {}, activeBadge(u), " ", h("span", { class: "muted since", title: when(u.suspendedSince) }, `since ${new Date(u.suspendedSince).toLocaleDateString()}`));
}

export function usersPage() {
  return listPage({
    title: "Users", endpoint: "/users", exports: "/users/export",
    intro: "Everyone your identity provider has provisioned. Search matches the start of any word of the user name, names, emails, external id, title and department.",
    empty: "No users yet — connect OneLogin on the Connect page.",
    link: (u) => `/users/${encodeURIComponent(u.id)}`,
    filters: [{ name: "state", label: "State", options: [["all", "All"], ["active", "Active"], ["suspended", "Suspended"]] }],
    columns: [
      { key: "userName", label: "User name", sort: "userName", cell: (u) => u.userName, fixed: true },
      { key: "name", label: "Name", sort: "displayName", cell: (u) => u.displayName || u.name?.formatted || "—", optional: true },
      { key: "email", label: "Email", sort: "emails", cell: primaryEmail, optional: true },
      { key: "department", label: "Department", cell: (u) => u[ENTERPRISE]?.department || "—", optional: true, hidden: true },
      { key: "title", label: "Title", sort: "title", cell: (u) => u.title || "—", optional: true, hidden: true },
      { key: "externalId", label: "External id", sort: "externalId", cell: (u) => u.externalId || "—", optional: true, hidden: true },
      { key: "emails", label: "All emails", cell: (u) => (u.emails || []).map((e) => e.value).join(", ") || "—", optional: true, hidden: true },
      { key: "state", label: "State", sort: "active", cell: stateCell, fixed: true },
      { key: "created", label: "Created", sort: "meta.created", cell: (u) => when(u.meta.created), optional: true, hidden: true },
      { key: "changed", label: "Changed", sort: "meta.lastModified", cell: (u) => when(u.meta.lastModified), optional: true },
    ],
  });
}

/** Rows of a definition list; empty values are left out. */
function kv(rows) {
  const kept = rows.filter(([, v]) => v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0));
  return kept.length ? h("dl", { class: "kv" }, kept.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : h("p", { class: "empty" }, "No values.");
}

/** A multi-valued attribute (emails, phone numbers…) as one line per value with its labels. */
function values(list, show = (v) => fmt(v.value)) {
  if (!Array.isArray(list) || list.length === 0) return null;
  return h("ul", { class: "plain" }, list.map((v) => {
    const tags = [v.type, v.primary ? "primary" : null].filter(Boolean).join(", ");
    return h("li", {}, show(v), tags ? h("span", { class: "muted" }, ` (${tags})`) : null);
  }));
}

function address(a) {
  return a.formatted || [a.streetAddress, a.locality, a.region, a.postalCode, a.country].filter(Boolean).join(", ") || fmt(a);
}

function profileCard(user) {
  const n = user.name || {};
  const core = [["User name", user.userName], ["Display name", user.displayName],
    ["Name", n.formatted || [n.honorificPrefix, n.givenName, n.middleName, n.familyName, n.honorificSuffix].filter(Boolean).join(" ")],
    ["Nickname", user.nickName], ["Title", user.title], ["User type", user.userType],
    ["Emails", values(user.emails)], ["Phone numbers", values(user.phoneNumbers)],
    ["Addresses", values(user.addresses, address)], ["IMs", values(user.ims)],
    ["Preferred language", user.preferredLanguage], ["Locale", user.locale], ["Time zone", user.timezone],
    ["Profile", user.profileUrl], ["External id", user.externalId],
    ["Entitlements", values(user.entitlements)], ["Roles", values(user.roles)],
    ["Created", when(user.meta.created)], ["Changed", when(user.meta.lastModified)], ["Id", user.id]];
  return h("section", { class: "card" }, h("h2", {}, "Profile"), kv(core));
}

function deletedPage(gone, history) {
  show(h("p", {}, h("a", { href: "/users", "data-link": true }, "← Users")),
    h("h1", {}, gone.userName, " ", h("span", { class: "badge bad" }, "deleted")),
    h("div", { class: "card" },
      h("p", { class: "deleted" }, `Deleted on ${when(gone.deletedAt)} by ${gone.deletedBy || "an unknown client"}.`),
      kv([["Display name", gone.displayName], ["Id", gone.id]])),
    h("h2", {}, "History"), historyTable(history));
}

export async function userPage(id) {
  const r = await api("GET", `/users/${encodeURIComponent(id)}`);
  if (r.deleted) return deletedPage(r.deleted, r.history);
  const { user, extensions, history } = r;
  show(h("p", {}, h("a", { href: "/users", "data-link": true }, "← Users")),
    h("h1", {}, user.userName, " ", activeBadge(user)),
    profileCard(user),
    extensionCards(user, extensions),
    h("h2", {}, "Groups"),
    (user.groups || []).length === 0 ? h("p", { class: "empty" }, "In no group.")
      : h("ul", {}, user.groups.map((g) => h("li", {}, h("a", { href: `/groups/${encodeURIComponent(g.value)}`, "data-link": true }, g.display), " ", h("span", { class: "muted" }, g.type)))),
    h("h2", {}, "History"), historyTable(history),
    h("details", {}, h("summary", {}, "Raw SCIM JSON"), h("pre", {}, JSON.stringify(user, null, 2))));
}
