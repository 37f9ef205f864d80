// Connect: the SCIM base URL, OneLogin's steps, and what each token last did.

import { api, copyButton, errorBox, h, show, when } from "../lib.js";

export async function connectPage() {
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
