// The scimd console: a small single-page app over /admin/api. No build step, no framework.
// Everything is built with DOM calls (never innerHTML with data), so names in the directory
// cannot inject markup.

const main = document.getElementById("main");
let csrf = null;
/** Bumped by every navigation: work started for an earlier page must not touch this one. */
let view = 0;

/** Creates an element: h("a", {href: "/x"}, "text", child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A time in the browser's own zone. */
function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch("/admin/api" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) throw new ApiError(res.status, data.detail || res.statusText);
  return data;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n != null && n !== false));
  main.focus();
}

function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

function copyButton(text, label = "Copy") {
  const b = h("button", { type: "button", class: "secondary" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy it";
    }
    setTimeout(() => (b.textContent = label), 2000);
  });
  return b;
}

function navigate(path) {
  history.pushState(null, "", path);
  route();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (a && !ev.metaKey && !ev.ctrlKey && a.origin === location.origin) {
    ev.preventDefault();
    navigate(a.pathname + a.search);
  }
});
window.addEventListener("popstate", route);

function setNav(signedIn, username) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("who-name").textContent = username || "";
  for (const a of document.querySelectorAll("nav a")) {
    const here = location.pathname.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/logout"); } catch { /* signed out either way */ }
  csrf = null;
  navigate("/login");
});

// ---------------------------------------------------------------------------------------
// Pages before sign-in
// ---------------------------------------------------------------------------------------

function passwordForm(title, intro, submitLabel, onSubmit) {
  const status = h("div", { role: "status", "aria-live": "polite" });
  const form = h("form", { class: "card narrow" },
    h("h1", {}, title),
    h("p", { class: "muted" }, intro),
    h("label", { for: "username" }, "Username"),
    h("input", { id: "username", name: "username", type: "text", autocomplete: "username", required: true }),
    h("label", { for: "password" }, "Password"),
    h("input", { id: "password", name: "password", type: "password", autocomplete: submitLabel === "Sign in" ? "current-password" : "new-password", required: true, minlength: submitLabel === "Sign in" ? null : "12" }),
    h("p", {}, h("button", { type: "submit" }, submitLabel)),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren(h("span", { class: "muted" }, "Working…"));
    try {
      await onSubmit(form.username.value, form.password.value);
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  });
  return form;
}

function setupPage() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (!code) {
    return show(h("div", { class: "card narrow" }, h("h1", {}, "Set up scimd"),
      h("p", {}, "Open the one-time setup link from scimd's log (it lasts an hour), or run ",
        h("code", {}, "scimd admin set-password --username NAME"), " on the server.")));
  }
  show(passwordForm("Create the first administrator",
    "This link works once. Choose a password of at least 12 characters.", "Create administrator",
    async (username, password) => {
      const s = await api("POST", "/setup", { code, username, password });
      csrf = s.csrf;
      history.replaceState(null, "", "/connect");
      route();
    }));
}

function loginPage() {
  show(passwordForm("Sign in", "The scimd console: tokens, users, groups and the audit log.", "Sign in",
    async (username, password) => {
      const s = await api("POST", "/login", { username, password });
      csrf = s.csrf;
      navigate("/connect");
    }));
}

// ---------------------------------------------------------------------------------------
// Connect
// ---------------------------------------------------------------------------------------

