// Schemas: declared extensions, declaring one, and extensions seen undeclared.

import { api, errorBox, fmt, h, show, when } from "../lib.js";

/** What an attribute definition says beyond its name and type, in words. */
function characteristics(a) {
  const out = [];
  if (a.required) out.push("required");
  if (a.caseExact) out.push("case-exact");
  if (a.mutability !== "readWrite") out.push(a.mutability);
  if (a.returned !== "default") out.push(`returned ${a.returned}`);
  if (a.uniqueness !== "none") out.push(`unique (${a.uniqueness})`);
  if ((a.canonicalValues || []).length) out.push(`values: ${a.canonicalValues.join(", ")}`);
  if ((a.referenceTypes || []).length) out.push(`refers to: ${a.referenceTypes.join(", ")}`);
  return out.join(" · ") || "—";
}

/** The index an attribute has (`indexes` from the API, keyed by lower-case path), in words. */
function indexLabel(indexes, path) {
  const i = indexes[path.toLowerCase()];
  if (!i) return "—";
  return (i.unique ? "unique index" : "index") + (i.state === "ready" ? "" : ` (${i.state})`);
}

function attributeRows(attrs, indexes, parent) {
  return attrs.flatMap((a) => [
    h("tr", {},
      h("td", {}, parent ? h("span", { class: "muted" }, parent + ".") : null, a.name),
      h("td", {}, a.type + (a.multiValued ? " []" : "")),
      h("td", {}, characteristics(a), a.description ? h("div", { class: "muted" }, a.description) : null),
      h("td", {}, indexLabel(indexes, parent ? `${parent}.${a.name}` : a.name))),
    ...(a.subAttributes ? attributeRows(a.subAttributes, indexes, a.name) : []),
  ]);
}

