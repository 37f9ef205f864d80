//! Per-client limits against an attacker with many source addresses (loopback 127.1.x.y
//! standing in for them): full tables fail closed, IPv6 clients count per /64, neither one
//! address nor a few can take every connection, a client that never reads its answers is
//! disconnected, a guesser cannot lock the administrator out, and the
//! metrics token and console sign-in hold against what an anonymous client can send.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use scimd::service::admin;
use scimd::service::audit::Actor;
use scimd::service::tokens::{self, Scope};
use scimd::store::Store;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// Sends `request` (a whole HTTP/1.1 request) from `from`; returns the whole answer, read
/// until the server closes the connection.
async fn exchange(from: IpAddr, to: SocketAddr, request: &str) -> String {
    let mut conn = connect_from(from, to).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut reply))
        .await
        .expect("the server answers and closes")
        .expect("closed without a reset");
    String::from_utf8_lossy(&reply).into_owned()
}

fn status(reply: &str) -> u16 {
    reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {reply:?}"))
}

/// `GET /scim/v2/Users` with a wrong token, from `from`.
async fn bad_token(from: IpAddr, to: SocketAddr) -> u16 {
    status(
        &exchange(
            from,
            to,
            "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer scimd_nope\r\n\
             Connection: close\r\n\r\n",
        )
        .await,
    )
}

/// A JSON POST to the console API from `from`, with extra header lines.
async fn console_post(s: &Server, from: IpAddr, path: &str, body: &serde_json::Value) -> u16 {
    let mut headers = vec![("content-type", "application/json")];
    headers.push(("user-agent", "per-client-test"));
    s.raw_from(from, "POST", path, &headers, Some(&body.to_string()))
        .await
        .status
}

async fn login(s: &Server, from: IpAddr, username: &str, password: &str) -> u16 {
    let body = json!({"username": username, "password": password});
    console_post(s, from, "/admin/api/login", &body).await
}

/// A sign-in from `from` sending `cookie` (a `name=value` pair, or none): the status, and the
/// device cookie set by a successful one.
async fn login_with(
    s: &Server,
    from: IpAddr,
    password: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>) {
    let body = json!({"username": "admin", "password": password}).to_string();
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    let r = s
        .raw_from(from, "POST", "/admin/api/login", &headers, Some(&body))
        .await;
    let device = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("scimd_device="))
        .map(|v| v.split(';').next().unwrap().to_string());
    (r.status, device)
}

