//! Limits against bad clients, one test each: header size and count, nesting depth of JSON,
//! operations per PATCH, concurrent connections, and the idle/slow header timeout. (Body size
//! and body timeout are in `errors.rs`; filter length and depth in `filters.rs`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use futures_util::StreamExt;

use crate::common::*;

/// Sends raw bytes on a new connection; returns what came back until the server closed it or
/// went quiet for `wait`.
fn raw(addr: std::net::SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(wait)).unwrap();
    let _ = conn.write_all(bytes);
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn oversized_and_too_many_headers_are_431() {
    let s = Server::start().await;
    let addr = s.addr;
    let big = tokio::task::spawn_blocking(move || {
        let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 100_000));
        req.extend(b"\r\n\r\n");
        raw(addr, &req, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");
    let many = tokio::task::spawn_blocking(move || {
        let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..200 {
            req.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        req.extend(b"\r\n");
        raw(addr, &req, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(many.starts_with("HTTP/1.1 431"), "{many}");
}

/// Connections closed for breaking a limit leave a log line saying why.
#[test]
fn closed_connections_are_logged() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("log.db");
    let (child, addr, lines) = spawn_server(db.to_str().unwrap(), &[]);
    let _child = KillOnDrop(child);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100_000));
    big.extend(b"\r\n\r\n");
    assert!(raw(addr, &big, Duration::from_secs(5)).starts_with("HTTP/1.1 431"));
    let garbled = raw(addr, b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(5));
    assert!(garbled.starts_with("HTTP/1.1 400"), "{garbled}");
    // Each line is written just after its answer, in either order: wait for both.
    let log = log_channel(lines);
    let mut missing = vec![
        "over the limit: refused",
        "malformed or unsupported request",
    ];
    while !missing.is_empty() {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("no log line with {missing:?}: {e}"));
        missing.retain(|needle| !line.contains(needle));
    }
}

/// Connections closed for breaking a limit, from many addresses at once, cost a bounded
/// number of log lines (20 per 10 s), not one each: the rest are counted into a later line.
#[tokio::test]
async fn a_flood_of_bad_connections_writes_a_bounded_log() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("flood.db");
    let (child, addr, lines) = spawn_server(db.to_str().unwrap(), &[]);
    let _child = KillOnDrop(child);
    let log = log_channel(lines);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    for n in 0..60 {
        let mut conn = connect_from(loopback_client(n), addr).await.unwrap();
        conn.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
        let mut reply = Vec::new();
        let _ = conn.read_to_end(&mut reply).await;
        assert!(reply.starts_with(b"HTTP/1.1 400"), "{n}");
    }
    // A request logged after the flood marks the end of its lines.
    let _ = http_once(
        &addr.to_string(),
        "GET /healthz HTTP/1.1",
        "",
        Duration::from_secs(5),
    );
    let mut closed_lines = 0;
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("the /healthz line");
        closed_lines += usize::from(line.contains("malformed or unsupported request"));
        if line.contains("/healthz") && line.contains("status=200") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    closed_lines += log
        .try_iter()
        .filter(|l| l.contains("malformed or unsupported request"))
        .count();
    assert_eq!(closed_lines, 20, "60 bad connections, 20 lines");
}

/// Request lines of failures without a token (what an anonymous flood is made of) are
/// bounded too: 100 per 10 s, the rest counted into the next line; a token's requests are
/// always logged.
#[tokio::test]
async fn a_flood_of_anonymous_failures_writes_a_bounded_request_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("anon.db");
    let (child, addr, lines) = spawn_server(db.to_str().unwrap(), &[]);
    let _child = KillOnDrop(child);
    let log = log_channel(lines);
    let token = cli_token(db.to_str().unwrap(), "idp");
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let get = |from: std::net::IpAddr, auth: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = connect_from(from, addr).await.unwrap();
        let head =
            format!("GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        let _ = conn.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply[..12.min(reply.len())]).into_owned()
    };
    futures_util::stream::iter(0..150u32)
        .for_each_concurrent(16, |n| async move {
            assert_eq!(get(loopback_client(n), String::new()).await, "HTTP/1.1 401");
        })
        .await;
    // A request with the token marks the end of the flood's lines, and is logged itself.
    let auth = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(get(loopback_client(0), auth).await, "HTTP/1.1 200");
    let mut anonymous = 0;
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("the token's line");
        anonymous += usize::from(line.contains("status=401"));
        if line.contains("status=200") && line.contains("idp") {
            break;
        }
    }
    assert_eq!(anonymous, 100, "150 rejected requests, 100 lines");
}

