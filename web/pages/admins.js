// Administrators: the team (list, invite, remove) and your own account (password, sessions,
// two-factor sign-in); and the page an invitation link opens.

import { api, copyButton, errorBox, h, navigate, reroute, setCsrf, setNav, show, when } from "../lib.js";
import { passwordForm } from "./auth.js";

function notice(text) {
  return h("p", { class: "ok", role: "status" }, text);
}

function inviteShown(r) {
  return h("div", { class: "card", role: "alert" },
    h("p", {}, h("strong", {}, "Invitation link: copy it now and send it to the new administrator. "),
      `It works once, until ${when(r.expires)}, and is not shown again.`),
    h("div", { class: "secret" }, h("code", { id: "invite-link" }, r.link), copyButton(r.link)));
}

/** Asks for the signed-in administrator's password in `where` before `run(password)`: the
 * server wants it for what gives lasting control (a stolen session alone must not do it). */
function askPassword(where, question, submitLabel, run) {
  const input = h("input", { id: "step-up-password", type: "password", autocomplete: "current-password", required: true });
  const error = h("div", { role: "status", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  cancel.addEventListener("click", () => where.replaceChildren());
  const form = h("form", { class: "card" },
    h("p", {}, question),
    h("label", { for: "step-up-password" }, "Your password"), input,
    h("p", {}, h("button", { type: "submit", class: "danger" }, submitLabel), " ", cancel), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await run(input.value); } catch (e) { error.replaceChildren(errorBox(e)); }
  });
  where.replaceChildren(form);
  input.focus();
}