/// Wrong passwords for admin, 5 from each of `count` addresses from `first` on (each address's
/// own limit): more than the per-username limit of 30.
async fn guess_from_many(s: &Server, first: u32, count: u32) -> Vec<u16> {
    let mut seen = Vec::new();
    for a in first..first + count {
        for i in 0..5 {
            seen.push(login(s, loopback_client(a), "admin", &format!("guess {a} {i}")).await);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_failed_auth_table_refuses_new_clients_instead_of_letting_them_through() {
    let s = Server::start().await;
    let addr = s.addr;
    // 10,000 addresses fail once each: the table of failing clients is full.
    let statuses: Vec<u16> = futures_util::stream::iter(0..10_000)
        .map(|i| bad_token(loopback_client(100 + i), addr))
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    // A new client that keeps failing is never let through unthrottled.
    let fresh = loopback_client(20_000);
    let mut seen = Vec::new();
    for _ in 0..25 {
        seen.push(bad_token(fresh, addr).await);
    }
    assert!(seen.contains(&429), "{seen:?}");
    assert!(seen.iter().filter(|s| **s == 401).count() <= 20, "{seen:?}");
    // A valid token from that address is served as ever.
    let auth = format!("Bearer {}", s.token);
    let r = s
        .raw_from(
            fresh,
            "GET",
            "/scim/v2/Users",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn ipv6_clients_count_per_64_behind_a_proxy() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.trust_proxy = true;
        c
    })
    .await;
    let mut seen = Vec::new();
    for i in 0..25 {
        // Every request from another address of one /64.
        let from = format!("2001:db8:7:7::{:x}", i + 1);
        let headers = [
            ("authorization", "Bearer scimd_nope"),
            ("x-forwarded-for", from.as_str()),
        ];
        seen.push(s.raw("GET", "/scim/v2/Users", &headers, None).await.status);
    }
    assert_eq!(seen[..20], [401; 20], "{seen:?}");
    assert!(seen[20..].iter().all(|s| *s == 429), "{seen:?}");
    // Another /64 is another client.
    let headers = [
        ("authorization", "Bearer scimd_nope"),
        ("x-forwarded-for", "2001:db8:7:8::1"),
    ];
    assert_eq!(
        s.raw("GET", "/scim/v2/Users", &headers, None).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_attempts_cannot_switch_off_the_sign_in_limits() {
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let setup = json!({"code": "guess", "username": "x", "password": "long enough password"});
    // Setup is done, so setup attempts are refused (403) and never counted: not even one
    // address sending many gets 429, and 10,000 addresses fill nothing.
    for _ in 0..10 {
        assert_eq!(
            console_post(&s, loopback_client(1), "/admin/api/setup", &setup).await,
            403
        );
    }
    let body = setup.to_string();
    let request = format!(
        "POST /admin/api/setup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let statuses: Vec<u16> = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let request = &request;
            async move { status(&exchange(loopback_client(100 + i), s.addr, request).await) }
        })
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 403));
    // Wrong passwords for admin are still throttled.
    let guesser = loopback_client(30_000);
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(login(&s, guesser, "admin", &format!("wrong guess {i}")).await);
    }
    assert_eq!(seen, [401, 401, 401, 401, 401, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_cannot_lock_the_administrator_out() {
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let (guesser, owner, elsewhere) = (loopback_client(1), loopback_client(2), loopback_client(3));
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(login(&s, guesser, "admin", &format!("wrong guess {i}")).await);
    }
    assert_eq!(
        seen,
        [401, 401, 401, 401, 401, 429],
        "per address and username"
    );
    // The owner, from another address, signs in.
    let (status, device) = login_with(&s, owner, PASSWORD, None).await;
    assert_eq!(status, 200);
    let device = device.expect("a device cookie");
    // Guessers spread over many addresses lock the username, for clients without a device
    // cookie of it; the owner's device still signs in.
    let mut seen = Vec::new();
    for a in 10..17 {
        for i in 0..5 {
            seen.push(login(&s, loopback_client(a), "ADMIN", &format!("guess {a} {i}")).await);
        }
    }
    assert!(seen.contains(&429), "{seen:?}");
    assert!(seen.iter().filter(|s| **s == 401).count() <= 30, "{seen:?}");
    assert_eq!(login(&s, elsewhere, "admin", PASSWORD).await, 429);
    assert_eq!(login_with(&s, owner, PASSWORD, Some(&device)).await.0, 200);
    // `scimd admin set-password`, another process, ends the lockout.
    let db = s.db().to_str().unwrap().to_string();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["admin", "set-password", "--username", "admin", "--db", &db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = cli.stdin.take().unwrap();
        writeln!(stdin, "a brand new password").unwrap();
    }
    assert!(cli.wait().unwrap().success());
    assert_eq!(
        login(&s, elsewhere, "admin", "a brand new password").await,
        200
    );
    // One address trying many usernames is limited whatever the names.
    let sprayer = loopback_client(4);
    let mut seen = Vec::new();
    for i in 0..21 {
        seen.push(login(&s, sprayer, &format!("user{i}"), "some password!").await);
    }
    assert_eq!(seen[..20], [401; 20], "{seen:?}");
    assert_eq!(seen[20], 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_guesses_does_not_queue_the_owner_out() {
    let s = std::sync::Arc::new(Server::start().await);
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let owner = loopback_client(2);
    let (status, device) = login_with(&s, owner, PASSWORD, None).await;
    assert_eq!(status, 200);
    let device = device.unwrap();
    // 40 guesses at once from 4 addresses, each a password check (names without an account
    // are checked too, so timing does not tell them apart).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut flood = Vec::new();
    for i in 0..40 {
        let (s, done) = (s.clone(), done.clone());
        flood.push(tokio::spawn(async move {
            let status = login(&s, loopback_client(10 + i % 4), &format!("n{i}"), "guess!").await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            status
        }));
    }
    // Once the guesses are being answered (the queue is full)…
    while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = done.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(login_with(&s, owner, PASSWORD, Some(&device)).await.0, 200);
    let after = done.load(std::sync::atomic::Ordering::SeqCst);
    // …the owner did not wait for the queue to drain: fewer than half of the guesses still
    // waiting were answered first (behind the queue, all of them would be), however fast
    // or loaded the machine.
    assert!(
        after - before <= (40 - before) / 2,
        "{before} then {after} of 40 guesses answered first"
    );
    for t in flood {
        assert_eq!(t.await.unwrap(), 401);
    }
}

/// Review finding: the per-address limits applied to device holders too, so anyone sharing
/// the owner's address (a NAT, an office network, a /64) could lock the owner's browser out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_behind_the_owner_s_address_cannot_lock_the_owner_s_browser_out() {
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let office = loopback_client(2);
    let (status, device) = login_with(&s, office, PASSWORD, None).await;
    assert_eq!(status, 200);
    let device = device.expect("a device cookie");
    // Someone else in the office guesses until the address is locked.
    let mut seen = Vec::new();
    for i in 0..25 {
        seen.push(login(&s, office, &format!("user{i}"), "a guess!").await);
    }
    assert_eq!(seen[20..], [429; 5], "{seen:?}");
    assert_eq!(login_with(&s, office, PASSWORD, None).await.0, 429);
    // The owner's browser, from that same address, still signs in.
    assert_eq!(login_with(&s, office, PASSWORD, Some(&device)).await.0, 200);
}

/// Review finding 3: the owner was known-good only by exact address and in memory, so after a
/// restart, or from a new address, 35 guesses from 7 addresses locked them out; and right after
/// `set-password` 30 more guesses re-locked the account at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_s_device_signs_in_after_a_restart_from_any_address_and_set_password_recovers() {
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let owner = loopback_client(2);
    let (status, device) = login_with(&s, owner, PASSWORD, None).await;
    assert_eq!(status, 200);
    let device = device.expect("a device cookie");
    let s = Server::start_in(s.stop().await, |c| c).await;
    let seen = guess_from_many(&s, 10, 7).await;
    assert!(seen.contains(&429), "{seen:?}");
    // Without the device cookie the username is locked, whatever the address…
    assert_eq!(login_with(&s, owner, PASSWORD, None).await.0, 429);
    // …with it, the owner signs in from the old address and a new one, after the restart.
    assert_eq!(login_with(&s, owner, PASSWORD, Some(&device)).await.0, 200);
    let (status, again) = login_with(&s, loopback_client(3), PASSWORD, Some(&device)).await;
    assert_eq!(status, 200);
    assert_eq!(
        again.as_deref(),
        Some(device.as_str()),
        "the device is kept"
    );
    // A device that fails too often itself stops passing the username's limit.
    let thief = loopback_client(4);
    for i in 0..5 {
        let (status, _) = login_with(&s, thief, &format!("stolen {i}"), Some(&device)).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        login_with(&s, loopback_client(5), PASSWORD, Some(&device))
            .await
            .0,
        429
    );
    // Recovery without a device: `set-password` (another process) opens a window in which
    // guessers cannot re-lock the username before the owner's first sign-in.
    let db = s.db().to_str().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["admin", "set-password", "--username", "admin", "--db", &db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut cli| {
            use std::io::Write;
            writeln!(cli.stdin.take().unwrap(), "a brand new password")?;
            cli.wait()
        })
        .unwrap();
    assert!(out.success());
    let seen = guess_from_many(&s, 20, 7).await;
    assert!(seen.iter().all(|s| *s == 401), "{seen:?}");
    let (status, fresh) = login_with(&s, loopback_client(6), "a brand new password", None).await;
    assert_eq!(status, 200);
    // The window ends with that sign-in: the username is limited again for other clients,
    // while the new device passes.
    assert_eq!(
        login(&s, loopback_client(7), "admin", "one more guess").await,
        429
    );
    let fresh = fresh.unwrap();
    assert_eq!(
        login_with(&s, loopback_client(8), "a brand new password", Some(&fresh))
            .await
            .0,
        200
    );
    // set-password forgot the old device.
    assert_eq!(
        login_with(&s, owner, "a brand new password", Some(&device))
            .await
            .0,
        429
    );
}

/// Review finding 5: sign-in bodies up to the general 1 MiB limit were parsed whole and held
/// while waiting to hash.
#[tokio::test]
async fn sign_in_and_setup_bodies_over_4_kib_are_refused_before_they_are_read() {
    let s = Server::start().await;
    // Just under the general 1 MiB limit.
    let big = format!("[{}0]", "0,".repeat(512 * 1024 - 2));
    for path in ["/admin/api/login", "/admin/api/setup"] {
        let r = s
            .raw(
                "POST",
                path,
                &[("content-type", "application/json")],
                Some(&big),
            )
            .await;
        assert_eq!(r.status, 413, "{path}");
    }
    // Without a length up front, reading stops at the limit.
    let mut conn = connect_from(loopback_client(1), s.addr).await.unwrap();
    let head = "POST /admin/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 5000, "x".repeat(5000));
    let _ = conn.write_all(chunk.as_bytes()).await;
    let mut reply = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut reply))
        .await
        .expect("answered without the rest of the body")
        .unwrap();
    assert_eq!(&reply[9..12], b"413");
    // A sign-in of ordinary size is read as before.
    let body = json!({"username": "admin", "password": "x".repeat(1000)});
    assert_eq!(
        console_post(&s, loopback_client(2), "/admin/api/login", &body).await,
        401
    );
}

