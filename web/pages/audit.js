// The audit log, its exports and its retention.

import { api, errorBox, h, show } from "../lib.js";
import { historyTable } from "../history.js";

export async function auditPage() {
  const fields = [["actor", "Actor (token or admin)"], ["resource", "Resource id"], ["action", "Action"]];
  const form = h("form", { class: "card row" },
    fields.map(([k, label]) => h("div", {}, h("label", { for: `f-${k}` }, label), h("input", { id: `f-${k}`, name: k, type: "text" }))),
    h("div", {}, h("label", { for: "f-outcome" }, "Outcome"), h("select", { id: "f-outcome", name: "outcome" },
      h("option", { value: "" }, "any"), h("option", { value: "success" }, "success"), h("option", { value: "failure" }, "failure"))),
    h("div", {}, h("label", { for: "f-since" }, "From"), h("input", { id: "f-since", name: "since", type: "datetime-local" })),
    h("div", {}, h("label", { for: "f-until" }, "To"), h("input", { id: "f-until", name: "until", type: "datetime-local" })),
    h("div", { class: "shrink" }, h("button", { type: "submit" }, "Filter")));
  const body = h("div", { "aria-live": "polite" });
  const exports = h("p", {});
  let before = null;
  const query = () => {
    const qs = new URLSearchParams();
    for (const k of ["actor", "resource", "action", "outcome"]) if (form[k].value.trim()) qs.set(k, form[k].value.trim());
    for (const k of ["since", "until"]) if (form[k].value) qs.set(k, new Date(form[k].value).toISOString());
    return qs;
  };
  async function load(append) {
    const qs = query();
    if (append && before) qs.set("before", before);
    try {
      const r = await api("GET", `/audit?${qs}`);
      before = r.next;
      const table = historyTable(r.entries);
      if (append) body.querySelector("tbody")?.append(...table.querySelectorAll("tbody tr"));
      else body.replaceChildren(r.entries.length ? table : h("p", { class: "empty" }, "Nothing recorded yet for this filter."));
      const more = h("button", { type: "button", class: "secondary" }, "Older entries");
      more.addEventListener("click", () => load(true));
      body.querySelector(".pager")?.remove();
      if (r.next) body.append(h("div", { class: "pager" }, more));
      const base = `/admin/api/audit/export?${query()}`;
      exports.replaceChildren("Export this view: ", h("a", { href: `${base}&format=csv` }, "CSV"), " · ", h("a", { href: `${base}&format=jsonl` }, "JSON Lines"));
    } catch (e) { body.replaceChildren(errorBox(e)); }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  show(h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Every change, who made it and what changed; every rejected request and its error; every console action. Newest first."),
    form, exports, body, await retentionCard());
  await load(false);
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
