// Overview, the landing page: who joined, was suspended, reactivated or deleted this week
// (each linking to the person), whether each token's client is still talking to us, failed
// authentications by client address, changes per day over 30 days (an inline SVG drawn
// here, no library) and webhook health. One API call: GET /admin/api/overview.

import { ago, api, copyButton, errorBox, h, show, when } from "../lib.js";

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element (attributes as h() takes them, no listeners). */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * The bars of a chart of `values` (counts, oldest first) in a `width` × `height` box: one
 * slot per value, a bar as high as its share of the largest value (at least 1 px when it is
 * not 0, so a quiet day still shows), `gap` px between bars. Pure, so it can be checked alone.
 */
export function chartGeometry(values, width, height, gap = 2) {
  const max = Math.max(1, ...values);
  const slot = width / Math.max(1, values.length);
  const w = Math.max(1, slot - gap);
  const bars = values.map((v, i) => {
    const bh = v > 0 ? Math.max(1, Math.round((v / max) * height)) : 0;
    return { x: +(i * slot).toFixed(2), y: height - bh, w: +w.toFixed(2), h: bh };
  });
  return { max, bars };
}

/** Changes per day as bars, described in its label, with the numbers in a table that opens
 * under the chart (for screen readers and for anyone who wants them). */
function chart(days) {
  const W = 600, H = 120;
  const values = days.map((d) => d.changes);
  const { bars } = chartGeometry(values, W, H);
  const total = values.reduce((a, b) => a + b, 0);
  const busiest = days.reduce((a, d) => (d.changes > a.changes ? d : a), days[0] || { changes: 0 });
  const label = total === 0
    ? `Changes per day (UTC) over the last ${days.length} days: none.`
    : `Changes per day (UTC) over the last ${days.length} days: ${total} in all, most on ${busiest.date} (${busiest.changes}).`;
  const picture = svg("svg", { viewBox: `0 0 ${W} ${H + 1}`, width: "100%", height: H + 1, role: "img",
      "aria-label": label, preserveAspectRatio: "none", id: "changes-chart" },
    svg("line", { x1: 0, y1: H + 0.5, x2: W, y2: H + 0.5, stroke: "currentColor", "stroke-opacity": "0.4" }),
    bars.map((b, i) => svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, fill: "currentColor", "data-date": days[i].date },
      svg("title", {}, `${days[i].date}: ${days[i].changes}`))));
  const numbers = h("details", {},
    h("summary", {}, "The numbers"),
    h("div", { class: "table-wrap" }, h("table", { id: "changes-per-day" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Date"), h("th", { scope: "col" }, "Changes"))),
      h("tbody", {}, days.map((d) => h("tr", {}, h("td", {}, d.date), h("td", {}, String(d.changes))))))));
  return h("section", { class: "card", "aria-labelledby": "chart-title" },
    h("h2", { id: "chart-title" }, "Changes per day"),
    h("p", { class: "muted" }, label),
    picture,
    h("div", { class: "row" },
      h("span", { class: "muted" }, days.length ? days[0].date : ""),
      h("span", { class: "muted shrink" }, days.length ? days[days.length - 1].date : "")),
    numbers);
}

function personLink(p) {
  const who = p.name && p.userName ? `${p.name} (${p.userName})` : (p.name || p.userName || p.id);
  return h("li", {},
    h("a", { href: `/users/${encodeURIComponent(p.id)}`, "data-link": true }, who),
    h("span", { class: "muted" }, ` · ${ago(p.at)} ago`, p.by ? ` by ${p.by}` : ""));
}

function peopleList(title, id, group) {
  const more = group.count - group.people.length;
  return h("div", {},
    h("h3", { id }, `${title} (${group.count})`),
    group.people.length === 0 ? h("p", { class: "muted" }, "Nobody.")
      : h("ul", { "aria-labelledby": id }, group.people.map(personLink)),
    more > 0 ? h("p", { class: "muted" }, `and ${more} more — `, h("a", { href: "/audit", "data-link": true }, "see the audit log")) : null);
}

