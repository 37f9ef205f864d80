//! A headless box's console in a real headless Chromium: with `--public-url` set (a proxy's
//! or a tunnel's HTTPS name), the console still sets up and signs in at loopback, as through
//! an SSH tunnel (`ssh -L 8080:127.0.0.1:8080 box`), by address and as `localhost`; the
//! session cookie the browser gets there works. Skips, saying so, without Chromium.

use scimd::service::admin;
use scimd::store::Store;

use crate::browser::{browser, click, fill, see};
use crate::common::*;

const PASSWORD: &str = "tunnel test password";

#[tokio::test]
async fn a_tunnel_to_loopback_signs_in_although_the_public_url_is_https() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |cfg| {
        cfg.with_public_url(Some("https://scim.example.com"))
            .unwrap()
    })
    .await;
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
    let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
        .unwrap()
        .unwrap();
    let port = s.addr.port();

    // Setup through the tunnel, by address: the next pages need the session cookie.
    let loopback = format!("http://127.0.0.1:{port}");
    c.goto(&scimd::http::setup_link(&loopback, &code))
        .await
        .unwrap();
    see(&c, "Create the first administrator").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    c.goto(&format!("{loopback}/tokens")).await.unwrap();
    see(&c, "New token name").await;

    // Sign-in at `localhost` (another origin to the browser: no cookie yet).
    c.goto(&format!("http://localhost:{port}/")).await.unwrap();
    see(&c, "Sign in").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    c.goto(&format!("http://localhost:{port}/tokens"))
        .await
        .unwrap();
    see(&c, "New token name").await;
    c.close().await.unwrap();
}