function teamSection(admins, invites, me, status) {
  const stepUp = h("div", {});
  const rows = admins.map((a) => {
    const remove = h("button", { type: "button", class: "danger" }, "Remove");
    remove.addEventListener("click", () => {
      const self = a.username.toLowerCase() === me.toLowerCase();
      askPassword(stepUp, self ? "Remove your own account? You are signed out at once."
        : `Remove administrator “${a.username}”? Their sessions end at once, and their pending invitations are cancelled.`,
      `Remove “${a.username}”`, async (password) => {
        const r = await api("DELETE", `/admins/${encodeURIComponent(a.username)}`, { password });
        if (r.signedOut) { setCsrf(null); setNav(false); navigate("/login"); return; }
        await adminsPage(notice(`Removed “${r.removed}”; their sessions have ended.`));
      });
    });
    const self = a.username.toLowerCase() === me.toLowerCase();
    return h("tr", {},
      h("td", {}, a.username, self ? h("span", { class: "muted" }, " (you)") : null),
      h("td", {}, when(a.created)),
      h("td", {}, a.lastSignIn ? when(a.lastSignIn) : "never"),
      h("td", {}, a.totp ? h("span", { class: "badge ok" }, "on") : h("span", { class: "badge" }, "off")),
      h("td", {}, admins.length > 1 ? remove : h("span", { class: "muted" }, "the only one")));
  });
  const invite = h("button", { type: "button" }, "Invite an administrator");
  invite.addEventListener("click", () => {
    askPassword(stepUp, "Whoever opens the link becomes an administrator, for as long as nobody removes them.",
      "Create the invitation link", async (password) => {
        const r = await api("POST", "/invitations", { password });
        await adminsPage(inviteShown(r));
      });
  });
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel pending invitations");
  cancel.addEventListener("click", async () => {
    try {
      const r = await api("DELETE", "/invitations");
      await adminsPage(notice(`Cancelled ${r.cancelled} invitation${r.cancelled === 1 ? "" : "s"}: those links no longer work.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  return h("section", { "aria-labelledby": "team-h" },
    h("h2", { id: "team-h" }, "Team"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Created"), h("th", {}, "Last sign-in"),
        h("th", {}, "Two-factor"), h("th", {}, "Actions"))),
      h("tbody", {}, rows))),
    h("p", {}, invite),
    stepUp,
    invites.length ? h("div", { class: "row" },
      h("p", { class: "muted" }, `Pending invitations: ${invites.map((i) =>
        `from ${i.createdBy}, until ${when(i.expires)}`).join("; ")}.`),
      h("div", { class: "shrink" }, cancel)) : null);
}

function passwordSection(status) {
  const form = h("form", { class: "card" },
    h("h3", {}, "Change your password"),
    h("input", { type: "text", name: "username", autocomplete: "username", hidden: true }),
    h("label", { for: "current-password" }, "Current password"),
    h("input", { id: "current-password", type: "password", autocomplete: "current-password", required: true }),
    h("label", { for: "new-password" }, "New password (at least 12 characters)"),
    h("input", { id: "new-password", type: "password", autocomplete: "new-password", minlength: "12", required: true }),
    h("p", {}, h("button", { type: "submit" }, "Change password")),
    h("p", { class: "muted" }, "Your other sessions end (this one stays signed in), the invitations you made are cancelled, and your browsers are forgotten as devices until they sign in again."));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/admins/me/password",
        { current: form.querySelector("#current-password").value, password: form.querySelector("#new-password").value });
      const n = (count, what) => `${count} ${what}${count === 1 ? "" : "s"}`;
      await adminsPage(notice(`Password changed; ${n(r.sessionsEnded, "other session")} ended, ${n(r.invitationsCancelled, "invitation")} cancelled.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  return form;
}

function sessionsSection(sessions, status) {
  const rows = sessions.map((s) => {
    const end = h("button", { type: "button", class: "secondary" }, s.current ? "Sign out here" : "End");
    end.addEventListener("click", async () => {
      try {
        await api("DELETE", `/admins/me/sessions/${encodeURIComponent(s.id)}`);
        if (s.current) { setCsrf(null); setNav(false); navigate("/login"); return; }
        await adminsPage(notice("Session ended."));
      } catch (e) { status.replaceChildren(errorBox(e)); }
    });
    return h("tr", { "data-session": s.id },
      h("td", {}, when(s.created), s.current ? [" ", h("span", { class: "badge ok" }, "this session")] : null),
      h("td", {}, when(s.lastSeen)),
      h("td", {}, when(s.expires)),
      h("td", {}, s.client || "—", s.userAgent ? h("div", { class: "muted" }, s.userAgent) : null),
      h("td", {}, end));
  });
  return h("div", { class: "card" },
    h("h3", {}, "Your sessions"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Signed in"), h("th", {}, "Last seen"), h("th", {}, "Expires"),
        h("th", {}, "From"), h("th", {}, "Actions"))),
      h("tbody", {}, rows))));
}

function recoveryShown(codes) {
  const text = codes.join("\n");
  return h("div", { class: "card", role: "alert" },
    h("p", {}, h("strong", {}, "Two-factor sign-in is on. Save these recovery codes now: "),
      "each signs you in once instead of a code, and they are not shown again."),
    h("pre", {}, h("code", { id: "recovery-codes", class: "block" }, text)), copyButton(text));
}

function enrolment(e, status) {
  const form = h("form", {},
    h("label", { for: "totp-confirm" }, "Code from the app"),
    h("input", { id: "totp-confirm", type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9 ]*", required: true }),
    h("label", { for: "totp-password" }, "Your password"),
    h("div", { class: "row" },
      h("div", {}, h("input", { id: "totp-password", type: "password", autocomplete: "current-password", required: true })),
      h("div", { class: "shrink" }, h("button", { type: "submit" }, "Confirm"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/admins/me/totp/confirm",
        { code: form.querySelector("#totp-confirm").value, password: form.querySelector("#totp-password").value });
      await adminsPage(recoveryShown(r.recoveryCodes));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  return h("div", {},
    h("p", {}, "Add this account to an authenticator app: scan the QR code, or type the secret. Then enter the code it shows, and your password."),
    h("img", { src: e.qr, alt: "QR code of the otpauth link below", width: "200", height: "200", class: "qr" }),
    h("p", {}, "Secret: "), h("div", { class: "secret" }, h("code", { id: "totp-secret" }, e.secret), copyButton(e.secret)),
    h("p", {}, "Link: "), h("div", { class: "secret" }, h("code", { id: "totp-uri" }, e.uri), copyButton(e.uri)),
    form);
}

function totpSection(t, status) {
  const box = h("div", { class: "card" }, h("h3", {}, "Two-factor sign-in"));
  if (!t.enabled) {
    const start = h("button", { type: "button" }, "Turn on two-factor sign-in");
    start.addEventListener("click", async () => {
      try {
        const e = await api("POST", "/admins/me/totp");
        start.replaceWith(enrolment(e, status));
      } catch (err) { status.replaceChildren(errorBox(err)); }
    });
    box.append(h("p", { class: "muted" }, "Off. With it on, signing in asks for a code from an authenticator app (TOTP) after the password."), start);
    return box;
  }
  const form = h("form", {},
    h("label", { for: "totp-off" }, "Your password"),
    h("div", { class: "row" },
      h("div", {}, h("input", { id: "totp-off", type: "password", autocomplete: "current-password", required: true })),
      h("div", { class: "shrink" }, h("button", { type: "submit", class: "danger" }, "Turn off"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/admins/me/totp/disable", { password: form.querySelector("#totp-off").value });
      await adminsPage(notice("Two-factor sign-in is off."));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  box.append(h("p", {}, h("span", { class: "badge ok" }, "on"), ` ${t.recoveryCodesLeft} recovery code${t.recoveryCodesLeft === 1 ? "" : "s"} left.`), form);
  return box;
}

export async function adminsPage(shown) {
  const [team, mine, t] = await Promise.all([
    api("GET", "/admins"), api("GET", "/admins/me/sessions"), api("GET", "/admins/me/totp")]);
  const status = h("div", { role: "status", "aria-live": "polite" });
  show(h("h1", {}, "Administrators"),
    h("p", { class: "muted" }, "Who can open this console. Invite others with a one-time link; remove those who left."),
    shown || null, status,
    teamSection(team.admins, team.invites, team.me, status),
    h("section", { "aria-labelledby": "you-h" },
      h("h2", { id: "you-h" }, "Your account"),
      passwordSection(status), sessionsSection(mine.sessions, status), totpSection(t, status)));
}

/** The page an invitation link opens: choose a username and password. */
export function invitePage() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (!code) {
    return show(h("div", { class: "card narrow" }, h("h1", {}, "Invitation"),
      h("p", {}, "Open the whole invitation link you were sent (it lasts 24 hours and works once).")));
  }
  show(passwordForm("Join as an administrator",
    "You were invited to this scimd console. Choose a username and a password of at least 12 characters.",
    "Create account",
    async (username, password) => {
      const s = await api("POST", "/invite", { code, username, password });
      setCsrf(s.csrf);
      history.replaceState(null, "", "/connect");
      reroute();
    }));
}