async function connectPage() {
  const base = location.origin + "/scim/v2";
  const { tokens, now } = await api("GET", "/tokens");
  const check = h("div", { role: "status", "aria-live": "polite" });
  const checkButton = h("button", { type: "button", class: "secondary" }, "Check connection");
  checkButton.addEventListener("click", async () => {
    check.replaceChildren(h("span", { class: "muted" }, "Checking…"));
    try {
      const r = await api("POST", "/check-connection");
      check.replaceChildren(h("p", { class: r.ok ? "ok" : "bad" },
        r.ok ? `Working: ${r.baseUrl}/Users answered ${r.answer}, as OneLogin's Enable expects.`
             : "The endpoint answered, but not as expected."));
    } catch (e) { check.replaceChildren(errorBox(e)); }
  });
  const live = tokens.filter((t) => !t.revoked || t.revoked > now);
  show(
    h("h1", {}, "Connect an identity provider"),
    h("p", { class: "muted" }, "Point OneLogin (or Okta, Entra ID…) at this server. Everything it sends shows up under Users, Groups and the Audit log."),
    h("div", { class: "card" },
      h("label", { for: "base" }, "SCIM Base URL"),
      h("div", { class: "secret" }, h("code", { id: "base" }, base), copyButton(base)),
      h("p", {}, checkButton), check),
    h("div", { class: "card" },
      h("h2", {}, "OneLogin: “SCIM Provisioner with SAML (SCIM v2 Core)”"),
      h("ol", { class: "steps" },
        h("li", {}, "Applications → Add App → search “SCIM Provisioner with SAML (SCIM v2 Core)” → Save."),
        h("li", {}, "Configuration: paste the SCIM Base URL above; paste a write token from ", h("a", { href: "/tokens", "data-link": true }, "Tokens"), " into “SCIM Bearer Token”; click Enable under API Connection."),
        h("li", {}, "Provisioning: tick “Enable provisioning”; untick “Require admin approval” for create, update and delete unless you want to approve each change; choose what happens when users are deleted or suspended (Suspend keeps them, with active = false)."),
        h("li", {}, "Parameters: open Groups, tick “Include in User Provisioning” and make it multi-value."),
        h("li", {}, "Rules: add a rule with the action “Set Groups in …” to send OneLogin roles as groups."),
        h("li", {}, "Users: assign the app to people; they appear here within seconds."))),
    h("h2", {}, "Last requests"),
    live.length === 0
      ? h("p", { class: "empty" }, "No tokens yet — ", h("a", { href: "/tokens", "data-link": true }, "create one"), " for your identity provider.")
      : h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", {}, "Token"), h("th", {}, "Last request"), h("th", {}, "When"), h("th", { class: "optional" }, "From"))),
          h("tbody", {}, live.map((t) => h("tr", {},
            h("td", {}, t.name), h("td", {}, t.lastRequest || "none yet"),
            h("td", {}, when(t.lastUsed)), h("td", { class: "optional" }, t.lastClient || "—")))))),
  );
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

function tokenStatus(t, now) {
  if (!t.revoked) return h("span", { class: "badge ok" }, "active");
  if (t.revoked > now) return h("span", { class: "badge warn" }, "old secret, ends " + when(t.revoked));
  return h("span", { class: "badge bad" }, "revoked " + when(t.revoked));
}

function shownOnce(name, token, scope) {
  const what = scope ? `${scope} token` : "Token";
  return h("div", { class: "card", role: "alert" },
    h("p", {}, h("strong", {}, `${what[0].toUpperCase()}${what.slice(1)} “${name}”: copy it now. `), "It is not shown again."),
    h("div", { class: "secret" }, h("code", { id: "new-token" }, token), copyButton(token)));
}