#[test]
fn one_address_cannot_take_every_connection() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("conns.db");
    // 16 connections in all; once 8 are open, 2 per client address.
    let (child, addr, lines) = spawn_server(db.to_str().unwrap(), &["--max-connections", "16"]);
    let _child = KillOnDrop(child);
    let log = log_channel(lines);
    let addr: SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // One address opens 40 connections and sends nothing on them.
        let hog = loopback_client(1);
        let mut held = Vec::new();
        for _ in 0..40 {
            held.push(connect_from(hog, addr).await.unwrap());
        }
        // Everyone else is served, /healthz included.
        for i in 0..20 {
            let reply = exchange(
                loopback_client(100 + i),
                addr,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            assert_eq!(status(&reply), 200, "{reply}");
        }
        // A request on one connection too many gets a readable 503, and a clean close.
        let reply = exchange(
            hog,
            addr,
            "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(status(&reply), 503, "{reply}");
        assert!(reply.contains("Retry-After: 1"), "{reply}");
        assert!(reply.contains("from this client address"), "{reply}");
        drop(held);
    });
    // Dozens of refusals, within a second or two: one log line (at most one per 10 s, each
    // counting the refusals since the last; a very slow run may see a second).
    let line = wait_for(&log, "connections refused");
    assert!(line.contains("refused=1"), "{line}");
    let more: Vec<String> = std::iter::from_fn(|| log.recv_timeout(Duration::from_secs(2)).ok())
        .filter(|l| l.contains("refused"))
        .collect();
    assert!(more.len() <= 1, "{more:?}");
}

