// Users: the list and a user's page.

import { api, h, show, when } from "../lib.js";
import { extensionCards } from "../extensions.js";
import { historyTable } from "../history.js";
import { activeBadge, listPage } from "../list.js";

export function usersPage() {
  return listPage({
    title: "Users", endpoint: "/users",
    intro: "Everyone your identity provider has provisioned. Search matches user name and display name (and email, when you type an @).",
    empty: "No users yet — connect OneLogin on the Connect page.",
    link: (u) => `/users/${encodeURIComponent(u.id)}`,
    columns: [
      { label: "User name", sort: "userName", cell: (u) => u.userName },
      { label: "Name", sort: "displayName", cell: (u) => u.displayName || u.name?.formatted || "—", optional: true },
      { label: "Email", sort: "emails", cell: (u) => (u.emails || []).find((e) => e.primary)?.value || u.emails?.[0]?.value || "—", optional: true },
      { label: "State", sort: "active", cell: activeBadge },
      { label: "Changed", sort: "meta.lastModified", cell: (u) => when(u.meta.lastModified), optional: true },
    ],
  });
}

export async function userPage(id) {
  const { user, extensions, history } = await api("GET", `/users/${encodeURIComponent(id)}`);
  const rows = [["User name", user.userName], ["Display name", user.displayName], ["Name", user.name?.formatted || [user.name?.givenName, user.name?.familyName].filter(Boolean).join(" ")],
    ["Emails", (user.emails || []).map((e) => e.value + (e.type ? ` (${e.type})` : "")).join(", ")], ["Title", user.title],
    ["External id", user.externalId], ["Created", when(user.meta.created)], ["Changed", when(user.meta.lastModified)], ["Id", user.id]];
  show(h("p", {}, h("a", { href: "/users", "data-link": true }, "← Users")),
    h("h1", {}, user.userName, " ", activeBadge(user)),
    h("div", { class: "card" }, h("dl", { class: "kv" }, rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    extensionCards(user, extensions),
    h("h2", {}, "Groups"),
    (user.groups || []).length === 0 ? h("p", { class: "empty" }, "In no group.")
      : h("ul", {}, user.groups.map((g) => h("li", {}, h("a", { href: `/groups/${encodeURIComponent(g.value)}`, "data-link": true }, g.display), " ", h("span", { class: "muted" }, g.type)))),
    h("h2", {}, "History"), historyTable(history),
    h("details", {}, h("summary", {}, "Raw SCIM JSON"), h("pre", {}, JSON.stringify(user, null, 2))));
}
