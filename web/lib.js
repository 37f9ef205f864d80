// Shared by every page of the console: building elements (never innerHTML with data, so
// names in the directory cannot inject markup), calling the console API, showing a page.

const main = document.getElementById("main");
let csrf = null;
/** Bumped by every navigation: work started for an earlier page must not touch this one. */
let view = 0;
/** Renders the page at the current location (the router, set by app.js). */
let router = () => {};

export function setRouter(f) { router = f; }
export function setCsrf(token) { csrf = token; }
/** Starts a new page view; its number. */
export function nextView() { return ++view; }
/** The page view now shown: a page's work compares it with the one it started in. */
export function currentView() { return view; }

/** Creates an element: h("a", {href: "/x"}, "text", child…). */
export function h(tag, attrs = {}, ...children) {
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
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

/** What a failed fetch means to an administrator: the server (or the way to it) is down. */
const NOT_ANSWERING = "scimd is not answering — is it running?";

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  // JSON has no NaN: stringify would send `null` (no limit, no value) for a field the form
  // could not read as a number, so such a body is refused here, naming the field.
  const json = body === undefined ? undefined : JSON.stringify(body, (k, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) throw new ApiError(400, `“${k}” must be a number`);
    return v;
  });
  let res;
  try {
    res = await fetch("/admin/api" + path, { method, headers, credentials: "same-origin", body: json });
  } catch {
    throw new ApiError(0, NOT_ANSWERING);
  }
  const text = await res.text();
  let data;
  try { data = text ? JSON.parse(text) : {}; } catch {
    // Not scimd's JSON: a proxy's error page (502–504 when scimd behind it is down).
    throw new ApiError(res.status, res.status >= 502 && res.status <= 504 ? NOT_ANSWERING
      : `Unexpected answer: ${res.status} ${res.statusText}`);
  }
  if (!res.ok) throw new ApiError(res.status, data.detail || res.statusText);
  return data;
}

export function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n != null && n !== false));
  // The page's heading names the tab ("Users · scimd"), without its badges ("active").
  const heading = main.querySelector("h1")?.cloneNode(true);
  for (const b of heading?.querySelectorAll(".badge") ?? []) b.remove();
  const title = heading?.textContent.trim();
  document.title = title ? `${title} · scimd` : "scimd";
  labelCells(main);
  // Screen readers start reading at the new page; `main:focus` draws no outline (style.css).
  main.focus();
}

/** Gives every body cell its column's header text (`data-label`), which the phone layout
 * shows beside the value when rows become cards. */
function labelCells(root) {
  for (const table of root.querySelectorAll("table")) {
    const heads = [...table.querySelectorAll(":scope > thead > tr:last-child > th")]
      .map((th) => th.textContent.trim());
    if (heads.length === 0) continue;
    for (const tr of table.querySelectorAll(":scope > tbody > tr")) {
      let col = 0;
      for (const cell of tr.children) {
        const span = cell.colSpan || 1;
        // A cell across the whole row (an empty-list message) needs no label.
        const label = span === 1 ? heads[col] ?? "" : "";
        if (cell.getAttribute("data-label") !== label) cell.setAttribute("data-label", label);
        col += span;
      }
    }
  }
}

// Pages fill tables after `show` too (a list's next page, a sort, a filter): label those rows.
new MutationObserver(() => labelCells(main)).observe(main, { childList: true, subtree: true });

export function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

export function copyButton(text, label = "Copy") {
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

/** Opens or closes the phone menu (the navigation behind a button on a narrow screen). */
function menu(open) {
  document.querySelector("header.top").classList.toggle("open", open);
  document.getElementById("menu").setAttribute("aria-expanded", String(open));
}

document.getElementById("menu").addEventListener("click", () =>
  menu(document.getElementById("menu").getAttribute("aria-expanded") !== "true"));
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && document.querySelector("header.top.open")) {
    menu(false);
    document.getElementById("menu").focus();
  }
});

export function navigate(path) {
  history.pushState(null, "", path);
  router();
}

/** Renders the current location again (after `history.replaceState`). */
export function reroute() {
  router();
}

export function setNav(signedIn, username) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("menu").hidden = !signedIn;
  menu(false);
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("who-name").textContent = username || "";
  for (const a of document.querySelectorAll("nav a")) {
    const here = location.pathname.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}


export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

export function fmt(v) {
  if (v === undefined || v === null) return "(none)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** How long ago `iso` was, in the largest whole unit. */
export function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
  if (isNaN(s)) return "";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** Whole-number fields (`inputmode="numeric"`) say at once when they hold something else:
 * marked invalid for assistive technology, a message beneath naming the fix, and the browser
 * refuses to submit their form until it is fixed. */
document.addEventListener("input", (ev) => {
  const input = ev.target;
  if (!(input instanceof HTMLInputElement) || input.inputMode !== "numeric") return;
  const v = input.value.trim();
  const message = v === "" || /^[0-9]+$/.test(v) ? ""
    : input.required ? "Enter a whole number." : "Enter a whole number, or leave it empty.";
  input.setCustomValidity(message);
  const id = `${input.id}-error`;
  let note = document.getElementById(id);
  if (message) {
    input.setAttribute("aria-invalid", "true");
    if (!note) {
      note = h("p", { id, class: "field-error", "aria-live": "polite" });
      input.after(note);
      const by = input.getAttribute("aria-describedby");
      input.setAttribute("aria-describedby", by ? `${by} ${id}` : id);
    }
    note.textContent = message;
  } else {
    input.removeAttribute("aria-invalid");
    if (note) note.textContent = "";
  }
});
