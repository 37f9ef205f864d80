//! The Users and Groups pages in a real headless Chromium (issue 15): search as you type, the
//! state filter with "suspended since", Back after paging, keyboard focus kept on a sort
//! button, the columns chooser, an export fetched from its link, a deleted user's page, and a
//! group's members searched with the suspended one marked; axe-core finds no serious or
//! critical violation on the filtered list, the deleted user's page and the members list.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use scimd::service::admin;
use scimd::store::Store;

use crate::browser::{PASSWORD, browser, click, click_text, element, fill, see, snap};
use crate::browser_polish::axe_check;
use crate::common::*;

/// 60 users `person00…59` (department Treasury for person07 only), straight into the store.
fn seed(s: &Server) {
    let store = Store::open(&s.db()).unwrap();
    let registry = store.registry();
    store
        .write_sync(|tx| {
            for i in 0..60 {
                let department = if i == 7 { "Treasury" } else { "Sales" };
                let body = json!({
                    "schemas": [USER_URN, ENTERPRISE_URN],
                    "userName": format!("person{i:02}@acme.example"),
                    "displayName": format!("Person {i:02}"),
                    ENTERPRISE_URN: {"department": department},
                });
                let doc = scimd::scim::validate::user(body, &registry)?.doc;
                let now = "2026-01-01T00:00:00.000Z";
                scimd::store::users::insert(tx, &format!("p{i:02}"), doc, now)?;
            }
            Ok(())
        })
        .unwrap();
}

async fn url(c: &Client) -> String {
    c.current_url().await.unwrap().to_string()
}

/// Waits until the address contains `part`.
async fn at(c: &Client, part: &str) {
    for _ in 0..100 {
        if url(c).await.contains(part) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the address never contained {part:?}: {}", url(c).await);
}

async fn run_js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

#[tokio::test]
async fn an_admin_searches_filters_pages_exports_and_opens_a_deleted_user() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let s = Server::start().await;
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
    seed(&s);
    let leaver = id_of(
        &s.create_user(&json!({"userName": "leaver@acme.example", "displayName": "Lee Ver"}))
            .await,
    );
    assert_eq!(
        s.delete(&format!("/scim/v2/Users/{leaver}")).await.status,
        204
    );
    let r = s
        .patch(
            "/scim/v2/Users/p03",
            &json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(r.status, 200);
    let members: Vec<Value> = ["p02", "p03", "p04"]
        .iter()
        .map(|id| json!({"value": id}))
        .collect();
    let gid = id_of(
        &s.create_group(&json!({"displayName": "Floor 3", "members": members}))
            .await,
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

    // Paging is history: Back returns to the first page, still on Users.
    click_text(&c, "Users").await;
    see(&c, "1–50 of 60").await;
    click_text(&c, "Next").await;
    see(&c, "51–60 of 60").await;
    at(&c, "start=51").await;
    c.back().await.unwrap();
    see(&c, "1–50 of 60").await;
    assert!(url(&c).await.ends_with("/users"), "{}", url(&c).await);

    // Sorting keeps keyboard focus on the sort button.
    click(&c, "button[data-sort='userName']").await;
    element(
        &c,
        "//th[@aria-sort='ascending']/button[@data-sort='userName']",
    )
    .await;
    click(&c, "button[data-sort='userName']").await;
    element(
        &c,
        "//th[@aria-sort='descending']/button[@data-sort='userName']",
    )
    .await;
    let focused = run_js(
        &c,
        "return document.activeElement.dataset.sort || document.activeElement.tagName",
    )
    .await;
    assert_eq!(focused, "userName");
    see(&c, "person59@acme.example").await;

    // Search as you type: a department, then a name's words.
    fill(&c, "#search", "treas").await;
    at(&c, "q=treas").await;
    see(&c, "1–1 of 1").await;
    see(&c, "person07@acme.example").await;
    fill(&c, "#search", "person 1").await;
    see(&c, "1–10 of 10").await;
    // Back walks back to the previous search.
    c.back().await.unwrap();
    see(&c, "person07@acme.example").await;

    // The state filter, with when the suspension began.
    c.goto(&format!("{origin}/users")).await.unwrap();
    see(&c, "1–50 of 60").await;
    click(&c, "#filter-state option[value='suspended']").await;
    at(&c, "state=suspended").await;
    see(&c, "1–1 of 1").await;
    see(&c, "person03@acme.example").await;
    see(&c, "since").await;
    // A column chosen stays chosen.
    click(&c, "details.columns summary").await;
    click(&c, "details.columns input[value='department']").await;
    element(&c, "//th[normalize-space(.)='Department']").await;
    snap(&c, "users-suspended").await;
    axe_check(&c, "Users, suspended, with more columns").await;
    c.refresh().await.unwrap();
    element(&c, "//th[normalize-space(.)='Department']").await;

    // The export link downloads what the filter selects.
    let link = c
        .find(Locator::Css("a.export-csv"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(link.contains("state=suspended"), "{link}");
    let csv = c
        .execute(
            "return fetch(arguments[0]).then((r) => r.text())",
            vec![json!(link)],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("id,userName,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("p03,person03@acme.example"), "{csv}");

    // A deleted user keeps a page: who deleted it and when, and its history.
    c.goto(&format!("{origin}/users/{leaver}")).await.unwrap();
    see(&c, "Deleted on").await;
    see(&c, "by test-").await;
    see(&c, "leaver@acme.example").await;
    see(&c, "user.delete").await;
    snap(&c, "user-deleted").await;
    axe_check(&c, "a deleted user's page").await;

    // A group's members: searched, the suspended one marked.
    c.goto(&format!("{origin}/groups/{gid}")).await.unwrap();
    see(&c, "1–3 of 3").await;
    element(
        &c,
        "//ul[@class='members']/li[a[normalize-space(.)='person03@acme.example']]\
         /span[contains(@class,'badge')][normalize-space(.)='suspended']",
    )
    .await;
    fill(&c, "#member-search", "person04").await;
    see(&c, "1–1 of 1").await;
    snap(&c, "group-members").await;
    axe_check(&c, "a group's members, searched").await;
}
