//! Keeping the one file safe: an online backup, an integrity check, and a restore that holds
//! the server lock (`dbfile::ServerLock`) so it cannot pull the database from under a server.
//! Each new file is written under a temporary name and put in place by one rename (or link),
//! so a crash at any moment leaves either the old file or the new one, never half of one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::dbfile::{self, ServerLock, dir_of, with_suffix};
use super::migrate;
use crate::error::{Error, Result};

/// What `check` found: `problems` is empty for a sound database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub schema_version: usize,
    pub users: i64,
    pub groups: i64,
    pub problems: Vec<String>,
}

/// Checks the database at `path` without changing it: SQLite's integrity check, foreign keys,
/// and a schema this scimd knows. Opens it read-only; a file SQLite cannot read through (not
/// a database, damaged, or left with a hot journal by an interrupted write) is reported as a
/// problem, not as an error of the check.
pub fn check(path: &Path) -> Result<Health> {
    if !path.is_file() {
        return Err(Error::NotFound(format!(
            "no database at {}",
            path.display()
        )));
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| inspect(&conn))
    .or_else(|e| {
        // Not damage: reading a WAL database makes its `-shm`, which this user may not.
        let unreadable = e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
            && !dbfile::with_suffix(path, "-journal").exists();
        if let Some(why) = unreadable.then(|| dbfile::unwritable(path)).flatten() {
            return Err(Error::InvalidValue(format!(
                "cannot read {}: {why}",
                path.display()
            )));
        }
        match e.sqlite_error_code() {
            Some(code) if code != rusqlite::ErrorCode::CannotOpen => Ok(damaged(path, code, &e)),
            _ => Err(Error::internal(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    })
}

/// The report on a file SQLite could open but not read through.
fn damaged(path: &Path, code: rusqlite::ErrorCode, e: &rusqlite::Error) -> Health {
    let journal = dbfile::with_suffix(path, "-journal");
    let problem = if code == rusqlite::ErrorCode::ReadOnly && journal.exists() {
        format!(
            "damaged: {} holds an interrupted write that was never finished (a killed backup \
             or copy leaves one); the file is incomplete",
            journal.display()
        )
    } else {
        format!("damaged: {e}")
    };
    Health {
        schema_version: 0,
        users: 0,
        groups: 0,
        problems: vec![problem],
    }
}

fn inspect(conn: &Connection) -> rusqlite::Result<Health> {
    let mut problems = Vec::new();
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if integrity != ["ok"] {
        problems.extend(integrity.into_iter().map(|p| format!("integrity: {p}")));
    }
    let broken_keys: i64 = conn
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |_| Ok(()))?
        .count() as i64;
    if broken_keys > 0 {
        problems.push(format!(
            "{broken_keys} rows refer to rows that do not exist"
        ));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let schema_version = usize::try_from(version).unwrap_or(usize::MAX);
    if schema_version > migrate::LATEST {
        problems.push(format!(
            "schema version {version} is newer than this scimd ({})",
            migrate::LATEST
        ));
    }
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(-1)
    };
    let (users, groups) = if schema_version == 0 {
        problems.push("not a scimd database (no schema)".into());
        (0, 0)
    } else {
        (count("users"), count("groups"))
    };
    Ok(Health {
        schema_version,
        users,
        groups,
        problems,
    })
}

/// Puts the finished file `tmp` at `dest`, which must not exist: a hard link, which never
/// replaces anything, then the temporary name goes. Where links are not supported, a rename.
fn place_new(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => std::fs::remove_file(tmp),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if std::fs::symlink_metadata(dest).is_ok() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists", dest.display()),
        )),
        Err(_) => std::fs::rename(tmp, dest),
    }
}

/// Removes `path` if it is there.
fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes an empty file at `path` with mode 0600 (owner only: a backup holds every user and
/// the tokens' digests), never through a link.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut new = OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new, 0o600);
    new.open(path)
}

