//! Token scopes: a read token looks up, lists, filters and searches, and every write route
//! answers it 403 with a SCIM error (in any letter case, `/Bulk` included) and changes
//! nothing; the denial is on the audit log under the token's name. The command line and the
//! console's API make read tokens and show scopes; an older database's tokens are write
//! tokens after the upgrade.

use std::time::Duration;

use serde_json::{Value, json};

use scimd::service::audit::Actor;
use scimd::service::tokens::{self, Scope};
use scimd::store::Store;
use scimd::store::audit::{self, Entry, Query};

use crate::common::*;

/// Creates a token called `name` with `scope` on the server's database, as the command line
/// would; returns it.
fn token(s: &Server, name: &str, scope: Scope) -> String {
    let store = Store::open(&s.db()).unwrap();
    tokens::create_as(&store, name, scope, &Actor::cli()).unwrap()
}

async fn with(s: &Server, token: &str, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let bearer = format!("Bearer {token}");
    let text = body.map(Value::to_string);
    s.raw(method, path, &[("authorization", &bearer)], text.as_deref())
        .await
}

/// Every write route (in the spellings identity providers and scripts use), with a body it
/// would accept from a write token.
fn writes(user: &str, group: &str) -> Vec<(&'static str, String, Value)> {
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}],
    });
    let mut all = Vec::new();
    for users in ["Users", "users", "USERS", "uSeRs"] {
        let new = json!({"userName": format!("new-{users}")});
        all.push(("POST", format!("/scim/v2/{users}"), new));
        let replaced = json!({"userName": "ana", "displayName": "Changed"});
        all.push(("PUT", format!("/scim/v2/{users}/{user}"), replaced));
        all.push(("PATCH", format!("/scim/v2/{users}/{user}"), patch.clone()));
        all.push(("DELETE", format!("/scim/v2/{users}/{user}"), Value::Null));
    }
    for groups in ["Groups", "groups", "GROUPS", "gRoUpS"] {
        let new = json!({"displayName": format!("new-{groups}")});
        all.push(("POST", format!("/scim/v2/{groups}"), new));
        let replaced = json!({"displayName": "Changed"});
        all.push(("PUT", format!("/scim/v2/{groups}/{group}"), replaced));
        all.push(("PATCH", format!("/scim/v2/{groups}/{group}"), patch.clone()));
        all.push(("DELETE", format!("/scim/v2/{groups}/{group}"), Value::Null));
    }
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "DELETE", "path": format!("/Users/{user}")}],
    });
    for endpoint in ["Bulk", "bulk", "BULK"] {
        all.push(("POST", format!("/scim/v2/{endpoint}"), bulk.clone()));
    }
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        all.push((method, "/scim/v2/Me".into(), Value::Null));
    }
    all
}

/// The directory as a write token sees it, to compare before and after.
async fn snapshot(s: &Server) -> (Value, Value) {
    let users = s.get("/scim/v2/Users").await;
    let groups = s.get("/scim/v2/Groups").await;
    assert_eq!((users.status, groups.status), (200, 200));
    (users.json(), groups.json())
}

