//! The audit log under a flood of rejected requests from many addresses: each costs a few
//! bytes at most, repeats are counted rather than stored, every client keeps a share, and the
//! log stays within its size on disk.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use scimd::service::audit::Actor;
use scimd::store::Store;
use scimd::store::audit;

use crate::common::*;

/// The anonymous rejections on record: (client, user agent, action, resource id, detail).
type Row = (String, String, String, Option<String>, Value);

fn anonymous_rows(s: &Server) -> Vec<Row> {
    let store = Store::open(&s.db()).unwrap();
    store
        .read_sync(|conn| {
            let mut stmt = conn.prepare(
                "SELECT client, user_agent, action, resource_id, detail FROM audit
                 WHERE actor_kind = 'anonymous'",
            )?;
            let rows = stmt.query_map([], |r| {
                let detail: String = r.get(4)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    serde_json::from_str(&detail).unwrap_or(Value::Null),
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
        })
        .unwrap()
}

/// Requests counted by the anonymous rows: each row says how many it stands for.
fn counted(rows: &[Row]) -> u64 {
    rows.iter()
        .map(|r| r.4["count"].as_u64().unwrap_or(1))
        .sum()
}

#[tokio::test]
async fn an_anonymous_flood_from_many_addresses_costs_a_few_small_rows() {
    let s = Server::start().await;
    // One client varies the method so that every request is a new reason…
    for n in 0..20 {
        let r = s
            .raw_from(
                loopback_client(0),
                &format!("X{n}"),
                "/scim/v2/Users",
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // …and 500 more send 2,000 requests, each one's first with a 30 KB user agent and
    // resource id (all of them large would only make the test slower).
    let large = (
        "a".repeat(30_000),
        format!("/scim/v2/Users/{}", "i".repeat(30_000)),
    );
    let small = ("probe/1".to_string(), "/scim/v2/Users/x".to_string());
    futures_util::stream::iter(0..2000u32)
        .for_each_concurrent(32, |n| {
            let ((agent, path), s) = (if n < 500 { &large } else { &small }, &s);
            async move {
                let r = s
                    .raw_from(
                        loopback_client(1 + n % 500),
                        "GET",
                        path,
                        &[
                            ("authorization", "Bearer wrong"),
                            ("user-agent", agent.as_str()),
                        ],
                        None,
                    )
                    .await;
                assert_eq!(r.status, 401);
            }
        })
        .await;
    // Every request is counted once written (within a second or so).
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = anonymous_rows(&s);
        if counted(&rows) >= 2020 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted(&rows), 2020, "every request is counted");
    // The anonymous budget is 30 entries a minute.
    assert!(
        rows.len() <= 31,
        "a minute's budget and one summary, not one row each: {} rows",
        rows.len()
    );
    let flooder = loopback_client(0).to_string();
    assert!(rows.iter().filter(|r| r.0 == flooder).count() <= 3);
    let bytes: usize = rows
        .iter()
        .map(|r| r.0.len() + r.1.len() + r.2.len() + r.3.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + rows.iter().map(|r| r.4.to_string().len()).sum::<usize>();
    assert!(bytes < 31 * 600, "{bytes} bytes stored");
    for r in &rows {
        assert!(r.1.len() <= 128);
        assert_eq!(
            r.3, None,
            "an anonymous request names no resource on record"
        );
    }
    assert!(
        rows.iter().any(|r| r.1.ends_with('…')),
        "long values are cut, not dropped"
    );
    let store = Store::open(&s.db()).unwrap();
    let refs: i64 = store
        .read_sync(|c| Ok(c.query_row("SELECT COUNT(*) FROM audit_refs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(refs, 0, "nothing planted in a resource's history");

    // The identity provider's own failure is still on record: it has its own budget.
    s.post("/scim/v2/Users", &json!({"userName": 1}))
        .await
        .assert_error(400, Some("invalidValue"));
    let mut found = false;
    for _ in 0..50 {
        found = store
            .read_sync(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM audit WHERE actor_kind = 'token' AND status = 400",
                    [],
                    |r| r.get::<_, i64>(0),
                )? == 1)
            })
            .unwrap();
        if found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the token's rejected request is recorded");
}

#[tokio::test]
async fn the_audit_log_is_pruned_to_its_size_on_disk() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("scimd.db")).unwrap();
    store
        .write_sync(|tx| {
            for n in 0..400 {
                let mut e = Actor::cli().entry("user.patch", "success", 200);
                e.detail = Some(json!({"n": n, "pad": "p".repeat(10_000)}));
                audit::insert(tx, &e)?;
            }
            scimd::store::admins::set_setting(
                tx,
                "audit_retention",
                r#"{"maxAgeDays": null, "maxRows": null, "maxMegabytes": 1}"#,
            )
        })
        .unwrap();
    let before = store.read_sync(audit::size_on_disk).unwrap();
    assert!(before > 4_000_000, "{before}");
    drop(store);
    // Retention is applied at start and hourly.
    let s = Server::start_in(dir, |c| c).await;
    let store = Store::open(&s.db()).unwrap();
    let mut size = before;
    for _ in 0..50 {
        size = store.read_sync(audit::size_on_disk).unwrap();
        if size <= 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(size <= 1024 * 1024, "{size} bytes");
    let newest = store
        .read_sync(|c| {
            audit::list(
                c,
                &audit::Query {
                    limit: 1,
                    action: Some("user.patch".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(
        newest[0].detail.as_ref().unwrap()["n"],
        399,
        "the newest stay"
    );
}

/// Rows of the audit log matching `condition`: (actor kind, actor, client, user agent,
/// resource name, detail).
type Logged = (String, String, String, String, Option<String>, Value);

fn logged(db: &std::path::Path, condition: &str) -> Vec<Logged> {
    let store = Store::open(db).unwrap();
    store
        .read_sync(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT actor_kind, actor, client, user_agent, resource_name, detail FROM audit
                 WHERE {condition}"
            ))?;
            let rows = stmt.query_map([], |r| {
                let detail: Option<String> = r.get(5)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(Value::Null),
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<Logged>>>()?)
        })
        .unwrap()
}

/// Waits until the rows matching `condition` count `n` requests (rejections are written a
/// moment later); returns them.
async fn logged_count(db: &std::path::Path, condition: &str, n: u64) -> Vec<Logged> {
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = logged(db, condition);
        let c: u64 = rows
            .iter()
            .map(|r| r.5["count"].as_u64().unwrap_or(1))
            .sum();
        if c >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}

/// Failed console sign-ins from many addresses, each with a 30 KB user agent and a new
/// username: a few small rows a minute (the anonymous budget), every attempt counted, not
/// one large row each.
#[tokio::test]
async fn a_sign_in_flood_from_many_addresses_costs_a_few_small_rows() {
    let s = Server::start().await;
    let agent = "a".repeat(30_000);
    const CLIENTS: u32 = 12;
    const EACH: u32 = 10;
    futures_util::stream::iter(0..CLIENTS * EACH)
        .for_each_concurrent(16, |n| {
            let (s, agent) = (&s, agent.as_str());
            async move {
                let body = json!({"username": format!("admin{n}"), "password": "wrong password"});
                let r = s
                    .raw_from(
                        loopback_client(1 + n % CLIENTS),
                        "POST",
                        "/admin/api/login",
                        &[("content-type", "application/json"), ("user-agent", agent)],
                        Some(&body.to_string()),
                    )
                    .await;
                assert_eq!(r.status, 401);
            }
        })
        .await;
    let n = u64::from(CLIENTS * EACH);
    let condition = "action = 'admin.login' OR action = 'requests.rejected'";
    let rows = logged_count(&s.db(), condition, n).await;
    let counted: u64 = rows
        .iter()
        .map(|r| r.5["count"].as_u64().unwrap_or(1))
        .sum();
    assert_eq!(counted, n, "every attempt is counted");
    assert!(
        rows.len() <= 31,
        "the anonymous budget and one summary, not one row each: {} rows",
        rows.len()
    );
    for r in &rows {
        assert!(r.3.len() <= 128, "user agent cut: {} bytes", r.3.len());
    }
    let bytes: usize = rows
        .iter()
        .map(|r| r.1.len() + r.2.len() + r.3.len() + r.4.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + rows.iter().map(|r| r.5.to_string().len()).sum::<usize>();
    assert!(bytes < 31 * 600, "{bytes} bytes stored");
    let per_client = rows
        .iter()
        .filter(|r| r.2 == loopback_client(1).to_string())
        .count();
    assert!(per_client <= 3, "one address's share: {per_client}");
}

/// An identity provider still sending a token that was revoked is on record by the token's
/// name, in a budget of its own, while anonymous clients from many addresses use up theirs;
/// it gets the same 401 as any wrong token.
#[tokio::test]
async fn an_anonymous_flood_cannot_hide_a_revoked_token() {
    let s = Server::start().await;
    let store = Store::open(&s.db()).unwrap();
    let stale = scimd::service::tokens::create(&store, "okta").unwrap();
    scimd::service::tokens::revoke(&store, "okta").unwrap();
    // 15 addresses, each with new reasons (methods): more than the anonymous budget.
    futures_util::stream::iter(0..60u32)
        .for_each_concurrent(16, |n| {
            let s = &s;
            async move {
                let r = s
                    .raw_from(
                        loopback_client(1 + n % 15),
                        &format!("X{n}"),
                        "/scim/v2/Users",
                        &[("authorization", "Bearer scimd_0123456789abcdef_guess")],
                        None,
                    )
                    .await;
                assert_eq!(r.status, 401);
            }
        })
        .await;
    let idp = loopback_client(500);
    let bearer = format!("Bearer {stale}");
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let r = s
            .raw_from(
                idp,
                "GET",
                "/scim/v2/Users",
                &[("authorization", bearer.as_str())],
                None,
            )
            .await;
        assert_eq!(r.status, 401);
        bodies.push((r.header("www-authenticate").map(str::to_string), r.json()));
    }
    let guess = s
        .raw_from(
            idp,
            "GET",
            "/scim/v2/Users",
            &[("authorization", "Bearer scimd_0123456789abcdef_guess")],
            None,
        )
        .await;
    assert_eq!(
        bodies[0],
        (
            guess.header("www-authenticate").map(str::to_string),
            guess.json()
        ),
        "the answer says nothing about the token"
    );
    let rows = logged_count(&s.db(), "actor = 'okta'", 5).await;
    assert_eq!(rows.len(), 1, "folded into one entry: {rows:?}");
    assert_eq!(rows[0].0, "revoked_token");
    assert_eq!(rows[0].2, idp.to_string());
    assert_eq!(rows[0].5["count"], 5);
}

/// Under its size bound the log drops a flood's rows (failures) before any change record,
/// however old: a flood cannot push history out.
#[tokio::test]
async fn pruning_to_size_keeps_change_records_and_drops_flood_rows() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("scimd.db")).unwrap();
    store
        .write_sync(|tx| {
            for n in 0..50 {
                let mut e = Actor::cli().entry("user.patch", "success", 200);
                e.detail = Some(json!({"n": n, "pad": "p".repeat(4000)}));
                audit::insert(tx, &e)?;
            }
            for n in 0..3000 {
                let mut e = Actor::cli().entry("GET /Users", "failure", 401);
                e.actor_kind = "anonymous";
                e.detail = Some(json!({"n": n, "pad": "f".repeat(400)}));
                audit::insert(tx, &e)?;
            }
            scimd::store::admins::set_setting(
                tx,
                "audit_retention",
                r#"{"maxAgeDays": null, "maxRows": null, "maxMegabytes": 1}"#,
            )
        })
        .unwrap();
    let before = store.read_sync(audit::size_on_disk).unwrap();
    assert!(before > 1_500_000, "{before}");
    drop(store);
    // Retention is applied at start and hourly.
    let s = Server::start_in(dir, |c| c).await;
    let store = Store::open(&s.db()).unwrap();
    let count = |sql: &str| -> i64 {
        store
            .read_sync(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .unwrap()
    };
    let mut failures = i64::MAX;
    for _ in 0..50 {
        failures = count("SELECT COUNT(*) FROM audit WHERE outcome = 'failure'");
        if failures <= 102 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failures <= 102,
        "failures keep a tenth of the size bound: {failures}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit WHERE action = 'user.patch'"),
        50,
        "every change record is kept"
    );
    assert!(store.read_sync(audit::size_on_disk).unwrap() <= 1024 * 1024);
}

/// A leaked read token sending writes (each a 403) and reads of missing users (each a 404)
/// to ever new ids from a few addresses is folded per address, method and route in a budget
/// of its own: the identity provider's failures in the same minute are still on record one
/// by one.
#[tokio::test]
async fn a_read_token_s_refused_writes_cannot_hide_the_identity_provider_s_failures() {
    let s = Server::start().await;
    let store = Store::open(&s.db()).unwrap();
    let reader = scimd::service::tokens::create_as(
        &store,
        "chatbot",
        scimd::service::tokens::Scope::Read,
        &Actor::cli(),
    )
    .unwrap();
    let bearer = format!("Bearer {reader}");
    // More than the authenticated budget (1,000), from more addresses than its per-client
    // share (500) needs to fill it.
    const SENT: u32 = 1100;
    futures_util::stream::iter(0..2 * SENT)
        .for_each_concurrent(16, |n| {
            let (s, bearer) = (&s, bearer.as_str());
            let (method, status) = if n < SENT { ("PUT", 403) } else { ("GET", 404) };
            async move {
                let r = s
                    .raw_from(
                        loopback_client(1 + n % 3),
                        method,
                        &format!("/scim/v2/Users/leaked-{n}"),
                        &[("authorization", bearer)],
                        None,
                    )
                    .await;
                assert_eq!(r.status, status);
            }
        })
        .await;
    for n in 0..3 {
        s.get(&format!("/scim/v2/Users/missing-{n}"))
            .await
            .assert_error(404, None);
    }
    let bot = logged_count(&s.db(), "actor = 'chatbot'", u64::from(2 * SENT)).await;
    assert_eq!(
        bot.len(),
        6,
        "one entry per address and method, whatever ids they name: {bot:?}"
    );
    let idp = logged_count(
        &s.db(),
        "actor_kind = 'token' AND actor <> 'chatbot' AND action <> 'requests.rejected'",
        3,
    )
    .await;
    assert_eq!(
        idp.len(),
        3,
        "each of the provider's failures on record: {idp:?}"
    );
}
