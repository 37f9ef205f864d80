//! Health, restarts, shutdown and token bookkeeping.

use serde_json::json;

use crate::common::*;
use scimd::service::tokens;
use scimd::store::Store;

#[tokio::test]
async fn healthz_needs_no_token_and_reports_version_and_database() {
    let s = Server::start().await;
    let r = s.raw("GET", "/healthz", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "database": "ok"})
    );
    assert_eq!(s.raw("POST", "/healthz", &[], None).await.status, 405);
}

#[tokio::test]
async fn restarting_keeps_every_resource() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"userName": "persist", "emails": [{"value": "p@x"}],
                             ENTERPRISE_URN: {"department": "Ops"}}))
        .await;
    let g = s
        .create_group(&json!({"displayName": "Persisted", "members": [{"value": id_of(&u)}]}))
        .await;
    let dir = s.stop().await;
    let s = Server::start_in(dir, |c| c).await;
    let u2 = s.get(&format!("/scim/v2/Users/{}", id_of(&u))).await.json();
    let mut expected = u.clone();
    expected["groups"] = json!([{"value": id_of(&g), "display": "Persisted", "type": "direct",
        "$ref": format!("http://{}/scim/v2/Groups/{}", s.addr, id_of(&g))}]);
    // The port changed, so locations differ; everything else is identical.
    expected["meta"]["location"] = json!(format!("http://{}/scim/v2/Users/{}", s.addr, id_of(&u)));
    // Joining the group gave the user a new representation (its groups), so a new version.
    expected["meta"]["version"] = json!("W/\"2\"");
    expected["meta"]["lastModified"] = u2["meta"]["lastModified"].clone();
    assert!(u2["meta"]["lastModified"].as_str() >= u["meta"]["lastModified"].as_str());
    assert_eq!(u2, expected);
    let g2 = s
        .get(&format!("/scim/v2/Groups/{}", id_of(&g)))
        .await
        .json();
    assert_eq!(g2["members"][0]["value"], json!(id_of(&u)));
    assert_eq!(
        s.filter("Users", "emails.value eq \"p@x\"").await["totalResults"],
        1
    );
}

#[tokio::test]
async fn the_public_url_decides_locations() {
    let s = Server::start_in(tempfile::TempDir::new().unwrap(), |c| {
        c.with_public_url(Some("https://scim.example.com/"))
            .unwrap()
    })
    .await;
    let r = s.post("/scim/v2/Users", &json!({"userName": "loc"})).await;
    let id = id_of(&r.json());
    let expected = format!("https://scim.example.com/scim/v2/Users/{id}");
    assert_eq!(r.header("location"), Some(expected.as_str()));
    assert_eq!(r.json()["meta"]["location"], json!(expected));
}

#[tokio::test]
async fn token_use_is_recorded_at_shutdown_without_a_write_per_request() {
    let s = Server::start().await;
    let db = s.db();
    for _ in 0..3 {
        assert_eq!(s.get("/scim/v2/Users").await.status, 200);
    }
    // Not yet written: "last used" is batched in memory.
    let before = tokens::list(&Store::open(&db).unwrap()).unwrap();
    assert!(before[0].last_used.is_none());
    let dir = s.stop().await;
    let after = tokens::list(&Store::open(&dir.path().join("scimd.db")).unwrap()).unwrap();
    assert!(after[0].last_used.is_some());
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let s = Server::start().await;
    let store = Store::open(&s.db()).unwrap();
    let second = tokens::create(&store, "second").unwrap();
    let auth = format!("Bearer {second}");
    assert_eq!(
        s.raw("GET", "/scim/v2/Users", &[("authorization", &auth)], None)
            .await
            .status,
        200
    );
    tokens::revoke(&store, "second").unwrap();
    s.raw("GET", "/scim/v2/Users", &[("authorization", &auth)], None)
        .await
        .assert_error(401, None);
    // The name is free for a new token; the old secret stays dead.
    let third = tokens::create(&store, "second").unwrap();
    assert_ne!(third, second);
    s.raw("GET", "/scim/v2/Users", &[("authorization", &auth)], None)
        .await
        .assert_error(401, None);
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = Server::start().await;
    let body = json!({"userName": "inflight"}).to_string();
    let (head, tail) = body.split_at(10);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n{head}",
        s.token,
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Shutdown begins while the request is half-sent; it still completes.
    s.signal_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    conn.write_all(tail.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let dir = s.stop().await;
    let s = Server::start_in(dir, |c| c).await;
    assert_eq!(
        s.filter("Users", "userName eq \"inflight\"").await["totalResults"],
        1
    );
}

/// Concurrent writes share commits (group commit); one that fails inside a shared commit
/// leaves no trace and does not take the others down with it.
#[tokio::test]
async fn failed_writes_in_a_shared_commit_leave_no_trace() {
    let s = std::sync::Arc::new(Server::start().await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Every other request tries to take the same userName.
            let name = if i % 2 == 0 {
                "dup".to_string()
            } else {
                format!("u{i}")
            };
            s.post("/scim/v2/Users", &json!({"userName": name}))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        13,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    let all = s.get("/scim/v2/Users").await.json();
    assert_eq!(all["totalResults"], 13);
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let created: i64 = store
        .read_sync(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM audit WHERE action = 'user.create'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(created, 13, "one audit entry per user actually created");
}
