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

export async function api(method, path, body) {
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

export function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n != null && n !== false));
  main.focus();
}

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
