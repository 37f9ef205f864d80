// Groups: the list and a group's page.

import { api, h, show, when } from "../lib.js";
import { extensionCards } from "../extensions.js";
import { historyTable } from "../history.js";
import { listPage } from "../list.js";

export function groupsPage() {
  return listPage({
    title: "Groups", endpoint: "/groups",
    intro: "Teams your identity provider pushes, with their member counts.",
    empty: "No groups yet — OneLogin creates them once its Groups parameter is included in provisioning.",
    link: (g) => `/groups/${encodeURIComponent(g.id)}`,
    columns: [
      { label: "Name", sort: "displayName", cell: (g) => g.displayName },
      { label: "Members", cell: (g) => g.memberCount },
      { label: "Changed", sort: "meta.lastModified", cell: (g) => when(g.meta.lastModified), optional: true },
    ],
  });
}

export async function groupPage(id) {
  const start = Number(new URLSearchParams(location.search).get("start") || 1);
  const count = 50;
  const { group, extensions, history } = await api("GET", `/groups/${encodeURIComponent(id)}?startIndex=${start}&count=${count}`);
  const pager = h("div", { class: "pager" });
  if (start > 1) pager.append(h("a", { href: `?start=${Math.max(1, start - count)}`, "data-link": true }, "Previous"));
  if (start + count <= group.memberCount) pager.append(h("a", { href: `?start=${start + count}`, "data-link": true }, "Next"));
  show(h("p", {}, h("a", { href: "/groups", "data-link": true }, "← Groups")),
    h("h1", {}, group.displayName),
    h("p", { class: "muted" }, `${group.memberCount} members`),
    extensionCards(group, extensions),
    group.members.length === 0 ? h("p", { class: "empty" }, "No members.")
      : h("ul", {}, group.members.map((m) => h("li", {},
          h("a", { href: `/${m.type === "User" ? "users" : "groups"}/${encodeURIComponent(m.id)}`, "data-link": true }, m.name),
          " ", h("span", { class: "muted" }, m.type)))),
    pager,
    h("h2", {}, "History"), historyTable(history),
    h("details", {}, h("summary", {}, "Raw SCIM JSON"), h("pre", {}, JSON.stringify(group, null, 2))));
}
