// The scimd console: a small single-page app over /admin/api. No build step, no framework:
// ES modules, one per page under pages/, sharing lib.js. Everything is built with DOM calls
// (never innerHTML with data), so names in the directory cannot inject markup.

import { api, currentView, errorBox, h, navigate, nextView, setCsrf, setNav, setRouter, show } from "./lib.js";
import { adminsPage, invitePage } from "./pages/admins.js";
import { auditPage } from "./pages/audit.js";
import { loginPage, setupPage } from "./pages/auth.js";
import { connectPage } from "./pages/connect.js";
import { groupPage, groupsPage } from "./pages/groups.js";
import { overviewPage } from "./pages/overview.js";
import { schemasPage } from "./pages/schemas.js";
import { tokensPage } from "./pages/tokens.js";
import { userPage, usersPage } from "./pages/users.js";
import { webhookPage, webhooksPage } from "./pages/webhooks.js";

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (a && !ev.metaKey && !ev.ctrlKey && a.origin === location.origin) {
    ev.preventDefault();
    navigate(a.pathname + a.search);
  }
});
window.addEventListener("popstate", route);

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/logout"); } catch { /* signed out either way */ }
  setCsrf(null);
  navigate("/login");
});

async function route() {
  const mine = nextView();
  const path = location.pathname;
  try {
    if (path === "/setup") { setNav(false); return setupPage(); }
    if (path === "/invite") { setNav(false); return invitePage(); }
    const state = await api("GET", "/state");
    if (state.needsSetup && path !== "/login") { setNav(false); return setupPage(); }
    let session;
    try { session = await api("GET", "/session"); } catch (e) {
      if (e.status === 401) { setNav(false); return loginPage(); }
      throw e;
    }
    if (mine !== currentView()) return;
    setCsrf(session.csrf);
    let p = path;
    // The Overview is where an admin lands: who changed this week, whether clients call.
    if (path === "/" || path === "/login") {
      p = "/overview";
      history.replaceState(null, "", p);
    }
    setNav(true, session.username);
    let m;
    if (p === "/overview") await overviewPage();
    else if (p === "/connect") await connectPage();
    else if (p === "/tokens") await tokensPage();
    else if (p === "/users") await usersPage();
    else if ((m = p.match(/^\/users\/(.+)$/))) await userPage(decodeURIComponent(m[1]));
    else if (p === "/groups") await groupsPage();
    else if ((m = p.match(/^\/groups\/(.+)$/))) await groupPage(decodeURIComponent(m[1]));
    else if (p === "/audit") await auditPage();
    else if (p === "/schemas") await schemasPage();
    else if (p === "/admins") await adminsPage();
    else if (p === "/webhooks") await webhooksPage();
    else if ((m = p.match(/^\/webhooks\/(.+)$/))) await webhookPage(decodeURIComponent(m[1]));
    else show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/overview", "data-link": true }, "Go to the Overview")));
  } catch (e) {
    if (e.status === 401) { setNav(false); return loginPage(); }
    show(h("h1", {}, "Something went wrong"), errorBox(e));
  }
}

setRouter(route);
route();
