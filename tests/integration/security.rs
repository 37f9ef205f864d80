//! The security review as tests: every endpoint but the health check, the console's files and
//! its sign-in needs credentials, of the right kind; secrets never reach the log.

use std::process::Command;

use crate::common::*;

/// Every SCIM route of the router, one request each (ids need not exist: 401 comes first).
const SCIM: &[(&str, &str)] = &[
    ("GET", "/scim/v2/ServiceProviderConfig"),
    ("GET", "/scim/v2/ResourceTypes"),
    ("GET", "/scim/v2/ResourceTypes/User"),
    ("GET", "/scim/v2/Schemas"),
    (
        "GET",
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    ),
    ("GET", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users/.search"),
    ("GET", "/scim/v2/Users/x"),
    ("PUT", "/scim/v2/Users/x"),
    ("PATCH", "/scim/v2/Users/x"),
    ("DELETE", "/scim/v2/Users/x"),
    ("GET", "/scim/v2/Groups"),
    ("POST", "/scim/v2/Groups"),
    ("POST", "/scim/v2/Groups/.search"),
    ("GET", "/scim/v2/Groups/x"),
    ("PUT", "/scim/v2/Groups/x"),
    ("PATCH", "/scim/v2/Groups/x"),
    ("DELETE", "/scim/v2/Groups/x"),
    ("POST", "/scim/v2/.search"),
    ("POST", "/scim/v2/Bulk"),
    ("GET", "/scim/v2/Me"),
];

/// Every console API route that needs a session.
const CONSOLE: &[(&str, &str)] = &[
    ("GET", "/admin/api/session"),
    ("POST", "/admin/api/logout"),
    ("GET", "/admin/api/tokens"),
    ("POST", "/admin/api/tokens"),
    ("POST", "/admin/api/tokens/x/regenerate"),
    ("DELETE", "/admin/api/tokens/x"),
    ("GET", "/admin/api/users"),
    ("GET", "/admin/api/users/x"),
    ("GET", "/admin/api/groups"),
    ("GET", "/admin/api/groups/x"),
    ("GET", "/admin/api/audit"),
    ("GET", "/admin/api/audit/export"),
    ("GET", "/admin/api/settings"),
    ("PUT", "/admin/api/settings"),
    ("GET", "/admin/api/check-connection"),
    ("POST", "/admin/api/check-connection"),
    ("GET", "/admin/api/nothing"),
];

#[tokio::test]
async fn nothing_answers_without_its_own_credentials() {
    let s = Server::start().await;
    let bearer = format!("Bearer {}", s.token);
    // (After 20 failures from one address SCIM answers 429 instead: refused all the same.)
    let refused = |status: u16| status == 401 || status == 429;
    for (method, path) in SCIM {
        let r = s.raw(method, path, &[], Some("{}")).await;
        assert!(
            refused(r.status),
            "{method} {path} without a token: {}",
            r.status
        );
        let cookie_only = [("cookie", "scimd_session=forged")];
        let r = s.raw(method, path, &cookie_only, Some("{}")).await;
        assert!(
            refused(r.status),
            "{method} {path} with a console cookie: {}",
            r.status
        );
    }
    for (method, path) in CONSOLE {
        let r = s.raw(method, path, &[], Some("{}")).await;
        assert_eq!(r.status, 401, "{method} {path} without a session");
        let r = s
            .raw(method, path, &[("authorization", &bearer)], Some("{}"))
            .await;
        assert_eq!(r.status, 401, "{method} {path} with a SCIM token");
    }
    // What is public: the health check, the console's files, and its way in.
    assert_eq!(s.raw("GET", "/healthz", &[], None).await.status, 200);
    for path in [
        "/",
        "/app.js",
        "/style.css",
        "/favicon.svg",
        "/login",
        "/setup",
    ] {
        assert_eq!(s.raw("GET", path, &[], None).await.status, 200, "{path}");
    }
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
}

#[test]
fn secrets_never_reach_the_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("log.db");
    let db = db.to_str().unwrap();
    let token = cli_token(db, "t");
    let (mut child, addr, lines) = spawn_server(db, &["--log", "trace"]);
    for body in [
        r#"{"userName":"ana","password":"hunter2-hunter2"}"#,
        r#"{"userName":"ana","password":"hunter2-hunter2"}"#,
    ] {
        let head = format!("POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}");
        http_once(&addr, &head, body, std::time::Duration::from_secs(20)).unwrap();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    let log = log.join("\n");
    let secret = token.rsplit('_').next().unwrap();
    assert!(log.contains("POST"), "the requests are logged: {log}");
    assert!(!log.contains(secret), "the token's secret is in the log");
    assert!(!log.contains("hunter2"), "a password is in the log");
}
