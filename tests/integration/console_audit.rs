//! The audit log as the console searches it: suspensions and reactivations as actions of
//! their own, the quick filters, case-insensitive actor and action filters with bounded
//! suggestions, and a resource filter that takes a userName or group name (a deleted user's
//! too) as well as an id.

use std::time::Duration;

use serde_json::{Value, json};

use scimd::service::audit::Actor;
use scimd::store::Store;
use scimd::store::audit;

use crate::common::*;
use crate::console::{Console, set_up};

fn active(on: bool) -> Value {
    json!([{"op": "replace", "path": "active", "value": on}])
}

/// The entries `query` selects: (action shown, resource name).
async fn search(c: &Console<'_>, query: &str) -> Vec<(String, String)> {
    let r = c.get(&format!("/admin/api/audit?{query}")).await;
    r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["view"]["action"].as_str().unwrap().to_string(),
                e["resourceName"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn suspensions_and_reactivations_are_actions_of_their_own() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let id = id_of(&s.create_user(&json!({"userName": "ana"})).await);
    for ops in [
        active(false),
        active(true),
        json!([{"op": "add", "path": "title", "value": "Eng"}]),
    ] {
        assert_eq!(
            s.patch(&format!("/scim/v2/Users/{id}"), &ops).await.status,
            200
        );
    }
    // PUT without `active` keeps it; with false it suspends.
    let put = json!({"userName": "ana", "active": false});
    assert_eq!(
        s.put(&format!("/scim/v2/Users/{id}"), &put).await.status,
        200
    );

    let suspended = pairs(&[("user.suspend", "ana"), ("user.suspend", "ana")]);
    assert_eq!(search(&c, "action=suspended").await, suspended);
    assert_eq!(search(&c, "action=User.Suspend").await, suspended);
    assert_eq!(
        search(&c, "action=reactivated").await,
        pairs(&[("user.reactivate", "ana")])
    );
    // They are still what the client sent: a patch, a replace.
    assert_eq!(search(&c, "action=user.patch").await.len(), 3);
    assert_eq!(
        search(&c, "action=USER.REPLACE").await,
        pairs(&[("user.suspend", "ana")])
    );
    let log = c.get("/admin/api/audit?action=suspended").await;
    let e = &log["entries"][0];
    assert_eq!(
        (e["action"].as_str(), e["derived"].as_str()),
        (Some("user.replace"), Some("user.suspend"))
    );
    assert_eq!(e["view"]["lines"][0]["label"], "Active");
    assert_eq!(e["view"]["lines"][0]["text"], "yes → no");
}

/// Waits for the queued entry of a rejected request (written a moment after it).
async fn wait_for_failures(c: &Console<'_>, n: usize) {
    for _ in 0..100 {
        if search(c, "quick=failures").await.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no failure entries");
}

#[tokio::test]
async fn quick_filters_find_the_weeks_offboarding_the_failures_and_the_console_actions() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let mut ids = Vec::new();
    for name in ["ana", "bo", "cy", "di"] {
        ids.push(id_of(&s.create_user(&json!({"userName": name})).await));
    }
    let user = |n: usize| format!("/scim/v2/Users/{}", ids[n]);
    assert_eq!(s.patch(&user(0), &active(false)).await.status, 200);
    assert_eq!(s.patch(&user(2), &active(false)).await.status, 200);
    assert_eq!(s.patch(&user(2), &active(true)).await.status, 200);
    assert_eq!(s.delete(&user(1)).await.status, 204);
    let title = json!([{"op": "add", "path": "title", "value": "Eng"}]);
    assert_eq!(s.patch(&user(3), &title).await.status, 200);
    // A deletion ten days ago is not this week's.
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            let mut e = Actor::cli().entry("user.delete", "success", 204);
            e.at = "2020-01-01T00:00:00.000Z".into();
            e.resource_type = Some("User");
            e.resource_id = Some("old".into());
            e.resource_name = Some("long-gone".into());
            audit::insert(tx, &e)?;
            Ok(())
        })
        .unwrap();

    assert_eq!(
        search(&c, "quick=offboarding").await,
        pairs(&[
            ("user.delete", "bo"),
            ("user.suspend", "cy"),
            ("user.suspend", "ana")
        ]),
        "cy's suspension happened, although she is back"
    );
    // A quick filter narrows what the rest of the query asks for.
    assert_eq!(
        search(&c, "quick=offboarding&resource=bo").await,
        pairs(&[("user.delete", "bo")])
    );
    assert_eq!(
        search(&c, "quick=offboarding&action=user.create").await,
        Vec::new(),
        "creations are not offboarding"
    );
    let csv = c
        .call(
            "GET",
            "/admin/api/audit/export?quick=offboarding&format=csv",
            None,
        )
        .await;
    assert_eq!(
        String::from_utf8_lossy(&csv.body).lines().count(),
        4,
        "header and three rows"
    );

    let r = s
        .raw(
            "GET",
            "/scim/v2/Users",
            &[("authorization", "Bearer scimd_wrong")],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    wait_for_failures(&c, 1).await;
    let failures = c.get("/admin/api/audit?quick=failures").await;
    for e in failures["entries"].as_array().unwrap() {
        assert_eq!(e["outcome"], "failure", "{e}");
    }

    let retention = json!({"maxAgeDays": 30, "maxRows": null});
    assert_eq!(
        c.call("PUT", "/admin/api/settings", Some(&retention))
            .await
            .status,
        200
    );
    let console = c.get("/admin/api/audit?quick=console").await;
    let entries = console["entries"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["actorKind"] == "admin"),
        "{console}"
    );
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"settings.retention"), "{actions:?}");
    assert!(
        !actions.iter().any(|a| a.starts_with("user.")),
        "{actions:?}"
    );

    let r = c
        .call("GET", "/admin/api/audit?quick=everything", None)
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn actor_and_action_filters_ignore_case() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let token = {
        let store = Store::open(&s.db()).unwrap();
        scimd::service::tokens::create(&store, "OneLogin").unwrap()
    };
    let bearer = format!("Bearer {token}");
    let body = json!({"userName": "ana"}).to_string();
    let r = s
        .raw(
            "POST",
            "/scim/v2/Users",
            &[
                ("authorization", &bearer),
                ("content-type", "application/scim+json"),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201);
    for actor in ["onelogin", "ONELOGIN", "OneLogin"] {
        assert_eq!(
            search(&c, &format!("actor={actor}")).await,
            pairs(&[("user.create", "ana")]),
            "{actor}"
        );
    }
    assert_eq!(search(&c, "action=User.Create").await.len(), 1);
    assert_eq!(
        search(&c, "actor=OneLogin&action=USER.CREATE").await.len(),
        1
    );
    assert_eq!(search(&c, "actor=okta").await.len(), 0);
}

