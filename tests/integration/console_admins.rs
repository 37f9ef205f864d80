//! Console administrators (`/admin/api/admins`): the list, removal (never the last one; their
//! sessions end), changing one's own password (the current one required; other sessions end,
//! one's invitations are cancelled, devices forgotten), inviting, removing and turning
//! two-factor sign-in on or off only with the current password, one's sessions listed and
//! ended, one-time invitations (single use, expiring, cancellable, audited, only wrong codes
//! counted against an address), the TOTP second factor (enrolment confirmed by a code, sign-in
//! asking for it, wrong codes throttled like passwords and blocked after ten in a row except
//! for the account's own browsers and recovery codes, replays refused, recovery codes single
//! use, disabling, a right password on record), and the command line's `scimd admin list` and
//! `scimd admin remove` beside a running server.

use std::net::IpAddr;

use serde_json::{Value, json};

use scimd::service::admin;
use scimd::store::Store;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "another long password";

/// A signed-in administrator: its session cookie and CSRF token, and the device cookie its
/// browser got.
struct Admin<'a> {
    s: &'a Server,
    cookie: String,
    csrf: String,
    device: String,
}

async fn login(s: &Server, username: &str, password: &str, code: Option<&str>) -> Resp {
    login_from(
        s,
        "127.0.0.1".parse().unwrap(),
        username,
        password,
        code,
        None,
    )
    .await
}

/// A sign-in from the loopback address `from`, with a device cookie when given.
async fn login_from(
    s: &Server,
    from: IpAddr,
    username: &str,
    password: &str,
    code: Option<&str>,
    device: Option<&str>,
) -> Resp {
    let mut body = json!({"username": username, "password": password});
    if let Some(c) = code {
        body["code"] = json!(c);
    }
    let mut headers = vec![
        ("content-type", "application/json"),
        ("user-agent", "admins-test/1.0"),
    ];
    if let Some(d) = device {
        headers.push(("cookie", d));
    }
    s.raw_from(
        from,
        "POST",
        "/admin/api/login",
        &headers,
        Some(&body.to_string()),
    )
    .await
}

/// The `name=value` of the cookie `name` the response sets.
fn set_cookie(r: &Resp, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

fn signed_in<'a>(s: &'a Server, r: &Resp) -> Admin<'a> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    Admin {
        s,
        cookie: set_cookie(r, "scimd_session"),
        csrf: r.json()["csrf"].as_str().unwrap().to_string(),
        device: set_cookie(r, "scimd_device"),
    }
}

async fn sign_in<'a>(s: &'a Server, username: &str, password: &str) -> Admin<'a> {
    signed_in(s, &login(s, username, password, None).await)
}

