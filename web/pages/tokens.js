// Tokens: create, regenerate with an overlap, revoke. One row per token, its secrets beneath
// (the current one, and an old one still working during a rotation's overlap).

import { api, copyButton, errorBox, h, show, when } from "../lib.js";

/** Whether the revoked tokens are shown: kept while the page re-renders after an action. */
let showRevoked = false;

function tokenStatus(t) {
  if (!t.revoked) return h("span", { class: "badge ok" }, "active");
  return h("span", { class: "badge bad" }, "revoked " + when(t.revoked));
}

/** A secret of a token, beneath it: how it begins, whether it is the current one, and when
 * an old one stops working. */
function secretRow(t, s, now) {
  const current = !t.revoked && !s.ends;
  const state = current ? h("span", { class: "badge ok" }, "current")
    : s.ends > now ? h("span", { class: "badge warn" }, "old secret, ends " + when(s.ends))
    : h("span", { class: "muted" }, "stopped " + when(s.ends));
  return h("tr", { class: "secret-row" },
    h("td", { colspan: 2 }, h("span", { class: "muted" }, "Secret "), h("code", {}, s.starts + "…")),
    h("td", {}, when(s.created)),
    h("td", {}, when(s.lastUsed), s.lastClient ? h("div", { class: "muted" }, s.lastClient) : null),
    h("td", {}, state),
    h("td", {}));
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
  const groups = tokens.map((t) => {
    const actions = t.revoked ? null : h("div", { class: "token-actions" },
      overlapSelect(t), regenerateButton(t), revokeButton(t));
    const head = h("tr", { class: "token-row" },
      h("td", {}, t.name), h("td", {}, h("span", { class: "badge" }, t.scope)),
      h("td", {}, when(t.created)),
      h("td", {}, when(t.lastUsed), t.lastClient ? h("div", { class: "muted" }, t.lastClient) : null),
      h("td", {}, tokenStatus(t)),
      h("td", {}, actions));
    return h("tbody", { class: t.revoked ? "revoked" : null, hidden: t.revoked && !showRevoked },
      head, t.secrets.map((s) => secretRow(t, s, now)));
  });
  const revokedCount = tokens.filter((t) => t.revoked).length;
  const toggle = h("input", { id: "show-revoked", type: "checkbox", checked: showRevoked });
  toggle.addEventListener("change", () => {
    showRevoked = toggle.checked;
    for (const g of document.querySelectorAll("tbody.revoked")) g.hidden = !showRevoked;
  });

  function overlapSelect(t) {
    return h("select", { "aria-label": `When “${t.name}” is regenerated, its old secret`, "data-token": t.name },
      h("option", { value: "none" }, "old secret stops now"),
      h("option", { value: "1h" }, "old secret works 1 hour"),
      h("option", { value: "24h" }, "old secret works 24 hours"));
  }
  function regenerateButton(t) {
    const b = h("button", { type: "button", class: "secondary" }, "Regenerate");
    b.addEventListener("click", async () => {
      const overlap = b.parentElement.querySelector("select").value;
      try {
        const r = await api("POST", `/tokens/${encodeURIComponent(t.name)}/regenerate`, { overlap });
        await tokensPage(shownOnce(r.name, r.token));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    });
    return b;
  }
  function revokeButton(t) {
    const b = h("button", { type: "button", class: "danger" }, "Revoke");
    b.addEventListener("click", async () => {
      if (!confirm(`Revoke “${t.name}”? Clients using it get 401 at once.`)) return;
      try {
        await api("DELETE", `/tokens/${encodeURIComponent(t.name)}`);
        await tokensPage(h("p", { class: "ok", role: "status" }, `Revoked “${t.name}”.`));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    });
    return b;
  }

  show(h("h1", {}, "Tokens"),
    h("p", { class: "muted" }, "Bearer tokens for SCIM clients. Each is shown once; only a digest is stored. Regenerate with an overlap to rotate without breaking provisioning."),
    notice || null, form, status,
    tokens.length === 0 ? h("p", { class: "empty" }, "No tokens yet — create one, then paste it into your identity provider.")
      : [
        revokedCount ? h("p", {}, h("label", { class: "check", for: "show-revoked" }, toggle, ` Show revoked tokens (${revokedCount})`)) : null,
        h("div", { class: "table-wrap" }, h("table", { class: "tokens" },
          h("caption", { class: "skip-label" }, "Tokens, each with its secrets beneath"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Scope"), h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Last used"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Actions"))),
          groups))]);
}
