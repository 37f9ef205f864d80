//! The console in a real headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`): first-run setup, sign-in, a token created and copied (and a read token,
//! which cannot write), a user provisioned over SCIM with it and seen in Users (its extension
//! in a card, typed) and in the Audit log, then regenerate and revoke; an extension declared
//! and removed on the Schemas page and a user holding it shown under the declaration and then
//! as sent; a webhook added (plain http refused until its box is ticked), its secret shown
//! once, a test event and a provisioned user seen in its delivery log and resent, its secret
//! rotated and the endpoint removed. Screenshots of each page go to `target/screenshots/`.
//!
//! Without Chromium the test says so and passes, so `cargo test` works on any machine;
//! `.ci/run` installs Chromium and sets `SCIMD_REQUIRE_BROWSER=1`, which turns a missing
//! browser into a failure.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use scimd::service::admin;
use scimd::store::Store;

use crate::common::*;

pub(crate) const PASSWORD: &str = "browser test password";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver, stopped when dropped.
pub(crate) struct Driver(Child);

impl Drop for Driver {
    /// SIGTERM first: chromedriver then quits the browsers it started. It does not always
    /// (browsers were seen left running, adopted by init, after runs whose tests passed), so
    /// the signal goes to chromedriver's whole process group, which its browsers share, and a
    /// SIGKILL follows for whatever is still there.
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// A WebDriver session on headless Chromium, or `None` (with a note) when there is none.
pub(crate) async fn browser() -> Option<(Driver, Client)> {
    browser_with(&[]).await
}

/// `browser` with more Chromium flags (`--force-dark-mode`: `prefers-color-scheme: dark`).
pub(crate) async fn browser_with(flags: &[&str]) -> Option<(Driver, Client)> {
    let required = std::env::var_os("SCIMD_REQUIRE_BROWSER").is_some();
    let (Some(driver), Some(chromium)) = (
        which(&["chromedriver", "chromium-driver"]),
        which(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        assert!(
            !required,
            "SCIMD_REQUIRE_BROWSER is set but chromium/chromedriver are missing"
        );
        eprintln!("browser test skipped: install chromium and chromium-driver to run it");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    // Its own process group, with the browsers it starts: see `Driver::drop`.
    let child = Command::new(driver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ];
    args.extend_from_slice(flags);
    let caps = json!({"goog:chromeOptions": {"binary": chromium, "args": args}});
    let caps = caps.as_object().cloned().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(client) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return Some((driver, client));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

pub(crate) fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn snap(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the page's `main` shows `text`; a page showing a JavaScript object's name
/// where text belongs fails at once.
pub(crate) async fn see(c: &Client, text: &str) {
    for _ in 0..100 {
        if let Ok(main) = c.find(Locator::Css("main")).await
            && let Ok(shown) = main.text().await
        {
            assert!(!shown.contains("[object "), "the page shows {shown}");
            if shown.contains(text) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    panic!("never saw {text:?}; the page shows: {shown}");
}

/// Clicks (or types into) the element `locator` finds, retrying while the console re-renders
/// under it (a stale element is found again).
pub(crate) async fn act(c: &Client, locator: Locator<'_>, keys: Option<&str>) {
    let mut last = None;
    for _ in 0..50 {
        let result = async {
            let el = c.wait().for_element(locator).await?;
            match keys {
                Some(text) => {
                    el.clear().await?;
                    el.send_keys(text).await
                }
                None => el.click().await,
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not act on {locator:?}: {last:?}");
}

pub(crate) async fn fill(c: &Client, css: &str, text: &str) {
    act(c, Locator::Css(css), Some(text)).await;
}

pub(crate) async fn click(c: &Client, css: &str) {
    act(c, Locator::Css(css), None).await;
}

pub(crate) async fn click_text(c: &Client, text: &str) {
    let xpath = format!("//*[self::a or self::button][normalize-space(.)='{text}']");
    act(c, Locator::XPath(&xpath), None).await;
}

/// Waits for the extension card of `urn` to show `name` typed `kind` with `value`.
async fn ext_attribute(c: &Client, urn: &str, name: &str, kind: &str, value: &str) {
    let xpath = format!(
        "//section[contains(@class,'extension')][@data-urn='{urn}']//dt[span[contains(@class,\
         'ext-type')][normalize-space(.)='{kind}']][normalize-space(.)='{name} {kind}']\
         /following-sibling::dd[1]"
    );
    let dd = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {name} ({kind}) in the card of {urn}: {e}"));
    assert_eq!(dd.text().await.unwrap(), value);
}

pub(crate) async fn shown_token(c: &Client) -> String {
    let el = c
        .wait()
        .for_element(Locator::Css("#new-token"))
        .await
        .unwrap();
    el.text().await.unwrap()
}

async fn scim(s: &Server, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    s.raw("GET", "/scim/v2/Users", &[("authorization", &bearer)], None)
        .await
        .status
}

#[tokio::test]
async fn an_admin_sets_up_connects_and_watches_provisioning() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = Server::start().await;
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
    let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
        .unwrap()
        .unwrap();
    let origin = format!("http://{}", s.addr);

    // First-run setup from the link the server logs.
    c.goto(&scimd::http::setup_link(&origin, &code))
        .await
        .unwrap();
    see(&c, "Create the first administrator").await;
    snap(&c, "setup").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    see(&c, &format!("{origin}/scim/v2")).await;
    snap(&c, "connect").await;

    // A token, shown once, with a copy button.
    click_text(&c, "Tokens").await;
    see(&c, "New token name").await;
    fill(&c, "#token-name", "onelogin").await;
    click(&c, "form button[type=submit]").await;
    let token = shown_token(&c).await;
    assert!(token.starts_with("scimd_"), "{token}");
    click_text(&c, "Copy").await;

    // A read token, its scope chosen in the form and shown in the list: it reads, never
    // writes.
    fill(&c, "#token-name", "feed").await;
    c.wait()
        .for_element(Locator::Css("#token-scope"))
        .await
        .unwrap()
        .select_by_value("read")
        .await
        .unwrap();
    click(&c, "form button[type=submit]").await;
    see(&c, "Read token “feed”: copy it now.").await;
    let feed = shown_token(&c).await;
    assert_eq!(scim(&s, &feed).await, 200);
    let bearer = format!("Bearer {feed}");
    let denied = s
        .raw(
            "POST",
            "/scim/v2/Users",
            &[("authorization", &bearer)],
            Some(r#"{"userName": "nobody"}"#),
        )
        .await;
    assert_eq!(denied.status, 403);
    for (name, scope) in [("feed", "read"), ("onelogin", "write")] {
        let cell = format!("//tr[td[1][normalize-space(.)='{name}']]/td[2]");
        let cell = c.find(Locator::XPath(&cell)).await.unwrap();
        assert_eq!(cell.text().await.unwrap(), scope, "{name}");
    }
    snap(&c, "tokens").await;

    // The identity provider provisions a user with that token.
    let bearer = format!("Bearer {token}");
    let body = json!({"userName": "ana@example.com", "displayName": "Ana Lima"}).to_string();
    let r = s
        .raw(
            "POST",
            "/scim/v2/Users",
            &[("authorization", &bearer)],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201);
    // An extension attribute changes: the history names it, not its whole URN.
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}]
    })
    .to_string();
    let r = s
        .raw(
            "PATCH",
            &format!("/scim/v2/Users/{id}"),
            &[("authorization", &bearer)],
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    click_text(&c, "Users").await;
    see(&c, "ana@example.com").await;
    fill(&c, "#search", "lima").await;
    // The search runs once typing pauses; it shows in the address.
    for _ in 0..100 {
        if c.current_url().await.unwrap().as_str().contains("q=lima") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    see(&c, "1–1 of 1").await;
    snap(&c, "users").await;
    click_text(&c, "ana@example.com").await;
    see(&c, "History").await;
    see(&c, "user.create").await;
    see(&c, "Display name").await;
    let label = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!(
            "abbr.ext-attr[title='{ENTERPRISE}']"
        )))
        .await
        .unwrap();
    assert_eq!(label.text().await.unwrap(), "Department");
    // The extension has a card of its own: its attributes by name, with their types.
    ext_attribute(&c, ENTERPRISE, "department", "string", "R&D").await;
    let title = c
        .find(Locator::Css(&format!(
            "section.extension[data-urn='{ENTERPRISE}'] h2"
        )))
        .await
        .unwrap();
    assert_eq!(title.text().await.unwrap(), "EnterpriseUser");
    snap(&c, "user").await;

    // The same list on a phone.
    c.set_window_size(390, 844).await.unwrap();
    see(&c, "ana@example.com").await;
    snap(&c, "user-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    click_text(&c, "Groups").await;
    see(&c, "No groups yet").await;
    snap(&c, "groups").await;

    click_text(&c, "Audit log").await;
    see(&c, "user.create").await;
    see(&c, "token.create").await;
    snap(&c, "audit").await;
    // Retention is set here too.
    fill(&c, "#keep-days", "90").await;
    click_text(&c, "Save").await;
    see(&c, "Saved.").await;

    // Regenerate with a 1-hour overlap: both secrets work; then revoke.
    click_text(&c, "Tokens").await;
    see(&c, "onelogin").await;
    // In the row of the "onelogin" token (the test harness has a token of its own).
    let row = "//tr[td[1][normalize-space(.)='onelogin']]";
    // Waited for: "onelogin" is also in the audit log just left, so `see` may have matched
    // that page before the tokens' table replaced it.
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("{row}//select")))
        .await
        .unwrap()
        .select_by_value("1h")
        .await
        .unwrap();
    let regenerate = format!("{row}//button[normalize-space(.)='Regenerate']");
    act(&c, Locator::XPath(&regenerate), None).await;
    let second = shown_token(&c).await;
    assert_ne!(second, token);
    assert_eq!(
        (scim(&s, &token).await, scim(&s, &second).await),
        (200, 200)
    );
    see(&c, "old secret, ends").await;
    let revoke = format!("{row}//button[normalize-space(.)='Revoke']");
    act(&c, Locator::XPath(&revoke), None).await;
    c.accept_alert().await.unwrap();
    see(&c, "Revoked").await;
    assert_eq!(
        (scim(&s, &token).await, scim(&s, &second).await),
        (401, 401)
    );

    // Schemas: an undeclared extension found in stored data is declared from its draft,
    // shown with its attributes, then removed.
    crate::schemas::users_with_extension_data(&s.db());
    click_text(&c, "Schemas").await;
    see(&c, "No declared schemas.").await;
    see(&c, crate::schemas::ACME).await;
    let seen = format!("//tr[@data-urn='{}']//button", crate::schemas::ACME);
    act(&c, Locator::XPath(&seen), None).await;
    let mut drafted = String::new();
    for _ in 0..100 {
        let text = c
            .wait()
            .for_element(Locator::Css("#schema-definition"))
            .await
            .unwrap();
        drafted = text.prop("value").await.unwrap().unwrap_or_default();
        if drafted.contains("dateTime") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(drafted.contains("\"hired\""), "{drafted}");
    snap(&c, "schemas-draft").await;
    click(&c, "#schema-form button[type=submit]").await;
    see(&c, &format!("Declared {} for User.", crate::schemas::ACME)).await;
    c.wait()
        .for_element(Locator::XPath(
            "//section[contains(@class,'schema')]//td[normalize-space(.)='dateTime']",
        ))
        .await
        .unwrap();
    see(&c, "None seen.").await;
    snap(&c, "schemas").await;
    // A user holding it shows its values under the declaration, typed.
    let acme = crate::schemas::ACME;
    c.goto(&format!("{origin}/users/u0")).await.unwrap();
    ext_attribute(&c, acme, "hired", "dateTime", "2024-01-02T03:04:05Z").await;
    ext_attribute(&c, acme, "level", "integer", "3").await;
    snap(&c, "user-extension").await;
    // A multi-valued attribute is a list.
    c.goto(&format!("{origin}/users/u1")).await.unwrap();
    ext_attribute(&c, acme, "keys", "string []", "a\nb").await;
    click_text(&c, "Schemas").await;
    act(
        &c,
        Locator::XPath("//section[contains(@class,'schema')]//button[normalize-space(.)='Remove']"),
        None,
    )
    .await;
    c.accept_alert().await.unwrap();
    see(&c, "stored values are kept").await;
    see(&c, "No declared schemas.").await;
    // Undeclared, the same values are shown as sent, the extension named by its URN.
    c.goto(&format!("{origin}/users/u0")).await.unwrap();
    let undeclared =
        format!("//section[@data-urn='{acme}']/h2[normalize-space(.)='acme not declared']");
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&undeclared))
        .await
        .unwrap();
    see(&c, "hired").await;

    // Sign out, and back in.
    click(&c, "#logout").await;
    see(&c, "Sign in").await;
    snap(&c, "login").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    c.close().await.unwrap();
}

/// Whether the page is no wider than the window (no sideways scrolling): its width against
/// the viewport's without the vertical scroll bar (`innerWidth` counts the bar, which let a
/// page up to its width too wide pass).
pub(crate) async fn fits(c: &Client) -> bool {
    c.execute(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth",
        vec![],
    )
    .await
    .unwrap()
    .as_bool()
    .unwrap()
}

/// Waits for the element at `xpath`.
pub(crate) async fn element(c: &Client, xpath: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no {xpath}: {e}"))
}

#[tokio::test]
async fn an_admin_adds_a_webhook_sees_its_secret_once_and_its_deliveries() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    // Workers woken only by the console, and an endpoint paused within a second.
    let s = Server::start_in(
        tempfile::TempDir::new().unwrap(),
        crate::console_webhooks::slow_tick,
    )
    .await;
    let receiver = crate::console_webhooks::Receiver::start().await;
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
    let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
        .unwrap()
        .unwrap();
    let origin = format!("http://{}", s.addr);
    c.goto(&scimd::http::setup_link(&origin, &code))
        .await
        .unwrap();
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;

    click_text(&c, "Webhooks").await;
    see(&c, "No webhooks yet").await;
    fill(&c, "#wh-name", "ssh-lock").await;
    fill(&c, "#wh-url", &receiver.url).await;
    // Plain http without the box: refused in the form, the URL field marked and focused.
    click(&c, "#webhook-form button[type=submit]").await;
    see(&c, "Allow plain http").await;
    element(&c, "//input[@id='wh-url'][@aria-invalid='true']").await;
    let focused = c
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "wh-url");
    click(&c, "#wh-http").await;
    click(&c, "#webhook-form button[type=submit]").await;
    see(&c, "Signing secret of “ssh-lock”: copy it now.").await;
    let secret = c
        .wait()
        .for_element(Locator::Css("#new-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    click_text(&c, "Copy").await;
    element(
        &c,
        "//section[@data-name='ssh-lock']//span[contains(@class,'badge')][normalize-space(.)='healthy']",
    )
    .await;
    see(&c, "all events").await;
    snap(&c, "webhooks").await;
    // Once: the page loaded again shows the endpoint, never its secret.
    c.goto(&format!("{origin}/webhooks")).await.unwrap();
    element(&c, "//section[@data-name='ssh-lock']").await;
    assert!(!c.source().await.unwrap().contains(&secret));

    // Its page: a test event, delivered, signed with that secret, and in the log.
    click_text(&c, "ssh-lock").await;
    see(&c, "No deliveries yet.").await;
    click_text(&c, "Send test event").await;
    see(&c, "Test event: delivered, HTTP 200").await;
    element(&c, "//tr[@data-event='test'][td[normalize-space(.)='200']]").await;
    let got = receiver.wait(|g| g.json()["type"] == "webhook.test").await;
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .unwrap();

    // A provisioned user is delivered on its own; Refresh shows it, and Resend sends it again.
    s.create_user(&json!({"userName": "ana@acme.example"}))
        .await;
    let created = receiver.wait(|g| g.json()["type"] == "user.created").await;
    let seq = created.json()["id"].as_str().unwrap().to_string();
    let row = format!("//tr[@data-event='{seq}']");
    // The receiver may have it a moment before scimd logs it: Refresh until the row shows.
    for _ in 0..40 {
        click_text(&c, "Refresh").await;
        let shown = c
            .wait()
            .at_most(Duration::from_millis(500))
            .for_element(Locator::XPath(&row))
            .await;
        if shown.is_ok() {
            break;
        }
    }
    element(&c, &format!("{row}[td[contains(.,'user.created')]]")).await;
    act(
        &c,
        Locator::XPath(&format!("{row}//button[normalize-space(.)='Resend']")),
        None,
    )
    .await;
    see(&c, &format!("Event {seq} resent: delivered, HTTP 200")).await;
    element(&c, &format!("{row}[td[contains(.,'(manual)')]]")).await;
    snap(&c, "webhook").await;

    // On a phone: nothing scrolls sideways.
    c.set_window_size(390, 844).await.unwrap();
    see(&c, "Delivery log").await;
    assert!(fits(&c).await, "the endpoint's page is wider than a phone");
    snap(&c, "webhook-phone").await;
    click_text(&c, "← Webhooks").await;
    element(&c, "//section[@data-name='ssh-lock']").await;
    assert!(fits(&c).await, "the Webhooks page is wider than a phone");
    snap(&c, "webhooks-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    // Rotate with an hour's overlap: a new secret, once; then remove.
    click_text(&c, "ssh-lock").await;
    c.wait()
        .for_element(Locator::Css("#wh-overlap"))
        .await
        .unwrap()
        .select_by_value("1h")
        .await
        .unwrap();
    click_text(&c, "Rotate secret").await;
    see(&c, "New signing secret of “ssh-lock”").await;
    let rotated = c
        .wait()
        .for_element(Locator::Css("#new-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    click_text(&c, "Remove").await;
    c.accept_alert().await.unwrap();
    see(&c, "Removed “ssh-lock”.").await;
    see(&c, "No webhooks yet").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/webhooks"));

    // A receiver that keeps failing: the endpoint is paused, says why, and Resume delivers.
    receiver.answer(503);
    fill(&c, "#wh-name", "flaky").await;
    fill(&c, "#wh-url", &receiver.url).await;
    click(&c, "#wh-http").await;
    for unticked in 1..10 {
        click(&c, &format!("#wh-ev-{unticked}")).await;
    }
    click(&c, "#webhook-form button[type=submit]").await;
    see(&c, "Signing secret of “flaky”").await;
    see(&c, "user.created").await;
    s.create_user(&json!({"userName": "bo@acme.example"})).await;
    let paused = "//section[@data-name='flaky']//span[contains(@class,'badge')]                  [normalize-space(.)='paused']";
    for _ in 0..40 {
        c.goto(&format!("{origin}/webhooks")).await.unwrap();
        let shown = c
            .wait()
            .at_most(Duration::from_millis(500))
            .for_element(Locator::XPath(paused))
            .await;
        if shown.is_ok() {
            break;
        }
    }
    element(&c, paused).await;
    see(&c, "(last: HTTP 503)").await;
    see(&c, "1 event waiting").await;
    snap(&c, "webhooks-paused").await;
    receiver.answer(200);
    let tried = receiver.got().len();
    click_text(&c, "Resume").await;
    see(&c, "Resumed “flaky”: it gets what it missed, in order.").await;
    receiver
        .wait_from(tried, |g| {
            g.json()["resource"]["userName"] == "bo@acme.example"
                && g.json()["type"] == "user.created"
        })
        .await;

    // Retention overtakes it: the console says so, and Resume says what it skipped for good.
    receiver.answer(503);
    s.create_user(&json!({"userName": "cy@acme.example"})).await;
    for _ in 0..40 {
        c.goto(&format!("{origin}/webhooks")).await.unwrap();
        let shown = c
            .wait()
            .at_most(Duration::from_millis(500))
            .for_element(Locator::XPath(paused))
            .await;
        if shown.is_ok() {
            break;
        }
    }
    s.create_user(&json!({"userName": "di@acme.example"})).await;
    let store = Store::open_for_command(&s.db()).unwrap();
    store
        .write_sync(|tx| {
            let n: u32 = tx.query_row("SELECT COUNT(*) - 1 FROM events", [], |r| r.get(0))?;
            scimd::store::events::delete_oldest(tx, n)
        })
        .unwrap();
    c.goto(&format!("{origin}/webhooks")).await.unwrap();
    see(
        &c,
        "pruned by retention before delivery: resync the receiver from SCIM",
    )
    .await;
    let gave_up = c.find_all(Locator::XPath("//*[contains(text(),'Gave up after')]"));
    assert!(
        gave_up.await.unwrap().is_empty(),
        "a gap-paused endpoint gave up on nothing"
    );
    receiver.answer(200);
    let tried = receiver.got().len();
    click_text(&c, "Resume").await;
    see(&c, "skipped for good — resync the receiver from SCIM").await;
    receiver
        .wait_from(tried, |g| {
            g.json()["resource"]["userName"] == "di@acme.example"
        })
        .await;
    c.close().await.unwrap();
}
