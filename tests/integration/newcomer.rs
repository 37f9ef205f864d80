//! A newcomer's first ten minutes: the README's quick start parses as written, `--listen`
//! takes a name, setup links are ones a browser can open, the console signs in from loopback
//! beside `--public-url`, a SCIM 401 says what was wrong, and a person's mistakes with the
//! database (a second server, a missing directory, a read-only file or directory) are named
//! with their fix, never "internal error".

use std::path::Path;
use std::process::{Command, Output, Stdio};

use scimd::service::{admin, tokens};
use scimd::store::Store;
use serde_json::json;

use crate::common::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `scimd` with `args` and `env`, nothing of the caller's SCIMD_ environment.
fn scimd_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimd"));
    for var in [
        "SCIMD_DB",
        "SCIMD_LISTEN",
        "SCIMD_PUBLIC_URL",
        "SCIMD_TLS_CERT",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

#[tokio::test]
async fn a_scim_401_says_what_was_wrong_and_no_more() {
    let s = Server::start().await;
    let store = Store::open_existing(&s.db()).unwrap();
    let revoked = tokens::create(&store, "old-idp").unwrap();
    tokens::revoke(&store, "old-idp").unwrap();
    // The real token's lookup part with another secret.
    let (lookup, _) = s.token.rsplit_once('_').unwrap();
    let near_miss = format!("Bearer {lookup}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let bearer = |t: &str| format!("Bearer {t}");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "the Authorization header is missing"),
        (
            vec![("authorization", "Basic cm9vdDpwdw==".into())],
            "is not a bearer token",
        ),
        (
            vec![("authorization", s.token.clone())],
            "is not a bearer token",
        ),
        (
            vec![("authorization", "Bearer".into())],
            "is not a bearer token",
        ),
        (
            vec![("authorization", bearer("scimd_nope"))],
            "unknown or revoked",
        ),
        (
            vec![("authorization", bearer(&revoked))],
            "unknown or revoked",
        ),
        (vec![("authorization", near_miss)], "unknown or revoked"),
    ];
    let mut not_live = Vec::new();
    for (headers, says) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = s.raw("GET", "/scim/v2/Users", &headers, None).await;
        let body = r.assert_error(401, None);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"scimd\""),
            "{headers:?}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{headers:?}: {detail}");
        assert!(
            !detail.contains("old-idp"),
            "never a token's name: {detail}"
        );
        if *says == "unknown or revoked" {
            not_live.push(body);
        }
    }
    // Unknown, revoked and a real token's near miss: one answer, word for word.
    assert!(not_live.windows(2).all(|w| w[0] == w[1]), "{not_live:?}");
}

#[test]
fn a_second_server_on_the_database_is_told_to_stop_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    let (server, addr, _lines) = spawn_server(db, &[]);
    let _server = KillOnDrop(server);
    let o = scimd_env(&["serve", "--listen", "127.0.0.1:0", "--db", db], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("another scimd is serving"), "{err}");
    assert!(
        err.contains("stop that one first") && err.contains("--db"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    // And on its port: named, with the fix.
    let port = addr.rsplit(':').next().unwrap();
    let other = dir.path().join("other.db");
    let listen = format!("127.0.0.1:{port}");
    let o = scimd_env(
        &[
            "serve",
            "--listen",
            &listen,
            "--db",
            other.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("cannot listen on {listen}"))
            && err.contains("another program (perhaps another scimd)")
            && err.contains("choose another port with --listen"),
        "{err}"
    );
}

#[test]
fn a_missing_directory_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nodir");
    let db = missing.join("scimd.db");
    let db = db.to_str().unwrap();
    let backup = dir.path().join("b.db");
    let source = dir.path().join("scimd.db");
    new_db(source.to_str().unwrap());
    assert!(
        scimd_env(
            &[
                "backup",
                backup.to_str().unwrap(),
                "--db",
                source.to_str().unwrap()
            ],
            &[]
        )
        .status
        .success()
    );
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--db", db],
        vec!["restore", backup.to_str().unwrap(), "--db", db],
    ] {
        let o = scimd_env(&args, &[]);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "the directory {} does not exist: create it (`mkdir -p {}`)",
                missing.display(),
                missing.display()
            )),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains(".lock") && !err.contains("internal error"),
            "{args:?}: {err}"
        );
    }
    assert!(!missing.exists(), "nothing was created");
}