function stat(label, value, href) {
  return h("div", { class: "card" },
    h("div", { class: "muted" }, label),
    h("div", {}, h("a", { href, "data-link": true, "aria-label": `${label}: ${value}` }, h("strong", {}, String(value)))));
}

function activityCell(t) {
  const parts = [h("div", {}, `${t.requests} requests, ${t.failures} failed`)];
  if (t.refused > 0) {
    parts.push(h("div", { class: "warn" }, `${t.refused} refused: an old or revoked secret of this token is still being sent`));
  }
  return h("td", {}, parts);
}

function lastCell(t) {
  if (!t.lastUsed) return h("td", { class: "muted" }, "never");
  return h("td", {},
    h("div", {}, `${ago(t.lastUsed)} ago `, h("span", { class: "muted" }, when(t.lastUsed))),
    t.lastRequest ? h("div", {}, h("code", {}, t.lastRequest)) : null,
    t.lastClient ? h("div", { class: "muted" }, `from ${t.lastClient}`) : null);
}

function statusCell(t) {
  const badges = [];
  if (!t.live) badges.push(h("span", { class: "badge bad" }, "revoked"));
  else if (t.silentHours != null) {
    badges.push(h("span", { class: "badge warn" }, "silent"),
      h("div", { class: "warn" }, `No request for ${t.silentHours} h; expected at least every ${t.expectEveryHours} h.`));
  } else badges.push(h("span", { class: "badge ok" }, "ok"));
  return h("td", {}, badges);
}