#[tokio::test]
async fn deeply_nested_json_is_invalid_syntax() {
    let s = Server::start().await;
    let body = format!("{}{}", "[".repeat(500), "]".repeat(500));
    s.call("POST", "/scim/v2/Users", Some(&body))
        .await
        .assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn a_patch_carries_at_most_1000_operations() {
    let s = Server::start().await;
    let id = id_of(&s.create_user(&json!({"userName": "ana"})).await);
    let ops: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "replace", "path": "title", "value": "x"}))
        .collect();
    let body = s
        .patch(&format!("/scim/v2/Users/{id}"), &Value::Array(ops))
        .await
        .assert_error(400, Some("invalidValue"));
    assert!(body["detail"].as_str().unwrap().contains("1000"));
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.max_connections = 2;
        c
    })
    .await;
    let addr = s.addr;
    let reply = tokio::task::spawn_blocking(move || {
        let _a = TcpStream::connect(addr).unwrap();
        let _b = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        raw(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            Duration::from_secs(5),
        )
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    // Once those two are gone, connections are served again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.header_read_timeout = Duration::from_millis(500);
        c
    })
    .await;
    let addr = s.addr;
    tokio::task::spawn_blocking(move || {
        // Headers that never end (slowloris): closed after the timeout.
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = conn.read_to_end(&mut buf);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "closed by the server"
        );
        // A kept-alive connection that then stays silent is closed too.
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 12];
        conn.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "idle connection closed"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_client_that_keeps_failing_authentication_is_slowed_but_valid_tokens_pass() {
    let s = Server::start().await;
    let bad = [("authorization", "Bearer scimd_0123456789abcdef_wrong")];
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(s.raw("GET", "/scim/v2/Users", &bad, None).await.status);
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = s.raw("GET", "/scim/v2/Users", &bad, None).await;
    assert!(r.header("retry-after").is_some());
    // The same address with a valid token is served as ever.
    assert_eq!(s.get("/scim/v2/Users").await.status, 200);
    // The limit is the failing client's own: another address still gets 401, not 429.
    let other = loopback_client(7);
    let r = s.raw_from(other, "GET", "/scim/v2/Users", &bad, None).await;
    assert_eq!(r.status, 401);
}

/// `X-Forwarded-*` is honoured only with `--trust-proxy`: then the proxy's view of the client
/// and of the public origin is used for locations, the audit log and throttling.
async fn forwarded(s: &Server) -> Resp {
    let auth = format!("Bearer {}", s.token);
    let body = json!({"userName": "ana"}).to_string();
    s.raw(
        "POST",
        "/scim/v2/Users",
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "scim.example.com"),
        ],
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn forwarded_headers_count_only_behind_a_trusted_proxy() {
    let audit_client = |s: &Server| {
        let store = scimd::store::Store::open(&s.db()).unwrap();
        let q = scimd::store::audit::Query {
            action: Some("user.create".into()),
            limit: 1,
            ..Default::default()
        };
        store
            .read_sync(|c| scimd::store::audit::list(c, &q))
            .unwrap()[0]
            .client
            .clone()
    };

    let plain = Server::start().await;
    let r = forwarded(&plain).await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with(&format!("http://{}/", plain.addr))
    );
    assert_eq!(audit_client(&plain), "127.0.0.1");

    let dir = tempfile::TempDir::new().unwrap();
    let proxied = Server::start_in(dir, |mut c| {
        c.trust_proxy = true;
        c
    })
    .await;
    let r = forwarded(&proxied).await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://scim.example.com/scim/v2/Users/"),
        "{:?}",
        r.header("location")
    );
    assert_eq!(audit_client(&proxied), "203.0.113.9");

    // Proxies that append a port, and a last entry that is no address: the last entry alone
    // decides (else the peer), never an earlier one the client wrote.
    let auth = format!("Bearer {}", proxied.token);
    for (n, (chain, expected)) in [
        ("6.6.6.6, 203.0.113.5:4711", "203.0.113.5"),
        ("6.6.6.6, [2001:db8::5]:443", "2001:db8::5"),
        ("6.6.6.6, unknown", "127.0.0.1"),
        ("6.6.6.6, 7.7.7.7:notaport", "127.0.0.1"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"userName": format!("proxied{n}")}).to_string();
        let r = proxied
            .raw(
                "POST",
                "/scim/v2/Users",
                &[("authorization", &auth), ("x-forwarded-for", chain)],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(audit_client(&proxied), expected, "{chain}");
    }
}

/// `/metrics` exists only with a metrics token, and answers only to it.
#[tokio::test]
async fn metrics_need_their_own_token() {
    let plain = Server::start().await;
    assert_eq!(plain.raw("GET", "/metrics", &[], None).await.status, 404);

    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.metrics_token = Some("m3trics-secret".into());
        c
    })
    .await;
    s.create_user(&json!({"userName": "ana"})).await;
    assert_eq!(s.raw("GET", "/metrics", &[], None).await.status, 401);
    let scim = format!("Bearer {}", s.token);
    assert_eq!(
        s.raw("GET", "/metrics", &[("authorization", &scim)], None)
            .await
            .status,
        401,
        "a SCIM token is not a metrics token"
    );
    let r = s
        .raw(
            "GET",
            "/metrics",
            &[("authorization", "Bearer m3trics-secret")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    for line in [
        "scimd_users 1",
        "scimd_groups 0",
        "scimd_tokens_live 1",
        r#"scimd_http_requests_total{method="POST",route="/scim/v2/Users",status="201"} 1"#,
        r#"scimd_http_request_duration_seconds_count{route="/scim/v2/Users"} 1"#,
        "scimd_http_requests_in_flight 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(text.contains("scimd_database_bytes "));
    assert!(text.contains("scimd_audit_entries "));
    // Commit batch sizes: at least the create's commit, and no commit without a write.
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name));
        let line = line.unwrap_or_else(|| panic!("missing {name} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let commits = value("scimd_commit_batch_size_count ");
    assert!(commits >= 1, "{text}");
    assert!(value("scimd_commit_batch_size_sum ") >= commits, "{text}");
    assert_eq!(
        value(r#"scimd_commit_batch_size_bucket{le="+Inf"} "#),
        commits
    );
    assert!(value(r#"scimd_commit_batch_size_bucket{le="1"} "#) <= commits);
}
