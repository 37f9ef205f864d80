//! The database file outside the request path: interrupted restores, commands pointed at the
//! wrong place, second names of the served file, a file deleted under the server, and backups
//! that fail. Each test reproduces on disk the state a crash or a mistake leaves.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use crate::common::{
    KillOnDrop, Server, cli_token, http_once, log_channel, new_db, scimd, spawn_scimd,
    spawn_server, stdout, wait_for,
};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `scimd serve --db db`, which must refuse to start: fails if it serves, and returns
/// its log once it has exited unsuccessfully.
fn serve_refused(db: &str) -> String {
    let (child, lines) = spawn_scimd(db, &[]);
    let mut child = KillOnDrop(child);
    let log = log_channel(lines);
    let mut seen = String::new();
    loop {
        match log.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                assert!(
                    !line.contains("listen="),
                    "scimd served {db}:\n{seen}{line}"
                );
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("scimd neither served nor exited:\n{seen}"),
        }
    }
    assert!(!child.0.wait().unwrap().success(), "{seen}");
    seen
}

fn request(addr: &str, head: &str, body: &str) -> String {
    http_once(addr, head, body, Duration::from_secs(20)).unwrap()
}

/// A database at `db` with a token `in-the-backup`, backed up to `backup`, then a token
/// `later` that only the database has.
fn backed_up(db: &str, backup: &str, later: &str) {
    cli_token(db, "in-the-backup");
    assert!(scimd(&["backup", backup, "--db", db]).status.success());
    cli_token(db, later);
}

/// A restore killed between the two renames of the old code left `.before-restore` (the only
/// copy of the data) and `.restoring`, and no database. `serve` must not start afresh there,
/// and later restores must never replace that `.before-restore`.
#[test]
fn an_interrupted_restore_is_never_hidden_or_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let db = path("scimd.db");
    backed_up(&db, &path("b.db"), "only-in-the-database");
    // The state the killed restore left.
    std::fs::rename(&db, path("scimd.db.before-restore")).unwrap();
    std::fs::copy(path("b.db"), path("scimd.db.restoring")).unwrap();
    let precious = std::fs::read(path("scimd.db.before-restore")).unwrap();

    let log = serve_refused(&db);
    assert!(
        log.contains("scimd.db.before-restore")
            && log.contains("mv ")
            && log.contains("scimd restore"),
        "{log}"
    );
    assert!(!Path::new(&db).exists(), "no empty database in its place");

    // Restoring now puts the backup in place and leaves the kept copy alone.
    let o = scimd(&["restore", &path("b.db"), "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(!stdout(&o).contains("kept as"), "{o:?}");
    let o = scimd(&["restore", &path("b.db"), "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout(&o).contains(&format!("kept as {}", path("scimd.db.before-restore.1"))),
        "{o:?}"
    );
    assert_eq!(
        std::fs::read(path("scimd.db.before-restore")).unwrap(),
        precious
    );
    assert!(!Path::new(&path("scimd.db.restoring")).exists());
    // Going back as the refusal said works, and the data is all there.
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(path("scimd.db.before-restore"), &db).unwrap();
    let listed = stdout(&scimd(&["token", "list", "--db", &db]));
    assert!(listed.contains("only-in-the-database"), "{listed}");
}

/// A restore killed at any moment leaves the database it was replacing whole: before its one
/// rename, that is the database still in place, with its second name `.before-restore` and
/// the staged copy beside it. `serve` says which name to remove rather than run with two.
#[test]
fn a_restore_killed_before_its_rename_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let db = path("scimd.db");
    cli_token(&db, "kept");
    std::fs::hard_link(&db, path("scimd.db.before-restore")).unwrap();
    std::fs::write(path("scimd.db.restoring"), "half a copy").unwrap();
    let log = serve_refused(&db);
    assert!(
        log.contains(&format!("Remove {}", path("scimd.db.before-restore"))),
        "{log}"
    );
    std::fs::remove_file(path("scimd.db.before-restore")).unwrap();
    let (child, _addr, _lines) = spawn_server(&db, &[]);
    drop(KillOnDrop(child));
    assert!(stdout(&scimd(&["token", "list", "--db", &db])).contains("kept"));
}

/// Restoring onto a path with no database says so, rather than naming a kept copy that
/// does not exist.
#[test]
fn a_restore_onto_no_database_claims_nothing_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    new_db(&path("source.db"));
    assert!(
        scimd(&["backup", &path("b.db"), "--db", &path("source.db")])
            .status
            .success()
    );
    let o = scimd(&["restore", &path("b.db"), "--db", &path("new.db")]);
    assert!(o.status.success(), "{o:?}");
    assert!(!stdout(&o).contains("before-restore"), "{o:?}");
    assert!(stdout(&o).contains("no database there before"), "{o:?}");
    assert!(!Path::new(&path("new.db.before-restore")).exists());
}