/// Takes the temporary file `tmp` for this run: created with mode 0600 or, where a killed
/// run left one, opened (never through a link) and emptied. An OS lock on it, held while the
/// returned file is open, refuses a second run to the same name (`Ok(None)`) instead of
/// letting it remove the file under the first.
fn claim_temp(tmp: &Path) -> std::io::Result<Option<File>> {
    let file = match create_private(tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().write(true).open(tmp)?;
            dbfile::is_the_file_at(&file, tmp)?;
            file
        }
        other => other?,
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    // The run that held it may have given it its final name meanwhile.
    dbfile::is_the_file_at(&file, tmp)?;
    file.set_len(0)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(Some(file))
}

/// Writes a consistent copy of the database at `db` to `dest` while scimd may be serving it:
/// `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a compact
/// file under the temporary name `<dest>.partial`, which is checked, flushed and only then
/// given the name `dest`. A failure removes the temporary file; one left by a killed backup
/// is replaced by the next backup to the same name, and one a running backup holds makes a
/// second backup to that name refuse.
pub fn backup(db: &Path, dest: &Path) -> Result<Health> {
    if !db.is_file() {
        return Err(Error::NotFound(format!("no database at {}", db.display())));
    }
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(Error::InvalidValue(format!(
            "{} exists already; choose a new file",
            dest.display()
        )));
    }
    let tmp = with_suffix(dest, ".partial");
    let journal = with_suffix(&tmp, "-journal");
    let clean = || {
        let _ = remove_if_there(&tmp);
        let _ = remove_if_there(&journal);
    };
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    // Held until the end: cleaning up after a failure must not remove another run's file.
    let Some(_held) = claim_temp(&tmp).map_err(|e| {
        Error::InvalidValue(format!(
            "cannot write the backup {}: {e}; the directory {} must exist and be writable \
                 for this user",
            dest.display(),
            dir_of(dest).display()
        ))
    })?
    else {
        return Err(Error::InvalidValue(format!(
            "another backup to {} is running",
            dest.display()
        )));
    };
    let written = remove_if_there(&journal)
        .map_err(|e| io("cannot remove the journal of an earlier backup", e))
        .and_then(|()| write_backup(db, &tmp))
        .and_then(|health| {
            place_new(&tmp, dest)
                .and_then(|()| File::open(dir_of(dest))?.sync_all())
                .map_err(|e| io(&format!("cannot name the backup {}", dest.display()), e))?;
            Ok(health)
        });
    if written.is_err() {
        clean();
    }
    written
}

/// `VACUUM INTO` the empty file `tmp`, flushed to disk and checked.
fn write_backup(db: &Path, tmp: &Path) -> Result<Health> {
    vacuum_into(db, tmp)?;
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync {}: {e}", tmp.display())))?;
    let health = check(tmp)?;
    if !health.problems.is_empty() {
        return Err(Error::internal(format!(
            "the backup failed its check: {}",
            health.problems.join("; ")
        )));
    }
    Ok(health)
}

