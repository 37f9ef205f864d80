//! The audit log: every SCIM change, with who made it and what changed, written with the
//! change; every rejected request, with the error. Read here from the database file the
//! server writes.

use std::time::Duration;

use serde_json::{Value, json};

use scimd::store::Store;
use scimd::store::audit::{self, Entry, Query};

use crate::common::*;

fn entries(s: &Server, q: Query) -> Vec<Entry> {
    let store = Store::open(&s.db()).unwrap();
    store.read_sync(|conn| audit::list(conn, &q)).unwrap()
}

/// Every entry but the harness's own (creating the test token from the "command line").
fn all(s: &Server) -> Vec<Entry> {
    let q = Query {
        limit: 1000,
        ..Default::default()
    };
    let mut log = entries(s, q);
    log.retain(|e| e.actor_kind != "system");
    log
}

#[tokio::test]
async fn who_removed_ana_from_finance_and_when() {
    let s = Server::start().await;
    let ana = id_of(
        &s.create_user(&json!({"userName": "ana", "title": "Eng"}))
            .await,
    );
    let fin = id_of(
        &s.create_group(&json!({"displayName": "Finance", "members": [{"value": ana}]}))
            .await,
    );
    s.patch(
        &format!("/scim/v2/Users/{ana}"),
        &json!([{"op": "replace", "path": "title", "value": "Lead"}]),
    )
    .await;
    // A no-op is not a change: no entry.
    s.patch(
        &format!("/scim/v2/Users/{ana}"),
        &json!([{"op": "replace", "path": "title", "value": "Lead"}]),
    )
    .await;
    s.patch(
        &format!("/scim/v2/Groups/{fin}"),
        &json!([{"op": "remove", "path": format!("members[value eq \"{ana}\"]")}]),
    )
    .await;

    let log = all(&s);
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["group.patch", "user.patch", "group.create", "user.create"]
    );
    for e in &log {
        assert_eq!(e.actor_kind, "token");
        assert!(
            e.actor.starts_with("test-"),
            "the token's name: {}",
            e.actor
        );
        assert_eq!(e.outcome, "success");
        assert_eq!(e.client, "127.0.0.1");
    }
    let removal = &log[0];
    assert_eq!(removal.resource_name.as_deref(), Some("Finance"));
    assert_eq!(
        removal.detail,
        Some(json!({"membersRemoved": [{"value": ana, "type": "User", "display": "ana"}]}))
    );
    assert_eq!(
        log[1].detail,
        Some(json!({"changes": [{"path": "title", "before": "Eng", "after": "Lead"}]}))
    );
    // Ana's history includes the group change that named her.
    let history = entries(
        &s,
        Query {
            limit: 10,
            resource: Some(ana.clone()),
            ..Default::default()
        },
    );
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["group.patch", "user.patch", "group.create", "user.create"]
    );
}