/// Only `serve` creates a database (mode 0600); every other command refuses a missing one,
/// naming the path and how to give the right one, and names the database it used.
#[test]
fn only_serve_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let missing = path("mistyped.db");
    let commands: [&[&str]; 7] = [
        &["token", "create", "--name", "idp"],
        &["token", "list"],
        &["token", "revoke", "idp"],
        &["admin", "setup-link"],
        &["admin", "set-password", "--username", "ops"],
        &["backup", "/nonexistent/b.db"],
        &["check"],
    ];
    for args in commands {
        let o = scimd(&[args, &["--db", &missing]].concat());
        assert!(!o.status.success(), "{args:?}: {o:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&missing) && e.contains("--db") && e.contains("SCIMD_DB"),
            "{args:?}: {e}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created a file"
        );
    }

    let db = path("scimd.db");
    let (child, _addr, _lines) = spawn_server(&db, &[]);
    let _server = KillOnDrop(child);
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new database is its owner's alone");
    let real = std::fs::canonicalize(&db).unwrap();
    for args in commands {
        let o = scimd(&[args, &["--db", &db]].concat());
        assert!(
            stderr(&o).contains(&format!("database {}", real.display())),
            "{args:?}: {o:?}"
        );
    }
}

/// The one-server lock holds whatever name the file is reached by.
#[test]
fn a_second_name_of_the_served_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let db = path("scimd.db");
    backed_up(&db, &path("b.db"), "later");
    let (child, _addr, _lines) = spawn_server(&db, &[]);
    let mut server = KillOnDrop(child);

    std::os::unix::fs::symlink(&db, path("link.db")).unwrap();
    let log = serve_refused(&path("link.db"));
    assert!(log.contains("another scimd is serving"), "{log}");
    std::fs::hard_link(&db, path("hard.db")).unwrap();
    let log = serve_refused(&path("hard.db"));
    assert!(log.contains("hard links"), "{log}");
    std::fs::remove_file(path("hard.db")).unwrap();

    let inode = std::fs::metadata(&db).unwrap().ino();
    let o = scimd(&["restore", &path("b.db"), "--db", &path("link.db")]);
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("stop scimd first"), "{o:?}");
    assert_eq!(std::fs::metadata(&db).unwrap().ino(), inode);

    // Stopped, a restore through the link replaces the real file, with the real file's mode.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let o = scimd(&["restore", &path("b.db"), "--db", &path("link.db")]);
    assert!(o.status.success(), "{o:?}");
    let link = std::fs::symlink_metadata(path("link.db")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is still a link");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let listed = stdout(&scimd(&["token", "list", "--db", &db]));
    assert!(
        listed.contains("in-the-backup") && !listed.contains("later"),
        "{listed}"
    );
}

/// `rm scimd.db*` under a running server: writes and `/healthz` answer 503 from then on,
/// with one log line saying why.
#[test]
fn a_deleted_database_makes_the_server_read_only_and_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    let (child, addr, lines) = spawn_server(db, &[]);
    let mut server = KillOnDrop(child);
    let log = log_channel(lines);
    let token = cli_token(db, "idp");
    let post = format!("POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}");
    let reply = request(&addr, &post, r#"{"userName":"before"}"#);
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");

    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{db}{suffix}")).unwrap();
    }
    for i in 0..3 {
        let reply = request(&addr, &post, &format!(r#"{{"userName":"after{i}"}}"#));
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        assert!(reply.contains(r#""status":"503""#), "{reply}");
        let health = request(&addr, "GET /healthz HTTP/1.1", "");
        assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    }
    // Reads still answer from the open file.
    let get = format!("GET /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}");
    assert!(request(&addr, &get, "").starts_with("HTTP/1.1 200"));
    wait_for(&log, "deleted or replaced");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let again: Vec<String> = log
        .iter()
        .filter(|l| l.contains("deleted or replaced"))
        .collect();
    assert!(again.is_empty(), "logged once: {again:?}");
}

/// A file put in place of the served one (not through `restore`) is noticed as well.
#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_database_makes_the_server_read_only() {
    let s = Server::start().await;
    let user = serde_json::json!({"userName": "first"});
    assert_eq!(s.post("/scim/v2/Users", &user).await.status, 201);
    let other = s.dir.path().join("other.db");
    new_db(other.to_str().unwrap());
    std::fs::rename(&other, s.db()).unwrap();
    let user = serde_json::json!({"userName": "second"});
    s.post("/scim/v2/Users", &user)
        .await
        .assert_error(503, None);
    assert_eq!(s.raw("GET", "/healthz", &[], None).await.status, 503);
}

/// A backup that fails leaves no file behind, so a retry to the same name works.
#[test]
fn a_failed_backup_leaves_nothing_and_a_retry_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let db = path("scimd.db");
    cli_token(&db, "idp");
    // A database whose pages are damaged half-way through: the copy fails part-way.
    let damaged = path("damaged.db");
    {
        let conn = rusqlite::Connection::open(&damaged).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
             WHERE i < 2000) INSERT INTO t SELECT randomblob(500) FROM n;",
        )
        .unwrap();
    }
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 8192].fill(0x5a);
    std::fs::write(&damaged, bytes).unwrap();
    let o = scimd(&["backup", &path("b.db"), "--db", &damaged]);
    assert!(!o.status.success(), "{o:?}");
    for left in [
        "b.db",
        "b.db-journal",
        "b.db.partial",
        "b.db.partial-journal",
    ] {
        assert!(!Path::new(&path(left)).exists(), "{left} was left");
    }
    let o = scimd(&["backup", &path("b.db"), "--db", &db]);
    assert!(o.status.success(), "the retry to the same name: {o:?}");
}