/// Connects `n` times from `from` (the server takes them in the order they were made).
async fn hold(from: IpAddr, to: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(connect_from(from, to).await.unwrap());
    }
    held
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// Whether `conn` is open and served: a request on it is answered 200.
async fn served(conn: &mut tokio::net::TcpStream) -> bool {
    if conn
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut head)).await;
    matches!(read, Ok(Ok(_))) && &head == b"HTTP/1.1 200"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_addresses_holding_every_connection_make_room_for_others() {
    let dir = tempfile::TempDir::new().unwrap();
    // 16 in all; once 8 are open, 2 per address.
    let s = Server::start_in(dir, |mut c| {
        c.max_connections = 16;
        c
    })
    .await;
    // One address takes 8 (half), four more 2 each, all idle: every connection is taken.
    let mut hog = hold(loopback_client(1), s.addr, 8).await;
    let mut others = Vec::new();
    for i in 2..=5 {
        others.extend(hold(loopback_client(i), s.addr, 2).await);
    }
    // A sixth address is served at once.
    let reply = exchange(loopback_client(6), s.addr, HEALTH).await;
    assert_eq!(status(&reply), 200, "{reply}");
    // Eleven more addresses each keep a connection: each time, the address holding the most
    // (over its fair share) gives way, until all 16 hold one each.
    let mut newcomers = Vec::new();
    for i in 6..=16 {
        newcomers.extend(hold(loopback_client(i), s.addr, 1).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, conn) in newcomers.iter_mut().enumerate() {
        assert!(served(conn).await, "newcomer {i}");
    }
    // The hog kept one; the others it held were closed, with nothing sent on them.
    let mut open = 0;
    for conn in &mut hog {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await;
        if read.is_err() {
            open += 1;
        }
    }
    assert_eq!(open, 1, "connections the hog still holds");
    // Now every address holds its fair share: a seventeenth is refused (the total holds).
    let reply = exchange(loopback_client(17), s.addr, HEALTH).await;
    assert_eq!(status(&reply), 503, "{reply}");
    assert!(
        reply.contains("too many connections: retry later"),
        "{reply}"
    );
    drop((hog, others));
}

/// Sends an authenticated request on `conn` (kept alive) and reads the whole answer;
/// whether it was a 200.
async fn authed(conn: &mut tokio::net::TcpStream, token: &str) -> bool {
    let request = format!(
        "GET /scim/v2/Users?count=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    answered(conn, &request, "http/1.1 200").await
}

/// Whether `request`, sent on `conn`, is answered with a status line starting `status`.
async fn answered(conn: &mut tokio::net::TcpStream, request: &str, status: &str) -> bool {
    if conn.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut byte)).await;
        match read {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .split("content-length:")
        .nth(1)
        .and_then(|v| v.split("\r\n").next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut body)).await;
    matches!(read, Ok(Ok(_))) && head.starts_with(status)
}