/// The audit log's rejected requests by `actor`, waiting up to 5 s for `n` of them (they are
/// written a moment after the request).
async fn rejections_by(s: &Server, actor: &str, n: usize) -> Vec<Entry> {
    let q = Query {
        limit: 1000,
        ..Default::default()
    };
    let mut found = Vec::new();
    for _ in 0..50 {
        let store = Store::open(&s.db()).unwrap();
        found = store.read_sync(|conn| audit::list(conn, &q)).unwrap();
        found.retain(|e| e.actor == actor && e.outcome == "failure");
        if found.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

#[tokio::test]
async fn a_read_token_reads_and_searches() {
    let s = Server::start().await;
    let ana = s
        .create_user(&json!({"userName": "ana", "displayName": "Ana Lima"}))
        .await;
    let ana = id_of(&ana);
    let ops = s
        .create_group(&json!({"displayName": "Ops", "members": [{"value": ana}]}))
        .await;
    let ops = id_of(&ops);
    let reader = token(&s, "reader", Scope::Read);

    for path in [
        "/scim/v2/Users".to_string(),
        format!("/scim/v2/Users/{ana}"),
        format!("/scim/v2/users/{ana}"),
        "/scim/v2/Groups".to_string(),
        format!("/scim/v2/Groups/{ops}"),
        format!("/scim/v2/Users?{}", filter_query("userName eq \"ana\"")),
        format!("/scim/v2/Groups?{}", filter_query("displayName sw \"O\"")),
        "/scim/v2/ServiceProviderConfig".to_string(),
        "/scim/v2/Schemas".to_string(),
        "/scim/v2/ResourceTypes".to_string(),
    ] {
        let r = with(&s, &reader, "GET", &path, None).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let listed = with(&s, &reader, "GET", "/scim/v2/Users", None)
        .await
        .json();
    assert_eq!(ids(&listed), [ana.as_str()]);
    let filtered = with(
        &s,
        &reader,
        "GET",
        &format!("/scim/v2/Groups?{}", filter_query("displayName eq \"Ops\"")),
        None,
    )
    .await
    .json();
    assert_eq!(ids(&filtered), [ops.as_str()]);
    assert_eq!(
        filtered["Resources"][0]["members"][0]["value"],
        ana.as_str()
    );

    let search = |filter: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": filter,
        })
    };
    for (path, filter, want) in [
        ("/scim/v2/Users/.search", "userName eq \"ana\"", &ana),
        ("/scim/v2/users/.SEARCH", "userName eq \"ana\"", &ana),
        ("/scim/v2/Groups/.search", "displayName eq \"Ops\"", &ops),
        ("/scim/v2/.search", "userName eq \"ana\"", &ana),
    ] {
        let r = with(&s, &reader, "POST", path, Some(&search(filter))).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(ids(&r.json()), [want.as_str()], "{path}");
    }

    // The change feed is a read.
    let feed = with(
        &s,
        &reader,
        "GET",
        "/api/v1/events?types=user.created",
        None,
    )
    .await;
    assert_eq!(feed.status, 200, "{}", String::from_utf8_lossy(&feed.body));
    assert_eq!(feed.json()["events"][0]["resource"]["id"], ana.as_str());
}

