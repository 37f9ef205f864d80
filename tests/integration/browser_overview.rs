//! The Overview in a real headless Chromium (skipped, as `browser.rs` says, without one): an
//! admin signs in and lands on it, answers "who was offboarded this week?" with one click on
//! the suspended person (their page opens), sees each token's activity and failures by
//! client address, sets how often a token is
//! expected to call (a bad value refused in the form), and sees the chart of changes per
//! day, whose geometry is checked in the page itself.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use scimd::service::admin;
use scimd::store::Store;

use crate::browser::{browser, click, click_text, fill, see, snap};
use crate::common::*;

const PASSWORD: &str = "overview test password";

#[tokio::test]
async fn an_admin_lands_on_the_overview_and_finds_who_was_offboarded_in_one_click() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = Server::start().await;
    let mut ids = Vec::new();
    for name in ["ana", "ben", "cy"] {
        let u = s
            .create_user(&json!({"userName": format!("{name}@acme.example"),
                                  "name": {"givenName": name, "familyName": "Okafor"}}))
            .await;
        ids.push(id_of(&u));
    }
    let off = json!([{"op": "replace", "value": {"active": false}}]);
    assert_eq!(
        s.patch(&format!("/scim/v2/Users/{}", ids[1]), &off)
            .await
            .status,
        200
    );
    assert_eq!(
        s.delete(&format!("/scim/v2/Users/{}", ids[2])).await.status,
        204
    );
    // A client sending a token that is not ours.
    let stale = [("authorization", "Bearer scimd_0123456789abcdef_stale")];
    for _ in 0..2 {
        let r = s
            .raw_from(loopback_client(7), "GET", "/scim/v2/Users", &stale, None)
            .await;
        assert_eq!(r.status, 401);
    }

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
    see(&c, "Create the first administrator").await;
    fill(&c, "#username", "root").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "button[type=submit]").await;

    // Setup lands on the Overview.
    see(&c, "People this week").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/overview");
    see(&c, "Suspended (1)").await;
    see(&c, "Deleted (1)").await;
    see(&c, "Joined (3)").await;
    // Token activity: the harness's token made 5 requests; failures by address.
    see(&c, "5 requests, 0 failed").await;
    see(&c, "Failures by client address").await;
    see(&c, &loopback_client(7).to_string()).await;
    // The chart: 30 bars, described for screen readers, the numbers in a table.
    let bars = c
        .find_all(Locator::Css("svg#changes-chart rect"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 30);
    let chart = c.find(Locator::Css("svg#changes-chart")).await.unwrap();
    assert_eq!(chart.attr("role").await.unwrap().as_deref(), Some("img"));
    let label = chart.attr("aria-label").await.unwrap().unwrap();
    assert!(label.contains("5 in all"), "{label}");
    let rows = c
        .find_all(Locator::Css("table#changes-per-day tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 30);
    let geometry = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             import('/pages/overview.js').then((m) => done(m.chartGeometry([0, 5, 10], 30, 100)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        geometry,
        json!({"max": 10, "bars": [
            {"x": 0, "y": 100, "w": 8, "h": 0},
            {"x": 10, "y": 50, "w": 8, "h": 50},
            {"x": 20, "y": 0, "w": 8, "h": 100},
        ]})
    );
    snap(&c, "overview").await;
    c.set_window_size(1280, 2600).await.unwrap();
    snap(&c, "overview-full").await;
    c.set_window_size(1280, 900).await.unwrap();

    // An expectation for the token: a bad one is refused in the form, a good one saved.
    let input = "#token-activity tbody tr input[type=number]";
    fill(&c, input, "0").await;
    click_text(&c, "Save").await;
    see(&c, "a whole number from 1 to 8760").await;
    fill(&c, input, "12").await;
    click_text(&c, "Save").await;
    see(&c, "Saved for").await;

    // Who was offboarded this week: one click on the suspended person opens their page.
    let link = "//ul[@aria-labelledby='week-suspended']//a";
    let a = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(link))
        .await
        .unwrap();
    assert_eq!(a.text().await.unwrap(), "ben Okafor (ben@acme.example)");
    a.click().await.unwrap();
    see(&c, "ben@acme.example").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/users/{}", ids[1])
    );
    snap(&c, "overview-suspended-person").await;
    c.close().await.unwrap();
}