function expectCell(t, status, refresh) {
  if (!t.live) return h("td", {}, "—");
  const id = `expect-${t.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const input = h("input", { id, type: "number", min: "1", max: "8760", step: "1", inputmode: "numeric",
    value: t.expectEveryHours ?? "", placeholder: "none" });
  // Our own message rather than the browser's bubble, in the status region beside the table.
  const form = h("form", { class: "row", novalidate: true },
    h("div", {}, h("label", { for: id, class: "skip-label" }, `Expect a request from ${t.name} at least every … hours`), input),
    h("div", { class: "shrink" }, h("button", { type: "submit", class: "secondary" }, "Save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const raw = input.value.trim();
    const n = Number(raw);
    if (raw !== "" && !(Number.isInteger(n) && n >= 1 && n <= 8760)) {
      status.replaceChildren(errorBox(new Error("Hours: a whole number from 1 to 8760, or empty for no expectation.")));
      return;
    }
    try {
      await api("PUT", `/tokens/${encodeURIComponent(t.name)}/expectation`, { everyHours: raw === "" ? null : n });
      await refresh(h("p", { class: "ok", role: "status" }, `Saved for “${t.name}”.`));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
  return h("td", {}, form);
}

function tokensSection(tokens, refresh) {
  const status = h("div", { role: "status", "aria-live": "polite" });
  if (tokens.length === 0) {
    return h("section", { class: "card" }, h("h2", {}, "Tokens"),
      h("p", { class: "empty" }, "No tokens yet — ", h("a", { href: "/tokens", "data-link": true }, "create one"), " for your identity provider."));
  }
  return h("section", { class: "card", "aria-labelledby": "tokens-title" },
    h("h2", { id: "tokens-title" }, "Is the identity provider still talking to us?"),
    h("p", { class: "muted" }, "Each token's last request, and its requests and failures in the last 24 hours. Set how often you expect a request (in hours) to be warned when a client goes quiet."),
    status,
    h("div", { class: "table-wrap" }, h("table", { id: "token-activity", "aria-labelledby": "tokens-title" },
      h("thead", {}, h("tr", {}, h("th", {}, "Token"), h("th", {}, "Last request"), h("th", {}, "Last 24 h"),
        h("th", {}, "Expect a request every (hours)"), h("th", {}, "Status"))),
      h("tbody", {}, tokens.map((t) => h("tr", { "data-token": t.name },
        h("td", {}, t.name, " ", h("span", { class: "badge" }, t.scope)),
        lastCell(t), activityCell(t), expectCell(t, status, refresh), statusCell(t)))))));
}

function clientsSection(list, total) {
  return h("section", { class: "card", "aria-labelledby": "clients-title" },
    h("h2", { id: "clients-title" }, "Failures by client address"),
    h("p", { class: "muted" }, "Requests refused in the last 24 hours without any token of ours: unknown token, or a missing or malformed Authorization header."),
    list.length === 0 ? h("p", { class: "muted" }, "None.")
      : h("div", { class: "table-wrap" }, h("table", { id: "client-failures", "aria-labelledby": "clients-title" },
          h("thead", {}, h("tr", {}, h("th", {}, "Client address"), h("th", {}, "Failures"))),
          h("tbody", {}, list.map((c) => h("tr", {},
            h("td", {}, c.client === "other" ? "other addresses (too many to list each)" : c.client),
            h("td", {}, String(c.failures))))))),
    list.length > 0 ? h("p", { class: "muted" }, `${total} in all.`) : null);
}

function webhooksSection(hooks) {
  if (hooks.length === 0) {
    return h("section", { class: "card" }, h("h2", {}, "Webhooks"),
      h("p", { class: "muted" }, "None. ", h("a", { href: "/webhooks", "data-link": true }, "Add a webhook"), " to be told of changes as they happen."));
  }
  const state = (w) => h("span", { class: `badge ${w.state === "healthy" ? "ok" : w.state === "paused" ? "bad" : "warn"}` }, w.state);
  return h("section", { class: "card", "aria-labelledby": "webhooks-title" },
    h("h2", { id: "webhooks-title" }, "Webhooks"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "State"), h("th", {}, "Waiting"))),
      h("tbody", {}, hooks.map((w) => h("tr", {},
        h("td", {}, h("a", { href: `/webhooks/${encodeURIComponent(w.name)}`, "data-link": true }, w.name)),
        h("td", {}, state(w), w.lastError ? h("div", { class: "muted" }, w.lastError) : null),
        h("td", {}, w.pending === 0 ? "up to date"
          : `${w.pending}${w.pendingCapped ? "+" : ""} events, oldest ${w.oldestPendingAt ? ago(w.oldestPendingAt) + " old" : ""}`)))))));
}

export async function overviewPage(notice) {
  const o = await api("GET", "/overview");
  const base = location.origin + "/scim/v2";
  const w = o.week;
  show(h("h1", {}, "Overview"),
    notice || null,
    h("div", { class: "card" },
      h("label", { for: "overview-base" }, "SCIM Base URL"),
      h("div", { class: "secret" }, h("code", { id: "overview-base" }, base), copyButton(base)),
      h("p", { class: "muted" }, h("a", { href: "/connect", "data-link": true }, "Connect an identity provider"), " · ",
        h("a", { href: "/audit", "data-link": true }, "Audit log"))),
    h("section", { "aria-label": "Totals", class: "row" },
      stat("Active users", o.counts.active, "/users"), stat("Suspended users", o.counts.suspended, "/users"),
      stat("Groups", o.counts.groups, "/groups"), stat("Tokens", o.counts.tokens, "/tokens")),
    h("section", { class: "card", "aria-labelledby": "week-title" },
      h("h2", { id: "week-title" }, "People this week"),
      h("p", { class: "muted" }, `Since ${when(w.since)}: offboarding first.`),
      peopleList("Suspended", "week-suspended", w.suspended),
      peopleList("Deleted", "week-deleted", w.deleted),
      peopleList("Joined", "week-joined", w.joined),
      peopleList("Reactivated", "week-reactivated", w.reactivated)),
    tokensSection(o.tokens, overviewPage),
    clientsSection(o.clientFailures, o.clientFailuresTotal),
    chart(o.days),
    webhooksSection(o.webhooks));
}