#[tokio::test]
async fn every_write_route_refuses_a_read_token_and_changes_nothing() {
    let s = Server::start().await;
    let ana = id_of(&s.create_user(&json!({"userName": "ana"})).await);
    let ops = id_of(
        &s.create_group(&json!({"displayName": "Ops", "members": [{"value": ana}]}))
            .await,
    );
    let reader = token(&s, "reader", Scope::Read);
    let before = snapshot(&s).await;

    let routes = writes(&ana, &ops);
    for (method, path, body) in &routes {
        let body = (!body.is_null()).then_some(body);
        let r = with(&s, &reader, method, path, body).await;
        let error = r.assert_error(403, None);
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains("may only read"),
            "{method} {path}: {detail}"
        );
    }
    assert_eq!(snapshot(&s).await, before, "a read token changed nothing");

    // Refused before the body is even read: a body that is not JSON is still a 403.
    let r = s
        .raw(
            "POST",
            "/scim/v2/Users",
            &[("authorization", &format!("Bearer {reader}"))],
            Some("{not json"),
        )
        .await;
    r.assert_error(403, None);

    // A wrong or revoked token is still a 401, whatever the route.
    let r = with(
        &s,
        "scimd_0123456789abcdef_nope",
        "DELETE",
        "/scim/v2/Users/x",
        None,
    )
    .await;
    r.assert_error(401, None);

    // The same routes with the write token work, /Bulk included.
    for endpoint in ["Bulk", "bulk"] {
        let r = s
            .post(&format!("/scim/v2/{endpoint}"), &json!({"Operations": []}))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = s
        .patch(
            &format!("/scim/v2/Users/{ana}"),
            &json!([{"op": "replace", "path": "displayName", "value": "Ana"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.delete(&format!("/scim/v2/Groups/{ops}")).await.status,
        204
    );

    // Every denial is on the audit log under the read token's name, with its error; the
    // first request is folded with its repeats, per route (not resource: a leaked read token
    // varying the id must not fill the log, nor plant entries in a user's history).
    let denied = rejections_by(&s, "reader", 8).await;
    let entry = denied
        .iter()
        .find(|e| e.action == "DELETE /scim/v2/Users/{id}")
        .unwrap_or_else(|| panic!("{denied:?}"));
    assert_eq!(
        (entry.actor_kind.as_str(), entry.status),
        ("token", 403),
        "{entry:?}"
    );
    assert_eq!(entry.resource_id, None);
    let detail = entry.detail.as_ref().unwrap();
    assert!(
        detail["error"].as_str().unwrap().contains("may only read"),
        "{detail}"
    );
    let actions: std::collections::BTreeSet<&str> =
        denied.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "POST /scim/v2/Users",
        "PUT /scim/v2/Users/{id}",
        "PATCH /scim/v2/Users/{id}",
        "POST /scim/v2/Groups",
        "PUT /scim/v2/Groups/{id}",
        "PATCH /scim/v2/Groups/{id}",
        "DELETE /scim/v2/Groups/{id}",
        "POST /scim/v2/Bulk",
    ] {
        assert!(actions.contains(action), "{action}: {actions:?}");
    }
    let text = format!("{denied:?}");
    assert!(!text.contains(&reader), "the token is never logged");
}

#[tokio::test]
async fn the_console_api_creates_read_tokens_and_lists_scopes() {
    let s = Server::start().await;
    let c = crate::console::set_up(&s).await;
    let r = c
        .call(
            "POST",
            "/admin/api/tokens",
            Some(&json!({"name": "feed", "scope": "read"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    assert_eq!(created["scope"], "read");
    let feed = created["token"].as_str().unwrap().to_string();
    // Without a scope: write, as before scopes.
    let r = c
        .call("POST", "/admin/api/tokens", Some(&json!({"name": "idp"})))
        .await;
    assert_eq!(r.json()["scope"], "write");
    let idp = r.json()["token"].as_str().unwrap().to_string();
    for bad in [json!("admin"), json!(true), json!("READ")] {
        let r = c
            .call(
                "POST",
                "/admin/api/tokens",
                Some(&json!({"name": "bad", "scope": bad})),
            )
            .await;
        r.assert_error(400, Some("invalidValue"));
    }

    let listed = c.get("/admin/api/tokens").await;
    let scopes: Vec<(&str, &str)> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["name"].as_str().unwrap().starts_with("test-"))
        .map(|t| (t["name"].as_str().unwrap(), t["scope"].as_str().unwrap()))
        .collect();
    assert_eq!(
        scopes,
        [("feed", "read"), ("idp", "write")],
        "nothing named bad"
    );

    let user = json!({"userName": "ana"});
    let r = with(&s, &feed, "POST", "/scim/v2/Users", Some(&user)).await;
    r.assert_error(403, None);
    assert_eq!(
        with(&s, &feed, "GET", "/scim/v2/Users", None).await.status,
        200
    );
    let r = with(&s, &idp, "POST", "/scim/v2/Users", Some(&user)).await;
    assert_eq!(r.status, 201);

    // Regenerated, the read token is still a read token.
    let r = c
        .call(
            "POST",
            "/admin/api/tokens/feed/regenerate",
            Some(&json!({"overlap": "none"})),
        )
        .await;
    let renewed = r.json()["token"].as_str().unwrap().to_string();
    let r = with(&s, &renewed, "DELETE", "/scim/v2/Users/x", None).await;
    r.assert_error(403, None);
    assert_eq!(
        with(&s, &renewed, "GET", "/scim/v2/Users", None)
            .await
            .status,
        200
    );

    // The creation is on record with its scope.
    let log = c.get("/admin/api/audit?actor=root").await;
    let create = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token.create" && e["resourceName"] == "feed")
        .unwrap_or_else(|| panic!("{log}"))
        .clone();
    assert_eq!(create["detail"]["scope"], "read", "{create}");
}

#[test]
fn the_command_line_creates_read_tokens_and_lists_scopes() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    new_db(db);
    let read = scimd(&[
        "token", "create", "--name", "feed", "--scope", "read", "--db", db,
    ]);
    assert!(read.status.success(), "{read:?}");
    assert!(stdout(&read).contains("read token \"feed\""), "{read:?}");
    let write = scimd(&["token", "create", "--name", "idp", "--db", db]);
    assert!(write.status.success(), "{write:?}");

    // A bad scope: a clear error, nonzero exit, nothing created.
    let bad = scimd(&[
        "token", "create", "--name", "bad", "--scope", "admin", "--db", db,
    ]);
    assert!(!bad.status.success(), "{bad:?}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("admin") && err.contains("read") && err.contains("write"),
        "{err}"
    );

    let list = stdout(&scimd(&["token", "list", "--db", db]));
    assert!(list.lines().next().unwrap().contains("SCOPE"), "{list}");
    let row = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
    };
    assert_eq!(row("feed").as_deref(), Some("read"), "{list}");
    assert_eq!(row("idp").as_deref(), Some("write"), "{list}");
    assert_eq!(row("bad"), None, "{list}");
}

/// A database from before scopes: its token answers writes after the upgrade, and is listed
/// as a write token. Made by removing the column (and the later migration's webhook tables)
/// from a new database, which is exactly the schema version 8 had (migration 9 only adds it).
#[tokio::test]
async fn an_older_databases_tokens_are_write_tokens() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("scimd.db");
    let old = {
        let store = Store::open(&db).unwrap();
        tokens::create(&store, "onelogin").unwrap()
    };
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE token_activity; DROP TABLE client_failures;
         DROP INDEX events_people; DROP INDEX users_suspended;
         ALTER TABLE tokens DROP COLUMN expect_every_hours;
         ALTER TABLE tokens DROP COLUMN scope;
         DROP TABLE webhook_attempts; DROP TABLE webhook_secrets; DROP TABLE webhook_endpoints;
         DROP INDEX audit_derived; DROP INDEX audit_admin; DROP INDEX audit_resource_name;
         DROP INDEX audit_actor; DROP INDEX audit_action;
         ALTER TABLE audit DROP COLUMN derived; ALTER TABLE audit DROP COLUMN actor_fold;
         CREATE INDEX audit_actor ON audit (actor, seq);
         CREATE INDEX audit_action ON audit (action, seq);
         DROP TABLE admin_recovery_codes; DROP TABLE admin_invites; DROP INDEX sessions_admin;
         ALTER TABLE admins DROP COLUMN last_sign_in; ALTER TABLE admins DROP COLUMN totp_secret;
         ALTER TABLE admins DROP COLUMN totp_enabled; ALTER TABLE admins DROP COLUMN totp_last_step;
         ALTER TABLE sessions DROP COLUMN last_seen; ALTER TABLE sessions DROP COLUMN client;
         ALTER TABLE sessions DROP COLUMN user_agent;
         DROP TRIGGER users_search_insert; DROP TRIGGER users_search_update;
         DROP TRIGGER users_search_delete; DROP TABLE users_search;
         DROP TABLE user_tombstones; DROP TABLE users_search_dirty;
         ALTER TABLE users DROP COLUMN suspended_since;
         ALTER TABLE admins DROP COLUMN totp_failures;
         ALTER TABLE admins DROP COLUMN totp_blocked_until;
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(conn);

    let s = Server::start_in(dir, |c| c).await;
    let r = with(
        &s,
        &old,
        "POST",
        "/scim/v2/Users",
        Some(&json!({"userName": "ana"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let list = stdout(&scimd(&["token", "list", "--db", s.db().to_str().unwrap()]));
    let row = list
        .lines()
        .find(|l| l.starts_with("onelogin"))
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row.split_whitespace().nth(1), Some("write"), "{list}");
}