function declaredCard(s, status) {
  const remove = h("button", { type: "button", class: "danger" }, "Remove");
  remove.addEventListener("click", async () => {
    if (!confirm(`Remove the declaration of ${s.urn}? Values stored under it stay in the ${s.resourceType.toLowerCase()}s' data, undeclared.`)) return;
    try {
      await api("DELETE", `/schemas?urn=${encodeURIComponent(s.urn)}`);
      await schemasPage(h("p", { class: "ok", role: "status" }, `Removed ${s.urn}; stored values are kept.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  const attrs = s.definition?.attributes || [];
  const indexes = Object.fromEntries((s.indexes || []).map((i) => [i.path.toLowerCase(), i]));
  return h("section", { class: "card schema", "data-urn": s.urn },
    h("div", { class: "row" },
      h("div", {}, h("h2", { class: "urn" }, s.urn),
        h("span", { class: "badge" }, s.resourceType), " ",
        s.required ? h("span", { class: "badge warn" }, "required") : null, " ",
        h("span", { class: "muted" }, `declared ${when(s.created)}`, s.updated !== s.created ? `, changed ${when(s.updated)}` : "")),
      h("div", { class: "shrink" }, remove)),
    s.problem ? h("p", { class: "error" }, s.problem) : null,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Attribute"), h("th", {}, "Type"), h("th", {}, "Characteristics"), h("th", {}, "Index"))),
      h("tbody", {}, attributeRows(attrs, indexes)))));
}

/** The form that declares a schema: upload or paste the document, pick its resource type. */
function declareForm(status) {
  const text = h("textarea", { id: "schema-definition", rows: "14", spellcheck: "false", required: true,
    placeholder: '{"id": "urn:ietf:params:scim:schemas:extension:acme:2.0:User",\n "attributes": [{"name": "badgeNumber", "type": "string"}]}' });
  const file = h("input", { id: "schema-file", type: "file", accept: ".json,application/json" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (f) text.value = await f.text();
  });
  const form = h("form", { class: "card", id: "schema-form" },
    h("h2", {}, "Declare a schema"),
    h("p", { class: "muted" }, "An RFC 7643 §7 schema document. Declaring an id that is already declared changes that declaration."),
    h("label", { for: "schema-file" }, "Upload a file"), file,
    h("label", { for: "schema-definition" }, "or paste it"), text,
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "schema-resource" }, "Extends"),
        h("select", { id: "schema-resource" },
          h("option", { value: "" }, "Group if the id ends in :Group, else User"),
          h("option", { value: "User" }, "User"), h("option", { value: "Group" }, "Group"))),
      h("div", {}, h("label", { class: "check" }, h("input", { id: "schema-required", type: "checkbox" }), " Required: every resource must carry it")),
      h("div", { class: "shrink" }, h("button", { type: "submit" }, "Declare"))),
    h("label", { for: "schema-indexed" }, "Index for frequent lookups (attributes with uniqueness are always indexed)"),
    h("input", { id: "schema-indexed", type: "text", spellcheck: "false",
      placeholder: "badgeNumber, sshKeys.value — empty keeps a changed declaration's list" }),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const resourceType = form.querySelector("#schema-resource").value || null;
    try {
      const listed = form.querySelector("#schema-indexed").value.split(",").map((p) => p.trim()).filter(Boolean);
      const r = await api("POST", "/schemas", {
        definition: text.value, resourceType, required: form.querySelector("#schema-required").checked,
        indexed: listed.length ? listed : null,
      });
      await schemasPage(h("p", { class: "ok", role: "status" }, `${r.replaced ? "Changed" : "Declared"} ${r.schema.id} for ${r.resourceType}.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  return form;
}

/** Extensions found in stored data that nothing declares, each with a Declare action. */
function seenSection(resourceType, seen, form, status) {
  if (seen.length === 0) return null;
  return [h("h3", {}, `${resourceType}s`), h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Extension"), h("th", {}, resourceType + "s"), h("th", {}, "Attributes (sample values)"), h("th", {}, ""))),
    h("tbody", {}, seen.map((x) => {
      const declare = h("button", { type: "button", class: "secondary" }, "Declare…");
      declare.addEventListener("click", async () => {
        try {
          const r = await api("GET", `/schemas/draft?resourceType=${resourceType}&urn=${encodeURIComponent(x.urn)}`);
          form.querySelector("#schema-definition").value = JSON.stringify(r.definition, null, 2);
          form.querySelector("#schema-resource").value = resourceType;
          status.replaceChildren(h("p", { class: "muted" }, "Drafted from stored values: check the types, then Declare."));
          form.scrollIntoView();
          form.querySelector("#schema-definition").focus();
        } catch (e) { status.replaceChildren(errorBox(e)); }
      });
      return h("tr", { class: "seen", "data-urn": x.urn },
        h("td", { class: "urn" }, x.urn), h("td", {}, String(x.resources)),
        h("td", {}, h("ul", {}, x.attributes.map((a) => h("li", {}, a.name, " ",
          h("span", { class: "muted" }, a.samples.map(fmt).join(", ")))))),
        h("td", {}, declare));
    }))))];
}

export async function schemasPage(notice) {
  const [{ schemas }, users, groups] = await Promise.all([
    api("GET", "/schemas"), api("GET", "/schemas/seen?resourceType=User"), api("GET", "/schemas/seen?resourceType=Group"),
  ]);
  const status = h("div", { role: "status", "aria-live": "polite" });
  const listStatus = h("div", { role: "status", "aria-live": "polite" });
  const form = declareForm(status);
  const seen = [seenSection("User", users.seen, form, status), seenSection("Group", groups.seen, form, status)].filter(Boolean);
  show(h("h1", {}, "Schemas"),
    h("p", { class: "muted" }, "Extension schemas for users and groups. Declared attributes are typed and validated and appear in /Schemas. Removing or changing a declaration never changes stored data: values stay, undeclared."),
    notice || null, listStatus,
    schemas.length === 0 ? h("p", { class: "empty" }, "No declared schemas.") : schemas.map((s) => declaredCard(s, listStatus)),
    form,
    h("h2", {}, "Undeclared extensions seen"),
    h("p", { class: "muted" }, "Found in the most recently created users and groups, under ids nothing declares."),
    seen.length ? seen.flat() : h("p", { class: "empty", id: "seen-none" }, "None seen."));
}