#[tokio::test]
async fn the_resource_filter_takes_a_user_name_a_group_name_or_an_id() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let aisha = id_of(
        &s.create_user(&json!({"userName": "aisha@acme.example"}))
            .await,
    );
    let bo = id_of(&s.create_user(&json!({"userName": "bo"})).await);
    let group = s
        .create_group(
            &json!({"displayName": "Finance", "members": [{"value": aisha}, {"value": bo}]}),
        )
        .await;
    let gid = id_of(&group);
    assert_eq!(s.delete(&format!("/scim/v2/Users/{bo}")).await.status, 204);

    // A user by name: their own entries and the group's that added them.
    let by_name = search(&c, "resource=AISHA@acme.example").await;
    assert_eq!(
        by_name,
        pairs(&[
            ("group.create", "Finance"),
            ("user.create", "aisha@acme.example")
        ])
    );
    assert_eq!(search(&c, &format!("resource={aisha}")).await, by_name);
    // A group by name.
    assert_eq!(
        search(&c, "resource=finance").await,
        search(&c, &format!("resource={gid}")).await
    );
    assert_eq!(
        search(&c, "resource=finance").await,
        pairs(&[("user.delete", "bo"), ("group.create", "Finance")]),
        "a member's deletion is in the group's history"
    );
    // A deleted user, by the name their entries recorded.
    assert_eq!(
        search(&c, "resource=Bo").await,
        pairs(&[
            ("user.delete", "bo"),
            ("group.create", "Finance"),
            ("user.create", "bo")
        ])
    );
    assert_eq!(search(&c, "resource=nobody").await.len(), 0);
    // Every row links to its resource: the console needs its type and id.
    let log = c.get("/admin/api/audit?resource=bo").await;
    for e in log["entries"].as_array().unwrap() {
        assert!(["User", "Group"].contains(&e["resourceType"].as_str().unwrap()));
        assert!(e["resourceId"].is_string());
    }
    let members = &log["entries"][1]["view"]["members"][0];
    assert_eq!(
        (members["verb"].as_str(), members["count"].as_u64()),
        (Some("added"), Some(2))
    );
}

#[tokio::test]
async fn suggestions_are_the_distinct_values_case_insensitive_and_bounded() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            for n in 0..60 {
                for _ in 0..3 {
                    let mut e = Actor::cli().entry(&format!("x.action{n:02}"), "success", 200);
                    e.actor = format!("Token{n:02}");
                    audit::insert(tx, &e)?;
                }
            }
            Ok(())
        })
        .unwrap();
    let values = |v: Value| -> Vec<String> {
        v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let all = values(c.get("/admin/api/audit/suggestions?field=actor").await);
    assert_eq!(all.len(), 20, "bounded: {all:?}");
    let some = values(
        c.get("/admin/api/audit/suggestions?field=actor&prefix=TOKEN1")
            .await,
    );
    assert_eq!(
        some,
        (10..20).map(|n| format!("Token{n}")).collect::<Vec<_>>()
    );
    let actions = values(
        c.get("/admin/api/audit/suggestions?field=action&prefix=X.ACTION5")
            .await,
    );
    assert_eq!(
        actions,
        (50..60).map(|n| format!("x.action{n}")).collect::<Vec<_>>()
    );
    let user = values(
        c.get("/admin/api/audit/suggestions?field=action&prefix=user.")
            .await,
    );
    assert!(user.contains(&"user.suspend".to_string()), "{user:?}");
    assert!(user.contains(&"user.reactivate".to_string()), "{user:?}");
    let r = c
        .call("GET", "/admin/api/audit/suggestions?field=detail", None)
        .await;
    assert_eq!(r.status, 400);
}