/// Review finding: newcomers from fresh addresses at the cap made the heaviest holder give
/// way, and the identity provider, holding several connections, was that holder: an
/// attacker with many addresses could strip it of every connection. A connection that has
/// carried a valid token is never closed for a newcomer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomers_at_the_cap_never_take_the_identity_provider_s_connections() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.max_connections = 16;
        c
    })
    .await;
    let idp_address = loopback_client(1);
    let mut idp = hold(idp_address, s.addr, 8).await;
    for conn in &mut idp {
        assert!(authed(conn, &s.token).await);
    }
    let mut others = Vec::new();
    for i in 2..=9 {
        others.extend(hold(loopback_client(i), s.addr, 1).await);
    }
    // Eight fresh addresses at the cap: none may take one of the provider's connections.
    for i in 10..=17 {
        let reply = exchange(loopback_client(i), s.addr, HEALTH).await;
        assert_eq!(status(&reply), 503, "{reply}");
    }
    for (i, conn) in idp.iter_mut().enumerate() {
        assert!(
            authed(conn, &s.token).await,
            "the provider's connection {i}"
        );
    }
    drop(others);
}

/// A read token may leak (it is handed to scripts): its holder, from eight addresses at the
/// cap, each connection proven with the read token, cannot keep the provider's write token out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_token_holders_at_the_cap_never_keep_the_identity_provider_out() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.max_connections = 16;
        c
    })
    .await;
    let reader = {
        let store = Store::open(&s.db()).unwrap();
        tokens::create_as(&store, "leaked", Scope::Read, &Actor::cli()).unwrap()
    };
    // Every slot: 2 per address (the share once half are open), one served a read, the other
    // refused a write (403) with the read token: neither may make it never-evicted.
    let mut held = Vec::new();
    for i in 2..=9 {
        let mut conns = hold(loopback_client(i), s.addr, 2).await;
        let refused = format!(
            "DELETE /scim/v2/Users/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {reader}\r\n\r\n"
        );
        assert!(authed(&mut conns[0], &reader).await);
        assert!(answered(&mut conns[1], &refused, "http/1.1 403").await);
        held.extend(conns);
    }
    for i in 0..3 {
        let request = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            s.token
        );
        let reply = exchange(loopback_client(50), s.addr, &request).await;
        assert_ne!(status(&reply), 503, "the provider's request {i}: {reply}");
        // Its connection closed and counted out before the next.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_disconnected() {
    let dir = tempfile::TempDir::new().unwrap();
    let deadline = Duration::from_secs(1);
    let s = Server::start_in(dir, |mut c| {
        c.write_timeout = deadline;
        c
    })
    .await;
    let conn = connect_from(loopback_client(1), s.addr).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    // Pipelines requests for a 28 KB asset without end and reads none of the answers.
    let batch = "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50);
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < 100_000 && tx.write_all(batch.as_bytes()).await.is_ok() {
            sent += 50;
        }
    });
    tokio::time::sleep(deadline + Duration::from_secs(2)).await;
    // By now the server has given up on it: what was sent before ends, and then the stream.
    let mut buf = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(3), async {
        while matches!(rx.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    assert!(drained.is_ok(), "still served after the write deadline");
    writer.abort();
    // Others are served as ever.
    assert_eq!(
        status(&exchange(loopback_client(2), s.addr, HEALTH).await),
        200
    );
}

/// Behind a proxy every connection comes from the proxy: no per-address share applies, and
/// a newcomer replaces the connection idle longest; with none idle, the total holds.
#[tokio::test]
async fn behind_a_proxy_idle_connections_make_room_and_the_total_holds() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.trust_proxy = true;
        c.max_connections = 8;
        c
    })
    .await;
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let idle = hold(proxy, s.addr, 8).await;
    let reply = exchange(proxy, s.addr, HEALTH).await;
    assert_eq!(status(&reply), 200, "an idle one makes room: {reply}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Eight requests in flight (their bodies still coming): nothing to replace.
    let mut busy = hold(proxy, s.addr, 8).await;
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{",
        s.token
    );
    for conn in &mut busy {
        conn.write_all(head.as_bytes()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = exchange(proxy, s.addr, HEALTH).await;
    assert_eq!(status(&reply), 503, "the total still holds: {reply}");
    assert!(
        reply.contains("too many connections: retry later"),
        "{reply}"
    );
}

#[tokio::test]
async fn metrics_token_failures_are_throttled_and_audited() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |mut c| {
        c.metrics_token = Some("m3trics-secret".into());
        c
    })
    .await;
    let from = loopback_client(5);
    let mut seen = Vec::new();
    for _ in 0..25 {
        let headers = [("authorization", "Bearer not-it")];
        seen.push(
            s.raw_from(from, "GET", "/metrics", &headers, None)
                .await
                .status,
        );
    }
    assert_eq!(seen[..20], [401; 20], "{seen:?}");
    assert!(seen[20..].iter().all(|s| *s == 429), "{seen:?}");
    let store = Store::open(&s.db()).unwrap();
    let q = scimd::store::audit::Query {
        action: Some("GET /metrics".into()),
        limit: 100,
        ..Default::default()
    };
    let mut entries = Vec::new();
    for _ in 0..50 {
        entries = store
            .read_sync(|c| scimd::store::audit::list(c, &q))
            .unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!entries.is_empty(), "failed metrics requests are audited");
    assert_eq!(entries[0].outcome, "failure");
    assert_eq!(entries[0].client, from.to_string());
}

