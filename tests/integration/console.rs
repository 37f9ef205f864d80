//! The admin console's API (`/admin/api`) and files: first-run setup, sign-in and its
//! throttle, sessions and CSRF, the separation from SCIM, tokens (regenerate with overlap,
//! revoke), the directory, the audit log and its export, retention, security headers.

use serde_json::{Value, json};

use scimd::service::{admin, audit};
use scimd::store::Store;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// A signed-in console: the session cookie and CSRF token.
pub(crate) struct Console<'a> {
    s: &'a Server,
    pub(crate) cookie: String,
    csrf: String,
}

fn cookie_of(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

async fn post_json(s: &Server, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(extra);
    s.raw("POST", path, &headers, Some(&body.to_string())).await
}

/// Creates the first administrator through the setup link and returns the session.
pub(crate) async fn set_up(s: &Server) -> Console<'_> {
    // Once the server answers, its own start-up setup code is written; ours replaces it.
    assert_eq!(
        s.raw("GET", "/admin/api/state", &[], None).await.status,
        200
    );
    let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
        .unwrap()
        .expect("no administrator yet");
    let r = post_json(
        s,
        "/admin/api/setup",
        &json!({"code": code, "username": "root", "password": PASSWORD}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cookie = cookie_of(&r);
    Console {
        s,
        cookie,
        csrf: r.json()["csrf"].as_str().unwrap().to_string(),
    }
}

impl Console<'_> {
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let text = body.map(Value::to_string);
        self.s
            .raw(
                method,
                path,
                &[
                    ("cookie", &self.cookie),
                    ("x-csrf-token", &self.csrf),
                    ("content-type", "application/json"),
                ],
                text.as_deref(),
            )
            .await
    }
    pub(crate) async fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, None).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }
}