/// Whether this process runs as root (the owner of a file it creates is uid 0).
fn running_as_root(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join("whoami");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    std::fs::remove_file(&probe).unwrap();
    root
}

/// The `scimd` command as a service's user sees files: as root, run through `setpriv` without
/// the capabilities that override file permissions (root then meets the modes as their owner
/// does); `None` as root without `setpriv`.
fn unprivileged(dir: &Path) -> Option<Command> {
    let bin = env!("CARGO_BIN_EXE_scimd");
    let mut cmd = if running_as_root(dir) {
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .find(|p| Path::new(p).is_file())?;
        let mut c = Command::new(setpriv);
        c.args([
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--inh-caps=-all",
            bin,
        ]);
        c
    } else {
        Command::new(bin)
    };
    cmd.env_remove("SCIMD_DB").env_remove("SCIMD_LISTEN");
    Some(cmd)
}

#[test]
fn a_read_only_database_or_directory_is_named_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(_) = unprivileged(dir.path()) else {
        eprintln!(
            "read-only checks skipped: running as root without setpriv, permissions cannot fail"
        );
        return;
    };
    let run = |args: &[&str]| {
        unprivileged(dir.path())
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m));
    let home = dir.path().join("data");
    std::fs::create_dir(&home).unwrap();
    let db = home.join("scimd.db");
    let db_s = db.to_str().unwrap();
    // Made by a server that then stops cleanly (no connection of this process stays open).
    let (mut server, _addr, lines) = spawn_server(db_s, &[]);
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let st = server.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(st.success(), "{st:?} {rest:#?}");
    // Out of WAL mode, so no -wal or -shm is left: scimd must make them beside the file.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    drop(conn);
    assert!(!home.join("scimd.db-wal").exists());

    // A read-only file: every command that writes, and serve, name it and the fix.
    mode(&db, 0o444).unwrap();
    for args in [
        vec!["token", "create", "--name", "x", "--db", db_s],
        vec!["serve", "--listen", "127.0.0.1:0", "--db", db_s],
    ] {
        let o = run(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{db_s} is read-only for this user (uid "))
                && err.contains("scimd must write it")
                && !err.contains("internal error"),
            "{args:?}: {err}"
        );
    }
    mode(&db, 0o644).unwrap();
    for suffix in ["-wal", "-shm"] {
        assert!(!home.join(format!("scimd.db{suffix}")).exists(), "{suffix}");
    }

    // A read-only directory (the -wal, -shm and lock are made there).
    mode(&home, 0o555).unwrap();
    for args in [
        vec!["token", "create", "--name", "x", "--db", db_s],
        vec!["serve", "--listen", "127.0.0.1:0", "--db", db_s],
    ] {
        let o = run(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "the directory {} is read-only for this user",
                home.display()
            )) && err.contains("--db")
                && !err.contains("internal error")
                && !err.contains("damaged"),
            "{args:?}: {err}"
        );
    }
    // A new database in a read-only directory: the directory is named too.
    let fresh = home.join("new.db");
    let o = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        fresh.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "the directory {} is read-only for this user",
            home.display()
        )),
        "{err}"
    );
    // A WAL database without its -shm (made by the first reader) there: `check` names the
    // directory, and does not call the database damaged.
    mode(&home, 0o755).unwrap();
    let o = run(&["token", "create", "--name", "x", "--db", db_s]);
    assert!(o.status.success(), "{o:?}");
    let _ = std::fs::remove_file(home.join("scimd.db-shm"));
    mode(&home, 0o555).unwrap();
    let o = run(&["check", "--db", db_s]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "the directory {} is read-only for this user",
            home.display()
        )) && !out.contains("damaged"),
        "{out}"
    );
    mode(&home, 0o755).unwrap();
}

