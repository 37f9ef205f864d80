//! The `scimd` command line, run as a newcomer would.

use std::process::Command;

use crate::common::{
    KillOnDrop, cli_token, http_once, log_channel, new_db, scimd, spawn_scimd, spawn_server,
    stdout, wait_for,
};

/// One request on its own connection: the raw response.
fn http(addr: &str, head: &str, body: &str) -> String {
    http_once(addr, head, body, std::time::Duration::from_secs(20)).unwrap()
}

#[test]
fn version_and_help() {
    let v = scimd(&["--version"]);
    assert!(v.status.success());
    assert_eq!(
        stdout(&v).trim(),
        format!("scimd {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["token", "--help"],
        vec!["token", "create", "--help"],
        vec!["token", "list", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["health", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
        vec!["check", "--help"],
    ] {
        let o = scimd(&args);
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
    let help = stdout(&scimd(&["serve", "--help"]));
    for flag in [
        "--listen",
        "--db",
        "--public-url",
        "--log",
        "SCIMD_LISTEN",
        "SCIMD_DB",
        "--tls-cert",
        "--tls-key",
        "--metrics-token",
        "--trust-proxy",
    ] {
        assert!(help.contains(flag), "{flag} in serve --help");
    }
}

#[test]
fn token_create_list_revoke() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    new_db(db);
    let created = scimd(&["token", "create", "--name", "onelogin", "--db", db]);
    assert!(created.status.success());
    let out = stdout(&created);
    let secret = out.lines().last().unwrap();
    assert!(
        secret.starts_with("scimd_") && secret.len() > 60,
        "{secret}"
    );

    let dup = scimd(&["token", "create", "--name", "onelogin", "--db", db]);
    assert!(!dup.status.success());

    let list = stdout(&scimd(&["token", "list", "--db", db]));
    assert!(
        list.contains("onelogin") && list.contains("never"),
        "{list}"
    );
    assert!(!list.contains(secret), "the secret is never listed");
    let raw = std::fs::read(dir.path().join("t.db")).unwrap();
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored"
    );

    assert!(
        scimd(&["token", "revoke", "onelogin", "--db", db])
            .status
            .success()
    );
    let list = stdout(&scimd(&["token", "list", "--db", db]));
    assert!(list.contains("revoked"), "{list}");
    let again = scimd(&["token", "revoke", "onelogin", "--db", db]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no live token"));
}

#[test]
fn the_db_flag_can_come_from_the_environment() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("env.db");
    new_db(db.to_str().unwrap());
    let o = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["token", "create", "--name", "from-env"])
        .env("SCIMD_DB", &db)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&scimd(&["token", "list", "--db", db.to_str().unwrap()])).contains("from-env"));
}

#[test]
fn serve_refuses_a_database_from_a_newer_scimd() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("new.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("newer scimd"), "{err}");
}

/// `scimd serve` as a process: it comes up, answers, `scimd health` says so, SIGHUP leaves it
/// running, and it exits cleanly on SIGTERM and SIGINT.
#[test]
fn serve_exits_cleanly_on_sigterm_and_sigint_and_health_tells() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("sig.db");
        let (mut child, addr, lines) = spawn_server(db.to_str().unwrap(), &[]);
        let reply = http(&addr, "GET /healthz HTTP/1.1", "");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        // The container health check; 0.0.0.0 means this machine.
        let port = addr.rsplit(':').next().unwrap();
        let healthy = scimd(&["health", "--listen", &format!("0.0.0.0:{port}")]);
        assert!(healthy.status.success(), "{healthy:?}");
        assert!(stdout(&healthy).contains(r#""database":"ok""#));
        // SIGHUP (`systemctl reload`) never stops it, TLS or not.
        let log = log_channel(lines);
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        wait_for(&log, "SIGHUP: nothing to reload");
        assert!(scimd(&["health", "--listen", &addr]).status.success());
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "{signal}: exit status {status}");
        // The channel ends when the process's stderr closes.
        wait_for(&log, "stopped");
    }
}