#[tokio::test]
async fn first_run_setup_works_once_with_a_current_code() {
    let s = Server::start().await;
    let state = s.raw("GET", "/admin/api/state", &[], None).await.json();
    assert_eq!(state["needsSetup"], true);
    let r = post_json(
        &s,
        "/admin/api/setup",
        &json!({"code": "guessed", "username": "root", "password": PASSWORD}),
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    let c = set_up(&s).await;
    assert_eq!(c.get("/admin/api/session").await["username"], "root");
    let state = s.raw("GET", "/admin/api/state", &[], None).await.json();
    assert_eq!(state["needsSetup"], false);
    // No second first administrator, and no new setup code.
    assert!(
        admin::new_setup_code(&Store::open(&s.db()).unwrap())
            .unwrap()
            .is_none()
    );
    // A form post from elsewhere cannot even try.
    let r = s
        .raw(
            "POST",
            "/admin/api/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("username=root&password=x"),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = post_json(
        &s,
        "/admin/api/login",
        &json!({"username": "root", "password": PASSWORD}),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn sign_in_is_throttled_and_sessions_end_at_logout() {
    let s = Server::start().await;
    let store = Store::open(&s.db()).unwrap();
    admin::set_password(&store, "ops", PASSWORD).unwrap();
    for _ in 0..5 {
        let r = post_json(
            &s,
            "/admin/api/login",
            &json!({"username": "ops", "password": "wrong password!"}),
            &[],
        )
        .await;
        assert_eq!(r.status, 401);
    }
    let r = post_json(
        &s,
        "/admin/api/login",
        &json!({"username": "ops", "password": PASSWORD}),
        &[],
    )
    .await;
    assert_eq!(r.status, 429, "locked even with the right password");
    assert!(r.header("retry-after").is_some());

    let s2 = Server::start().await;
    let store2 = Store::open(&s2.db()).unwrap();
    admin::set_password(&store2, "ops", PASSWORD).unwrap();
    let r = post_json(
        &s2,
        "/admin/api/login",
        &json!({"username": "OPS", "password": PASSWORD}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let c = Console {
        s: &s2,
        cookie: cookie_of(&r),
        csrf: r.json()["csrf"].as_str().unwrap().to_string(),
    };
    assert_eq!(c.call("POST", "/admin/api/logout", None).await.status, 200);
    assert_eq!(c.call("GET", "/admin/api/session", None).await.status, 401);
}

#[tokio::test]
async fn scim_tokens_and_console_sessions_are_separate_worlds() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let bearer = format!("Bearer {}", s.token);
    let r = s
        .raw(
            "GET",
            "/admin/api/session",
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .raw("GET", "/scim/v2/Users", &[("cookie", &c.cookie)], None)
        .await;
    assert_eq!(r.status, 401);
    // State-changing console requests need the session's CSRF token.
    let r = s
        .raw(
            "POST",
            "/admin/api/tokens",
            &[("cookie", &c.cookie), ("content-type", "application/json")],
            Some(r#"{"name": "x"}"#),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .raw(
            "POST",
            "/admin/api/tokens",
            &[
                ("cookie", &c.cookie),
                ("x-csrf-token", "forged"),
                ("content-type", "application/json"),
            ],
            Some(r#"{"name": "x"}"#),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn scim_status(s: &Server, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    s.raw("GET", "/scim/v2/Users", &[("authorization", &bearer)], None)
        .await
        .status
}

#[tokio::test]
async fn tokens_are_created_regenerated_with_overlap_and_revoked() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let r = c
        .call(
            "POST",
            "/admin/api/tokens",
            Some(&json!({"name": "onelogin"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let first = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(scim_status(&s, &first).await, 200);

    // Regenerate with a 1-hour overlap: both secrets work.
    let r = c
        .call(
            "POST",
            "/admin/api/tokens/onelogin/regenerate",
            Some(&json!({"overlap": "1h"})),
        )
        .await;
    let second = r.json()["token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(scim_status(&s, &first).await, 200);
    assert_eq!(scim_status(&s, &second).await, 200);
    // When the overlap ends, the old secret stops.
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            tx.execute(
                "UPDATE tokens SET revoked = '2000-01-01T00:00:00.000Z'
                 WHERE name = 'onelogin' AND revoked IS NOT NULL",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(scim_status(&s, &first).await, 401);
    assert_eq!(scim_status(&s, &second).await, 200);

    // Without overlap the old secret stops at once.
    let r = c
        .call(
            "POST",
            "/admin/api/tokens/onelogin/regenerate",
            Some(&json!({"overlap": "none"})),
        )
        .await;
    let third = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(scim_status(&s, &second).await, 401);
    assert_eq!(scim_status(&s, &third).await, 200);

    let listed = c.get("/admin/api/tokens").await;
    let text = listed.to_string();
    assert!(
        !text.contains(&third) && !text.contains(&first),
        "secrets are never listed"
    );
    let live: Vec<&Value> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "onelogin" && t["revoked"].is_null())
        .collect();
    assert_eq!(live.len(), 1);

    assert_eq!(
        c.call("DELETE", "/admin/api/tokens/onelogin", None)
            .await
            .status,
        200
    );
    assert_eq!(scim_status(&s, &third).await, 401);

    // Every step is in the audit log, no secret in it.
    let log = c.get("/admin/api/audit?actor=root").await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.revoke",
            "token.regenerate",
            "token.regenerate",
            "token.create",
            "admin.setup"
        ]
    );
    assert!(!log.to_string().contains("scimd_"), "{log}");
}

#[tokio::test]
async fn the_directory_is_searchable_sortable_and_has_history() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    for (name, display) in [
        ("ana@x.org", "Ana Lima"),
        ("bo@x.org", "Bo Ek"),
        ("cy@y.org", "Cy"),
    ] {
        s.create_user(&json!({"userName": name, "displayName": display}))
            .await;
    }
    let ana = id_of(&s.filter("Users", "userName eq \"ana@x.org\"").await["Resources"][0]);
    s.create_group(&json!({"displayName": "Finance", "members": [{"value": ana}]}))
        .await;

    let found = c
        .get("/admin/api/users?q=x.org&sortBy=userName&sortOrder=descending")
        .await;
    assert_eq!(found["total"], 2);
    assert_eq!(found["items"][0]["userName"], "bo@x.org");
    let found = c.get("/admin/api/users?q=LIMA").await;
    assert_eq!(found["items"][0]["userName"], "ana@x.org");
    let page = c
        .get("/admin/api/users?count=1&startIndex=2&sortBy=userName")
        .await;
    assert_eq!(
        (page["total"].clone(), page["items"][0]["userName"].clone()),
        (json!(3), json!("bo@x.org"))
    );

    let detail = c.get(&format!("/admin/api/users/{ana}")).await;
    assert_eq!(detail["user"]["groups"][0]["display"], "Finance");
    let history: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["group.create", "user.create"]);

    let groups = c.get("/admin/api/groups?q=fin").await;
    assert_eq!(groups["items"][0]["memberCount"], 1);
    let gid = groups["items"][0]["id"].as_str().unwrap().to_string();
    let group = c.get(&format!("/admin/api/groups/{gid}?count=10")).await;
    assert_eq!(
        group["group"]["members"],
        json!([{"id": ana, "type": "User", "name": "ana@x.org", "displayName": "Ana Lima",
                "active": true}])
    );
    assert_eq!(group["group"]["memberCount"], 1);
    let beyond = c
        .get(&format!("/admin/api/groups/{gid}?startIndex=2"))
        .await;
    assert_eq!(beyond["group"]["members"], json!([]));
}

#[tokio::test]
async fn the_audit_log_filters_exports_and_keeps_what_retention_allows() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    for i in 0..5 {
        s.create_user(&json!({"userName": format!("=u{i}")})).await;
    }
    s.post("/scim/v2/Users", &json!({"userName": "=u0"}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Rejections are written within a second or so.
    let mut failures = json!({});
    for _ in 0..50 {
        failures = c.get("/admin/api/audit?outcome=failure").await;
        if !failures["entries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(failures["entries"][0]["status"], 409);

    let page = c.get("/admin/api/audit?action=user.create&limit=2").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().unwrap();
    let older = c
        .get(&format!(
            "/admin/api/audit?action=user.create&limit=10&before={next}"
        ))
        .await;
    assert_eq!(older["entries"].as_array().unwrap().len(), 3);

    let r = c
        .call(
            "GET",
            "/admin/api/audit/export?format=csv&action=user.create",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let csv = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.contains(",'=u0,"), "formulas are defused: {csv}");
    let r = c
        .call(
            "GET",
            "/admin/api/audit/export?format=jsonl&action=user.create",
            None,
        )
        .await;
    let lines: Vec<Value> = String::from_utf8_lossy(&r.body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);

    let r = c
        .call(
            "PUT",
            "/admin/api/settings",
            Some(&json!({"maxAgeDays": 30, "maxRows": 3})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/admin/api/settings").await["maxRows"], 3);
    let deleted = audit::prune(&Store::open(&s.db()).unwrap()).await.unwrap();
    assert!(deleted > 0);
    let left = c.get("/admin/api/audit?limit=100").await;
    assert_eq!(left["entries"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_console_is_served_with_strict_headers() {
    let s = Server::start().await;
    for path in ["/", "/users/some-id", "/app.js", "/style.css"] {
        let r = s.raw("GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let r = s.raw("GET", "/", &[], None).await;
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = String::from_utf8_lossy(&r.body);
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    let etag = r.header("etag").unwrap().to_string();
    let r = s.raw("GET", "/", &[("if-none-match", &etag)], None).await;
    assert_eq!(r.status, 304);
    assert_eq!(s.raw("GET", "/missing.js", &[], None).await.status, 404);
    let r = s.raw("GET", "/admin/api/session", &[], None).await;
    assert_eq!(r.status, 401);
    assert!(r.header("content-security-policy").is_some());
    // SCIM paths never fall through to the console.
    assert_eq!(s.raw("GET", "/scim/v2/Nope", &[], None).await.status, 401);
}

#[tokio::test]
async fn parallel_guesses_are_throttled_too() {
    let s = std::sync::Arc::new(Server::start().await);
    admin::set_password(&Store::open(&s.db()).unwrap(), "ops", PASSWORD).unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let password = if i == 29 {
                PASSWORD.to_string()
            } else {
                format!("guess number {i}")
            };
            post_json(
                &s,
                "/admin/api/login",
                &json!({"username": "ops", "password": password}),
                &[],
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let attempted = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        attempted <= 5,
        "at most 5 attempts reach the password check: {statuses:?}"
    );
    // An absurd username is refused without being counted or recorded; a body over 4 KiB
    // is not even read.
    let r = post_json(
        &s,
        "/admin/api/login",
        &json!({"username": "x".repeat(1_000), "password": "p"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post_json(
        &s,
        "/admin/api/login",
        &json!({"username": "x".repeat(10_000), "password": "p"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn stop_now_ends_every_older_secret_and_retention_is_bounded() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let a = c
        .call("POST", "/admin/api/tokens", Some(&json!({"name": "idp"})))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let regen = |overlap: &'static str| {
        let c = &c;
        async move {
            c.call(
                "POST",
                "/admin/api/tokens/idp/regenerate",
                Some(&json!({"overlap": overlap})),
            )
            .await
            .json()["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let b = regen("24h").await;
    assert_eq!(
        (scim_status(&s, &a).await, scim_status(&s, &b).await),
        (200, 200)
    );
    let c3 = regen("none").await;
    assert_eq!(
        (
            scim_status(&s, &a).await,
            scim_status(&s, &b).await,
            scim_status(&s, &c3).await
        ),
        (401, 401, 200)
    );
    let r = c
        .call(
            "PUT",
            "/admin/api/settings",
            Some(&json!({"maxAgeDays": 4294967295u64})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .call(
            "PUT",
            "/admin/api/settings",
            Some(&json!({"maxAgeDays": 36500, "maxRows": null})),
        )
        .await;
    assert_eq!(r.status, 200);
    audit::prune(&Store::open(&s.db()).unwrap()).await.unwrap();
}

#[tokio::test]
async fn sessions_expire_and_cookies_are_secure_behind_https() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            tx.execute(
                "UPDATE sessions SET expires = '2000-01-01T00:00:00.000Z'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(c.call("GET", "/admin/api/session", None).await.status, 401);

    let dir = tempfile::TempDir::new().unwrap();
    let https = Server::start_in(dir, |cfg| {
        cfg.with_public_url(Some("https://scim.example.com"))
            .unwrap()
    })
    .await;
    admin::set_password(&Store::open(&https.db()).unwrap(), "ops", PASSWORD).unwrap();
    let r = post_json(
        &https,
        "/admin/api/login",
        &json!({"username": "ops", "password": PASSWORD}),
        &[("origin", "https://scim.example.com")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
}
