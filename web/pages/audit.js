// The audit log, its exports and its retention. The filter lives in the URL (/audit?actor=…):
// a view can be shared, and Back returns to the previous filter (each change is a history
// entry; the router renders the page again on popstate).

import { api, debounce, errorBox, h, navigate, show } from "../lib.js";
import { historyTable } from "../history.js";

/** The one-click filters, as the server knows them (`quick=`). */
const QUICK = [["offboarding", "Offboarding this week"], ["failures", "Failures"], ["console", "Console actions"]];
/** Query parameters of a filter; `since` and `until` are RFC 3339. */
const KEYS = ["quick", "actor", "resource", "action", "outcome", "since", "until"];

export async function auditPage() {
  const current = new URLSearchParams(location.search);
  const filter = new URLSearchParams();
  for (const k of KEYS) if (current.get(k)) filter.set(k, current.get(k));
  const go = (qs) => navigate(qs.toString() ? `/audit?${qs}` : "/audit");

  const text = (k, label, list) => h("div", {}, h("label", { for: `f-${k}` }, label),
    h("input", { id: `f-${k}`, name: k, type: "text", value: filter.get(k) || "", list, autocomplete: "off" }));
  const moment = (k, label) => h("div", {}, h("label", { for: `f-${k}` }, label),
    h("input", { id: `f-${k}`, name: k, type: "datetime-local", value: localInput(filter.get(k)) }));
  const outcome = h("select", { id: "f-outcome", name: "outcome" },
    ["", "success", "failure"].map((o) => h("option", { value: o, selected: (filter.get("outcome") || "") === o }, o || "any")));
  const suggestions = { actor: h("datalist", { id: "actor-suggestions" }), action: h("datalist", { id: "action-suggestions" }) };
  const form = h("form", { class: "card row", role: "search", "aria-label": "Filter the audit log" },
    text("actor", "Actor (token or admin)", "actor-suggestions"),
    text("resource", "User, group or id"),
    text("action", "Action", "action-suggestions"),
    h("div", {}, h("label", { for: "f-outcome" }, "Outcome"), outcome),
    moment("since", "From"), moment("until", "To"),
    h("div", { class: "shrink" }, h("button", { type: "submit" }, "Filter")),
    suggestions.actor, suggestions.action);
  for (const field of ["actor", "action"]) {
    const fill = async () => {
      try {
        const r = await api("GET", `/audit/suggestions?field=${field}&prefix=${encodeURIComponent(form[field].value)}`);
        suggestions[field].replaceChildren(...r.values.map((v) => h("option", { value: v })));
      } catch { /* suggestions are a convenience: typing still works without them */ }
    };
    form[field].addEventListener("input", debounce(fill, 150));
    fill();
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const qs = new URLSearchParams();
    if (filter.get("quick")) qs.set("quick", filter.get("quick"));
    for (const k of ["actor", "resource", "action", "outcome"]) if (form[k].value.trim()) qs.set(k, form[k].value.trim());
    for (const k of ["since", "until"]) if (form[k].value) qs.set(k, new Date(form[k].value).toISOString());
    go(qs);
  });

  // Buttons side by side at their own width, a space apart (inline, not a stretching row).
  const quick = h("p", { role: "group", "aria-label": "Quick filters" },
    QUICK.flatMap(([k, label]) => {
      const on = filter.get("quick") === k;
      const b = h("button", { type: "button", class: on ? "" : "secondary", "aria-pressed": String(on), "data-quick": k }, label);
      b.addEventListener("click", () => go(on ? new URLSearchParams() : new URLSearchParams({ quick: k })));
      return [b, " "];
    }),
    filter.toString() ? h("a", { href: "/audit", "data-link": true }, "Clear filters") : null);

  const body = h("div", { "aria-live": "polite" });
  const base = `/admin/api/audit/export?${filter}${filter.toString() ? "&" : ""}`;
  const exports = h("p", {}, "Export this view: ", h("a", { href: `${base}format=csv` }, "CSV"), " · ",
    h("a", { href: `${base}format=jsonl` }, "JSON Lines"));
  let before = null;
  async function load(append) {
    const qs = new URLSearchParams(filter);
    if (append && before) qs.set("before", before);
    try {
      const r = await api("GET", `/audit?${qs}`);
      before = r.next;
      const table = historyTable(r.entries);
      if (append) body.querySelector("tbody")?.append(...table.querySelectorAll("tbody tr"));
      else body.replaceChildren(r.entries.length ? table : h("p", { class: "empty" }, "Nothing recorded for this filter."));
      const more = h("button", { type: "button", class: "secondary" }, "Older entries");
      more.addEventListener("click", () => load(true));
      body.querySelector(".pager")?.remove();
      if (r.next) body.append(h("div", { class: "pager" }, more));
    } catch (e) { body.replaceChildren(errorBox(e)); }
  }
  show(h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Every change, who made it and what changed; every rejected request and its error; every console action. Newest first."),
    quick, form, exports, body, await retentionCard());
  await load(false);
}

/** An RFC 3339 time as a datetime-local input's value, in the browser's zone. */
function localInput(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || isNaN(d)) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The retention setting: how long and how many entries the audit log keeps. */
async function retentionCard() {
  const r = await api("GET", "/settings");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const number = (id, label, value) => h("div", {},
    h("label", { for: id }, label),
    h("input", { id, type: "text", inputmode: "numeric", value: value ?? "", placeholder: "no limit" }));
  const form = h("form", { class: "card" },
    h("h2", {}, "Retention"),
    h("p", { class: "muted" }, "Older entries are removed every hour. Leave a field empty for no limit."),
    h("div", { class: "row" },
      number("keep-days", "Keep for (days)", r.maxAgeDays),
      number("keep-rows", "Keep at most (entries)", r.maxRows),
      number("keep-mb", "Keep at most (MB on disk)", r.maxMegabytes),
      h("div", { class: "shrink" }, h("button", { type: "submit" }, "Save"))),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = (id) => {
      const v = form.querySelector("#" + id).value.trim();
      return v === "" ? null : Number(v);
    };
    try {
      await api("PUT", "/settings", {
        maxAgeDays: value("keep-days"), maxRows: value("keep-rows"), maxMegabytes: value("keep-mb"),
      });
      status.replaceChildren(h("p", { class: "ok" }, "Saved."));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  return form;
}