/// `check` calls a file left half-written by a killed write (a hot journal beside it)
/// damaged, without trying to write to it.
#[test]
fn check_calls_a_half_written_file_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let half = path("half.db");
    {
        let conn = rusqlite::Connection::open(&half).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; PRAGMA cache_size = 10; CREATE TABLE t(x); BEGIN; \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO t SELECT randomblob(500) FROM n;",
        )
        .unwrap();
        std::fs::copy(&half, path("killed.db")).unwrap();
        std::fs::copy(format!("{half}-journal"), path("killed.db-journal")).unwrap();
    }
    let o = scimd(&["check", "--db", &path("killed.db")]);
    assert!(!o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("problem: damaged"), "{o:?}");
    assert!(!stderr(&o).contains("readonly"), "{o:?}");
}

/// During an upgrade, a command of the newer binary must not migrate the schema under the
/// older server still running (its unique indexes would go from under it); with the server
/// stopped, the command migrates as before.
#[test]
fn a_command_does_not_migrate_under_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db").to_str().unwrap().to_string();
    cli_token(&db, "idp");
    let version = || -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let latest = version();
    let (child, _addr, _lines) = spawn_server(&db, &[]);
    let server = KillOnDrop(child);
    // The schema the older server would have: one version behind.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", latest - 1))
        .unwrap();
    let o = scimd(&["token", "list", "--db", &db]);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        stderr(&o).contains("a running scimd serves") && stderr(&o).contains("restart it"),
        "{o:?}"
    );
    assert_eq!(version(), latest - 1, "nothing migrated");
    // Once the server is gone the command runs (the schema set back to what it really is:
    // the version above was lowered by hand, not by an older binary).
    drop(server);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {latest}"))
        .unwrap();
    let o = scimd(&["token", "list", "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("idp"), "{o:?}");
}

/// What `restore` reports is what it put in place: a backup that is a copy of a live folder
/// (commits still in its `-wal`) is restored whole, and a current database SQLite cannot
/// read is replaced, kept as it was, and said to be so.
#[test]
fn restore_installs_what_it_reports_and_replaces_a_damaged_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let live = path("live.db");
    cli_token(&live, "in-the-wal");
    {
        // A second connection keeps the WAL from being folded in as the commands exit.
        let keep = rusqlite::Connection::open(&live).unwrap();
        keep.execute_batch("PRAGMA wal_autocheckpoint = 0; BEGIN; SELECT 1; COMMIT;")
            .unwrap();
        cli_token(&live, "also-in-the-wal");
        std::fs::copy(&live, path("snap.db")).unwrap();
        std::fs::copy(format!("{live}-wal"), path("snap.db-wal")).unwrap();
    }
    assert!(std::fs::metadata(path("snap.db-wal")).unwrap().len() > 0);
    let db = path("scimd.db");
    std::fs::write(&db, vec![0x42u8; 9000]).unwrap();
    let o = scimd(&["restore", &path("snap.db"), "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("could not be read"), "{o:?}");
    assert_eq!(
        std::fs::read(path("scimd.db.before-restore")).unwrap(),
        vec![0x42u8; 9000]
    );
    let o = scimd(&["check", "--db", &db]);
    assert!(o.status.success(), "{o:?}");
    let listed = stdout(&scimd(&["token", "list", "--db", &db]));
    assert!(listed.contains("also-in-the-wal"), "{listed}");
}