async function tokensPage(notice) {
  const { tokens, now } = await api("GET", "/tokens");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const form = h("form", { class: "card" },
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "token-name" }, "New token name"),
        h("input", { id: "token-name", type: "text", placeholder: "onelogin", required: true, maxlength: "100" })),
      h("div", { class: "shrink" }, h("label", { for: "token-scope" }, "Scope"),
        h("select", { id: "token-scope", "aria-describedby": "token-scope-help" },
          h("option", { value: "write", selected: true }, "write"),
          h("option", { value: "read" }, "read"))),
      h("div", { class: "shrink" }, h("button", { type: "submit" }, "Create token"))),
    h("p", { id: "token-scope-help", class: "muted" },
      "write: what an identity provider needs. read: may look up users and groups and follow the change feed, never change anything."));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const name = form.querySelector("#token-name").value.trim();
      const scope = form.querySelector("#token-scope").value;
      const r = await api("POST", "/tokens", { name, scope });
      await tokensPage(shownOnce(r.name, r.token, r.scope));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  const rows = tokens.map((t) => {
    const active = !t.revoked;
    const overlap = h("select", { "aria-label": `Old secret of ${t.name} keeps working for` },
      h("option", { value: "none" }, "old secret stops now"),
      h("option", { value: "1h" }, "old secret works 1 hour"),
      h("option", { value: "24h" }, "old secret works 24 hours"));
    const regen = h("button", { type: "button", class: "secondary" }, "Regenerate");
    regen.addEventListener("click", async () => {
      try {
        const r = await api("POST", `/tokens/${encodeURIComponent(t.name)}/regenerate`, { overlap: overlap.value });
        await tokensPage(shownOnce(r.name, r.token));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    });
    const revoke = h("button", { type: "button", class: "danger" }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke “${t.name}”? Clients using it get 401 at once.`)) return;
      try {
        await api("DELETE", `/tokens/${encodeURIComponent(t.name)}`);
        await tokensPage(h("p", { class: "ok", role: "status" }, `Revoked “${t.name}”.`));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    });
    return h("tr", {},
      h("td", {}, t.name), h("td", {}, h("span", { class: "badge" }, t.scope)), h("td", { class: "optional" }, when(t.created)),
      h("td", {}, when(t.lastUsed), t.lastClient ? h("div", { class: "muted" }, t.lastClient) : null),
      h("td", {}, tokenStatus(t, now)),
      h("td", {}, active ? h("div", { class: "row" }, overlap, h("div", { class: "shrink" }, regen), h("div", { class: "shrink" }, revoke)) : null));
  });
  show(h("h1", {}, "Tokens"),
    h("p", { class: "muted" }, "Bearer tokens for SCIM clients. Each is shown once; only a digest is stored. Regenerate with an overlap to rotate without breaking provisioning."),
    notice || null, form, status,
    tokens.length === 0 ? h("p", { class: "empty" }, "No tokens yet — create one, then paste it into your identity provider.")
      : h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Scope"), h("th", { class: "optional" }, "Created"), h("th", {}, "Last used"), h("th", {}, "Status"), h("th", {}, "Actions"))),
          h("tbody", {}, rows))));
}

// ---------------------------------------------------------------------------------------
// Users and groups
// ---------------------------------------------------------------------------------------

function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** A searchable, sortable, paged list. `columns`: [{label, sort, cell(item), optional}]. */
async function listPage({ title, intro, endpoint, columns, empty, link }) {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", sortBy: params.get("sortBy") || "", sortOrder: params.get("sortOrder") || "ascending", start: Number(params.get("start") || 1) };
  const count = 50;
  const search = h("input", { id: "search", type: "search", value: state.q, placeholder: "Search…", "aria-label": `Search ${title.toLowerCase()}` });
  const body = h("div", { "aria-live": "polite" });
  const mine = view;
  async function load() {
    if (mine !== view) return;
    const qs = new URLSearchParams({ count, startIndex: state.start });
    if (state.q) qs.set("q", state.q);
    if (state.sortBy) { qs.set("sortBy", state.sortBy); qs.set("sortOrder", state.sortOrder); }
    history.replaceState(null, "", `${location.pathname}?${new URLSearchParams({ q: state.q, sortBy: state.sortBy, sortOrder: state.sortOrder, start: state.start })}`);
    body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const r = await api("GET", `${endpoint}?${qs}`);
      if (mine !== view) return;
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

function activeBadge(u) {
  return u.active === false ? h("span", { class: "badge bad" }, "suspended") : h("span", { class: "badge ok" }, "active");
}

function usersPage() {
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

function groupsPage() {
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

function historyTable(entries) {
  if (entries.length === 0) return h("p", { class: "empty" }, "No recorded changes.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Details"))),
    h("tbody", {}, entries.map((e) => h("tr", {},
      h("td", {}, when(e.at)), h("td", {}, e.actor || e.actorKind),
      h("td", {}, e.action, " ", e.resourceName ? h("span", { class: "muted" }, e.resourceName) : null,
        e.outcome === "failure" ? h("span", { class: "badge bad" }, String(e.status)) : null),
      h("td", {}, describe(e)))))));
}

/** What an entry changed, in words. */
function describe(e) {
  const d = e.detail || {};
  const parts = [];
  for (const c of d.changes || []) parts.push([pathLabel(c.path), `: ${fmt(c.before)} → ${fmt(c.after)}`]);
  const names = (list) => list.map((m) => m.display || m.value).join(", ");
  if (d.membersAdded) parts.push(`added ${names(d.membersAdded)}${d.membersAddedCount ? ` (${d.membersAddedCount} in all)` : ""}`);
  if (d.membersRemoved) parts.push(`removed ${names(d.membersRemoved)}${d.membersRemovedCount ? ` (${d.membersRemovedCount} in all)` : ""}`);
  if (d.skippedMembers) parts.push(`skipped unknown ids ${d.skippedMembers.join(", ")}`);
  if (d.ignored) parts.push(`ignored: ${d.ignored.join(", ")}${d.ignoredMore ? `, +${d.ignoredMore} more` : ""}`);
  if (d.unchanged) parts.push("nothing else changed (recorded once a day per actor and set of names)");
  if (d.error) parts.push(d.error);
  if (d.oldSecretValidUntil) parts.push(`old secret works until ${when(d.oldSecretValidUntil)}`);
  if (d.attributes) parts.push(`${d.resourceType} extension: ${d.attributes.join(", ")}${d.required ? " (required)" : ""}`);
  if (d.storedValues) parts.push(`stored values ${d.storedValues}`);
  return parts.length ? h("ul", {}, parts.map((p) => h("li", {}, p))) : "—";
}

/** An extension attribute (`urn:…:2.0:User:badgeNumber`) by its own name, its schema on hover:
 * the full URN would fill the column. Attribute names never hold a colon, so the last one ends
 * the schema's id. */
function pathLabel(path) {
  const m = /^((?:urn:|https?:\/\/).*):([^:]+)$/i.exec(path);
  return m ? h("abbr", { class: "ext-attr", title: m[1] }, m[2]) : path;
}

function fmt(v) {
  if (v === undefined || v === null) return "(none)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The last segment of a schema URI that names something (not a version, not the resource
 * type): `acme` for `urn:ietf:params:scim:schemas:extension:acme:2.0:User`. */
function uriLabel(uri) {
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
function extensionCards(resource, extensions) {
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

async function userPage(id) {
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

async function groupPage(id) {
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

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

async function auditPage() {
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

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

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

async function schemasPage(notice) {
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

// ---------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------

/** How long ago `iso` was, in the largest whole unit. */
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
  if (isNaN(s)) return "";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function eventsLabel(events) {
  return events.length ? events.join(", ") : "all events";
}

/** The signing secret of a new or rotated endpoint, shown once with a copy button. */
function secretOnce(name, secret, what) {
  return h("div", { class: "card", role: "alert" },
    h("p", {}, h("strong", {}, `${what} of “${name}”: copy it now. `), "It is not shown again; receivers verify deliveries with it."),
    h("div", { class: "secret" }, h("code", { id: "new-secret" }, secret), copyButton(secret)));
}

/** An endpoint's state, in words: healthy, retrying (when next) or paused (and why). */
function webhookState(w) {
  const last = w.lastError || (w.lastStatus ? `HTTP ${w.lastStatus}` : "no answer");
  const gap = w.prunedBeforeDelivery;
  if (w.state === "paused" && gap) {
    // Retention deleted events it never got: resuming skips them, it cannot deliver them.
    return h("div", { class: "wh-state" }, h("span", { class: "badge bad" }, "paused"), " ",
      h("span", {}, `${gap.reason}. Resuming skips ${eventRange(gap)} for good; the receiver gets the events after them, in order.`));
  }
  if (w.state === "paused") {
    return h("div", { class: "wh-state" }, h("span", { class: "badge bad" }, "paused"), " ",
      h("span", {}, `Gave up after ${w.failedAttempts} failed attempts since ${when(w.failingSince)} (last: ${last}). Nothing is delivered until you resume; then it gets everything it missed, in order.`));
  }
  if (w.state === "retrying") {
    return h("div", { class: "wh-state" }, h("span", { class: "badge warn" }, "retrying"), " ",
      h("span", {}, `${w.failedAttempts} failed attempts since ${when(w.failingSince)} (last: ${last}); next ${when(w.nextAttemptAt)}.`));
  }
  return h("div", { class: "wh-state" }, h("span", { class: "badge ok" }, "healthy"));
}

function lastDelivery(w) {
  if (!w.lastAttemptAt) return "none yet";
  const outcome = w.lastError ? h("span", { class: "bad" }, w.lastError) : h("span", { class: "ok" }, `HTTP ${w.lastStatus}`);
  return [when(w.lastAttemptAt), " — ", outcome,
    w.lastSuccessAt && w.lastError ? h("div", { class: "muted" }, `last success ${when(w.lastSuccessAt)}`) : null];
}

function behind(w) {
  if (w.pending === 0) return "up to date";
  const n = `${w.pending}${w.pendingCapped ? "+" : ""} event${w.pending === 1 ? "" : "s"}`;
  return w.oldestPendingAt ? `${n} waiting, the oldest ${ago(w.oldestPendingAt)} old` : `${n} waiting`;
}

/** Events `first`–`last` (seqs as strings), in words. */
function eventRange(r) {
  return r.first === r.last ? `event ${r.first}` : `events ${r.first}–${r.last}`;
}

/** A Resume button that resumes `w` and re-renders with `then(notice)`. */
function resumeButton(w, status, then) {
  const b = h("button", { type: "button", "aria-label": `Resume ${w.name}` }, "Resume");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const { skipped } = await api("POST", `/webhooks/${encodeURIComponent(w.name)}/resume`);
      await then(skipped
        ? h("p", { class: "warn", role: "status" }, `Resumed “${w.name}”: ${eventRange(skipped)}, pruned by retention before delivery, ${skipped.first === skipped.last ? "is" : "are"} skipped for good — resync the receiver from SCIM. It gets the events after them, in order.`)
        : h("p", { class: "ok", role: "status" }, `Resumed “${w.name}”: it gets what it missed, in order.`));
    } catch (e) { b.disabled = false; status.replaceChildren(errorBox(e)); }
  });
  return b;
}

function webhookFacts(w) {
  return h("dl", { class: "kv" },
    h("dt", {}, "URL"), h("dd", { class: "urn" }, w.url, w.allowHttp ? h("span", { class: "muted" }, " (plain http allowed)") : null),
    h("dt", {}, "Format"), h("dd", {}, w.format),
    h("dt", {}, "Events"), h("dd", {}, eventsLabel(w.events)),
    h("dt", {}, "State"), h("dd", {}, webhookState(w)),
    h("dt", {}, "Last delivery"), h("dd", {}, lastDelivery(w)),
    h("dt", {}, "Behind"), h("dd", {}, behind(w)));
}

/** The form that adds an endpoint; refusals are shown in it, at the field they concern. */
function webhookForm(types, status) {
  const field = (id, label, attrs) => h("div", {}, h("label", { for: id }, label), h("input", { id, type: "text", ...attrs }));
  const boxes = types.map((t, i) => h("label", { class: "check" },
    h("input", { type: "checkbox", id: `wh-ev-${i}`, name: "events", value: t, checked: true }), " ", t));
  const form = h("form", { class: "card", id: "webhook-form", novalidate: true },
    h("h2", {}, "Add an endpoint"),
    h("div", { class: "row" },
      field("wh-name", "Name", { placeholder: "ssh-lock", required: true, maxlength: "64", autocomplete: "off", "aria-describedby": "wh-name-help" }),
      h("div", { class: "shrink" }, h("label", { for: "wh-format" }, "Format"),
        h("select", { id: "wh-format", "aria-describedby": "wh-format-help" },
          h("option", { value: "standard", selected: true }, "standard"), h("option", { value: "chat" }, "chat")))),
    h("p", { id: "wh-name-help", class: "muted" }, "Letters, digits, '-', '_' or '.'."),
    field("wh-url", "URL", { placeholder: "https://hooks.example.com/scimd", required: true, inputmode: "url", autocomplete: "off", spellcheck: "false" }),
    h("p", { id: "wh-format-help", class: "muted" },
      "standard: the event's JSON, signed as Standard Webhooks specify. chat: {\"text\": \"Ana Lima … was deactivated …\"}, which Slack, Mattermost and similar incoming-webhook URLs accept."),
    h("label", { class: "check" }, h("input", { type: "checkbox", id: "wh-http" }), " Allow plain http (LAN receivers)"),
    h("fieldset", { class: "events" }, h("legend", {}, "Events"), h("div", { class: "checks" }, boxes)),
    h("p", {}, h("button", { type: "submit" }, "Add endpoint")),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = form.querySelector("#wh-name");
    const url = form.querySelector("#wh-url");
    for (const el of [name, url]) el.removeAttribute("aria-invalid");
    const chosen = boxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => b.value);
    const refuse = (el, message) => {
      if (el !== null) { el.setAttribute("aria-invalid", "true"); el.focus(); }
      status.replaceChildren(errorBox(new Error(message)));
    };
    if (!name.value.trim()) return refuse(name, "Name the endpoint.");
    if (!url.value.trim()) return refuse(url, "Give the receiver's URL.");
    if (chosen.length === 0) return refuse(form.querySelector("#wh-ev-0"), "Choose at least one event type.");
    status.replaceChildren(h("span", { class: "muted" }, "Adding…"));
    try {
      const r = await api("POST", "/webhooks", {
        name: name.value.trim(), url: url.value.trim(), format: form.querySelector("#wh-format").value,
        // All ten: every type, including any a later version adds.
        events: chosen.length === types.length ? null : chosen,
        allowHttp: form.querySelector("#wh-http").checked,
      });
      await webhooksPage(secretOnce(r.webhook.name, r.secret, "Signing secret"));
    } catch (e) {
      const m = e.message || "";
      // The server's refusals start with what they concern (and a name may itself say "http").
      refuse(/^webhook name|named/.test(m) ? name : /url|http|address/i.test(m) ? url : null, m);
    }
  });
  return form;
}

async function webhooksPage(notice) {
  const { webhooks, types } = await api("GET", "/webhooks");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const listStatus = h("div", { role: "status", "aria-live": "polite" });
  const cards = webhooks.map((w) => h("section", { class: "card webhook", "data-name": w.name },
    h("div", { class: "row" },
      h("h2", { class: "urn" }, h("a", { href: `/webhooks/${encodeURIComponent(w.name)}`, "data-link": true }, w.name)),
      w.state === "paused" ? h("div", { class: "shrink" }, resumeButton(w, listStatus, webhooksPage)) : null),
    webhookFacts(w)));
  show(h("h1", {}, "Webhooks"),
    h("p", { class: "muted" }, "Every change, sent as it commits to your own tools (signed, as Standard Webhooks specify) or to a chat channel. Each endpoint gets its events in order, retried for 3 days; then it is paused until you resume it."),
    notice || null, listStatus,
    webhooks.length === 0 ? h("p", { class: "empty" }, "No webhooks yet — add one below.") : cards,
    webhookForm(types, status));
}

/** The delivery log of endpoint `name`: its newest `limit` attempts, each event resendable. */
function deliveryLog(name, attempts, status, reload) {
  if (attempts.length === 0) return h("p", { class: "empty" }, "No deliveries yet.");
  return h("div", { class: "table-wrap" }, h("table", { class: "deliveries" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Event"), h("th", { class: "optional" }, "Attempt"),
      h("th", {}, "Status"), h("th", { class: "optional" }, "Latency"), h("th", {}, "Error"), h("th", {}, h("span", { class: "skip-label" }, "Actions")))),
    h("tbody", {}, attempts.map((a) => {
      let resend = null;
      if (a.event) {
        resend = h("button", { type: "button", class: "secondary", "aria-label": `Resend event ${a.event}` }, "Resend");
        resend.addEventListener("click", async () => {
          resend.disabled = true;
          try {
            const r = await api("POST", `/webhooks/${encodeURIComponent(name)}/resend`, { event: a.event });
            await reload(sentNotice(`Event ${a.event} resent`, r));
          } catch (e) { resend.disabled = false; status.replaceChildren(errorBox(e)); }
        });
      }
      return h("tr", { "data-event": a.event || "test" },
        h("td", {}, when(a.at)),
        h("td", {}, a.event ? [`${a.event} `, h("span", { class: "muted" }, a.type || "(pruned)")] : h("span", { class: "muted" }, "test event")),
        h("td", { class: "optional" }, `${a.attempt}${a.trigger === "scheduled" ? "" : ` (${a.trigger})`}`),
        h("td", {}, a.status == null ? "—" : h("span", { class: a.error ? "bad" : "ok" }, String(a.status))),
        h("td", { class: "optional" }, `${a.durationMs} ms`),
        h("td", { class: "wh-error" }, a.error || ""),
        h("td", {}, resend));
    }))));
}

/** What came of a test or a resend, as a notice. */
function sentNotice(what, r) {
  return r.delivered
    ? h("p", { class: "ok", role: "status" }, `${what}: delivered, HTTP ${r.status} in ${r.durationMs} ms.`)
    : h("p", { class: "error", role: "alert" }, `${what}: not delivered (${r.durationMs} ms): ${r.error}`);
}

async function webhookPage(name, notice, limit = 50) {
  const path = `/webhooks/${encodeURIComponent(name)}`;
  const { webhook: w, attempts, max } = await api("GET", `${path}?limit=${limit}`);
  const status = h("div", { role: "status", "aria-live": "polite" });
  const reload = (n) => webhookPage(name, n, limit);

  const test = h("button", { type: "button" }, "Send test event");
  test.addEventListener("click", async () => {
    test.disabled = true;
    status.replaceChildren(h("span", { class: "muted" }, "Sending…"));
    try {
      await reload(sentNotice("Test event", await api("POST", `${path}/test`)));
    } catch (e) { test.disabled = false; status.replaceChildren(errorBox(e)); }
  });
  const overlap = h("select", { id: "wh-overlap" },
    h("option", { value: "none" }, "old secret stops now"),
    h("option", { value: "1h" }, "old secret also signs for 1 hour"),
    h("option", { value: "24h" }, "old secret also signs for 24 hours"));
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
  rotate.addEventListener("click", async () => {
    try {
      const r = await api("POST", `${path}/rotate`, { overlap: overlap.value });
      await reload(secretOnce(name, r.secret, "New signing secret"));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  const remove = h("button", { type: "button", class: "danger" }, "Remove");
  remove.addEventListener("click", async () => {
    if (!confirm(`Remove the webhook “${name}”? Nothing more is sent to it; its delivery log goes with it.`)) return;
    try {
      await api("DELETE", path);
      history.pushState(null, "", "/webhooks");
      setNav(true, document.getElementById("who-name").textContent);
      await webhooksPage(h("p", { class: "ok", role: "status" }, `Removed “${name}”.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  refresh.addEventListener("click", () => reload());
  let more = null;
  if (attempts.length === limit && limit < max) {
    more = h("button", { type: "button", class: "secondary" }, "Older deliveries");
    more.addEventListener("click", () => webhookPage(name, null, Math.min(limit * 4, max)));
  }
  show(h("p", {}, h("a", { href: "/webhooks", "data-link": true }, "← Webhooks")),
    h("h1", { class: "urn" }, w.name),
    notice || null, status,
    h("section", { class: "card" },
      webhookFacts(w),
      h("div", { class: "row actions" },
        h("div", { class: "shrink" }, test),
        w.state !== "healthy" ? h("div", { class: "shrink" }, resumeButton(w, status, reload)) : null,
        h("div", { class: "shrink" }, h("label", { for: "wh-overlap", class: "check" }, "When rotating"), overlap),
        h("div", { class: "shrink" }, rotate),
        h("div", { class: "shrink" }, remove))),
    h("div", { class: "row" }, h("h2", {}, "Delivery log"), h("div", { class: "shrink" }, refresh)),
    h("p", { class: "muted" }, `The newest ${limit} attempts, newest first. Resend sends that event once more, now, signed anew; the endpoint's order and retries are untouched.`),
    deliveryLog(name, attempts, status, reload),
    more ? h("div", { class: "pager" }, more) : null);
}

// ---------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------

async function route() {
  const mine = ++view;
  const path = location.pathname;
  try {
    if (path === "/setup") { setNav(false); return setupPage(); }
    const state = await api("GET", "/state");
    if (state.needsSetup && path !== "/login") { setNav(false); return setupPage(); }
    let session;
    try { session = await api("GET", "/session"); } catch (e) {
      if (e.status === 401) { setNav(false); return loginPage(); }
      throw e;
    }
    if (mine !== view) return;
    csrf = session.csrf;
    let p = path;
    if (path === "/" || path === "/login") {
      p = "/connect";
      history.replaceState(null, "", p);
    }
    setNav(true, session.username);
    let m;
    if (p === "/connect") await connectPage();
    else if (p === "/tokens") await tokensPage();
    else if (p === "/users") await usersPage();
    else if ((m = p.match(/^\/users\/(.+)$/))) await userPage(decodeURIComponent(m[1]));
    else if (p === "/groups") await groupsPage();
    else if ((m = p.match(/^\/groups\/(.+)$/))) await groupPage(decodeURIComponent(m[1]));
    else if (p === "/audit") await auditPage();
    else if (p === "/schemas") await schemasPage();
    else if (p === "/webhooks") await webhooksPage();
    else if ((m = p.match(/^\/webhooks\/(.+)$/))) await webhookPage(decodeURIComponent(m[1]));
    else show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/connect", "data-link": true }, "Go to Connect")));
  } catch (e) {
    if (e.status === 401) { setNav(false); return loginPage(); }
    show(h("h1", {}, "Something went wrong"), errorBox(e));
  }
}

route();