impl Admin<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
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

    async fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, None).await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    async fn signed_in(&self) -> bool {
        self.call("GET", "/admin/api/session", None).await.status == 200
    }

    /// A new invitation's code, confirmed with `PASSWORD`.
    async fn invite(&self) -> String {
        let proof = json!({"password": PASSWORD});
        invite_code(
            &self
                .call("POST", "/admin/api/invitations", Some(&proof))
                .await,
        )
    }

    /// Removes an administrator, confirmed with `PASSWORD`.
    async fn remove(&self, name: &str) -> Resp {
        let proof = json!({"password": PASSWORD});
        self.call("DELETE", &format!("/admin/api/admins/{name}"), Some(&proof))
            .await
    }

    /// The audit entries of `action`, newest first.
    async fn audited(&self, action: &str) -> Vec<Value> {
        self.get(&format!("/admin/api/audit?action={action}")).await["entries"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn with_admins(s: &Server, names: &[&str]) {
    let store = Store::open(&s.db()).unwrap();
    for n in names {
        admin::set_password(&store, n, PASSWORD).unwrap();
    }
}

#[tokio::test]
async fn administrators_are_listed_and_removed_but_never_the_last() {
    let s = Server::start().await;
    with_admins(&s, &["root", "ops"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let ops = sign_in(&s, "ops", PASSWORD).await;
    let list = root.get("/admin/api/admins").await;
    assert_eq!(list["me"], "root");
    let admins = list["admins"].as_array().unwrap();
    assert_eq!(admins.len(), 2, "{list}");
    let o = admins.iter().find(|a| a["username"] == "ops").unwrap();
    assert!(
        o["created"].is_string() && o["lastSignIn"].is_string(),
        "{o}"
    );
    assert_eq!(o["totp"], false);

    // ops's pending invitation goes with ops.
    let code = ops.invite().await;
    let r = root.remove("OPS").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["removed"], "ops");
    assert!(
        !ops.signed_in().await,
        "the removed administrator's session ended"
    );
    assert_eq!(login(&s, "ops", PASSWORD, None).await.status, 401);
    assert_eq!(accept(&s, &code, "mallory").await.status, 403);
    assert_eq!(root.remove("nobody").await.status, 404);
    let r = root.remove("root").await;
    assert_eq!(r.status, 403, "the last administrator stays");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("only administrator")
    );
    assert!(root.signed_in().await);
    let removed = root.audited("admin.remove").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["actor"], "root");
    assert_eq!(removed[0]["resourceName"], "ops");
}

#[tokio::test]
async fn changing_ones_password_needs_the_current_one_and_ends_the_other_sessions() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let here = sign_in(&s, "root", PASSWORD).await;
    let there = sign_in(&s, "root", PASSWORD).await;
    let change = |current: &str| json!({"current": current, "password": NEW_PASSWORD});
    let r = here
        .call(
            "POST",
            "/admin/api/admins/me/password",
            Some(&change("wrong password!")),
        )
        .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(there.signed_in().await, "a refused change ends nothing");
    let r = here
        .call(
            "POST",
            "/admin/api/admins/me/password",
            Some(&change(PASSWORD)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["sessionsEnded"], 1);
    assert_eq!(r.json()["devicesForgotten"], 2, "both sign-ins' browsers");
    assert!(here.signed_in().await, "this session stays");
    assert!(!there.signed_in().await, "the other one ended");
    assert_eq!(login(&s, "root", PASSWORD, None).await.status, 401);
    sign_in(&s, "root", NEW_PASSWORD).await;
    // Too short a new password is refused before anything is checked.
    let r = here
        .call(
            "POST",
            "/admin/api/admins/me/password",
            Some(&json!({"current": NEW_PASSWORD, "password": "short"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(here.audited("admin.change_password").await.len(), 1);
}

#[tokio::test]
async fn ones_sessions_are_listed_and_ended() {
    let s = Server::start().await;
    with_admins(&s, &["root", "ops"]);
    let here = sign_in(&s, "root", PASSWORD).await;
    let there = sign_in(&s, "root", PASSWORD).await;
    let theirs = sign_in(&s, "ops", PASSWORD).await;
    let list = here.get("/admin/api/admins/me/sessions").await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "only root's own: {list}");
    assert_eq!(
        sessions.iter().filter(|x| x["current"] == true).count(),
        1,
        "{list}"
    );
    for x in sessions {
        assert_eq!(x["client"], "127.0.0.1", "{x}");
        assert_eq!(x["userAgent"], "admins-test/1.0", "{x}");
        assert!(x["created"].is_string() && x["expires"].is_string() && x["lastSeen"].is_string());
    }
    let other = sessions.iter().find(|x| x["current"] == false).unwrap();
    let id = other["id"].as_str().unwrap();
    // Another administrator's sessions are not one's own to end.
    let path = format!("/admin/api/admins/me/sessions/{id}");
    assert_eq!(theirs.call("DELETE", &path, None).await.status, 404);
    assert!(there.signed_in().await);
    assert_eq!(here.call("DELETE", &path, None).await.status, 200);
    assert!(!there.signed_in().await);
    assert!(here.signed_in().await && theirs.signed_in().await);
    assert_eq!(here.call("DELETE", &path, None).await.status, 404);
    assert_eq!(here.audited("admin.end_session").await.len(), 1);
}

fn invite_code(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let link = r.json()["link"].as_str().unwrap().to_string();
    assert!(link.contains("/invite#code="), "{link}");
    link.split("#code=").nth(1).unwrap().to_string()
}

async fn accept(s: &Server, code: &str, username: &str) -> Resp {
    let body = json!({"code": code, "username": username, "password": PASSWORD});
    s.raw(
        "POST",
        "/admin/api/invite",
        &[("content-type", "application/json")],
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn an_invitation_works_once_until_it_expires_and_is_audited() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let code = root.invite().await;
    let pending = root.get("/admin/api/admins").await["invites"].clone();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["createdBy"], "root");
    // A taken name is refused, and the invitation still works.
    assert_eq!(accept(&s, &code, "ROOT").await.status, 409);
    let joined = signed_in(&s, &accept(&s, &code, "newbie").await);
    assert_eq!(joined.get("/admin/api/session").await["username"], "newbie");
    assert_eq!(accept(&s, &code, "another").await.status, 403, "single use");
    assert_eq!(accept(&s, "guessed", "another").await.status, 403);
    let names: Vec<Value> = root.get("/admin/api/admins").await["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].clone())
        .collect();
    assert_eq!(names, [json!("newbie"), json!("root")]);
    let invited = root.audited("admin.invite").await;
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0]["actor"], "root");
    let accepted = root.audited("admin.invite_accept").await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["actor"], "newbie");
    assert_eq!(accepted[0]["detail"]["invitedBy"], "root");

    // An expired invitation does not work.
    let code = root.invite().await;
    rusqlite::Connection::open(s.db())
        .unwrap()
        .execute(
            "UPDATE admin_invites SET expires = '2000-01-01T00:00:00.000Z'",
            [],
        )
        .unwrap();
    assert_eq!(accept(&s, &code, "late").await.status, 403);
}

#[tokio::test]
async fn pending_invitations_can_be_cancelled() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let code = root.invite().await;
    let r = root.call("DELETE", "/admin/api/invitations", None).await;
    assert_eq!(r.json()["cancelled"], 1);
    assert_eq!(accept(&s, &code, "late").await.status, 403);
    assert!(
        root.get("/admin/api/admins").await["invites"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let cancelled = root.audited("admin.invite_cancel").await;
    assert_eq!(cancelled[0]["detail"]["cancelled"], 1);
}

fn totp_of(secret: &str) -> totp_rs::Totp {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the step `ahead` steps from now.
fn code_at(secret: &str, ahead: u64) -> String {
    totp_of(secret)
        .generate(unix_now() + 30 * ahead)
        .to_string()
}

/// Turns on `root`'s second factor; its secret and recovery codes.
async fn enrol(root: &Admin<'_>) -> (String, Vec<String>) {
    let e = root.call("POST", "/admin/api/admins/me/totp", None).await;
    assert_eq!(e.status, 200, "{}", String::from_utf8_lossy(&e.body));
    let e = e.json();
    let secret = e["secret"].as_str().unwrap().to_string();
    let uri = e["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/scimd%3Aroot?secret=") && uri.contains(&secret),
        "{uri}"
    );
    assert!(
        e["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    let confirm = |code: String| json!({"code": code, "password": PASSWORD});
    let wrong = root
        .call(
            "POST",
            "/admin/api/admins/me/totp/confirm",
            Some(&confirm("000000".into())),
        )
        .await;
    // 000000 could be right once in a million runs; any other wrong code would do.
    if code_at(&secret, 0) != "000000" {
        assert_eq!(wrong.status, 400);
        assert_eq!(
            root.get("/admin/api/admins/me/totp").await["enabled"],
            false
        );
    }
    let r = root
        .call(
            "POST",
            "/admin/api/admins/me/totp/confirm",
            Some(&confirm(code_at(&secret, 0))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let codes: Vec<String> = r.json()["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[tokio::test]
async fn totp_sign_in_asks_for_a_code_refuses_replays_and_takes_recovery_codes_once() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let (secret, recovery) = enrol(&root).await;
    let t = root.get("/admin/api/admins/me/totp").await;
    assert_eq!(t["enabled"], true);
    assert_eq!(t["recoveryCodesLeft"], 10);
    let listed = root.get("/admin/api/admins").await;
    assert_eq!(listed["admins"][0]["totp"], true);
    assert!(
        root.call("POST", "/admin/api/admins/me/totp", None)
            .await
            .status
            == 403,
        "no second enrolment while on"
    );

    // The password alone: a code is asked for, no session.
    let r = login(&s, "root", PASSWORD, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["needsCode"], true);
    assert!(r.header("set-cookie").is_none());
    // The confirmation's code (this step) was used: it is a replay now.
    assert_eq!(
        login(&s, "root", PASSWORD, Some(&code_at(&secret, 0)))
            .await
            .status,
        401
    );
    // The next step's code (one step of skew) works, once.
    let next = code_at(&secret, 1);
    signed_in(&s, &login(&s, "root", PASSWORD, Some(&next)).await);
    assert_eq!(login(&s, "root", PASSWORD, Some(&next)).await.status, 401);
    // A wrong password with a right code is still a wrong password.
    assert_eq!(
        login(&s, "root", "wrong password!", Some(&code_at(&secret, 1)))
            .await
            .status,
        401
    );
    // A recovery code signs in once, whatever its case and dashes.
    let rc = recovery[3].to_uppercase().replace('-', " ");
    signed_in(&s, &login(&s, "root", PASSWORD, Some(&rc)).await);
    assert_eq!(
        login(&s, "root", PASSWORD, Some(&recovery[3])).await.status,
        401
    );
    assert_eq!(
        root.get("/admin/api/admins/me/totp").await["recoveryCodesLeft"],
        9
    );
    assert_eq!(root.audited("admin.totp_enable").await.len(), 1);

    // Turning it off takes the password.
    let root = &root;
    let off = |body: Value| async move {
        root.call("POST", "/admin/api/admins/me/totp/disable", Some(&body))
            .await
            .status
    };
    assert_eq!(off(json!({"password": "wrong password!"})).await, 403);
    assert_eq!(off(json!({"code": recovery[0]})).await, 403, "a code alone");
    assert_eq!(off(json!({})).await, 403);
    assert_eq!(off(json!({"password": PASSWORD})).await, 200);
    assert_eq!(
        root.get("/admin/api/admins/me/totp").await["enabled"],
        false
    );
    sign_in(&s, "root", PASSWORD).await;
    assert_eq!(root.audited("admin.totp_disable").await.len(), 1);
}

#[tokio::test]
async fn wrong_totp_codes_count_as_failed_sign_ins() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let (secret, _) = enrol(&root).await;
    let right = code_at(&secret, 1);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        assert_eq!(login(&s, "root", PASSWORD, Some(wrong)).await.status, 401);
    }
    let r = login(&s, "root", PASSWORD, Some(&right)).await;
    assert_eq!(r.status, 429, "locked even with the right code");
    assert!(r.header("retry-after").is_some());
    // The failures are audited (folded into one entry per client and username, whose count
    // a later flush may bring up to date).
    let mut failed = Vec::new();
    for _ in 0..50 {
        failed = root.audited("admin.login").await;
        failed.retain(|e| e["outcome"] == "failure");
        if failed.first().is_some_and(|e| e["detail"]["count"] == 5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    let detail = &failed[0]["detail"];
    assert!(
        detail["error"].as_str().unwrap().starts_with("wrong code"),
        "{detail}"
    );
    assert_eq!(detail["count"], 5);
    // Checks of the password behind a session are held to the same limit.
    let r = root
        .call(
            "POST",
            "/admin/api/admins/me/totp/disable",
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 429);
    // `scimd admin set-password` ends the lockout and turns the second factor off: the way
    // back for someone who lost the authenticator and the recovery codes.
    admin::set_password(&Store::open(&s.db()).unwrap(), "root", NEW_PASSWORD).unwrap();
    let root = sign_in(&s, "root", NEW_PASSWORD).await;
    assert_eq!(
        root.get("/admin/api/admins/me/totp").await["enabled"],
        false
    );
}

#[tokio::test]
async fn the_command_line_lists_and_removes_administrators_beside_a_running_server() {
    let s = Server::start().await;
    with_admins(&s, &["root", "ops"]);
    sign_in(&s, "ops", PASSWORD).await;
    let db = s.db().to_str().unwrap().to_string();
    let o = scimd(&["admin", "list", "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.starts_with("USERNAME"), "{out}");
    let ops = out.lines().find(|l| l.starts_with("ops ")).unwrap();
    assert!(ops.ends_with(" off") && !ops.contains("never"), "{out}");
    let root = out.lines().find(|l| l.starts_with("root ")).unwrap();
    assert!(root.contains("never"), "{out}");

    let o = scimd(&["admin", "remove", "--username", "ops", "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("Removed administrator \"ops\""));
    assert_eq!(login(&s, "ops", PASSWORD, None).await.status, 401);
    let o = scimd(&["admin", "remove", "--username", "root", "--db", &db]);
    assert!(!o.status.success(), "the last one stays: {o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("only administrator"),
        "{o:?}"
    );
    let o = scimd(&["admin", "remove", "--username", "nobody", "--db", &db]);
    assert!(!o.status.success());
    let root = sign_in(&s, "root", PASSWORD).await;
    let removed = root.audited("admin.remove").await;
    assert_eq!(removed[0]["actor"], "cli");
}

/// A 6-digit code that is none of the codes around now.
fn wrong_code(secret: &str) -> &'static str {
    let near: Vec<String> = (0..4)
        .map(|k| {
            totp_of(secret)
                .generate(unix_now() - 30 + 30 * k)
                .to_string()
        })
        .collect();
    ["123456", "654321", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
}

/// The audit entries of `action` that failed, once the queue of rejections has written them.
async fn failures(root: &Admin<'_>, action: &str, expected: usize) -> Vec<Value> {
    let mut failed = Vec::new();
    for _ in 0..50 {
        failed = root.audited(action).await;
        failed.retain(|e| e["outcome"] == "failure");
        if failed.len() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    failed
}

/// Review 15, F1: with the password known, TOTP codes could be guessed at the sign-in limits'
/// pace (2,880 a day) for ever.
#[tokio::test]
async fn ten_wrong_codes_in_a_row_block_codes_but_not_the_owners_browser_or_recovery_codes() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let (secret, recovery) = enrol(&root).await;
    let wrong = wrong_code(&secret);
    let server = &s;
    let guess = |n: u32, code: String| async move {
        login_from(
            server,
            loopback_client(n),
            "root",
            PASSWORD,
            Some(&code),
            None,
        )
        .await
        .status
    };
    for n in 0..10 {
        assert_eq!(guess(n, wrong.into()).await, 401, "guess {n}");
    }
    // Blocked for a new browser, even with the right code.
    let r = login_from(
        &s,
        loopback_client(50),
        "root",
        PASSWORD,
        Some(&code_at(&secret, 1)),
        None,
    )
    .await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((14 * 60..=15 * 60).contains(&wait), "{wait}");
    let blocked = root.audited("admin.totp_blocked").await;
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0]["resourceName"], "root");
    assert_eq!(blocked[0]["detail"]["wrongCodes"], 10);
    // A recovery code still works from anywhere, and starts the count again.
    signed_in(
        &s,
        &login_from(
            &s,
            loopback_client(51),
            "root",
            PASSWORD,
            Some(&recovery[0]),
            None,
        )
        .await,
    );
    for n in 10..20 {
        assert_eq!(guess(n, wrong.into()).await, 401, "guess {n}");
    }
    assert_eq!(guess(52, code_at(&secret, 1)).await, 429);
    let blocked = root.audited("admin.totp_blocked").await;
    assert_eq!(blocked.len(), 2);
    assert_eq!(
        blocked[0]["detail"]["wrongCodes"], 10,
        "counted from the recovery code"
    );
    // The owner's browser (its device cookie) is not blocked: the right code signs in.
    rusqlite::Connection::open(s.db())
        .unwrap()
        .execute("UPDATE admins SET totp_last_step = 0", [])
        .unwrap();
    let r = login_from(
        &s,
        "127.0.0.1".parse().unwrap(),
        "root",
        PASSWORD,
        Some(&code_at(&secret, 1)),
        Some(&root.device),
    )
    .await;
    signed_in(&s, &r);
    // The wrong codes are on record, one entry per address, named; so are the refusals.
    let failed = failures(&root, "admin.login", 22).await;
    let wrong_codes = failed
        .iter()
        .filter(|e| e["status"] == 401 && e["resourceName"] == "root")
        .filter(|e| {
            e["detail"]["error"]
                .as_str()
                .unwrap()
                .starts_with("wrong code")
        })
        .count();
    assert_eq!(wrong_codes, 20, "{failed:?}");
    let refused = failed.iter().filter(|e| e["status"] == 429).count();
    assert_eq!(refused, 2, "{failed:?}");
}

/// Review 15, F1 and F6: a wrong code was filed with anonymous failures (a flood of token-less
/// requests crowded it out), and a right password asked for a code was not recorded at all.
#[tokio::test]
async fn a_right_password_is_on_record_whatever_anonymous_clients_send() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let (secret, _) = enrol(&root).await;
    // More anonymous failures from more addresses than this minute records one by one.
    for n in 0..40 {
        let r = s
            .raw_from(
                loopback_client(1000 + n),
                "GET",
                "/scim/v2/Users",
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let from = loopback_client(2000);
    let r = login_from(&s, from, "root", PASSWORD, None, None).await;
    assert_eq!(r.json()["needsCode"], true);
    let r = login_from(&s, from, "root", PASSWORD, Some(wrong_code(&secret)), None).await;
    assert_eq!(r.status, 401);
    let failed = failures(&root, "admin.login", 2).await;
    let from = from.to_string();
    let asked = failed
        .iter()
        .find(|e| e["status"] == 200)
        .unwrap_or_else(|| panic!("{failed:?}"));
    assert_eq!(
        (&asked["client"], &asked["resourceName"]),
        (&json!(from), &json!("root"))
    );
    assert!(
        asked["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("password was right"),
        "{asked}"
    );
    let wrong = failed
        .iter()
        .find(|e| e["status"] == 401)
        .unwrap_or_else(|| panic!("{failed:?}"));
    assert_eq!(wrong["client"], json!(from));
    // The owner's own browser asked for its code is not worth an entry.
    let r = login_from(
        &s,
        "127.0.0.1".parse().unwrap(),
        "root",
        PASSWORD,
        None,
        Some(&root.device),
    )
    .await;
    assert_eq!(r.json()["needsCode"], true);
    // Recorded after it if at all: once this later entry is written, so would it be.
    let later = loopback_client(2001);
    let r = login_from(&s, later, "root", PASSWORD, Some(wrong_code(&secret)), None).await;
    assert_eq!(r.status, 401);
    let failed = failures(&root, "admin.login", 3).await;
    assert!(
        failed
            .iter()
            .any(|e| e["client"] == json!(later.to_string()))
    );
    assert_eq!(failed.iter().filter(|e| e["status"] == 200).count(), 1);
}

/// Review 15, F3: a stolen session cookie alone could invite an accomplice, remove the other
/// administrators, or turn two-factor sign-in on with the thief's authenticator.
#[tokio::test]
async fn inviting_removing_and_two_factor_changes_need_the_current_password() {
    let s = Server::start().await;
    with_admins(&s, &["root", "ops"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let status = |r: Resp| r.status;
    let wrong = json!({"password": "wrong password!"});
    for body in [None, Some(&wrong)] {
        let r = root.call("POST", "/admin/api/invitations", body).await;
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        let r = root.call("DELETE", "/admin/api/admins/ops", body).await;
        assert_eq!(r.status, 403);
    }
    let r = root.call("POST", "/admin/api/invitations", None).await;
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("current password")
    );
    assert!(
        root.get("/admin/api/admins").await["invites"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        root.get("/admin/api/admins").await["admins"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Turning two-factor sign-in on: the app's code is not enough.
    let e = root
        .call("POST", "/admin/api/admins/me/totp", None)
        .await
        .json();
    let secret = e["secret"].as_str().unwrap();
    let confirm = "/admin/api/admins/me/totp/confirm";
    let code = json!({"code": code_at(secret, 0)});
    assert_eq!(status(root.call("POST", confirm, Some(&code)).await), 403);
    let mut with_wrong = code.clone();
    with_wrong["password"] = json!("wrong password!");
    assert_eq!(
        status(root.call("POST", confirm, Some(&with_wrong)).await),
        403
    );
    assert_eq!(
        root.get("/admin/api/admins/me/totp").await["enabled"],
        false
    );
    let mut proven = code.clone();
    proven["password"] = json!(PASSWORD);
    assert_eq!(status(root.call("POST", confirm, Some(&proven)).await), 200);
    // Turning it off takes the password too; a code will not do.
    let off = "/admin/api/admins/me/totp/disable";
    let next = json!({"code": code_at(secret, 1)});
    assert_eq!(status(root.call("POST", off, None).await), 403);
    assert_eq!(status(root.call("POST", off, Some(&next)).await), 403);
    assert_eq!(root.get("/admin/api/admins/me/totp").await["enabled"], true);
    let proof = json!({"password": PASSWORD});
    assert_eq!(status(root.call("POST", off, Some(&proof)).await), 200);

    root.invite().await;
    assert_eq!(root.remove("ops").await.status, 200);
}

/// Review 15, F3: a password change (console or `set-password`) left the invitations and
/// remembered devices that came with the old password or a stolen session.
#[tokio::test]
async fn a_password_change_cancels_ones_invitations_and_forgets_ones_devices() {
    let s = Server::start().await;
    with_admins(&s, &["root", "ops"]);
    let here = sign_in(&s, "root", PASSWORD).await;
    let thief = sign_in(&s, "root", PASSWORD).await;
    let ops = sign_in(&s, "ops", PASSWORD).await;
    let theirs = thief.invite().await;
    let colleagues = ops.invite().await;
    let devices = || {
        rusqlite::Connection::open(s.db())
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM admin_devices d JOIN admins a ON a.seq = d.admin_seq
                 WHERE a.username = 'root'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    assert_eq!(devices(), 2);
    let change = json!({"current": PASSWORD, "password": NEW_PASSWORD});
    let r = here
        .call("POST", "/admin/api/admins/me/password", Some(&change))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        json!({"sessionsEnded": 1, "invitationsCancelled": 1, "devicesForgotten": 2})
    );
    assert!(!thief.signed_in().await);
    assert_eq!(devices(), 0);
    assert_eq!(accept(&s, &theirs, "accomplice").await.status, 403);
    let changed = here.audited("admin.change_password").await;
    assert_eq!(changed[0]["detail"]["invitationsCancelled"], 1);

    // The command line's recovery too.
    let root = sign_in(&s, "root", NEW_PASSWORD).await;
    let proof = json!({"password": NEW_PASSWORD});
    let theirs = invite_code(
        &root
            .call("POST", "/admin/api/invitations", Some(&proof))
            .await,
    );
    admin::set_password(&Store::open(&s.db()).unwrap(), "ROOT", PASSWORD).unwrap();
    assert_eq!(accept(&s, &theirs, "accomplice").await.status, 403);
    // Another administrator's invitation is theirs.
    signed_in(&s, &accept(&s, &colleagues, "newbie").await);
    let set = ops.audited("admin.set_password").await;
    assert_eq!(set[0]["detail"]["invitationsCancelled"], 1);
}

async fn accept_from(s: &Server, from: IpAddr, code: &str, username: &str, password: &str) -> Resp {
    let body = json!({"code": code, "username": username, "password": password});
    s.raw_from(
        from,
        "POST",
        "/admin/api/invite",
        &[("content-type", "application/json")],
        Some(&body.to_string()),
    )
    .await
}

/// Review 15, F5: every accept was counted against the address before it was checked, and
/// never given back: a neighbour's bogus attempts, an invitee's taken name or short password,
/// and earlier invitees' successes all used up the next invitee's budget.
#[tokio::test]
async fn only_wrong_invitation_codes_count_against_an_address() {
    let s = Server::start().await;
    with_admins(&s, &["root"]);
    let root = sign_in(&s, "root", PASSWORD).await;
    let office: IpAddr = "127.5.0.1".parse().unwrap();
    let code = root.invite().await;
    // A neighbour's bogus codes are refused, soon with 429…
    for _ in 0..5 {
        let r = accept_from(&s, office, "bogus", "mallory", PASSWORD).await;
        assert_eq!(r.status, 403);
    }
    let r = accept_from(&s, office, "bogus", "mallory", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // …while the invitee's mistakes cost nothing and the real code is accepted.
    for _ in 0..5 {
        assert_eq!(
            accept_from(&s, office, &code, "ana", "short").await.status,
            400
        );
        assert_eq!(
            accept_from(&s, office, &code, "ROOT", PASSWORD)
                .await
                .status,
            409
        );
    }
    signed_in(&s, &accept_from(&s, office, &code, "ana", PASSWORD).await);
    // Six colleagues behind one address join within a minute.
    let shared: IpAddr = "127.5.0.2".parse().unwrap();
    for n in 0..6 {
        let code = root.invite().await;
        let r = accept_from(&s, shared, &code, &format!("colleague{n}"), PASSWORD).await;
        assert_eq!(r.status, 200, "{n}: {}", String::from_utf8_lossy(&r.body));
    }
}
