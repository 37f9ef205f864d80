// Tokens: create, regenerate with an overlap, revoke.

import { api, copyButton, errorBox, h, show, when } from "../lib.js";

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

export async function tokensPage(notice) {
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