#[tokio::test]
async fn rejected_requests_are_recorded_with_their_error() {
    let s = Server::start().await;
    s.post(
        "/scim/v2/Users",
        &json!({"userName": "ana", "active": "maybe"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.raw(
        "GET",
        "/scim/v2/Users",
        &[("authorization", "Bearer wrong"), ("user-agent", "probe/1")],
        None,
    )
    .await
    .assert_error(401, None);
    // Written within about a second, in one batch.
    let mut log = Vec::new();
    for _ in 0..50 {
        log = all(&s);
        if log.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.len(), 2, "{log:?}");
    let unauthorized = log.iter().find(|e| e.status == 401).unwrap();
    assert_eq!(unauthorized.actor_kind, "anonymous");
    assert_eq!(unauthorized.user_agent, "probe/1");
    assert_eq!(unauthorized.action, "GET /scim/v2/Users");
    assert_eq!(unauthorized.outcome, "failure");
    let invalid = log.iter().find(|e| e.status == 400).unwrap();
    assert!(invalid.actor.starts_with("test-"));
    assert_eq!(invalid.detail.as_ref().unwrap()["scimType"], "invalidValue");
    // The bad body changed nothing and left no secret behind.
    let text = format!("{log:?}");
    assert!(!text.contains(&s.token), "the token must never be logged");
}

#[tokio::test]
async fn passwords_never_reach_the_log() {
    let s = Server::start().await;
    let id = id_of(
        &s.create_user(&json!({"userName": "ana", "password": "hunter2!"}))
            .await,
    );
    s.patch(
        &format!("/scim/v2/Users/{id}"),
        &json!([{"op": "replace", "path": "password", "value": "s3cret-Two"}]),
    )
    .await;
    let text = format!("{:?}", all(&s));
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
}

#[tokio::test]
async fn replacements_and_deletions_are_recorded() {
    let s = Server::start().await;
    let id = id_of(
        &s.create_user(&json!({"userName": "ana", "title": "Eng"}))
            .await,
    );
    let g = id_of(
        &s.create_group(&json!({"displayName": "Ops", "members": [{"value": id}]}))
            .await,
    );
    s.put(
        &format!("/scim/v2/Users/{id}"),
        &json!({"userName": "ana", "title": "Lead"}),
    )
    .await;
    s.put(
        &format!("/scim/v2/Groups/{g}"),
        &json!({"displayName": "Ops"}),
    )
    .await;
    s.delete(&format!("/scim/v2/Users/{id}")).await;
    s.delete(&format!("/scim/v2/Groups/{g}")).await;
    let log = all(&s);
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "group.delete",
            "user.delete",
            "group.replace",
            "user.replace",
            "group.create",
            "user.create"
        ]
    );
    assert_eq!(
        log[2].detail,
        Some(json!({"membersRemoved": [{"value": id, "type": "User", "display": "ana"}]}))
    );
    assert_eq!(log[1].resource_name.as_deref(), Some("ana"));
}

/// Signs in to the console as a fresh administrator; returns the session cookie.
async fn console_cookie(s: &Server) -> String {
    scimd::service::admin::set_password(&Store::open(&s.db()).unwrap(), "root", PASSWORD).unwrap();
    let body = json!({"username": "root", "password": PASSWORD}).to_string();
    let r = s
        .raw(
            "POST",
            "/admin/api/login",
            &[("content-type", "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

const PASSWORD: &str = "correct horse battery";

/// An export is streamed page by page (200 entries a page, sent in chunks as the client
/// reads), so its memory is bounded whatever its size; here it spans many pages of large
/// entries and arrives complete, in order and intact, in both formats.
#[tokio::test]
async fn exports_of_many_large_entries_are_streamed_complete() {
    const N: usize = 1500;
    let s = Server::start().await;
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            for n in 0..N {
                let mut e = scimd::service::audit::Actor::cli().entry("seeded", "success", 200);
                e.user_agent = format!("agent, \"{n}\"");
                e.detail = Some(json!({"n": n, "pad": "p".repeat(4000)}));
                audit::insert(tx, &e)?;
            }
            Ok(())
        })
        .unwrap();
    let cookie = console_cookie(&s).await;
    let export = |query: &'static str| {
        let cookie = cookie.clone();
        let s = &s;
        async move {
            let r = s
                .raw(
                    "GET",
                    &format!("/admin/api/audit/export?action=seeded&{query}"),
                    &[("cookie", &cookie)],
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.header("transfer-encoding"), Some("chunked"), "streamed");
            assert!(r.header("content-length").is_none());
            String::from_utf8(r.body.to_vec()).unwrap()
        }
    };

    let jsonl = export("format=jsonl").await;
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), N);
    for (i, e) in lines.iter().enumerate() {
        let n = N - 1 - i;
        assert_eq!(e["detail"]["n"], n, "newest first, none missing");
        assert_eq!(e["detail"]["pad"].as_str().unwrap().len(), 4000);
        assert_eq!(e["userAgent"], format!("agent, \"{n}\""));
    }

    let csv = export("format=csv").await;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), N + 1, "a header and every entry");
    assert!(rows[0].starts_with("seq,at,actorKind,actor,client,userAgent,action,"));
    assert!(
        rows[1].contains(&format!(",\"agent, \"\"{}\"\"\",", N - 1)),
        "{}",
        rows[1]
    );
    assert!(rows[N].contains("\"\"n\"\":0,"), "the oldest last");

    // A limit that ends mid-page is exact.
    let some = export("format=jsonl&limit=777").await;
    assert_eq!(some.lines().count(), 777);
    // A bad format is refused before anything is streamed.
    let r = s
        .raw(
            "GET",
            "/admin/api/audit/export?format=xml",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
}
