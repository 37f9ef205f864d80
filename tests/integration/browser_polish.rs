//! The console's rough edges, in headless Chromium (issue 15): the navigation hidden before
//! sign-in, no outline around the page, a title per page, tokens with their secrets beneath
//! (an overlapping rotation, Show revoked), inline validation of retention, the phone layout
//! (rows as cards, a Menu button), axe-core on every page at desktop and phone sizes, and a
//! stopped server named as such. Skips like `browser.rs` when Chromium is missing.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use scimd::service::admin;
use scimd::service::audit::Actor;
use scimd::store::Store;

use crate::browser::{browser, click, click_text, fill, fits, see, shown_token, snap};
use crate::common::*;

/// axe-core 4.14.1 (MPL-2.0, tests/fixtures/axe/LICENSE), from its npm package.
const AXE: &str = include_str!("../fixtures/axe/axe.min.js");

/// Runs axe-core on the page now shown and fails on any serious or critical violation,
/// printing each (rule, help, the elements and why). `page` names the page in the message.
pub(crate) async fn axe_check(c: &Client, page: &str) {
    let loaded = c.execute("return typeof window.axe", vec![]).await.unwrap();
    if loaded != "object" {
        // Run as a script function's body: the bundle sets `window.axe`.
        c.execute(&format!("{AXE}\nreturn typeof window.axe;"), vec![])
            .await
            .unwrap();
    }
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ["violations"] })
          .then((r) => done(r.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map((n) => ({ target: n.target.join(" "), why: n.failureSummary })) }))))
          .catch((e) => done([{ id: "axe-error", help: String(e), nodes: [] }]));"#;
    let found = c.execute_async(script, vec![]).await.unwrap();
    let found = found.as_array().cloned().unwrap_or_default();
    if !found.is_empty() {
        let mut report = String::new();
        for v in &found {
            report.push_str(&format!("\n- {} ({}): {}", v["id"], v["impact"], v["help"]));
            for n in v["nodes"].as_array().into_iter().flatten() {
                report.push_str(&format!("\n    {}: {}", n["target"], n["why"]));
            }
        }
        panic!("axe on {page}: serious or critical violations:{report}");
    }
}