/// An acknowledged write survives `kill -9` of the server right after the response.
#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("kill.db");
    let db = db.to_str().unwrap();
    let token = cli_token(db, "k");
    let (mut child, addr, _lines) = spawn_server(db, &[]);
    for i in 0..5 {
        let head = format!("POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}");
        let reply = http(&addr, &head, &format!("{{\"userName\":\"killed{i}\"}}"));
        assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    }
    child.kill().unwrap(); // SIGKILL: no drain, no shutdown code.
    child.wait().unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM users WHERE user_name LIKE 'killed%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 5);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn admins_are_made_from_the_shell_with_the_password_on_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    new_db(db);
    let o = scimd(&[
        "admin",
        "setup-link",
        "--db",
        db,
        "--public-url",
        "https://scim.example.com",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout(&o)
            .trim()
            .starts_with("https://scim.example.com/setup#code="),
        "{o:?}"
    );

    let set_password = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
            .args(["admin", "set-password", "--username", "alice", "--db", db])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = set_password("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    let o = set_password("a long enough password");
    assert!(o.status.success(), "{o:?}");
    assert!(!stdout(&o).contains("a long enough password"));
    // Once an administrator exists there is no setup link.
    let o = scimd(&["admin", "setup-link", "--db", db]);
    assert!(!o.status.success());
}

#[test]
fn a_fresh_server_logs_its_setup_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let (child, lines) = spawn_scimd(db.to_str().unwrap(), &[]);
    let _child = KillOnDrop(child);
    let mut link = None;
    for line in lines {
        let line = line.unwrap();
        if line.contains("/setup#code=") {
            link = Some(line.clone());
        }
        if line.contains("listen=") {
            break;
        }
    }
    let link = link.expect("a setup link in the log");
    assert!(link.contains("no console administrator yet"), "{link}");
}

#[test]
fn backup_while_serving_check_and_restore_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let db = path("scimd.db");
    cli_token(&db, "idp");
    let (mut server, _addr, _lines) = spawn_server(&db, &[]);

    let o = scimd(&["backup", &path("b1.db"), "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("check ok"), "{o:?}");
    // Not over an existing file, not while serving, and not a second server.
    assert!(
        !scimd(&["backup", &path("b1.db"), "--db", &db])
            .status
            .success()
    );
    let o = scimd(&["restore", &path("b1.db"), "--db", &db]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stop scimd first"),
        "{o:?}"
    );
    let second = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another scimd is serving"));

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    let o = scimd(&["check", "--db", &db]);
    assert!(o.status.success() && stdout(&o).contains("ok"), "{o:?}");
    // Rows written after the backup are gone after the restore; the old file is kept aside.
    assert!(
        scimd(&["token", "create", "--name", "later", "--db", &db])
            .status
            .success()
    );
    // The restored file keeps the replaced one's mode (and owner), not the backup's.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(path("b1.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = scimd(&["restore", &path("b1.db"), "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(std::path::Path::new(&path("scimd.db.before-restore")).exists());
    assert_eq!(mode(&db), 0o600);
    // Restoring where there is no database yet (a new machine) works too.
    std::fs::create_dir(path("fresh")).unwrap();
    let fresh = path("fresh/scimd.db");
    let o = scimd(&["restore", &path("b1.db"), "--db", &fresh]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&scimd(&["token", "list", "--db", &fresh])).contains("idp"));
    assert!(!std::path::Path::new(&path("fresh/scimd.db.restoring")).exists());
    assert_eq!(mode(&fresh), 0o600, "not the backup's 0644");
    let listed = stdout(&scimd(&["token", "list", "--db", &db]));
    assert!(
        listed.contains("idp") && !listed.contains("later"),
        "{listed}"
    );

    // A damaged file fails its check, and is never restored.
    let mut bytes = std::fs::read(path("b1.db")).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4096] {
        *b = 0x5a;
    }
    std::fs::write(path("bad.db"), bytes).unwrap();
    assert!(!scimd(&["check", "--db", &path("bad.db")]).status.success());
    assert!(
        !scimd(&["restore", &path("bad.db"), "--db", &db])
            .status
            .success()
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let (child, mut lines) = spawn_scimd(db.to_str().unwrap(), &["--log-format", "json"]);
    let _child = KillOnDrop(child);
    let mut serving = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        if v["fields"]["message"] == "scimd is serving SCIM at /scim/v2" {
            serving = Some(v);
            break;
        }
    }
    let v = serving.expect("the start-up line");
    assert_eq!(v["level"], "INFO");
    assert!(
        v["fields"]["listen"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}
