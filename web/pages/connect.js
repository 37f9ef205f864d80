// Connect: the SCIM base URL, OneLogin's steps, and what each token last did.

import { api, copyButton, errorBox, h, show, when } from "../lib.js";

const STEPS = { dns: "DNS", connect: "connecting", tls: "TLS", status: "the answer", url: "the URL" };

function failedStep(step) { return STEPS[step] || step; }

export async function connectPage() {
  const [{ tokens, now }, { baseUrl: base, warnings }] =
    await Promise.all([api("GET", "/tokens"), api("GET", "/check-connection")]);
  const check = h("div", { role: "status", "aria-live": "polite" });
  const checkButton = h("button", { type: "button", class: "secondary" }, "Check connection");
  checkButton.addEventListener("click", async () => {
    check.replaceChildren(h("p", { class: "muted" }, "Checking…"));
    checkButton.disabled = true;
    try {
      const r = await api("POST", "/check-connection");
      check.replaceChildren(
        h("p", { class: r.ok ? "ok" : "error" }, r.ok ? "Working: " : `Not working (${failedStep(r.failed)}): `, r.message),
        r.checkedUrl.startsWith(r.baseUrl) ? null
          : h("p", { class: "muted" }, `Checked at ${r.checkedUrl}: scimd's own listen address, as no --public-url is set.`));
    } catch (e) { check.replaceChildren(errorBox(e)); }
    checkButton.disabled = false;
  });
  const live = tokens.filter((t) => !t.revoked || t.revoked > now);
  show(
    h("h1", {}, "Connect an identity provider"),
    h("p", { class: "muted" }, "Point OneLogin (or Okta, Entra ID…) at this server. Everything it sends shows up under Users, Groups and the Audit log."),
    h("div", { class: "card" },
      h("label", { for: "base" }, "SCIM Base URL"),
      h("div", { class: "secret" }, h("code", { id: "base" }, base), copyButton(base)),
      warnings.map((w) => h("p", { class: "warn" }, "⚠ ", w)),
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