/// A sign-in request as a browser sends it, with the given `Host`, `Origin` and content type.
fn sign_in_request(host: &str, origin: &str, ctype: &str) -> String {
    let body = json!({"username": "admin", "password": PASSWORD}).to_string();
    format!(
        "POST /admin/api/login HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn sign_in_takes_exactly_json_from_scimd_s_own_origin() {
    let s = Server::start().await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let port = s.addr.port();
    let me = s.addr.to_string();
    let local = "127.0.0.1".parse().unwrap();
    let send = |host: String, origin: String, ctype: &'static str| {
        let addr = s.addr;
        async move { status(&exchange(local, addr, &sign_in_request(&host, &origin, ctype)).await) }
    };
    let json = "application/json";
    // Not JSON, though it starts like it.
    let own = format!("http://{me}");
    assert_eq!(
        send(me.clone(), own.clone(), "application/jsonx").await,
        403
    );
    assert_eq!(
        send(me.clone(), own.clone(), "application/json-patch").await,
        403
    );
    // DNS rebinding: a name the attacker points at the console, in Host and Origin alike.
    let evil = format!("evil.example:{port}");
    assert_eq!(
        send(evil.clone(), format!("http://{evil}"), json).await,
        403
    );
    // Wrong port or scheme.
    assert_eq!(
        send(me.clone(), "http://127.0.0.1:1".into(), json).await,
        403
    );
    assert_eq!(send(me.clone(), format!("https://{me}"), json).await, 403);
    // The address reached and loopback names are scimd's own.
    assert_eq!(
        send(me.clone(), own, "application/json; charset=utf-8").await,
        200
    );
    let localhost = format!("localhost:{port}");
    assert_eq!(
        send(localhost.clone(), format!("http://{localhost}"), json).await,
        200
    );
    assert_eq!(
        send(me.clone(), format!("http://[::1]:{port}"), json).await,
        200
    );
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_over_https() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |c| {
        c.with_public_url(Some("https://scim.example.com")).unwrap()
    })
    .await;
    admin::set_password(&Store::open(&s.db()).unwrap(), "admin", PASSWORD).unwrap();
    let body = json!({"username": "admin", "password": PASSWORD}).to_string();
    let r = s
        .raw(
            "POST",
            "/admin/api/login",
            &[
                ("content-type", "application/json"),
                ("origin", "https://scim.example.com"),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200);
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.starts_with("__Host-scimd_session="), "{set}");
    for attr in ["; Secure", "; Path=/", "; HttpOnly", "; SameSite=Strict"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    // The device cookie is flagged the same way.
    let device = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-scimd_device="))
        .expect("a device cookie")
        .to_string();
    for attr in ["; Secure", "; Path=/", "; HttpOnly", "; SameSite=Strict"] {
        assert!(device.contains(attr), "{device}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let session = |cookie: String| {
        let s = &s;
        async move {
            s.raw("GET", "/admin/api/session", &[("cookie", &cookie)], None)
                .await
                .status
        }
    };
    assert_eq!(session(cookie.clone()).await, 200);
    // Only the prefixed name opens an HTTPS console.
    let plain = cookie.trim_start_matches("__Host-").to_string();
    assert_eq!(session(plain).await, 401);

    // Over plain HTTP (a LAN console) the cookie cannot be `Secure`, so it has no prefix.
    let lan = Server::start().await;
    admin::set_password(&Store::open(&lan.db()).unwrap(), "admin", PASSWORD).unwrap();
    let r = lan
        .raw(
            "POST",
            "/admin/api/login",
            &[("content-type", "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("set-cookie")
            .unwrap()
            .starts_with("scimd_session=")
    );
}