/// Waits for the page's heading to be `h1`, then checks the tab's title follows it.
async fn heading(c: &Client, h1: &str) {
    let mut shown = String::new();
    for _ in 0..100 {
        if let Ok(el) = c.find(Locator::Css("main h1")).await
            && let Ok(text) = el.text().await
        {
            shown = text;
            if shown.starts_with(h1) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown.starts_with(h1), "heading {shown:?}, not {h1:?}");
    assert_eq!(c.title().await.unwrap(), format!("{h1} · scimd"));
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Whether the element `css` finds is displayed.
async fn displayed(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap()
}

/// The page has focus management without a frame around it: `main` is focused, no outline.
async fn no_outline(c: &Client) {
    let v = js(
        c,
        "const a = document.activeElement; \
         return [a.id, getComputedStyle(a).outlineStyle, a.matches(':focus-visible')];",
    )
    .await;
    assert_eq!(v[0], "main", "focus is on the page: {v}");
    assert_eq!(v[1], "none", "no outline around the page: {v}");
}

#[tokio::test]
async fn the_console_is_titled_accessible_fits_a_phone_and_says_when_scimd_is_down() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let mut s = Server::start().await;
    let origin = format!("http://{}", s.addr);
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );

    // Before sign-in: no navigation, no Sign out.
    c.goto(&format!("{origin}/setup")).await.unwrap();
    heading(&c, "Set up scimd").await;
    assert!(!displayed(&c, "#nav").await, "nav hidden on setup");
    assert!(!displayed(&c, "#logout").await, "Sign out hidden on setup");
    assert!(!displayed(&c, "#menu").await, "Menu hidden on setup");
    axe_check(&c, "setup (no code)").await;
    let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
        .unwrap()
        .unwrap();
    c.goto(&scimd::http::setup_link(&origin, &code))
        .await
        .unwrap();
    heading(&c, "Create the first administrator").await;
    no_outline(&c).await;
    axe_check(&c, "setup").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", "browser test password").await;
    click(&c, "button[type=submit]").await;
    heading(&c, "Overview").await;
    no_outline(&c).await;
    assert!(displayed(&c, "#nav").await && displayed(&c, "#logout").await);
    click_text(&c, "Connect").await;
    heading(&c, "Connect an identity provider").await;
    // The check is a real request, to this server's listen address: loopback, so warned.
    see(&c, "loopback").await;
    click_text(&c, "Check connection").await;
    see(&c, "Working:").await;
    see(&c, "answered 401 with a SCIM error").await;

    // Tokens: one row per token, its secrets beneath; a rotation with an overlap shows both.
    click_text(&c, "Tokens").await;
    heading(&c, "Tokens").await;
    fill(&c, "#token-name", "onelogin").await;
    click(&c, "form button[type=submit]").await;
    let first = shown_token(&c).await;
    let row = "//tbody[tr[td[1][normalize-space(.)='onelogin']]]";
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("{row}//select")))
        .await
        .unwrap()
        .select_by_value("1h")
        .await
        .unwrap();
    let regenerate = format!("{row}//button[normalize-space(.)='Regenerate']");
    crate::browser::act(&c, Locator::XPath(&regenerate), None).await;
    see(&c, "Token “onelogin”: copy it now.").await;
    let second = shown_token(&c).await;
    assert_ne!(first, second);
    see(&c, "old secret, ends").await;
    let secrets = c
        .find_all(Locator::XPath(&format!(
            "{row}/tr[contains(@class,'secret-row')]//code"
        )))
        .await
        .unwrap();
    let mut begins = Vec::new();
    for code in secrets {
        begins.push(code.text().await.unwrap());
    }
    assert_eq!(
        begins,
        [format!("{}…", &second[..14]), format!("{}…", &first[..14])],
        "the current secret, then the old one"
    );
    // A revoked token is hidden until asked for.
    fill(&c, "#token-name", "retired").await;
    click(&c, "form button[type=submit]").await;
    see(&c, "Write token “retired”: copy it now.").await;
    let retired = "//tbody[tr[td[1][normalize-space(.)='retired']]]";
    crate::browser::act(
        &c,
        Locator::XPath(&format!("{retired}//button[normalize-space(.)='Revoke']")),
        None,
    )
    .await;
    c.accept_alert().await.unwrap();
    see(&c, "Revoked “retired”.").await;
    let hidden = format!("{retired}[@hidden]");
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&hidden))
        .await
        .unwrap();
    click(&c, "#show-revoked").await;
    let shown = c.find(Locator::XPath(retired)).await.unwrap();
    assert!(shown.is_displayed().await.unwrap(), "Show revoked shows it");
    snap(&c, "polish-tokens").await;
    axe_check(&c, "tokens").await;
    let light = field_border_contrast(&c, "#token-name").await;
    dark(&c).await;
    let dark_ = field_border_contrast(&c, "#token-name").await;
    assert!(
        light >= 3.0 && dark_ >= 3.0,
        "field borders: {light:.2}:1 light, {dark_:.2}:1 dark"
    );

    // Something to show on every page: a user, a group, a webhook.
    let bearer = format!("Bearer {second}");
    let user = json!({"userName": "ana@example.com", "name": {"givenName": "Ana", "familyName": "Lima"},
        "emails": [{"value": "ana@example.com", "type": "work", "primary": true}]});
    let r = s
        .raw(
            "POST",
            "/scim/v2/Users",
            &[("authorization", &bearer)],
            Some(&user.to_string()),
        )
        .await;
    assert_eq!(r.status, 201);
    let uid = r.json()["id"].as_str().unwrap().to_string();
    let group = json!({"displayName": "Engineering", "members": [{"value": uid}]});
    let r = s
        .raw(
            "POST",
            "/scim/v2/Groups",
            &[("authorization", &bearer)],
            Some(&group.to_string()),
        )
        .await;
    assert_eq!(r.status, 201);
    let gid = r.json()["id"].as_str().unwrap().to_string();
    scimd::webhooks::add(
        &Store::open(&s.db()).unwrap(),
        &scimd::webhooks::Add {
            name: "hr-sync",
            url: "http://127.0.0.1:9/hook",
            types: &[],
            format: "standard",
            allow_http: true,
        },
        &Actor::cli(),
    )
    .unwrap();

    // Retention: a non-number is marked at once and never saved.
    c.goto(&format!("{origin}/audit")).await.unwrap();
    heading(&c, "Audit log").await;
    fill(&c, "#keep-days", "abc").await;
    let invalid = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#keep-days[aria-invalid=true]"))
        .await
        .unwrap();
    assert_eq!(
        invalid.attr("aria-describedby").await.unwrap().as_deref(),
        Some("keep-days-error")
    );
    see(&c, "Enter a whole number, or leave it empty.").await;
    click_text(&c, "Save").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let main = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!main.contains("Saved."), "an invalid form is not sent");

    let pages = [
        ("/overview", "Overview"),
        ("/connect", "Connect an identity provider"),
        ("/tokens", "Tokens"),
        ("/users", "Users"),
        (&format!("/users/{uid}") as &str, "ana@example.com"),
        ("/groups", "Groups"),
        (&format!("/groups/{gid}"), "Engineering"),
        ("/audit", "Audit log"),
        ("/schemas", "Schemas"),
        ("/webhooks", "Webhooks"),
        ("/webhooks/hr-sync", "hr-sync"),
        ("/admins", "Administrators"),
        ("/nope", "Not found"),
    ];
    // The check itself catches what it should: a button without a name is critical.
    js(
        &c,
        "document.querySelector('main').append(document.createElement('button'))",
    )
    .await;
    let caught = tokio::spawn({
        let c = c.clone();
        async move { axe_check(&c, "a page with a nameless button").await }
    })
    .await;
    let caught = caught
        .expect_err("axe finds the nameless button")
        .into_panic();
    let caught = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(caught.contains("button-name"), "{caught}");

    let mut violations = Vec::new();
    for (phone, size) in [(false, (1280, 900)), (true, (390, 844))] {
        c.set_window_size(size.0, size.1).await.unwrap();
        for (path, h1) in pages {
            c.goto(&format!("{origin}{path}")).await.unwrap();
            heading(&c, h1).await;
            // Pages fill their tables after the heading: wait for the loading to settle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let what = format!("{path} at {}x{}", size.0, size.1);
            if let Err(e) = tokio::spawn({
                let c = c.clone();
                let what = what.clone();
                async move { axe_check(&c, &what).await }
            })
            .await
            {
                violations.push(format!("{e}"));
            }
            if phone {
                phone_layout(&c, &what).await;
                if ["/tokens", "/audit", "/connect"].contains(&path) {
                    snap(&c, &format!("polish-phone{}", path.replace('/', "-"))).await;
                }
            } else {
                // Dark: the stylesheet's own dark colours, applied as a dark system would.
                dark(&c).await;
                let what = format!("{what}, dark");
                if let Err(e) = tokio::spawn({
                    let c = c.clone();
                    async move { axe_check(&c, &what).await }
                })
                .await
                {
                    violations.push(format!("{e}"));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));

    // The menu opens and closes from the keyboard too, and leads to a page.
    c.goto(&format!("{origin}/users")).await.unwrap();
    heading(&c, "Users").await;
    assert!(
        !displayed(&c, "#nav").await,
        "the navigation waits behind Menu"
    );
    click(&c, "#menu").await;
    assert!(displayed(&c, "#nav").await);
    snap(&c, "polish-phone-menu").await;
    assert_eq!(
        c.find(Locator::Css("#menu"))
            .await
            .unwrap()
            .attr("aria-expanded")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(fits(&c).await);
    c.find(Locator::Css("#menu"))
        .await
        .unwrap()
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    assert!(!displayed(&c, "#nav").await, "Escape closes the menu");
    click(&c, "#menu").await;
    click_text(&c, "Groups").await;
    heading(&c, "Groups").await;
    assert!(
        !displayed(&c, "#nav").await,
        "the menu closes on navigating"
    );

    // Signed out: the sign-in page has no navigation either.
    c.set_window_size(1280, 900).await.unwrap();
    click(&c, "#logout").await;
    heading(&c, "Sign in").await;
    assert!(!displayed(&c, "#nav").await && !displayed(&c, "#logout").await);
    no_outline(&c).await;
    axe_check(&c, "sign-in").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", "browser test password").await;
    click(&c, "button[type=submit]").await;
    heading(&c, "Overview").await;

    // The server stops: the next click says so, not "Failed to fetch".
    s.signal_shutdown();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(s.addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    click_text(&c, "Users").await;
    see(&c, "scimd is not answering — is it running?").await;
    c.close().await.unwrap();
}

/// Applies the stylesheet's `prefers-color-scheme: dark` colours to the page (headless
/// Chromium is light, and WebDriver cannot change that).
async fn dark(c: &Client) {
    let applied = js(
        c,
        "let n = 0;          for (const sheet of document.styleSheets) for (const rule of sheet.cssRules)            if (rule.media && rule.conditionText.includes('dark'))              for (const inner of rule.cssRules) for (const name of inner.style) {                document.documentElement.style.setProperty(name, inner.style.getPropertyValue(name)); n++; }          document.documentElement.style.colorScheme = 'dark'; return n;",
    )
    .await;
    assert!(
        applied.as_u64().unwrap() > 5,
        "dark colours found: {applied}"
    );
    let bg = js(c, "return getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(bg, "rgb(17, 20, 24)");
}

/// The contrast of the border of the field `css` against its own background and its card's
/// (WCAG 1.4.11 asks 3:1 of a control's boundary): the lower.
async fn field_border_contrast(c: &Client, css: &str) -> f64 {
    let script = format!(
        "const lum = (c) => {{ const [r, g, b] = c.match(/[0-9.]+/g).slice(0, 3).map((x) => {{ \
           x = x / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }}); \
           return 0.2126 * r + 0.7152 * g + 0.0722 * b; }}; \
         const ratio = (a, b) => {{ const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); \
           return (x + 0.05) / (y + 0.05); }}; \
         const f = document.querySelector('{css}'); const s = getComputedStyle(f); \
         const card = getComputedStyle(f.closest('.card')).backgroundColor; \
         return Math.min(ratio(s.borderTopColor, s.backgroundColor), ratio(s.borderTopColor, card));"
    );
    js(c, &script).await.as_f64().unwrap()
}

/// At phone size: nothing wider than the window, table rows as cards with their column's
/// name, and a one-line header with the navigation behind Menu.
async fn phone_layout(c: &Client, what: &str) {
    assert!(fits(c).await, "{what}: the page scrolls sideways");
    let wide = js(
        c,
        "return [...document.querySelectorAll('body *')].filter((e) => { \
           const r = e.getBoundingClientRect(); \
           return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1) \
             && !e.closest('thead, .skip, .skip-label'); }) \
         .map((e) => e.tagName + '.' + e.className).slice(0, 5);",
    )
    .await;
    assert_eq!(wide, json!([]), "{what}: elements wider than the window");
    let cards = js(
        c,
        "const rows = [...document.querySelectorAll('main tbody tr')]; \
         return [rows.length, rows.filter((r) => getComputedStyle(r).display === 'block').length, \
           [...document.querySelectorAll('main tbody td[data-label]')] \
             .filter((td) => td.dataset.label && getComputedStyle(td, '::before').content.includes(td.dataset.label)).length, \
           document.querySelectorAll('main tbody td').length];",
    )
    .await;
    assert_eq!(cards[0], cards[1], "{what}: every row is a card: {cards}");
    if cards[0].as_u64().unwrap() > 0 {
        assert!(
            cards[2].as_u64().unwrap() > 0,
            "{what}: cells show their column's name: {cards}"
        );
    }
    let header = js(
        c,
        "const t = document.querySelector('header.top'); \
         return [t.getBoundingClientRect().height, getComputedStyle(document.getElementById('menu')).display];",
    )
    .await;
    assert!(
        header[0].as_f64().unwrap() < 60.0,
        "{what}: the header takes one line: {header}"
    );
    assert_ne!(header[1], "none", "{what}: Menu shown");
}
