// The pages before sign-in: setup and sign-in.

import { api, errorBox, h, navigate, reroute, setCsrf, show } from "../lib.js";

export function passwordForm(title, intro, submitLabel, onSubmit) {
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

export function setupPage() {
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
      setCsrf(s.csrf);
      history.replaceState(null, "", "/overview");
      reroute();
    }));
}

export function loginPage() {
  show(passwordForm("Sign in", "The scimd console: tokens, users, groups and the audit log.", "Sign in",
    async (username, password) => {
      const s = await api("POST", "/login", { username, password });
      if (s.needsCode) return codePage(username, password);
      setCsrf(s.csrf);
      navigate("/overview");
    }));
}

/** The second step of signing in with two-factor sign-in on: the app's code. */
function codePage(username, password) {
  const status = h("div", { role: "status", "aria-live": "polite" });
  const form = h("form", { class: "card narrow" },
    h("h1", {}, "Enter your code"),
    h("p", { class: "muted" }, "The 6-digit code your authenticator app shows for scimd, or one of your recovery codes."),
    h("label", { for: "code" }, "Code"),
    h("input", { id: "code", name: "code", type: "text", autocomplete: "one-time-code", required: true }),
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren(h("span", { class: "muted" }, "Working…"));
    try {
      const s = await api("POST", "/login", { username, password, code: form.code.value });
      setCsrf(s.csrf);
      navigate("/connect");
    } catch (e) {
      // After many wrong codes, codes from the app wait; a recovery code does not.
      const blocked = h("p", { class: "muted" }, "After 10 wrong codes in a row, codes from the app are refused for a while in browsers that have not signed in to this account before. One of your recovery codes still works.");
      status.replaceChildren(...(e.status === 429 ? [errorBox(e), blocked] : [errorBox(e)]));
    }
  });
  show(form);
  form.code.focus();
}
