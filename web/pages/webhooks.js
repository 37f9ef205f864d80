// Webhooks: endpoints, their state and delivery log, tests, resends, rotation.

import { ago, api, copyButton, errorBox, h, setNav, show, when } from "../lib.js";

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

export async function webhooksPage(notice) {
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

export async function webhookPage(name, notice, limit = 50) {
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