/// Writes one snapshot of the database at `db` (read through any `-wal` beside it) into the
/// empty file `target` with SQLite's `VACUUM INTO`. SQLite opens `target` without following
/// a link.
fn vacuum_into(db: &Path, target: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", db.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = target
        .to_str()
        .ok_or_else(|| Error::InvalidValue("the file's path must be valid UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

/// Gives the open file `to` the owner of `like`, and `mode` if given. Restore usually runs as
/// root, and the service's own user (systemd's DynamicUser, the container's non-root user)
/// must still be able to open what it leaves. Owners that already match are left alone, so
/// a restore by the database's owner needs no privilege. Works on the handle, never on a
/// path that could have been swapped for a link.
#[cfg(unix)]
fn take_owner(like: &std::fs::Metadata, to: &File, mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let have = to.metadata()?;
    if (like.uid(), like.gid()) != (have.uid(), have.gid()) {
        std::os::unix::fs::fchown(to, Some(like.uid()), Some(like.gid()))?;
    }
    if let Some(mode) = mode {
        to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn take_owner(_like: &std::fs::Metadata, _to: &File, _mode: Option<u32>) -> std::io::Result<()> {
    Ok(())
}

/// The permission bits of a file's metadata (0o600 where there are none to copy).
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o600
    }
}

/// Writes the backup `src` to `staged` beside the database with SQLite, so the copy holds
/// every commit the backup has, those still in a `-wal` beside it included (a snapshot of a
/// live folder); a byte copy of the main file would lose them. The copy is owned like `like`
/// (the database, or on a new machine its directory) with `mode`, flushed to disk, and
/// checked: what is put in place is what was checked. The lock file, if given, gets the
/// same owner.
fn stage(
    src: &Path,
    staged: &Path,
    like: &std::fs::Metadata,
    mode: u32,
    lock: Option<&ServerLock>,
    replaced_head: Option<i64>,
) -> Result<Health> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    // A leftover from an interrupted restore (or a link planted there) goes first.
    remove_if_there(staged)
        .and_then(|()| remove_if_there(&with_suffix(staged, "-journal")))
        .map_err(|e| io("cannot remove an old staged copy", e))?;
    let copy = create_private(staged).map_err(|e| io("cannot create the staged copy", e))?;
    vacuum_into(src, staged)?;
    new_event_history(staged, replaced_head)?;
    // Still the file created above, not one swapped in under the name meanwhile.
    dbfile::is_the_file_at(&copy, staged)
        .and_then(|()| take_owner(like, &copy, Some(mode)))
        .and_then(|()| lock.map_or(Ok(()), |lock| take_owner(like, lock.file(), None)))
        .map_err(|e| io("cannot give the copy the database's owner", e))?;
    copy.sync_all().map_err(|e| io("cannot sync the copy", e))?;
    let health = check(staged)?;
    if !health.problems.is_empty() {
        return Err(Error::InvalidValue(format!(
            "the copy of {} failed its check: {}",
            src.display(),
            health.problems.join("; ")
        )));
    }
    Ok(health)
}

/// Starts a new event history on a restored copy: a new history id
/// (`store::webhooks::epoch`), which receivers deduplicate deliveries by, and event seqs that
/// go on past `replaced_head` (the replaced database's newest event; `None` when unknown), so
/// no seq the lost history handed out is used again (`events::mark_restored`). A copy from
/// before migration 10 gets its first history id when it is migrated; one from before
/// migration 7 has no events yet.
fn new_event_history(staged: &Path, replaced_head: Option<i64>) -> Result<()> {
    let mut conn = Connection::open(staged)?;
    let tx = conn.transaction()?;
    if has_table(&tx, "settings")? {
        tx.execute(
            "UPDATE settings SET value = json_quote(lower(hex(randomblob(8))))
             WHERE key = 'feed_epoch'",
            [],
        )?;
        if has_table(&tx, "events")? {
            super::events::mark_restored(&tx, replaced_head)?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )?)
}

/// The newest event seq of the database a restore replaces, read before it is put aside:
/// `Some(0)` for one from before the events table (no feed position exists), `None` where it
/// cannot be read.
fn replaced_head(db: &Path) -> Option<i64> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    if !has_table(&conn, "events").ok()? {
        return Some(0);
    }
    super::events::head(&conn).ok()
}

/// Folds the WAL of the database at `db` into the file, so the file alone is complete; if
/// that cannot be done (a scimd command has it open), nothing is touched. `Ok(Some(why))`
/// where SQLite cannot read the file (not a database, or damaged): the case a restore is
/// for, so not an error.
fn checkpoint(db: &Path) -> Result<Option<String>> {
    // Read-only first: a read-write connection to a file it cannot read would, as it closes,
    // delete the `-wal` beside it (or fold it into the damaged file), and that is to be kept.
    let probe = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| {
        c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    if let Err(e) = probe
        && unreadable(&e)
    {
        return Ok(Some(e.to_string()));
    }
    let busy: i64 = match Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|old| old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)))
    {
        Ok(busy) => busy,
        Err(e) if unreadable(&e) => return Ok(Some(e.to_string())),
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot checkpoint the current database: {e}"
            )));
        }
    };
    if busy != 0 {
        return Err(in_use());
    }
    Ok(None)
}

