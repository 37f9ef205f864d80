//! Every error is a SCIM error body with the right status and scimType, and changes nothing.

use serde_json::json;

use crate::common::*;

async fn user_count(s: &Server) -> u64 {
    s.get("/scim/v2/Users?count=0").await.json()["totalResults"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_invalid_syntax() {
    let s = Server::start().await;
    for body in [
        "{",
        "{\"userName\": }",
        "not json",
        "[1,2",
        "\"just a string\"",
        "[]",
        "42",
    ] {
        let r = s.call("POST", "/scim/v2/Users", Some(body)).await;
        r.assert_error(400, Some("invalidSyntax"));
    }
    s.call("POST", "/scim/v2/Users", None)
        .await
        .assert_error(400, Some("invalidSyntax"));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    s.call("POST", "/scim/v2/Groups", Some(&deep))
        .await
        .assert_error(400, Some("invalidSyntax"));
    assert_eq!(user_count(&s).await, 0);
}

#[tokio::test]
async fn missing_required_and_wrong_types_are_invalid_value() {
    let s = Server::start().await;
    for body in [
        json!({}),
        json!({"userName": ""}),
        json!({"userName": null}),
        json!({"userName": 42}),
        json!({"userName": "a", "active": "maybe"}),
        json!({"userName": "a", "name": "Jane"}),
        json!({"userName": "a", "emails": [{"value": 1}]}),
        json!({"userName": "a", "emails": [{"value": "a@x", "primary": true},
                                            {"value": "b@x", "primary": true}]}),
        json!({"userName": "a", "favouriteColour": "blue", "title": 5}),
        json!({"userName": "a", "name": {"nickname": "x", "givenName": 1}}),
        json!({"userName": "a", ENTERPRISE_URN: {"badge": "7", "department": 1}}),
        json!({"userName": "a", ENTERPRISE_URN: "R&D"}),
    ] {
        let r = s.post("/scim/v2/Users", &body).await;
        let err = r.assert_error(400, Some("invalidValue"));
        assert!(
            err["detail"].as_str().unwrap().contains('"'),
            "detail names the attribute: {err}"
        );
    }
    for body in [
        json!({}),
        json!({"displayName": 7}),
        json!({"displayName": "g", "members": [{"value": 5}]}),
    ] {
        s.post("/scim/v2/Groups", &body)
            .await
            .assert_error(400, Some("invalidValue"));
    }
    assert_eq!(user_count(&s).await, 0);
    assert_eq!(s.get("/scim/v2/Groups").await.json()["totalResults"], 0);
}

#[tokio::test]
async fn a_failed_put_changes_nothing() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"userName": "keep", "title": "Boss"}))
        .await;
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    s.put(&path, &json!({"userName": "keep", "title": 5}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.call("PUT", &path, Some("{oops"))
        .await
        .assert_error(400, Some("invalidSyntax"));
    assert_eq!(s.get(&path).await.json(), u);
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404() {
    let s = Server::start().await;
    for (path, body) in [
        ("/scim/v2/Users/nope", json!({"userName": "x"})),
        ("/scim/v2/Groups/nope", json!({"displayName": "x"})),
    ] {
        s.get(path).await.assert_error(404, None);
        s.put(path, &body).await.assert_error(404, None);
        s.delete(path).await.assert_error(404, None);
    }
    // A browser path outside SCIM is the console's "Not found" page, still a 404
    // (console_polish.rs).
    assert_eq!(s.get("/nothing").await.status, 404);
    for path in [
        "/scim/v2",
        "/scim/v2/Devices",
        "/scim/v1/Users",
        "/scim/v2/Users/a/b",
    ] {
        s.get(path).await.assert_error(404, None);
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer scimd_0000000000000000_wrong")],
        vec![("authorization", "Bearer not-even-our-format")],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
    ];
    for headers in cases {
        // A server per case: a client failing more than 20 times a minute is slowed (429).
        let s = Server::start().await;
        // Under /scim/v2 nothing is said without a token, not even that a path or method
        // does not exist.
        for (method, path) in [
            ("GET", "/scim/v2/Users"),
            ("GET", "/scim/v2/ServiceProviderConfig"),
            ("POST", "/scim/v2/ServiceProviderConfig"),
            ("GET", "/scim/v2/Nope"),
            ("GET", "/scim/v2"),
            ("PATCH", "/scim/v2/Users/x"),
        ] {
            let r = s.raw(method, path, &headers, None).await;
            r.assert_error(401, None);
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"scimd\""));
        }
        // Outside it there is nothing to protect: 404 for anyone (the console's files are
        // public; its API has its own sign-in).
        assert_eq!(s.raw("GET", "/nothing", &headers, None).await.status, 404);
    }
    // A near miss of the real token (same lookup part, other secret) fails too.
    let s = Server::start().await;
    let mut forged = s.token.clone();
    forged.pop();
    forged.push('x');
    let r = s
        .raw(
            "GET",
            "/scim/v2/Users",
            &[("authorization", &format!("Bearer {forged}"))],
            None,
        )
        .await;
    r.assert_error(401, None);
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let auth = format!("bearer {}", s.token);
    assert_eq!(
        s.raw("GET", "/scim/v2/Users", &[("authorization", &auth)], None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = Server::start_in(tempfile::TempDir::new().unwrap(), |mut c| {
        c.max_body_bytes = 1000;
        c
    })
    .await;
    let big = json!({"userName": "x".repeat(2000)}).to_string();
    s.call("POST", "/scim/v2/Users", Some(&big))
        .await
        .assert_error(413, None);
    assert_eq!(user_count(&s).await, 0);
    let ok = json!({"userName": "x".repeat(500)}).to_string();
    assert_eq!(
        s.call("POST", "/scim/v2/Users", Some(&ok)).await.status,
        201
    );
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let s = Server::start().await;
    let big = json!({"userName": "x".repeat(1024 * 1024)}).to_string();
    s.call("POST", "/scim/v2/Users", Some(&big))
        .await
        .assert_error(413, None);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_me_is_501() {
    let s = Server::start().await;
    let r = s.call("DELETE", "/scim/v2/Users", None).await;
    r.assert_error(405, None);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = s.call("POST", "/scim/v2/Users/some-id", Some("{}")).await;
    r.assert_error(405, None);
    assert_eq!(r.header("allow"), Some("GET, PUT, PATCH, DELETE"));
    s.call("GET", "/scim/v2/Me", None)
        .await
        .assert_error(501, None);
    let r = s.call("GET", "/scim/v2/Bulk", None).await;
    r.assert_error(405, None);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = s.call("GET", "/scim/v2/Users/.search", None).await;
    r.assert_error(405, None);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn bad_paging_parameters_are_400() {
    let s = Server::start().await;
    s.get("/scim/v2/Users?count=many")
        .await
        .assert_error(400, Some("invalidValue"));
    s.get("/scim/v2/Users?startIndex=1.5")
        .await
        .assert_error(400, Some("invalidValue"));
    // Empty parameters are no parameters.
    assert_eq!(s.get("/scim/v2/Users?count=&startIndex=").await.status, 200);
}

#[tokio::test]
async fn a_body_that_never_finishes_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_in(tempfile::TempDir::new().unwrap(), |mut c| {
        c.body_read_timeout = std::time::Duration::from_millis(300);
        c
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n{{\"userName\":",
        s.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"status\":\"408\""), "{response}");
    assert_eq!(user_count(&s).await, 0);
}

/// A burst of requests larger than the connection pool queues instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_reads_and_writes_all_succeed() {
    let s = std::sync::Arc::new(Server::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.spawn(async move {
            let body = json!({"userName": format!("burst{i}")}).to_string();
            (
                201,
                s.call("POST", "/scim/v2/Users", Some(&body)).await.status,
            )
        });
    }
    for _ in 0..80 {
        let s = s.clone();
        tasks.spawn(async move { (200, s.get("/scim/v2/Users?count=5").await.status) });
    }
    while let Some(done) = tasks.join_next().await {
        let (expected, got) = done.unwrap();
        assert_eq!(got, expected);
    }
    assert_eq!(user_count(&s).await, 40);
}
