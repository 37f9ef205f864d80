//! The console's rough edges (issue 15): retention validated, "Check connection" as a real
//! request, unknown browser paths, tokens listed with their secrets.

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::*;
use crate::console::set_up;

#[tokio::test]
async fn retention_refuses_what_is_not_a_limit_naming_the_field() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    for (body, field) in [
        (json!({"maxAgeDays": "abc"}), "maxAgeDays"),
        (json!({"maxRows": 1.5}), "maxRows"),
        (json!({"maxMegabytes": -3}), "maxMegabytes"),
        (json!({"maxAgeDays": 0}), "maxAgeDays"),
        (json!({"keepDays": 30}), "keepDays"),
    ] {
        let r = c.call("PUT", "/admin/api/settings", Some(&body)).await;
        let e = r.assert_error(400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains(field), "{body}: {e}");
    }
    let r = c
        .call("PUT", "/admin/api/settings", Some(&json!([1])))
        .await;
    r.assert_error(400, Some("invalidValue"));
    let kept = c.get("/admin/api/settings").await;
    assert_eq!(kept["maxAgeDays"], 365, "nothing was saved: {kept}");
    let r = c
        .call(
            "PUT",
            "/admin/api/settings",
            Some(&json!({"maxAgeDays": 30, "maxRows": null})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/admin/api/settings").await["maxAgeDays"], 30);
}

/// A listener answering every request with `answer` (a whole HTTP/1.1 response); its port.
async fn answering(answer: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    port
}

async fn check_with_public_url(url: &str) -> Value {
    let url = url.to_string();
    let s = Server::start_in(TempDir::new().unwrap(), move |c| {
        c.with_public_url(Some(&url)).unwrap()
    })
    .await;
    let c = set_up(&s).await;
    let r = c.call("POST", "/admin/api/check-connection", None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[tokio::test]
async fn check_connection_makes_a_real_request_to_the_listen_address() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let shown = c.get("/admin/api/check-connection").await;
    let base = format!("http://{}/scim/v2", s.addr);
    assert_eq!(shown["baseUrl"], base.as_str());
    assert!(
        shown["warnings"][0].as_str().unwrap().contains("loopback"),
        "{shown}"
    );
    let r = c.call("POST", "/admin/api/check-connection", None).await;
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["status"], 401, "{v}");
    assert_eq!(
        v["checkedUrl"],
        format!("{base}/ServiceProviderConfig").as_str()
    );
    assert!(v["warnings"][0].as_str().unwrap().contains("loopback"));
    let message = v["message"].as_str().unwrap();
    assert!(!message.contains("another scimd"), "{message}");

    // The admin's click is not a client failing: a request with a mark this server did not
    // issue (or one already used) is an ordinary unauthenticated request, recorded and
    // counted; the check's own request before it is neither.
    let forged = s
        .raw(
            "GET",
            "/scim/v2/ServiceProviderConfig",
            &[("x-scimd-check", "00112233445566778899aabbccddeeff")],
            None,
        )
        .await;
    assert_eq!(forged.status, 401);
    assert!(forged.header("x-scimd-check").is_none());
    let mut failures = Vec::new();
    for _ in 0..100 {
        failures = c.get("/admin/api/audit?outcome=failure").await["entries"]
            .as_array()
            .unwrap()
            .clone();
        if !failures.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(failures.len(), 1, "only the forged request: {failures:?}");
    let o = c.get("/admin/api/overview").await;
    let counted: u64 = o["clientFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1, "only the forged request: {o}");
}

/// A check that reaches another scimd (its mark unknown there) says so.
#[tokio::test]
async fn check_connection_tells_another_scimd_from_this_one() {
    let other = Server::start().await;
    let v = check_with_public_url(&format!("http://{}", other.addr)).await;
    assert_eq!(v["ok"], true, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("another scimd"), "{message}");
}

#[tokio::test]
async fn check_connection_goes_through_the_public_url_and_names_a_wrong_answer() {
    let port = answering(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: 20\r\n\
         connection: close\r\n\r\n<h1>no such app</h1>",
    )
    .await;
    let v = check_with_public_url(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["failed"], "status");
    assert_eq!(v["status"], 404);
    assert_eq!(
        v["checkedUrl"],
        format!("http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig").as_str()
    );
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("404") && message.contains("no such app"),
        "{message}"
    );

    // Something else asking for credentials is not scimd either.
    let port = answering(
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 5\r\nconnection: close\r\n\r\nlogin",
    )
    .await;
    let v = check_with_public_url(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(
        (v["ok"].clone(), v["status"].clone()),
        (json!(false), json!(401)),
        "{v}"
    );
}

#[tokio::test]
async fn check_connection_names_tls_connect_and_dns_failures() {
    // https to a plain-HTTP listener: the handshake fails.
    let port = answering("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let v = check_with_public_url(&format!("https://127.0.0.1:{port}")).await;
    assert_eq!(
        (v["ok"].clone(), v["failed"].clone()),
        (json!(false), json!("tls")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("TLS"), "{v}");

    // Nothing listening.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let v = check_with_public_url(&format!("http://127.0.0.1:{closed}")).await;
    assert_eq!(v["failed"], "connect", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains(&closed.to_string()),
        "{v}"
    );

    // A name that cannot resolve (.invalid never does, RFC 6761).
    let v = check_with_public_url("https://scimd.invalid").await;
    assert_eq!(v["failed"], "dns", "{v}");
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");

    let v = check_with_public_url("http://scim.example.com").await;
    assert!(
        v["warnings"][0].as_str().unwrap().contains("https"),
        "plain http on a public name: {v}"
    );
}

#[tokio::test]
async fn unknown_browser_paths_get_the_console_with_404_machine_paths_json() {
    let s = Server::start().await;
    for path in ["/nope", "/admin", "/users-old/x", "/favicon.ico"] {
        let r = s.raw("GET", path, &[], None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
        assert!(
            String::from_utf8_lossy(&r.body).contains("/app.js"),
            "{path}"
        );
        assert!(r.header("content-security-policy").is_some(), "{path}");
    }
    for path in ["/users", "/tokens", "/", "/style.css"] {
        assert_eq!(s.raw("GET", path, &[], None).await.status, 200, "{path}");
    }
    for path in ["/scim/v1/Users", "/scim", "/api/v2/events", "/SCIM/v2/x"] {
        let r = s.raw("GET", path, &[], None).await;
        assert_eq!(r.status, 404, "{path}");
        r.assert_error(404, None);
    }
    let r = s.raw("POST", "/nope", &[], Some("{}")).await;
    assert!(
        !r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn tokens_are_listed_one_per_name_with_their_secrets_beneath() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let first = c
        .call("POST", "/admin/api/tokens", Some(&json!({"name": "idp"})))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = c
        .call(
            "POST",
            "/admin/api/tokens/idp/regenerate",
            Some(&json!({"overlap": "1h"})),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    c.call(
        "POST",
        "/admin/api/tokens",
        Some(&json!({"name": "old", "scope": "read"})),
    )
    .await;
    assert_eq!(
        c.call("DELETE", "/admin/api/tokens/old", None).await.status,
        200
    );
    // The old secret still works during the overlap.
    let used = s
        .raw(
            "GET",
            "/scim/v2/Users",
            &[("authorization", &format!("Bearer {first}"))],
            None,
        )
        .await;
    assert_eq!(used.status, 200);

    let listed = c.get("/admin/api/tokens").await;
    let text = listed.to_string();
    assert!(
        !text.contains(&first) && !text.contains(&second),
        "no secret is listed"
    );
    let tokens = listed["tokens"].as_array().unwrap();
    let idp: Vec<&Value> = tokens.iter().filter(|t| t["name"] == "idp").collect();
    assert_eq!(idp.len(), 1, "one row per token: {listed}");
    let idp = idp[0];
    assert!(idp["revoked"].is_null());
    let secrets = idp["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{idp}");
    // Newest first: the current secret, then the old one still working.
    assert_eq!(secrets[0]["starts"], &second[..14]);
    assert!(secrets[0]["ends"].is_null());
    assert_eq!(secrets[1]["starts"], &first[..14]);
    assert!(secrets[1]["ends"].as_str().unwrap() > listed["now"].as_str().unwrap());

    let old: Vec<&Value> = tokens.iter().filter(|t| t["name"] == "old").collect();
    assert_eq!(old.len(), 1);
    assert!(old[0]["revoked"].is_string(), "{}", old[0]);
    assert_eq!(old[0]["scope"], "read");
    let live_names: Vec<&str> = tokens
        .iter()
        .take_while(|t| t["revoked"].is_null())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        live_names.contains(&"idp") && !live_names.contains(&"old"),
        "live first: {listed}"
    );
}