/// Whether SQLite failed because the file is not a database or is damaged.
fn unreadable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn in_use() -> Error {
    Error::InvalidValue(
        "the current database is in use (a scimd command is running?): nothing was changed".into(),
    )
}

/// Holds the database file at `path` (by whatever name) so that no other connection can
/// read or write it until the returned connection is dropped: SQLite's exclusive locking
/// mode keeps its lock on the file, and with WAL uses no shared memory. Opened through the
/// name the old database is kept under, so what SQLite removes when it closes (the WAL named
/// after the path) is never a file of the database that took the old name.
fn hold(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
    // A scimd command that has it open for a moment is waited for, briefly.
    conn.busy_timeout(std::time::Duration::from_secs(1))?;
    match conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;") {
        Ok(()) => Ok(conn),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Err(in_use()),
        Err(e) => Err(Error::internal(format!(
            "cannot hold the current database: {e}"
        ))),
    }
}

/// Moves the `-wal`, `-shm` and `-journal` of the unreadable database `db` to the names
/// beside its kept copy `aside`, so they stay with it and never meet the restored file.
fn move_wal_aside(db: &Path, aside: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let (from, to) = (with_suffix(db, suffix), with_suffix(aside, suffix));
        if std::fs::symlink_metadata(&from).is_ok() {
            place_new(&from, &to).map_err(|e| {
                Error::internal(format!(
                    "cannot move {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Removes the `-wal`, `-shm` and `-journal` beside `db`; the WAL and the journal must hold
/// nothing: SQLite would apply either to whatever file comes to have the name `db`.
fn drop_empty_wal(db: &Path) -> Result<()> {
    let (wal, journal) = (with_suffix(db, "-wal"), with_suffix(db, "-journal"));
    for log in [&wal, &journal] {
        if std::fs::metadata(log).is_ok_and(|m| m.len() > 0) {
            return Err(Error::InvalidValue(format!(
                "{} holds writes not in {} (was it written during the restore, or is it left \
                 from a deleted database?): nothing was changed; move it away if it is not \
                 wanted",
                log.display(),
                db.display()
            )));
        }
    }
    for stale in [wal, with_suffix(db, "-shm"), journal] {
        remove_if_there(&stale)
            .map_err(|e| Error::internal(format!("cannot remove {}: {e}", stale.display())))?;
    }
    Ok(())
}

/// Gives the database at `db` a second name, `<db>.before-restore` or, if that is taken, the
/// first free `<db>.before-restore.N` (free with its `-wal`, `-shm`, `-journal` too): an
/// earlier one is never replaced. A hard link (nothing is copied; once the restored file
/// takes the name `db`, this is the old file's only name), or where links are not supported
/// a copy, written under a temporary name and flushed before it gets the name.
fn keep_aside(db: &Path, like: &std::fs::Metadata) -> Result<PathBuf> {
    const MOST: usize = 100;
    let taken = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    for n in 0..MOST {
        let aside = match n {
            0 => with_suffix(db, ".before-restore"),
            n => with_suffix(db, &format!(".before-restore.{n}")),
        };
        if ["-wal", "-shm", "-journal"]
            .iter()
            .any(|suffix| taken(&with_suffix(&aside, suffix)))
        {
            continue;
        }
        match std::fs::hard_link(db, &aside) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) if taken(&aside) => continue,
            Err(_) => {}
        }
        match copy_new(db, &aside, like) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::internal(format!("cannot keep the database: {e}"))),
        }
    }
    Err(Error::InvalidValue(format!(
        "{MOST} earlier {}.before-restore files are kept: remove old ones first",
        db.display()
    )))
}

/// Copies `db` to `dest`, which must not exist, owned like `like` with its mode: written
/// under the temporary name `<dest>.copying` and flushed before it gets the name, so `dest`
/// is never half a copy. A temporary file a killed copy left is replaced.
fn copy_new(db: &Path, dest: &Path, like: &std::fs::Metadata) -> std::io::Result<()> {
    let tmp = with_suffix(dest, ".copying");
    let copied = remove_if_there(&tmp)
        .and_then(|()| create_private(&tmp))
        .and_then(|mut copy| {
            std::io::copy(&mut File::open(db)?, &mut copy)?;
            take_owner(like, &copy, Some(mode_of(like)))?;
            copy.sync_all()
        })
        .and_then(|()| place_new(&tmp, dest));
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied
}

/// What `restore` did.
#[derive(Debug)]
pub struct Restored {
    /// The check of the backup.
    pub health: Health,
    /// The database's real path (links resolved).
    pub db: PathBuf,
    /// Where the replaced database is kept; `None` where there was none.
    pub kept: Option<PathBuf>,
    /// Why SQLite could not read the replaced database, where it could not: it is kept as
    /// it was, with its `-wal` and `-shm` moved beside the kept copy.
    pub damaged: Option<String>,
}

/// Replaces the database at `db` with the backup `src`, after checking the backup and that no
/// scimd is serving `db`. The backup is staged beside the database and put in place by one
/// rename, so a crash leaves the old database or the restored one. The replaced file is kept
/// as `<db>.before-restore` (numbered if one exists), also where SQLite cannot read it
/// (`Restored::damaged`). The restored file (and the lock file)
/// get the replaced database's owner and mode, or with no database yet, its directory's
/// owner and mode 0600. Links are resolved first: the real file is replaced.
pub fn restore(src: &Path, db: &Path) -> Result<Restored> {
    // Refused before anything is touched; the staged copy is checked again (`stage`).
    let health = check(src)?;
    if !health.problems.is_empty() {
        return Err(Error::InvalidValue(format!(
            "{} is not a sound scimd database: {}",
            src.display(),
            health.problems.join("; ")
        )));
    }
    match std::fs::metadata(db) {
        Ok(_) => replace(src, db),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => restore_new(src, db),
        Err(e) => Err(Error::InvalidValue(format!(
            "cannot read {}: {e}",
            db.display()
        ))),
    }
}

/// `restore` over an existing database. A database SQLite cannot read is replaced too (the
/// case a restore is for): kept aside as it is, with its `-wal` and `-shm`.
fn replace(src: &Path, db: &Path) -> Result<Restored> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    let lock = ServerLock::acquire(db)
        .map_err(|e| Error::InvalidValue(format!("stop scimd first: {e}")))?;
    let real = lock.path().to_path_buf();
    let like = std::fs::metadata(&real).map_err(|e| io("cannot read the database", e))?;
    let damaged = checkpoint(&real)?;
    let staged = with_suffix(&real, ".restoring");
    let abandon = |e: Error| {
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_file(with_suffix(&staged, "-journal"));
        e
    };
    // After the checkpoint, the file alone holds every event the replaced history has.
    let replaced = damaged.is_none().then(|| replaced_head(&real)).flatten();
    let health =
        stage(src, &staged, &like, mode_of(&like), Some(&lock), replaced).map_err(abandon)?;
    let aside = keep_aside(&real, &like).map_err(abandon)?;
    // From here until the rename, nothing may write the old database: a write would leave
    // a WAL of it beside the restored file. A damaged one cannot be written anyway.
    let held = match damaged {
        Some(_) => move_wal_aside(&real, &aside).map(|()| None),
        None => hold(&aside).and_then(|held| drop_empty_wal(&real).map(|()| Some(held))),
    };
    let held = match held {
        Ok(held) => held,
        Err(e) => {
            let _ = std::fs::remove_file(&aside);
            return Err(abandon(e));
        }
    };
    // The one step that changes what `real` is: atomic, whatever happens around it.
    if let Err(e) = std::fs::rename(&staged, &real) {
        let _ = std::fs::remove_file(&aside);
        return Err(abandon(io("cannot put the backup in place", e)));
    }
    File::open(dir_of(&real))
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory", e))?;
    drop(held);
    Ok(Restored {
        health,
        db: real,
        kept: Some(aside),
        damaged,
    })
}

/// `restore` where there is no database yet (a new machine): the staged copy gets the name
/// `db` only if nothing has it meanwhile.
fn restore_new(src: &Path, db: &Path) -> Result<Restored> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    if std::fs::symlink_metadata(db).is_ok() {
        return Err(Error::InvalidValue(format!(
            "{} is a symbolic link to a missing file: point it at the database, or pass the \
             database's own path",
            db.display()
        )));
    }
    let name = db
        .file_name()
        .ok_or_else(|| Error::InvalidValue(format!("{} names no file", db.display())))?;
    let dir = std::fs::canonicalize(dir_of(db))
        .map_err(|e| Error::InvalidValue(dbfile::advice(db, db, &e)))?;
    let real = dir.join(name);
    let like = std::fs::metadata(&dir).map_err(|e| io("cannot read the directory", e))?;
    // Serializes restores to this name, which share the staging name.
    let lock = ServerLock::acquire_new(&real)?;
    drop_empty_wal(&real)?;
    let staged = with_suffix(&real, ".restoring");
    // The replaced history (on the machine that was lost) is unknown: `None` jumps the seqs.
    let done = stage(src, &staged, &like, 0o600, Some(&lock), None).and_then(|health| {
        place_new(&staged, &real).map_err(|e| io("cannot put the backup in place", e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync the directory", e))?;
        Ok(health)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_file(with_suffix(&staged, "-journal"));
    }
    let health = done?;
    Ok(Restored {
        health,
        db: real,
        kept: None,
        damaged: None,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A copy of a live folder, as a snapshot or `cp -a` takes it: `snap.db` and its
    /// `snap.db-wal`, with `users` users whose commits are still only in the WAL.
    async fn live_copy(dir: &Path, users: usize) -> PathBuf {
        let live = dir.join("live.db");
        let store = crate::store::Store::open(&live).unwrap();
        for n in 0..users {
            let body = serde_json::json!({"userName": format!("user{n}")});
            crate::service::users::create(&store, body, &crate::service::audit::Actor::cli())
                .await
                .unwrap();
        }
        let snap = dir.join("snap.db");
        std::fs::copy(&live, &snap).unwrap();
        std::fs::copy(with_suffix(&live, "-wal"), with_suffix(&snap, "-wal")).unwrap();
        drop(store);
        assert!(std::fs::metadata(with_suffix(&snap, "-wal")).unwrap().len() > 0);
        snap
    }

    /// The commits in a `-wal` beside the backup are restored too, onto an existing database
    /// and onto none; what is reported is what was put in place.
    #[tokio::test]
    async fn a_backup_with_its_wal_is_restored_whole() {
        let dir = tempfile::TempDir::new().unwrap();
        let snap = live_copy(dir.path(), 5).await;
        let db = dir.path().join("scimd.db");
        drop(crate::store::Store::open(&db).unwrap());
        for target in [db, dir.path().join("new.db")] {
            let done = restore(&snap, &target).unwrap();
            assert_eq!(done.health.users, 5);
            let now = check(&target).unwrap();
            assert!(now.problems.is_empty(), "{now:?}");
            assert_eq!((now.users, now.schema_version), (5, migrate::LATEST));
        }
    }

    /// A restore runs as root in a directory the service's user may write: a link planted as
    /// the staged copy is replaced, not written through.
    #[test]
    fn a_planted_staging_link_is_not_followed() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        let outside = at("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let db = at("scimd.db");
        drop(crate::store::Store::open(&db).unwrap());
        backup(&db, &at("backup.db")).unwrap();
        std::os::unix::fs::symlink(&outside, at("scimd.db.restoring")).unwrap();
        restore(&at("backup.db"), &db).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(!at("scimd.db.restoring").exists());
        assert!(check(&db).unwrap().problems.is_empty());
    }

    /// A database SQLite cannot read is replaced (what a restore is for) and kept as it was,
    /// its WAL moved beside the kept copy: random bytes, a sound header over garbage, a
    /// truncated file.
    #[test]
    fn a_damaged_database_is_replaced_and_kept() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        let db = at("scimd.db");
        {
            let store = crate::store::Store::open(&at("source.db")).unwrap();
            crate::service::tokens::create(&store, "t").unwrap();
        }
        backup(&at("source.db"), &at("b.db")).unwrap();
        let sound = std::fs::read(at("b.db")).unwrap();
        assert!(sound.len() > 8192);
        let mut header_then_garbage = sound[..100].to_vec();
        header_then_garbage.resize(sound.len(), 0x5a);
        let damages: [(&str, Vec<u8>); 3] = [
            (
                "random",
                (0..9000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            ),
            ("header", header_then_garbage),
            ("truncated", sound[..sound.len() / 2].to_vec()),
        ];
        for (what, bytes) in damages {
            std::fs::write(&db, &bytes).unwrap();
            std::fs::write(with_suffix(&db, "-wal"), b"old wal").unwrap();
            let done = restore(&at("b.db"), &db).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(done.damaged.is_some(), "{what}");
            let kept = done.kept.unwrap();
            assert_eq!(std::fs::read(&kept).unwrap(), bytes, "{what}");
            assert_eq!(
                std::fs::read(with_suffix(&kept, "-wal")).ok().as_deref(),
                Some(&b"old wal"[..]),
                "{what}"
            );
            assert!(!with_suffix(&db, "-wal").exists(), "{what}");
            assert!(check(&db).unwrap().problems.is_empty(), "{what}");
        }
    }

    /// While a restore holds the old database (from its check for an empty WAL until after
    /// the rename), another process's write through the database's name waits and fails
    /// instead of leaving a WAL beside the restored file; closing the hold removes nothing
    /// beside that name.
    #[test]
    fn the_held_database_takes_no_writes() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        drop(crate::store::Store::open(&db).unwrap());
        assert_eq!(checkpoint(&db).unwrap(), None);
        let aside = dir.path().join("aside.db");
        std::fs::hard_link(&db, &aside).unwrap();
        let held = hold(&aside).unwrap();
        let other = Connection::open(&db).unwrap();
        other
            .busy_timeout(std::time::Duration::from_millis(100))
            .unwrap();
        let e = other.execute_batch("CREATE TABLE late(x)").unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        drop(other);
        // The refused writer may have created an empty WAL (depending on when it met the
        // lock), never one with frames: that is what restore checks for.
        let wal_len = std::fs::metadata(with_suffix(&db, "-wal")).map_or(0, |m| m.len());
        assert_eq!(wal_len, 0, "no frames in a WAL beside the held database");
        assert!(matches!(hold(&db), Err(Error::InvalidValue(_))), "in use");
        std::fs::write(with_suffix(&db, "-wal"), b"").unwrap();
        drop(held);
        assert!(with_suffix(&db, "-wal").exists());
    }

    /// A rollback journal left by a deleted database would be rolled back into the restored
    /// file: a restore onto that name refuses and changes nothing.
    #[test]
    fn a_deleted_databases_journal_blocks_a_restore() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        drop(crate::store::Store::open(&at("source.db")).unwrap());
        backup(&at("source.db"), &at("b.db")).unwrap();
        std::fs::write(at("new.db-journal"), vec![1u8; 4096]).unwrap();
        let e = restore(&at("b.db"), &at("new.db")).unwrap_err().to_string();
        assert!(e.contains("new.db-journal"), "{e}");
        assert!(!at("new.db").exists() && !at("new.db.restoring").exists());
        std::fs::remove_file(at("new.db-journal")).unwrap();
        restore(&at("b.db"), &at("new.db")).unwrap();
    }

    /// Two backups to one name, or two restores onto one new name, share a temporary name:
    /// the second refuses instead of removing the first one's file.
    #[test]
    fn concurrent_runs_do_not_share_a_temporary_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        drop(crate::store::Store::open(&at("scimd.db")).unwrap());
        let running = claim_temp(&at("b.db.partial")).unwrap().unwrap();
        std::fs::write(at("b.db.partial"), "being written").unwrap();
        let e = backup(&at("scimd.db"), &at("b.db"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another backup"), "{e}");
        assert_eq!(std::fs::read(at("b.db.partial")).unwrap(), b"being written");
        drop(running);
        backup(&at("scimd.db"), &at("b.db")).unwrap();

        let real = std::fs::canonicalize(dir.path()).unwrap().join("new.db");
        let restoring = ServerLock::acquire_new(&real).unwrap();
        assert!(restore(&at("b.db"), &at("new.db")).is_err());
        assert!(!real.exists());
        drop(restoring);
        restore(&at("b.db"), &at("new.db")).unwrap();
    }

    /// The copy that keeps the old database where links are not supported is whole under its
    /// name or not there: an existing name is never replaced, a leftover temporary is.
    #[test]
    fn the_kept_copy_is_named_only_when_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("scimd.db"), vec![9u8; 100_000]).unwrap();
        std::fs::set_permissions(at("scimd.db"), PermissionsExt::from_mode(0o640)).unwrap();
        let like = std::fs::metadata(at("scimd.db")).unwrap();
        std::fs::write(at("kept.copying"), "left by a killed copy").unwrap();
        copy_new(&at("scimd.db"), &at("kept"), &like).unwrap();
        assert_eq!(std::fs::read(at("kept")).unwrap(), vec![9u8; 100_000]);
        let mode = std::fs::metadata(at("kept")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(!at("kept.copying").exists());
        let e = copy_new(&at("scimd.db"), &at("kept"), &like).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        std::fs::write(at("other"), "earlier").unwrap();
        assert!(copy_new(&at("scimd.db"), &at("other"), &like).is_err());
        assert_eq!(std::fs::read(at("other")).unwrap(), b"earlier");
        assert!(!at("other.copying").exists());
    }

    /// Each restore keeps the database it replaces under a name of its own; with no database
    /// there, nothing is said to be kept.
    #[test]
    fn earlier_copies_are_never_replaced() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        let db = at("scimd.db");
        let backup_file = at("backup.db");
        drop(crate::store::Store::open(&at("source.db")).unwrap());
        backup(&at("source.db"), &backup_file).unwrap();

        let first = restore(&backup_file, &db).unwrap();
        assert!(first.kept.is_none());
        let mut kept = Vec::new();
        for _ in 0..3 {
            kept.push(restore(&backup_file, &db).unwrap().kept.unwrap());
        }
        assert_eq!(
            kept,
            [".before-restore", ".before-restore.1", ".before-restore.2"]
                .map(|s| with_suffix(&std::fs::canonicalize(&db).unwrap(), s))
        );
        for file in kept.iter().chain([&db]) {
            assert!(check(file).unwrap().problems.is_empty(), "{file:?}");
            assert!(!with_suffix(file, "-wal").exists(), "{file:?}");
            assert_eq!(
                std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(file).unwrap()),
                1
            );
        }
    }

    /// A backup that fails leaves nothing behind, and the next one to the same name works.
    #[test]
    fn a_failed_backup_leaves_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("not-a-db"), vec![7u8; 8192]).unwrap();
        assert!(backup(&at("not-a-db"), &at("b.db")).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(crate::store::Store::open(&at("scimd.db")).unwrap());
        // As a killed backup leaves them.
        std::fs::write(at("b.db.partial"), "half").unwrap();
        std::fs::write(at("b.db.partial-journal"), "half").unwrap();
        backup(&at("scimd.db"), &at("b.db")).unwrap();
        assert!(!at("b.db.partial").exists() && !at("b.db.partial-journal").exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(at("b.db")).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
