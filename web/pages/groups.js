// Groups: the list and a group's page (its members searched, paged and exported).

import { api, currentView, debounce, errorBox, h, show, when } from "../lib.js";
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
      { key: "name", label: "Name", sort: "displayName", cell: (g) => g.displayName, fixed: true },
      { key: "members", label: "Members", cell: (g) => g.memberCount, fixed: true },
      { key: "changed", label: "Changed", sort: "meta.lastModified", cell: (g) => when(g.meta.lastModified), optional: true },
    ],
  });
}

function member(m) {
  const href = `/${m.type === "User" ? "users" : "groups"}/${encodeURIComponent(m.id)}`;
  return h("li", {},
    h("a", { href, "data-link": true }, m.name),
    m.displayName && m.displayName !== m.name ? h("span", {}, ` — ${m.displayName}`) : null,
    " ", m.type === "Group" ? h("span", { class: "muted" }, "group")
      : m.active === false ? h("span", { class: "badge bad" }, "suspended") : null);
}

export async function groupPage(id) {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", start: Math.max(1, Number(params.get("start")) || 1) };
  const count = 50;
  const path = `/groups/${encodeURIComponent(id)}`;
  const first = await api("GET", `${path}?${new URLSearchParams({ q: state.q, startIndex: state.start, count })}`);
  const { group, extensions, history: changes } = first;
  const mine = currentView();
  const search = h("input", { id: "member-search", type: "search", value: state.q, placeholder: "Search members…", "aria-label": "Search members" });
  const list = h("div", { "aria-live": "polite" });
  const exportLinks = h("p", { class: "exports" });

  /** Shows one page of members (`r`: the group as the API answered). */
  function render(r) {
    const qs = new URLSearchParams(state.q ? { q: state.q } : {});
    exportLinks.replaceChildren("Export members ", ...["csv", "json"].flatMap((format, i) => {
      qs.set("format", format);
      return [i ? " · " : "", h("a", { href: `/admin/api${path}/members/export?${qs}`, download: "", class: `export-${format}` }, format.toUpperCase())];
    }));
    const total = r.memberCount;
    const prev = h("button", { type: "button", class: "secondary", disabled: state.start <= 1 }, "Previous");
    const next = h("button", { type: "button", class: "secondary", disabled: state.start + count > total }, "Next");
    prev.addEventListener("click", () => { state.start = Math.max(1, state.start - count); go(); });
    next.addEventListener("click", () => { state.start += count; go(); });
    list.replaceChildren(
      r.members.length === 0 ? h("p", { class: "empty" }, state.q ? `No member matches “${state.q}”.` : "No members.")
        : h("ul", { class: "members" }, r.members.map(member)),
      h("div", { class: "pager" }, prev, next,
        h("span", { class: "muted" }, total ? `${state.start}–${Math.min(state.start + count - 1, total)} of ${total}` : "")));
  }
  async function go() {
    const qs = new URLSearchParams();
    if (state.q) qs.set("q", state.q);
    if (state.start > 1) qs.set("start", state.start);
    const url = `${location.pathname}${qs.size ? `?${qs}` : ""}`;
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    try {
      const r = await api("GET", `${path}?${new URLSearchParams({ q: state.q, startIndex: state.start, count })}`);
      if (mine === currentView()) render(r.group);
    } catch (e) { list.replaceChildren(errorBox(e)); }
  }
  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.start = 1; go(); }, 200));
  render(group);
  show(h("p", {}, h("a", { href: "/groups", "data-link": true }, "← Groups")),
    h("h1", {}, group.displayName),
    extensionCards(group, extensions),
    h("h2", {}, "Members"),
    h("div", { class: "card" }, search), exportLinks, list,
    h("h2", {}, "History"), historyTable(changes),
    h("details", {}, h("summary", {}, "Raw SCIM JSON"), h("pre", {}, JSON.stringify(group, null, 2))));
}