/// `scimd serve --listen LISTEN`, logging at info to a pipe.
fn serve_on(db: &str, listen: &str) -> (std::process::Child, LogLines) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["serve", "--listen", listen, "--db", db])
        .env("SCIMD_LOG", "info")
        .env_remove("SCIMD_PUBLIC_URL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn listen_takes_a_host_name_and_says_what_is_wrong_with_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let (server, lines) = serve_on(db.to_str().unwrap(), "localhost:0");
    let _server = KillOnDrop(server);
    let log = log_channel(lines);
    let line = wait_for(&log, "listen=");
    let addr = line
        .split("listen=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let bound: std::net::SocketAddr = addr.parse().unwrap();
    assert!(bound.ip().is_loopback(), "{addr}");
    let reply = http_once(
        &addr,
        "GET /healthz HTTP/1.1",
        "",
        std::time::Duration::from_secs(20),
    )
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // `scimd health` takes the same name, from the flag or the environment.
    let by_name = format!("localhost:{}", bound.port());
    let o = scimd_env(&["health", "--listen", &by_name], &[]);
    assert!(o.status.success(), "{o:?}");
    let o = scimd_env(&["health"], &[("SCIMD_LISTEN", &by_name)]);
    assert!(o.status.success(), "{o:?}");

    for (bad, says) in [
        ("localhost", "needs a port"),
        ("localhost:http", "the port must be a number"),
        (
            "no-such-host.invalid:8080",
            "cannot resolve \"no-such-host.invalid\"",
        ),
    ] {
        let o = scimd_env(
            &["serve", "--listen", bad, "--db", db.to_str().unwrap()],
            &[],
        );
        assert!(!o.status.success(), "{bad}");
        let err = stderr(&o);
        assert!(
            err.contains(says) && err.contains("127.0.0.1:8080"),
            "{bad}: {err}"
        );
    }
}

/// The links `scimd admin setup-link` prints.
fn setup_links(db: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut all = vec!["admin", "setup-link", "--db", db];
    all.extend_from_slice(args);
    let o = scimd_env(&all, env);
    assert!(o.status.success(), "{o:?}");
    let links: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    for link in &links {
        assert!(link.contains("/setup#code="), "{link}");
        assert!(
            !link.contains("0.0.0.0") && !link.contains("[::]"),
            "a browser cannot open {link}"
        );
    }
    links
}

#[test]
fn setup_link_honours_listen_public_url_and_tls_from_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    new_db(db);
    let starts = |links: &[String], origin: &str| {
        assert!(
            links[0].starts_with(&format!("{origin}/setup#code=")),
            "{origin}: {links:?}"
        );
    };
    let links = setup_links(db, &[], &[]);
    assert_eq!(links.len(), 1, "{links:?}");
    starts(&links, "http://127.0.0.1:8080");
    let links = setup_links(db, &["--listen", "127.0.0.1:9001"], &[]);
    starts(&links, "http://127.0.0.1:9001");
    let links = setup_links(db, &[], &[("SCIMD_LISTEN", "localhost:9002")]);
    starts(&links, "http://127.0.0.1:9002");
    // Every interface: this machine's network address if it has one, and loopback last.
    let links = setup_links(db, &["--listen", "0.0.0.0:9003"], &[]);
    assert!(
        links
            .last()
            .unwrap()
            .starts_with("http://127.0.0.1:9003/setup#code="),
        "{links:?}"
    );
    // The public URL first, then the listen address (a tunnel to it).
    let links = setup_links(
        db,
        &[
            "--public-url",
            "https://Scim.Example.com/",
            "--listen",
            "127.0.0.1:9004",
        ],
        &[],
    );
    starts(&links, "https://scim.example.com");
    assert!(
        links[1].starts_with("http://127.0.0.1:9004/setup#code="),
        "{links:?}"
    );
    let links = setup_links(
        db,
        &[],
        &[
            ("SCIMD_PUBLIC_URL", "https://scim.example.com"),
            ("SCIMD_LISTEN", "127.0.0.1:9005"),
        ],
    );
    starts(&links, "https://scim.example.com");
    assert!(links[1].starts_with("http://127.0.0.1:9005/"), "{links:?}");
    // Built-in TLS: https links.
    let links = setup_links(db, &[], &[("SCIMD_TLS_CERT", "/etc/scimd/cert.pem")]);
    starts(&links, "https://127.0.0.1:8080");
    // Each run makes a new code; the older stops working.
    let a = setup_links(db, &[], &[]);
    let b = setup_links(db, &[], &[]);
    assert_ne!(a, b);
    // A bad public URL is refused before any code is made.
    let o = scimd_env(
        &[
            "admin",
            "setup-link",
            "--db",
            db,
            "--public-url",
            "scim.example.com",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("must start with http:// or https://"),
        "{o:?}"
    );
}

#[test]
fn a_server_on_every_interface_logs_links_a_browser_can_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let (server, lines) = serve_on(db.to_str().unwrap(), "0.0.0.0:0");
    let _server = KillOnDrop(server);
    let log = log_channel(lines);
    let link = wait_for(&log, "/setup#code=");
    let serving = wait_for(&log, "listen=");
    let port = serving
        .split("listen=0.0.0.0:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(!link.contains("0.0.0.0"), "{link}");
    assert!(
        link.contains(&format!("http://127.0.0.1:{port}/setup#code=")),
        "{link}"
    );
}

#[tokio::test]
async fn the_console_signs_in_from_loopback_and_the_listen_address_beside_a_public_url() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |cfg| {
        cfg.with_public_url(Some("https://scim.example.com"))
            .unwrap()
    })
    .await;
    admin::set_password(
        &Store::open(&s.db()).unwrap(),
        "ops",
        "a long enough password",
    )
    .unwrap();
    let port = s.addr.port();
    let login = |origin: String| {
        let s = &s;
        async move {
            let body = json!({"username": "ops", "password": "a long enough password"});
            s.raw(
                "POST",
                "/admin/api/login",
                &[("content-type", "application/json"), ("origin", &origin)],
                Some(&body.to_string()),
            )
            .await
        }
    };
    // Through a tunnel to loopback, by address and by name; the public URL as before.
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "https://scim.example.com".to_string(),
    ] {
        let r = login(origin.clone()).await;
        assert_eq!(
            r.status,
            200,
            "{origin}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let cookie = r.header("set-cookie").unwrap().to_string();
        // The public URL is https: a browser on it or on loopback keeps a Secure cookie.
        assert!(
            cookie.starts_with("__Host-scimd_session=") && cookie.contains("; Secure"),
            "{origin}: {cookie}"
        );
        let session = cookie.split(';').next().unwrap().to_string();
        let me = s
            .raw("GET", "/admin/api/session", &[("cookie", &session)], None)
            .await;
        assert_eq!(me.status, 200, "{origin}");
    }
    // Never another origin, nor another port on loopback.
    for origin in [
        "https://evil.example".to_string(),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://scim.example.com".to_string(),
    ] {
        let r = login(origin.clone()).await;
        assert_eq!(r.status, 403, "{origin}");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("https://scim.example.com") && detail.contains("loopback"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn a_browser_on_the_lan_address_gets_a_cookie_plain_http_can_keep() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The listen address as a LAN browser names it in `Host`: a plain-HTTP connection,
    // whatever the public URL says, so its cookie is not `Secure` (a browser would drop it).
    let dir = tempfile::TempDir::new().unwrap();
    let s = Server::start_in(dir, |cfg| {
        cfg.with_public_url(Some("https://scim.example.com"))
            .unwrap()
    })
    .await;
    admin::set_password(
        &Store::open(&s.db()).unwrap(),
        "ops",
        "a long enough password",
    )
    .unwrap();
    let body = json!({"username": "ops", "password": "a long enough password"}).to_string();
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "POST /admin/api/login HTTP/1.1\r\nHost: 192.0.2.10:8080\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let cookie = reply
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: scimd_session=")
        })
        .unwrap_or_else(|| panic!("a plain session cookie: {reply}"));
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[test]
fn set_password_at_a_terminal_does_not_show_the_password() {
    use std::io::{Read, Write};
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    else {
        eprintln!("terminal check skipped: no `script` (util-linux) to give scimd a terminal");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    new_db(db);
    let command = format!(
        "{} admin set-password --username alice --db {db}",
        env!("CARGO_BIN_EXE_scimd")
    );
    // `script` gives scimd a pseudo-terminal and copies what it shows to standard output.
    let mut child = Command::new(script)
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_remove("SCIMD_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u8>();
    std::thread::spawn(move || {
        let mut byte = [0u8];
        while output.read(&mut byte).is_ok_and(|n| n == 1) {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let wait_for_text = |text: &str, shown: &mut Vec<u8>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !String::from_utf8_lossy(shown).contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => shown.push(b),
                Err(_) => panic!("never saw {text:?}: {:?}", String::from_utf8_lossy(shown)),
            }
        }
    };
    // Typed once asked, as a person would, a moment after the prompt (it is printed just
    // before echo is turned off).
    let pause = || std::thread::sleep(std::time::Duration::from_millis(500));
    wait_for_text("Password for alice: ", &mut shown);
    pause();
    input.write_all(b"typed secret words\n").unwrap();
    wait_for_text("again: ", &mut shown);
    pause();
    input.write_all(b"typed secret words\n").unwrap();
    wait_for_text("Password set for administrator", &mut shown);
    drop(input);
    assert!(child.wait().unwrap().success());
    while let Ok(b) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
        shown.push(b);
    }
    let shown = String::from_utf8_lossy(&shown);
    assert!(
        !shown.contains("typed secret"),
        "the terminal showed: {shown:?}"
    );
    // The administrator exists: no more setup link.
    assert!(
        !scimd_env(&["admin", "setup-link", "--db", db], &[])
            .status
            .success()
    );
}

/// Every `scimd …` line in the README's Quick start (and the install step before it) names
/// a real subcommand and real flags: run with `--help` appended, clap refuses an unknown
/// subcommand or flag and a bad value before it prints the help.
#[test]
fn the_readme_quick_start_commands_parse() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 3 + i);
    let section = &readme[start..end];
    let mut in_code = false;
    let mut commands = Vec::new();
    for line in section.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        // A command, its comment aside: `scimd token create --name x   # …`.
        let command = line.split(" #").next().unwrap().trim();
        if in_code && (command == "scimd" || command.starts_with("scimd ")) {
            commands.push(command.to_string());
        }
    }
    assert!(
        commands.iter().any(|c| c.starts_with("scimd token create")),
        "{commands:?}"
    );
    assert!(
        section.find("cargo install --locked --path .").unwrap() < section.find("\nscimd").unwrap(),
        "scimd is installed before it is first run"
    );
    for command in &commands {
        let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
        args.push("--help");
        let o = scimd_env(&args, &[]);
        assert!(o.status.success(), "README: `{command}`: {}", stderr(&o));
        // The help, or for `--version` the version, which clap prints first.
        let out = stdout(&o);
        assert!(
            out.contains("Usage:") || out.starts_with("scimd "),
            "README: `{command}`: {out}"
        );
    }
}
