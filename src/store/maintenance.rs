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
    file: File,
}

impl ServerLock {
    /// Takes the lock, or fails if another scimd is serving this database.
    pub fn acquire(db: &Path) -> Result<ServerLock> {
        let path = lock_path(db);
        let file = open_own_file(&path)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { file }),
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

/// Opens `path` for writing, creating it if missing, but never through a symbolic link: the
/// directory may belong to the service's user while a restore runs as root, and root must not
/// be led into creating or handing over a file elsewhere.
fn open_own_file(path: &Path) -> std::io::Result<File> {
    // Creating with O_EXCL never follows a link.
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().write(true).open(path)?;
            is_the_file_at(&file, path)?;
            Ok(file)
        }
        other => other,
    }
}

/// Fails unless `path` is a plain file (not a link) and the very file `file` has open.
#[cfg(unix)]
fn is_the_file_at(file: &File, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let opened = file.metadata()?;
    let here = std::fs::symlink_metadata(path)?;
    if here.file_type().is_symlink() || (opened.dev(), opened.ino()) != (here.dev(), here.ino()) {
        return Err(std::io::Error::other(format!(
            "{} is not a plain file",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn is_the_file_at(_file: &File, _path: &Path) -> std::io::Result<()> {
    Ok(())
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
    // Names kept through migration 3 that are one name under the Unicode key.
    if (migrate::IDENTIFIER_KEYS..=migrate::LATEST).contains(&schema_version) {
        for found in [
            super::users::key_collisions(&conn),
            super::groups::key_collisions(&conn),
        ] {
            match found {
                Ok(lines) => problems.extend(lines),
                Err(e) => problems.push(format!("cannot compare names: {e}")),
            }
        }
    }
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

/// Copies the backup to `staged` beside the database, owned like the database (or, on a new
/// machine, like its directory, with mode 0600), and flushed to disk.
fn stage(src: &Path, staged: &Path, db: &Path, dir: &Path, lock: &ServerLock) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    // A leftover from an interrupted restore (or a link planted there) goes first.
    match std::fs::remove_file(staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("cannot remove an old staged copy", e));
        }
        _ => {}
    }
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(staged)
        .map_err(|e| io("cannot create the staged copy", e))?;
    std::io::copy(
        &mut File::open(src).map_err(|e| io("cannot read the backup", e))?,
        &mut copy,
    )
    .map_err(|e| io("cannot copy the backup", e))?;
    let (like, mode) = match std::fs::symlink_metadata(db) {
        Ok(meta) => {
            let mode = mode_of(&meta);
            (meta, mode)
        }
        Err(_) => (
            std::fs::metadata(dir).map_err(|e| io("cannot read the directory", e))?,
            0o600,
        ),
    };
    take_owner(&like, &copy, Some(mode))
        .and_then(|()| take_owner(&like, &lock.file, None))
        .map_err(|e| io("cannot give the copy the database's owner", e))?;
    copy.sync_all().map_err(|e| io("cannot sync the copy", e))
}

/// Puts `staged` in place of `db`, keeping the current database as `<db>.before-restore`.
/// If the last step fails, the current database goes back where it was.
fn swap_in(
    db: &Path,
    staged: &Path,
    dir: &Path,
    with_suffix: &dyn Fn(&str) -> PathBuf,
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::internal(format!("{what}: {e}"));
    let aside = with_suffix(".before-restore");
    let had_db = db.exists();
    if had_db {
        // Fold the WAL into the file first, so what is kept aside is complete; if that cannot
        // be done, nothing is touched.
        let busy: i64 = Connection::open(db)
            .and_then(|old| old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)))
            .map_err(|e| Error::internal(format!("cannot checkpoint the current database: {e}")))?;
        if busy != 0 {
            return Err(Error::InvalidValue(
                "the current database is in use (a scimd command is running?): nothing was changed"
                    .into(),
            ));
        }
        std::fs::rename(db, &aside).map_err(|e| io("cannot set the current database aside", e))?;
    }
    for stale in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(stale));
    }
    if let Err(e) = std::fs::rename(staged, db) {
        if had_db {
            let _ = std::fs::rename(&aside, db);
        }
        return Err(io("cannot put the backup in place", e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory", e))
}

/// Replaces the database at `db` with the backup `src`, after checking the backup and that no
/// scimd is serving `db`. The replaced file is kept beside it as `<db>.before-restore`. The
/// restored file (and the lock file) get the replaced database's owner and mode, or with no
/// database yet, its directory's owner and mode 0600.
pub fn restore(src: &Path, db: &Path) -> Result<Health> {
    let health = check(src)?;
    if !health.problems.is_empty() {
        return Err(Error::InvalidValue(format!(
            "{} is not a sound scimd database: {}",
            src.display(),
            health.problems.join("; ")
        )));
    }
    let lock = ServerLock::acquire(db)
        .map_err(|e| Error::InvalidValue(format!("stop scimd first: {e}")))?;
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staged = with_suffix(".restoring");
    let done =
        stage(src, &staged, db, dir, &lock).and_then(|()| swap_in(db, &staged, dir, &with_suffix));
    if done.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    done?;
    Ok(health)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A restore runs as root in a directory the service's user may write: links planted as
    /// the lock file or the staged copy must not make it create, write or hand over anything
    /// elsewhere.
    #[test]
    fn planted_links_are_not_followed() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        let outside = at("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let db = at("scimd.db");

        // A link as the lock file, to a missing file and to an existing one.
        std::os::unix::fs::symlink(at("created-by-root"), lock_path(&db)).unwrap();
        assert!(ServerLock::acquire(&db).is_err());
        assert!(!at("created-by-root").exists());
        std::fs::remove_file(lock_path(&db)).unwrap();
        std::os::unix::fs::symlink(&outside, lock_path(&db)).unwrap();
        assert!(ServerLock::acquire(&db).is_err());
        std::fs::remove_file(lock_path(&db)).unwrap();

        // A link as the staged copy is replaced, not written through.
        drop(crate::store::Store::open(&db).unwrap());
        backup(&db, &at("backup.db")).unwrap();
        std::os::unix::fs::symlink(&outside, at("scimd.db.restoring")).unwrap();
        restore(&at("backup.db"), &db).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(!at("scimd.db.restoring").exists());
        assert!(check(&db).unwrap().problems.is_empty());
    }
}
