//! Administrators in a real headless Chromium (see `browser.rs`): an administrator invites
//! another from the Administrators page (confirming with its password), who opens the link,
//! chooses a name and password and is signed in; the new administrator turns on two-factor
//! sign-in (the code computed here from the secret the page shows, and its password), signs
//! out, and signs in again with a code. axe-core finds no serious or critical violation on the
//! Administrators, invitation and two-factor pages. Screenshots go to `target/screenshots/`.

use std::time::Duration;

use fantoccini::{Client, Locator};

use scimd::service::admin;
use scimd::store::Store;

use crate::browser::{browser, click, click_text, fill, see, snap};
use crate::browser_polish::axe_check;
use crate::common::*;

const PASSWORD: &str = "browser test password";

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The TOTP code of the step `ahead` steps from now.
fn code_at(secret: &str, ahead: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate(now + 30 * ahead)
        .to_string()
}

async fn who(c: &Client) -> String {
    text_of(c, "#who-name").await
}

#[tokio::test]
async fn an_invited_administrator_joins_and_signs_in_with_a_totp_code() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "root", PASSWORD).unwrap();
    let origin = format!("http://{}", s.addr);

    c.goto(&format!("{origin}/login")).await.unwrap();
    see(&c, "Sign in").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;

    // root invites someone: a one-time link, shown once.
    click_text(&c, "Administrators").await;
    see(&c, "Your sessions").await;
    see(&c, "this session").await;
    click_text(&c, "Invite an administrator").await;
    fill(&c, "#step-up-password", "not the password").await;
    click_text(&c, "Create the invitation link").await;
    see(&c, "the password is wrong").await;
    fill(&c, "#step-up-password", PASSWORD).await;
    click_text(&c, "Create the invitation link").await;
    let link = text_of(&c, "#invite-link").await;
    assert!(
        link.starts_with(&format!("{origin}/invite#code=")),
        "{link}"
    );
    see(&c, "Pending invitations: from root").await;
    snap(&c, "admins").await;
    axe_check(&c, "administrators").await;
    click(&c, "#logout").await;
    see(&c, "Sign in").await;

    // The invitee opens it, chooses a name and password, and is in.
    c.goto(&link).await.unwrap();
    see(&c, "Join as an administrator").await;
    snap(&c, "invite").await;
    axe_check(&c, "invitation").await;
    fill(&c, "#username", "ana").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    assert_eq!(who(&c).await, "ana");

    // ana turns on two-factor sign-in with the secret the page shows.
    click_text(&c, "Administrators").await;
    see(&c, "ana (you)").await;
    click_text(&c, "Turn on two-factor sign-in").await;
    let secret = text_of(&c, "#totp-secret").await;
    let uri = text_of(&c, "#totp-uri").await;
    assert!(uri.starts_with("otpauth://totp/scimd%3Aana?"), "{uri}");
    // The QR code renders (a data: image, which the console's CSP allows).
    let width = c
        .execute(
            "const img = document.querySelector('img.qr'); img.scrollIntoView(); \
             return img.complete ? img.naturalWidth : 0;",
            vec![],
        )
        .await
        .unwrap();
    assert!(width.as_u64().unwrap_or(0) > 0, "the QR code did not load");
    snap(&c, "totp-enrol").await;
    axe_check(&c, "two-factor enrolment").await;
    fill(&c, "#totp-confirm", &code_at(&secret, 0)).await;
    fill(&c, "#totp-password", PASSWORD).await;
    click_text(&c, "Confirm").await;
    see(&c, "Save these recovery codes now").await;
    let codes = text_of(&c, "#recovery-codes").await;
    assert_eq!(codes.lines().count(), 10, "{codes}");
    see(&c, "10 recovery codes left").await;

    // Signing in now asks for a code after the password.
    click(&c, "#logout").await;
    see(&c, "Sign in").await;
    fill(&c, "#username", "ana").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;
    see(&c, "Enter your code").await;
    snap(&c, "totp-code").await;
    axe_check(&c, "two-factor sign-in").await;
    fill(&c, "#code", "000000").await;
    click(&c, "button[type=submit]").await;
    if code_at(&secret, 0) != "000000" && code_at(&secret, 1) != "000000" {
        see(&c, "wrong code").await;
    }
    // The enrolment's code was used: the next step's (one step of skew) signs in.
    fill(&c, "#code", &code_at(&secret, 1)).await;
    click(&c, "button[type=submit]").await;
    see(&c, "SCIM Base URL").await;
    assert_eq!(who(&c).await, "ana");
    c.close().await.unwrap();
}
