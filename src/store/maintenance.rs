//! Keeping the one file safe: an online backup, an integrity check, a restore, and the lock a
//! serving scimd holds so that a restore (or a second server) cannot pull the database from
//! under it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::migrate;
use crate::error::{Error, Result};

/// The lock file beside the database: `scimd.db` → `scimd.db.lock`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Held by a serving scimd for as long as it runs (an OS file lock, released even if the
/// process is killed).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    /// Takes the lock, or fails if another scimd is serving this database.
    pub fn acquire(db: &Path) -> Result<ServerLock> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::internal(format!(
                "another scimd is serving {} (it holds {})",
                db.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::internal(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

/// What `check` found: `problems` is empty for a sound database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub schema_version: usize,
    pub users: i64,
    pub groups: i64,
    pub problems: Vec<String>,
}

/// Checks the database at `path` without changing it: SQLite's integrity check, foreign keys,
/// and a schema this scimd knows.
pub fn check(path: &Path) -> Result<Health> {
    if !path.is_file() {
        return Err(Error::NotFound(format!(
            "no database at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
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
    let schema_version = migrate::version(&conn)?;
    if schema_version > migrate::LATEST {
        problems.push(format!(
            "schema version {schema_version} is newer than this scimd ({})",
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

/// Writes a consistent copy of the database at `db` to `dest` while scimd may be serving it:
/// `VACUUM INTO` reads one snapshot (WAL readers never block the writer) and writes a compact
/// file, which is then checked.
pub fn backup(db: &Path, dest: &Path) -> Result<Health> {
    if dest.exists() {
        return Err(Error::InvalidValue(format!(
            "{} exists already; choose a new file",
            dest.display()
        )));
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", db.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = dest
        .to_str()
        .ok_or_else(|| Error::InvalidValue("the backup path must be valid UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync {}: {e}", dest.display())))?;
    let health = check(dest)?;
    if !health.problems.is_empty() {
        return Err(Error::internal(format!(
            "the backup failed its check: {}",
            health.problems.join("; ")
        )));
    }
    Ok(health)
}

/// Gives `to` the owner of `like` and, with `mode`, its permissions. Restore usually runs as
/// root, and the service's own user (systemd's DynamicUser, the container's non-root user)
/// must still be able to open what it leaves. Owners that already match are left alone, so
/// a restore by the database's owner needs no privilege.
#[cfg(unix)]
fn take_owner(like: &Path, to: &Path, mode: bool) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(like)?;
    let have = std::fs::metadata(to)?;
    if (want.uid(), want.gid()) != (have.uid(), have.gid()) {
        std::os::unix::fs::chown(to, Some(want.uid()), Some(want.gid()))?;
    }
    if mode {
        std::fs::set_permissions(to, want.permissions())?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn take_owner(_like: &Path, _to: &Path, _mode: bool) -> std::io::Result<()> {
    Ok(())
}

/// The second half of `restore`: `staged` is a checked copy of the backup beside `db`.
fn swap_in(db: &Path, staged: &Path, with_suffix: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let owner = if db.exists() { db } else { dir };
    take_owner(owner, staged, db.exists())
        .and_then(|()| take_owner(owner, &lock_path(db), false))
        .map_err(|e| io("cannot give the copy the database's owner", e))?;
    File::open(staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync the copy", e))?;
    if db.exists() {
        // Fold the old WAL into the old file first, so what is kept aside is complete.
        if let Ok(old) = Connection::open(db) {
            let _ = old.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        }
        std::fs::rename(db, with_suffix(".before-restore"))
            .map_err(|e| io("cannot set the current database aside", e))?;
    }
    for stale in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(stale));
    }
    std::fs::rename(staged, db).map_err(|e| io("cannot put the backup in place", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory", e))
}

/// Replaces the database at `db` with the backup `src`, after checking the backup and that no
/// scimd is serving `db`. The replaced file is kept beside it as `<db>.before-restore`. The
/// restored file (and the lock file) get the replaced database's owner and mode, or with no
/// database yet, its directory's owner.
pub fn restore(src: &Path, db: &Path) -> Result<Health> {
    let health = check(src)?;
    if !health.problems.is_empty() {
        return Err(Error::InvalidValue(format!(
            "{} is not a sound scimd database: {}",
            src.display(),
            health.problems.join("; ")
        )));
    }
    let _lock = ServerLock::acquire(db)
        .map_err(|e| Error::InvalidValue(format!("stop scimd first: {e}")))?;
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let staged = with_suffix(".restoring");
    std::fs::copy(src, &staged).map_err(|e| io("cannot copy the backup", e))?;
    let swapped = swap_in(db, &staged, &with_suffix);
    if swapped.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    swapped?;
    Ok(health)
}
