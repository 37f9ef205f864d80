// The searchable, sortable, paged list of users or groups.

import { api, currentView, debounce, errorBox, h, show } from "./lib.js";

/** A searchable, sortable, paged list. `columns`: [{label, sort, cell(item), optional}]. */
export async function listPage({ title, intro, endpoint, columns, empty, link }) {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", sortBy: params.get("sortBy") || "", sortOrder: params.get("sortOrder") || "ascending", start: Number(params.get("start") || 1) };
  const count = 50;
  const search = h("input", { id: "search", type: "search", value: state.q, placeholder: "Search…", "aria-label": `Search ${title.toLowerCase()}` });
  const body = h("div", { "aria-live": "polite" });
  const mine = currentView();
  async function load() {
    if (mine !== currentView()) return;
    const qs = new URLSearchParams({ count, startIndex: state.start });
    if (state.q) qs.set("q", state.q);
    if (state.sortBy) { qs.set("sortBy", state.sortBy); qs.set("sortOrder", state.sortOrder); }
    history.replaceState(null, "", `${location.pathname}?${new URLSearchParams({ q: state.q, sortBy: state.sortBy, sortOrder: state.sortOrder, start: state.start })}`);
    body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const r = await api("GET", `${endpoint}?${qs}`);
      if (mine !== currentView()) return;
      if (r.items.length === 0) {
        body.replaceChildren(h("p", { class: "empty" }, state.q ? `Nothing matches “${state.q}”.` : empty));
        return;
      }
      const head = columns.map((c) => {
        if (!c.sort) return h("th", { class: c.optional ? "optional" : null }, c.label);
        const sorted = state.sortBy === c.sort ? state.sortOrder : null;
        const b = h("button", { type: "button" }, c.label);
        b.addEventListener("click", () => {
          state.sortOrder = state.sortBy === c.sort && state.sortOrder === "ascending" ? "descending" : "ascending";
          state.sortBy = c.sort; state.start = 1; load();
        });
        return h("th", { class: c.optional ? "optional" : null, "aria-sort": sorted || "none" }, b);
      });
      const prev = h("button", { type: "button", class: "secondary", disabled: state.start <= 1 }, "Previous");
      const next = h("button", { type: "button", class: "secondary", disabled: state.start + count > r.total }, "Next");
      prev.addEventListener("click", () => { state.start = Math.max(1, state.start - count); load(); });
      next.addEventListener("click", () => { state.start += count; load(); });
      body.replaceChildren(
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, head)),
          h("tbody", {}, r.items.map((item) => h("tr", {}, columns.map((c, i) =>
            h("td", { class: c.optional ? "optional" : null }, i === 0 ? h("a", { href: link(item), "data-link": true }, c.cell(item)) : c.cell(item)))))))),
        h("div", { class: "pager" }, prev, next,
          h("span", { class: "muted" }, `${state.start}–${Math.min(state.start + count - 1, r.total)} of ${r.total}`)));
    } catch (e) { body.replaceChildren(errorBox(e)); }
  }
  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.start = 1; load(); }, 250));
  show(h("h1", {}, title), h("p", { class: "muted" }, intro), h("div", { class: "card" }, search), body);
  await load();
}

export function activeBadge(u) {
  return u.active === false ? h("span", { class: "badge bad" }, "suspended") : h("span", { class: "badge ok" }, "active");
}
