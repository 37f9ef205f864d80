// A resource's extensions, one card each, shaped by their definitions.

import { fmt, h } from "./lib.js";

/** The last segment of a schema URI that names something (not a version, not the resource
 * type): `acme` for `urn:ietf:params:scim:schemas:extension:acme:2.0:User`. */
export function uriLabel(uri) {
  const parts = uri.split(/[:/]+/).filter((p) => p && !/^v?\d+(\.\d+)*$/i.test(p) && !/^(urn|https?|users?|groups?)$/i.test(p));
  return parts.at(-1) || uri;
}

/** An extension's members: those `attrs` define first, in their order, each with its type;
 * then any others the resource holds, as sent. Names match in any letter case (RFC 7643 §2.1). */
function extAttrs(obj, attrs) {
  const keys = Object.keys(obj);
  const shown = new Set();
  const rows = [];
  for (const a of attrs) {
    const key = keys.find((k) => !shown.has(k) && k.toLowerCase() === a.name.toLowerCase());
    if (key === undefined) continue;
    shown.add(key);
    if (obj[key] == null) continue;
    rows.push(h("dt", {}, key, " ", h("span", { class: "muted ext-type" }, a.type + (a.multiValued ? " []" : ""))),
      h("dd", {}, extValue(obj[key], a)));
  }
  for (const key of keys.filter((k) => !shown.has(k))) {
    rows.push(h("dt", {}, key, attrs.length ? [" ", h("span", { class: "muted ext-type", title: "not in the declaration" }, "undeclared")] : null),
      h("dd", {}, fmt(obj[key])));
  }
  return rows.length ? h("dl", { class: "kv" }, rows) : h("p", { class: "empty" }, "No values.");
}

/** A value as its definition `a` shapes it: a list when multi-valued, sub-attributes when
 * complex; anything else (or a value of another shape than declared) as sent. */
function extValue(v, a) {
  if (Array.isArray(v) && a.multiValued) {
    const one = { ...a, multiValued: false };
    return h("ul", { class: "ext-values" }, v.map((x) => h("li", {}, extValue(x, one))));
  }
  if (v && typeof v === "object" && !Array.isArray(v) && a.type === "complex") return extAttrs(v, a.subAttributes || []);
  return fmt(v);
}

/** One card per extension the resource carries (`extensions` from the admin API: each URN
 * with the definition the server holds for it, or null when nothing declares it). */
export function extensionCards(resource, extensions) {
  return (extensions || []).map((x) => {
    const def = x.definition;
    const value = resource[x.urn];
    return h("section", { class: "card extension", "data-urn": x.urn },
      h("h2", { title: x.urn }, def?.name || uriLabel(x.urn),
        def ? null : [" ", h("span", { class: "badge warn" }, "not declared")]),
      h("p", { class: "muted urn" }, x.urn),
      value && typeof value === "object" && !Array.isArray(value)
        ? extAttrs(value, def ? def.attributes : []) : h("p", {}, fmt(value)));
  });
}
