//! The audit log in a real headless Chromium after a OneLogin-like morning (30 users created,
//! a group of all 30, two suspended, one deleted): "Offboarding this week" answers in one
//! click with exactly the suspensions and the deletion, each row linking to the person; Back
//! restores the filter before it; a create's row stays a few lines high; a 30-member list is
//! collapsed; nothing in the table overflows at 1280 px. Skips without Chromium, as
//! `browser.rs` does.

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use scimd::service::admin;
use scimd::store::Store;

use crate::browser::{PASSWORD, browser, click, element, fill, fits, see, snap};
use crate::common::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A OneLogin-like user: a name, a work email, a title and a department.
fn person(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": format!("person{n:02}@acme.example"),
        "externalId": format!("ol-{n:06}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "displayName": format!("Given{n} Family{n}"),
        "emails": [{"value": format!("person{n:02}@acme.example"), "type": "work", "primary": true}],
        "title": "Engineer",
        "locale": "en-US",
        "active": true,
        ENTERPRISE: {"department": "Engineering", "costCenter": "CC-42", "employeeNumber": format!("{n}")},
    })
}

/// Runs `script` (which returns a value) in the page.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Waits until the audit table's rows show exactly `n` entries.
async fn rows(c: &Client, n: usize) {
    for _ in 0..100 {
        let count = js(
            c,
            "return document.querySelectorAll('main table.history tbody tr').length",
        )
        .await;
        if count.as_u64() == Some(n as u64) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the audit table never had {n} rows");
}

#[tokio::test]
async fn offboarding_this_week_in_one_click_with_readable_rows() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = Server::start().await;
    let token = {
        let store = Store::open(&s.db()).unwrap();
        scimd::service::tokens::create(&store, "onelogin").unwrap()
    };
    let bearer = format!("Bearer {token}");
    let send = |method: &'static str, path: String, body: Option<Value>| {
        let bearer = bearer.clone();
        let s = &s;
        async move {
            let text = body.map(|b| b.to_string());
            s.raw(
                method,
                &path,
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/scim+json"),
                ],
                text.as_deref(),
            )
            .await
        }
    };
    let mut ids = Vec::new();
    for n in 0..30 {
        let r = send("POST", "/scim/v2/Users".into(), Some(person(n))).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        ids.push(id_of(&r.json()));
    }
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let group = json!({"displayName": "Engineering", "members": members});
    assert_eq!(
        send("POST", "/scim/v2/Groups".into(), Some(group))
            .await
            .status,
        201
    );
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "replace", "value": {"active": false}}]});
    for id in &ids[3..5] {
        let r = send("PATCH", format!("/scim/v2/Users/{id}"), Some(off.clone())).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        send("DELETE", format!("/scim/v2/Users/{}", ids[7]), None)
            .await
            .status,
        204
    );

    // Sign in through the setup link.
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
    element(&c, "//*[@id='who-name'][normalize-space(.)='root']").await;

    // A filter first, so Back has one to return to.
    c.goto(&format!("{origin}/audit")).await.unwrap();
    see(&c, "Offboarding this week").await;
    fill(&c, "#f-action", "USER.CREATE").await;
    click(&c, "form[role=search] button[type=submit]").await;
    rows(&c, 30).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/audit?action=USER.CREATE")
    );

    // A create is a few lines: its key attributes, the rest behind "show all".
    let height = js(
        &c,
        "return Math.max(...[...document.querySelectorAll('main table.history tbody tr')]
            .map((r) => r.getBoundingClientRect().height))",
    )
    .await;
    snap(&c, "audit-creates").await;
    assert!(
        height.as_f64().unwrap() < 120.0,
        "a create row is {height} px high"
    );
    see(&c, "created with 11 attributes · show all").await;
    see(&c, "Given0 Family0").await;
    see(&c, "person00@acme.example (work, primary)").await;

    // One click answers who was offboarded this week.
    click(&c, "button[data-quick=offboarding]").await;
    rows(&c, 3).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/audit?quick=offboarding")
    );
    let shown = js(
        &c,
        "return [...document.querySelectorAll('main table.history tbody tr')].map((r) => ({
            action: r.querySelector('.action').textContent,
            link: r.querySelector('td:nth-child(3) a')?.getAttribute('href'),
         }))",
    )
    .await;
    let mut got: Vec<(String, String)> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["link"].as_str().unwrap_or("(no link)").to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        ("user.delete".to_string(), format!("/users/{}", ids[7])),
        ("user.suspend".to_string(), format!("/users/{}", ids[3])),
        ("user.suspend".to_string(), format!("/users/{}", ids[4])),
    ];
    want.sort();
    assert_eq!(got, want);
    snap(&c, "audit-offboarding").await;

    // Back restores the filter before.
    c.back().await.unwrap();
    rows(&c, 30).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/audit?action=USER.CREATE")
    );
    let action = c.find(Locator::Css("#f-action")).await.unwrap();
    assert_eq!(
        action.prop("value").await.unwrap().as_deref(),
        Some("USER.CREATE")
    );

    // The group's 30 members are collapsed; the row links to the group.
    c.goto(&format!("{origin}/audit?resource=Engineering"))
        .await
        .unwrap();
    let summary = element(
        &c,
        "//details/summary[normalize-space(.)='added 30 members · show']",
    )
    .await;
    let open = js(
        &c,
        "return document.querySelector('main table.history details:has(> summary)').open",
    )
    .await;
    assert_eq!(open, json!(false));
    assert!(summary.is_displayed().await.unwrap());
    element(
        &c,
        "//table//td[3]//a[starts-with(@href,'/groups/')][normalize-space(.)='Engineering']",
    )
    .await;

    // The whole log at 1280 px: nothing sideways, in the page or in the table.
    c.goto(&format!("{origin}/audit")).await.unwrap();
    see(&c, "user.delete").await;
    see(&c, "person00@acme.example").await;
    assert!(fits(&c).await, "the page scrolls sideways");
    let overflow = js(
        &c,
        "const w = document.querySelector('main .table-wrap'); return w.scrollWidth - w.clientWidth",
    )
    .await;
    assert_eq!(overflow.as_i64(), Some(0), "the table overflows its box");
    snap(&c, "audit-readable").await;
    c.close().await.unwrap();
}
