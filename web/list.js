// The searchable, sortable, paged list of users or groups. Its state (search, filter, sort,
// page) lives in the URL: each change is a history entry, so Back walks back through them
// (app.js renders the page again on popstate, from the URL).

import { api, currentView, debounce, errorBox, h, show } from "./lib.js";

/** The columns shown: those the admin chose (kept in localStorage), else the defaults. */
function chosenColumns(storeKey, columns) {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch { saved = null; }
  return new Set(columns.filter((c) => c.fixed || (Array.isArray(saved) ? saved.includes(c.key) : !c.hidden)).map((c) => c.key));
}

/** A searchable, sortable, paged list. `columns`: [{key, label, sort, cell(item), optional,
 * fixed, hidden}] (`fixed`: always shown; `hidden`: not shown until chosen). `filters`:
 * [{name, label, options: [[value, text]…]}], sent as query parameters. `exports`: the
 * endpoint that streams the filtered list as CSV or JSON. */
export async function listPage({ title, intro, endpoint, columns, empty, link, filters = [], exports }) {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", sortBy: params.get("sortBy") || "", sortOrder: params.get("sortOrder") || "ascending", start: Math.max(1, Number(params.get("start")) || 1) };
  for (const f of filters) state[f.name] = params.get(f.name) || f.options[0][0];
  const count = 50;
  const storeKey = `scimd.columns.${endpoint}`;
  let shown = chosenColumns(storeKey, columns);
  const search = h("input", { id: "search", type: "search", value: state.q, placeholder: "Search…", "aria-label": `Search ${title.toLowerCase()}` });
  const body = h("div", { "aria-live": "polite" });
  const mine = currentView();

  /** The list's own query parameters, without defaults. */
  function query() {
    const qs = new URLSearchParams();
    if (state.q) qs.set("q", state.q);
    for (const f of filters) if (state[f.name] !== f.options[0][0]) qs.set(f.name, state[f.name]);
    if (state.sortBy) { qs.set("sortBy", state.sortBy); qs.set("sortOrder", state.sortOrder); }
    return qs;
  }
  /** Records the new state as a history entry, then shows it. */
  function go(focusSort) {
    const qs = query();
    if (state.start > 1) qs.set("start", state.start);
    const url = `${location.pathname}${qs.size ? `?${qs}` : ""}`;
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    return load(focusSort);
  }
  const exportLinks = exports ? h("p", { class: "exports" }) : null;
  function updateExports() {
    if (!exportLinks) return;
    const qs = query();
    qs.delete("sortBy"); qs.delete("sortOrder");
    exportLinks.replaceChildren("Export ", ...["csv", "json"].flatMap((format, i) => {
      qs.set("format", format);
      return [i ? " · " : "", h("a", { href: `/admin/api${exports}?${qs}`, download: "", class: `export-${format}` }, format.toUpperCase())];
    }), h("span", { class: "muted" }, " (everything the search and filters select)"));
  }

  async function load(focusSort) {
    if (mine !== currentView()) return;
    updateExports();
    const qs = query();
    qs.set("count", count); qs.set("startIndex", state.start);
    body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const r = await api("GET", `${endpoint}?${qs}`);
      if (mine !== currentView()) return;
      if (r.items.length === 0) {
        body.replaceChildren(h("p", { class: "empty" }, state.q ? `Nothing matches “${state.q}”.` : empty));
        return;
      }
      const cols = columns.filter((c) => shown.has(c.key));
      const head = cols.map((c) => {
        if (!c.sort) return h("th", { class: c.optional ? "optional" : null }, c.label);
        const sorted = state.sortBy === c.sort ? state.sortOrder : null;
        const b = h("button", { type: "button", "data-sort": c.sort }, c.label);
        b.addEventListener("click", () => {
          state.sortOrder = state.sortBy === c.sort && state.sortOrder === "ascending" ? "descending" : "ascending";
          state.sortBy = c.sort; state.start = 1; go(true);
        });
        return h("th", { class: c.optional ? "optional" : null, "aria-sort": sorted || "none" }, b);
      });
      const prev = h("button", { type: "button", class: "secondary", disabled: state.start <= 1 }, "Previous");
      const next = h("button", { type: "button", class: "secondary", disabled: state.start + count > r.total }, "Next");
      prev.addEventListener("click", () => { state.start = Math.max(1, state.start - count); go(); });
      next.addEventListener("click", () => { state.start += count; go(); });
      body.replaceChildren(
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, head)),
          h("tbody", {}, r.items.map((item) => h("tr", {}, cols.map((c, i) =>
            h("td", { class: c.optional ? "optional" : null, "data-label": c.label }, i === 0 ? h("a", { href: link(item), "data-link": true }, c.cell(item)) : c.cell(item)))))))),
        h("div", { class: "pager" }, prev, next,
          h("span", { class: "muted" }, `${state.start}–${Math.min(state.start + count - 1, r.total)} of ${r.total.toLocaleString("en")}${r.capped ? "+" : ""}`)));
      // The table was rebuilt: keep keyboard focus on the sort button that was pressed.
      if (focusSort) body.querySelector(`button[data-sort="${CSS.escape(state.sortBy)}"]`)?.focus();
    } catch (e) { body.replaceChildren(errorBox(e)); }
  }

  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.start = 1; go(); }, 200));
  const controls = [search];
  for (const f of filters) {
    const select = h("select", { id: `filter-${f.name}`, "aria-label": f.label },
      f.options.map(([value, text]) => h("option", { value, selected: state[f.name] === value }, text)));
    select.addEventListener("change", () => { state[f.name] = select.value; state.start = 1; go(); });
    controls.push(h("label", { class: "filter" }, `${f.label} `, select));
  }
  const choosable = columns.filter((c) => !c.fixed);
  if (choosable.length) {
    const boxes = choosable.map((c) => {
      const box = h("input", { type: "checkbox", value: c.key, checked: shown.has(c.key) });
      box.addEventListener("change", () => {
        if (box.checked) shown.add(c.key); else shown.delete(c.key);
        localStorage.setItem(storeKey, JSON.stringify([...shown]));
        shown = chosenColumns(storeKey, columns);
        load();
      });
      return h("label", {}, box, " ", c.label);
    });
    controls.push(h("details", { class: "columns" }, h("summary", {}, "Columns"), h("fieldset", {}, h("legend", {}, "Columns shown"), boxes)));
  }
  show(h("h1", {}, title), h("p", { class: "muted" }, intro), h("div", { class: "card list-controls" }, controls), exportLinks, body);
  await load();
}

export function activeBadge(u) {
  return u.active === false ? h("span", { class: "badge bad" }, "suspended") : h("span", { class: "badge ok" }, "active");
}
