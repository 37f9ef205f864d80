//! The database file itself, known by what it is rather than by the name it was reached
//! through: creating it (mode 0600, only where nothing of a database is), the lock a serving
//! scimd holds for it (links resolved, so another name of the file is the same database), and
//! the watch that notices the file being deleted or replaced under a running server.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// `db` with `suffix` appended to its file name: `scimd.db` → `scimd.db-wal`.
pub fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A person's words for `e`, met creating or opening `file` (the database `db` or a file
/// scimd keeps beside it: `-wal`, `-shm`, `.lock`): the problem and the fix, naming the
/// directory when that is what is wrong (it is missing, or this user may not write it).
pub fn advice(db: &Path, file: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let dir = dir_of(db);
    let who = this_user();
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory if !dir.is_dir() => format!(
            "the directory {} does not exist: create it (`mkdir -p {}`), or pass a database \
             path in an existing directory with --db (SCIMD_DB)",
            dir.display(),
            dir.display()
        ),
        ErrorKind::ReadOnlyFilesystem => format!(
            "{} is on a read-only file system: put the database where scimd may write, with \
             --db (SCIMD_DB)",
            dir.display()
        ),
        ErrorKind::PermissionDenied if std::fs::symlink_metadata(file).is_ok() => format!(
            "{} is read-only for {who} ({e}): scimd must write it. Let that user write it \
             (`chown` it to the user scimd runs as, or `chmod u+w` if that user owns it), \
             or run scimd as its owner",
            file.display()
        ),
        ErrorKind::PermissionDenied => format!(
            "the directory {} is read-only for {who} ({e}): scimd keeps {} beside the \
             database there. Let that user write the directory (`chown` it to the user scimd \
             runs as), or put the database in a directory it may write, with --db (SCIMD_DB)",
            dir.display(),
            file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into()
            ),
        ),
        _ => format!("cannot open {}: {e}", file.display()),
    }
}

/// "this user (uid N)", for messages about permissions.
fn this_user() -> String {
    #[cfg(unix)]
    {
        // The effective uid, second on the `Uid:` line.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_string));
        if let Some(uid) = uid {
            return format!("this user (uid {uid})");
        }
    }
    "this user".into()
}

/// Why scimd could not write the database at `db` and the files beside it, if that is so:
/// the database, or an existing `-wal` or `-shm`, not writable, or (when one of those is still
/// to be made) the directory. For the message when SQLite fails or opens the file read-only:
/// SQLite itself says only "attempt to write a readonly database". Probing the directory
/// creates and removes one file beside the database.
pub fn unwritable(db: &Path) -> Option<String> {
    use std::io::ErrorKind;
    let refused = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
        )
    };
    let mut missing = false;
    for file in [
        db.to_path_buf(),
        with_suffix(db, "-wal"),
        with_suffix(db, "-shm"),
    ] {
        match OpenOptions::new().write(true).open(&file) {
            Ok(_) => {}
            Err(e) if refused(&e) => return Some(advice(db, &file, &e)),
            Err(_) => missing = true,
        }
    }
    if missing {
        let probe = with_suffix(db, &format!(".probe-{}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) if refused(&e) => return Some(advice(db, &with_suffix(db, "-wal"), &e)),
            Err(_) => {}
        }
    }
    None
}

/// Files of an earlier database beside a missing `db`: what an interrupted restore leaves
/// (`.restoring`, `.before-restore`, numbered ones too) and a WAL or rollback journal whose
/// database is gone (SQLite would apply either to whatever file next has the name `db`).
pub fn leftovers(db: &Path) -> Vec<PathBuf> {
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let aside = format!("{name}.before-restore");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir_of(db))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&aside))
                .map(|n| dir_of(db).join(n))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    for suffix in [".restoring", "-wal", "-journal"] {
        let path = with_suffix(db, suffix);
        if std::fs::symlink_metadata(&path).is_ok() {
            found.push(path);
        }
    }
    found
}

/// Creates an empty database file at `db` (mode 0600) if there is none; `Ok(true)` if it did.
/// Refuses where files of an earlier database are left beside the missing one: starting
/// afresh there would hide them behind an empty database.
pub fn create(db: &Path) -> Result<bool> {
    match std::fs::metadata(db) {
        Ok(meta) if meta.is_file() => return Ok(false),
        Ok(_) => {
            return Err(Error::InvalidValue(format!(
                "{} is not a database file",
                db.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::InvalidValue(advice(db, db, &e))),
    }
    if std::fs::symlink_metadata(db).is_ok() {
        return Err(Error::InvalidValue(format!(
            "{} is a symbolic link to a missing file: point it at the database, or pass the \
             database's own path",
            db.display()
        )));
    }
    let left = leftovers(db);
    if !left.is_empty() {
        return Err(Error::InvalidValue(leftovers_advice(db, &left)));
    }
    let mut new = OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new, 0o600);
    match new.open(db) {
        Ok(_) => Ok(true),
        // Another process made it first: that one is the database now.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::InvalidValue(format!(
            "cannot create {}: {}",
            db.display(),
            advice(db, db, &e)
        ))),
    }
}

/// What `serve` says when `db` is missing and `left` (its `leftovers`) are beside it. The
/// WAL, shared memory and journal of the deleted database go first in every way out: SQLite
/// would apply that WAL or journal to the file moved into place, and corrupt it.
fn leftovers_advice(db: &Path, left: &[PathBuf]) -> String {
    let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
    let stale: Vec<String> = ["-wal", "-shm", "-journal"]
        .into_iter()
        .map(|suffix| with_suffix(db, suffix))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| format!("mv {} {}.deleted", p.display(), p.display()))
        .collect();
    let first = if stale.is_empty() {
        String::new()
    } else {
        format!(
            "First, in every case, move aside what the deleted database left (SQLite would \
             apply it to the file put in place and corrupt it): `{}`. Then: ",
            stale.join(" && ")
        )
    };
    format!(
        "no database at {db}, but files of an earlier one are beside it: {names}. An \
         interrupted `scimd restore` (or a database deleted by hand) leaves these; nothing was \
         created. {first}to go back to the database from before a restore: `mv \
         {db}.before-restore {db}`. To restore a backup: `scimd restore BACKUP --db {db}`. To \
         start with a new, empty database, move these files elsewhere first.",
        db = db.display(),
        names = names.join(", ")
    )
}

/// Refuses a database file with more than one name. SQLite keeps the WAL beside the name it
/// was opened by, so two names (hard links) of one file give it two WALs, and writes through
/// both corrupt it; and the server lock, kept beside the name, could not see the other one.
pub fn single_name(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let links = std::fs::metadata(db)
            .map_err(|e| Error::InvalidValue(format!("cannot read {}: {e}", db.display())))?
            .nlink();
        if links > 1 {
            // Killed between its two steps, a restore leaves the old database's second name.
            if let Some(other) = leftovers(db)
                .into_iter()
                .find(|p| identity(p).is_ok_and(|id| identity(db).is_ok_and(|db| db == id)))
            {
                // `.restoring` is the restored file's staging name (a restore onto no
                // database, killed as it named it); `.before-restore` the old database's.
                let state = if other == with_suffix(db, ".restoring") {
                    "the database is the restored one"
                } else {
                    "the database is as it was before the restore"
                };
                return Err(Error::InvalidValue(format!(
                    "{} is also named {}: an interrupted `scimd restore` left that name, and \
                     {state}. Remove {} (`rm` removes only that name), then start again",
                    db.display(),
                    other.display(),
                    other.display()
                )));
            }
            return Err(Error::InvalidValue(format!(
                "{} has {links} names (hard links): SQLite would keep a WAL for each name and \
                 corrupt the database; remove the other names and use this one",
                db.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// What a file is, whatever name leads to it: device and inode (links followed).
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        Ok((0, u64::from(meta.is_file())))
    }
}

/// Held by a serving scimd (and by a restore) for as long as it runs: an OS lock, released
/// even if the process is killed, on `<db>.lock` beside the database's real path (symbolic
/// links resolved, hard links refused), so every name of the file leads to the same lock.
///
/// Not a lock on the database file itself: SQLite's own locks on it are POSIX locks, which
/// the process loses whenever any other descriptor of that file is closed.
#[derive(Debug)]
pub struct ServerLock {
    file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Takes the lock for the existing database at `db`, or fails if another scimd is
    /// serving or restoring it.
    pub fn acquire(db: &Path) -> Result<ServerLock> {
        let path = std::fs::canonicalize(db)
            .map_err(|e| Error::InvalidValue(format!("cannot open {}: {e}", db.display())))?;
        single_name(&path)?;
        ServerLock::lock(path, db)
    }

    /// Takes the lock for `real`, a database path with links resolved where no database is
    /// yet (a restore onto a new machine), or fails if another scimd holds it.
    pub fn acquire_new(real: &Path) -> Result<ServerLock> {
        ServerLock::lock(real.to_path_buf(), real)
    }

    fn lock(path: PathBuf, given: &Path) -> Result<ServerLock> {
        let lock = with_suffix(&path, ".lock");
        let file =
            open_own_file(&lock).map_err(|e| Error::InvalidValue(advice(&path, &lock, &e)))?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InvalidValue(format!(
                "another scimd is serving or restoring {} (it holds {}; {} is that file): \
                 stop that one first (`systemctl stop scimd`, Ctrl-C in its terminal), \
                 or give this one another database with --db (SCIMD_DB). Commands such as \
                 `scimd token create` work beside a running server",
                path.display(),
                lock.display(),
                given.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::InvalidValue(format!(
                "cannot lock {}: {e}",
                lock.display()
            ))),
        }
    }

    /// The database's real path: symbolic links resolved.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Whether a scimd serves (or restores) the database at `db` now: its `ServerLock` is held.
/// Creates nothing (a command run as root must not leave a lock file the service's user
/// cannot open): no lock file means no server.
pub fn served(db: &Path) -> Result<bool> {
    let path = std::fs::canonicalize(db)
        .map_err(|e| Error::InvalidValue(format!("cannot open {}: {e}", db.display())))?;
    let lock = with_suffix(&path, ".lock");
    let file = match File::open(&lock) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::InvalidValue(format!(
                "cannot open {}: {e}",
                lock.display()
            )));
        }
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::InvalidValue(format!(
            "cannot lock {}: {e}",
            lock.display()
        ))),
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
pub(crate) fn is_the_file_at(file: &File, path: &Path) -> std::io::Result<()> {
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
pub(crate) fn is_the_file_at(_file: &File, _path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Notices the database file being deleted or replaced under an open `Store`: a server would
/// otherwise go on acknowledging writes into a file nobody can open again. Compares device
/// and inode by path; it holds no descriptor of the file (see `ServerLock`).
#[derive(Debug)]
pub struct Watch {
    path: PathBuf,
    id: (u64, u64),
    gone: AtomicBool,
}

/// What every write (and `/healthz`) answers once the file was seen gone.
fn gone() -> Error {
    Error::Unavailable(
        "the database is unavailable: scimd is read-only until it is restarted".into(),
    )
}

impl Watch {
    /// Watches the file at `path` as it is now.
    pub fn new(path: &Path) -> Result<Watch> {
        let id = identity(path)
            .map_err(|e| Error::internal(format!("cannot read {}: {e}", path.display())))?;
        Ok(Watch {
            path: path.to_path_buf(),
            id,
            gone: AtomicBool::new(false),
        })
    }

    /// `Err` once `check` found the file gone; no look at the file now.
    pub fn seen_gone(&self) -> Result<()> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(gone());
        }
        Ok(())
    }

    /// `Ok` while `path` still leads to the file there at start. Once it does not (the name
    /// is gone, or leads to another file), this says so for good, and logs it once. Any
    /// other failure to look (`ESTALE` or `EIO` on a network file system, `EINTR` on FUSE)
    /// fails this one call, logged, and trips nothing: it says nothing about the file.
    pub fn check(&self) -> Result<()> {
        if !self.gone.load(Ordering::SeqCst) {
            match identity(&self.path) {
                Ok(id) if id == self.id => return Ok(()),
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(
                        db = %self.path.display(),
                        error = %e,
                        "cannot look at the database file: this write is refused (503); scimd \
                         stays writable"
                    );
                    return Err(Error::Unavailable(format!(
                        "cannot look at the database file ({e}): try again"
                    )));
                }
                _ => {}
            }
        }
        if !self.gone.swap(true, Ordering::SeqCst) {
            tracing::error!(
                db = %self.path.display(),
                "the database file was deleted or replaced while scimd was serving it: scimd \
                 is now read-only (writes and /healthz answer 503); put the file back or \
                 `scimd restore` a backup, then restart scimd"
            );
        }
        Err(gone())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_0600_and_refuses_beside_leftovers() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        assert!(create(&db).unwrap());
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!create(&db).unwrap(), "an existing file is left alone");

        let other = dir.path().join("other.db");
        for leftover in [
            "other.db.before-restore.2",
            "other.db.restoring",
            "other.db-wal",
            "other.db-journal",
        ] {
            std::fs::write(dir.path().join(leftover), "x").unwrap();
            let e = create(&other).unwrap_err().to_string();
            assert!(e.contains(leftover) && e.contains("scimd restore"), "{e}");
            assert!(!other.exists());
            std::fs::remove_file(dir.path().join(leftover)).unwrap();
        }
        // Leftovers of another database's name do not count.
        std::fs::write(dir.path().join("scimd.db.restoring"), "x").unwrap();
        assert!(create(&other).unwrap());
    }

    /// The way back from a deleted database's leftovers moves its WAL (and shared memory,
    /// and journal) aside before anything else: following the advice gives the database
    /// from before the restore, with everything in it.
    #[test]
    fn the_advice_moves_a_deleted_databases_wal_first() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        let at = |suffix: &str| with_suffix(&db, suffix);
        {
            let old = rusqlite::Connection::open(&db).unwrap();
            old.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES ('kept');",
            )
            .unwrap();
        }
        std::fs::rename(&db, at(".before-restore")).unwrap();
        {
            // The deleted database: its WAL still holds a commit.
            let deleted = rusqlite::Connection::open(&db).unwrap();
            deleted
                .execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                     CREATE TABLE other(y); INSERT INTO other VALUES (1);",
                )
                .unwrap();
            std::fs::copy(at("-wal"), dir.path().join("wal")).unwrap();
        }
        std::fs::remove_file(&db).unwrap();
        std::fs::rename(dir.path().join("wal"), at("-wal")).unwrap();
        let advice = create(&db).unwrap_err().to_string();
        let first = format!(
            "mv {} {}.deleted",
            at("-wal").display(),
            at("-wal").display()
        );
        let back = format!("mv {} {}", at(".before-restore").display(), db.display());
        let (Some(first), Some(back)) = (advice.find(&first), advice.find(&back)) else {
            panic!("{advice}");
        };
        assert!(first < back, "{advice}");
        std::fs::rename(at("-wal"), with_suffix(&at("-wal"), ".deleted")).unwrap();
        std::fs::rename(at(".before-restore"), &db).unwrap();
        let kept: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "kept");
    }

    #[test]
    fn a_dangling_link_is_not_followed_to_create() {
        let dir = tempfile::TempDir::new().unwrap();
        let link = dir.path().join("scimd.db");
        std::os::unix::fs::symlink(dir.path().join("elsewhere.db"), &link).unwrap();
        assert!(create(&link).is_err());
        assert!(!dir.path().join("elsewhere.db").exists());
    }

    #[test]
    fn the_lock_holds_through_links() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        create(&db).unwrap();
        let held = ServerLock::acquire(&db).unwrap();
        let sym = dir.path().join("sym.db");
        std::os::unix::fs::symlink(&db, &sym).unwrap();
        assert!(ServerLock::acquire(&sym).is_err());
        assert_eq!(held.path(), std::fs::canonicalize(&db).unwrap());
        drop(held);
        let through_link = ServerLock::acquire(&sym).unwrap();
        assert_eq!(through_link.path(), std::fs::canonicalize(&db).unwrap());
        drop(through_link);
        std::fs::hard_link(&db, dir.path().join("hard.db")).unwrap();
        let e = ServerLock::acquire(&db).unwrap_err().to_string();
        assert!(e.contains("hard links"), "{e}");
        std::fs::remove_file(dir.path().join("hard.db")).unwrap();
        // The second name a restore killed half-way leaves is named, with what to do.
        let aside = dir.path().join("scimd.db.before-restore");
        std::fs::hard_link(&db, &aside).unwrap();
        let e = ServerLock::acquire(&db).unwrap_err().to_string();
        assert!(e.contains(&format!("Remove {}", aside.display())), "{e}");
        assert!(e.contains("as it was before the restore"), "{e}");
        std::fs::remove_file(&aside).unwrap();
        // A restore onto no database, killed as it named the staged copy.
        let staged = dir.path().join("scimd.db.restoring");
        std::fs::hard_link(&db, &staged).unwrap();
        let e = ServerLock::acquire(&db).unwrap_err().to_string();
        assert!(
            e.contains("the restored one") && e.contains("Remove"),
            "{e}"
        );
    }

    /// A restore runs as root in a directory the service's user may write: a link planted as
    /// the lock file must not make it create or write anything elsewhere.
    #[test]
    fn a_planted_lock_link_is_not_followed() {
        let dir = tempfile::TempDir::new().unwrap();
        let at = |name: &str| dir.path().join(name);
        let outside = at("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let db = at("scimd.db");
        create(&db).unwrap();
        let lock = with_suffix(&std::fs::canonicalize(&db).unwrap(), ".lock");
        std::os::unix::fs::symlink(at("created-by-root"), &lock).unwrap();
        assert!(ServerLock::acquire(&db).is_err());
        assert!(!at("created-by-root").exists());
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(&outside, &lock).unwrap();
        assert!(ServerLock::acquire(&db).is_err());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
    }

    #[test]
    fn the_watch_sees_the_file_go_and_stays_tripped() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        create(&db).unwrap();
        let watch = Watch::new(&db).unwrap();
        assert!(watch.check().is_ok());
        std::fs::rename(&db, dir.path().join("moved.db")).unwrap();
        std::fs::write(&db, "another file").unwrap();
        assert!(matches!(watch.check(), Err(Error::Unavailable(_))));
        std::fs::remove_file(&db).unwrap();
        std::fs::rename(dir.path().join("moved.db"), &db).unwrap();
        assert!(watch.check().is_err(), "once tripped, until restarted");
    }

    /// A failure to look at the file that is not its absence (here `ELOOP`, standing in for
    /// `ESTALE`/`EIO`/`EINTR`) fails that one check and trips nothing.
    #[test]
    fn a_one_off_stat_error_does_not_trip_the_watch() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("real"), &link).unwrap();
        let db = link.join("scimd.db");
        create(&db).unwrap();
        let watch = Watch::new(&db).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&link, &link).unwrap();
        assert!(matches!(watch.check(), Err(Error::Unavailable(_))));
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), &link).unwrap();
        assert!(watch.check().is_ok(), "not tripped");
        std::fs::remove_file(&db).unwrap();
        assert!(watch.check().is_err());
        create(&db).unwrap();
        assert!(watch.check().is_err(), "gone is for good");
    }

    /// A write whose file goes while it runs is rolled back, never acknowledged: alone, and
    /// in a group commit.
    #[tokio::test]
    async fn a_write_is_not_committed_once_the_file_is_gone() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("scimd.db");
        let store = crate::store::Store::open(&db).unwrap();
        let gone = db.clone();
        let alone = store.write_sync(|tx| {
            tx.execute_batch("CREATE TABLE alone(x)")?;
            std::fs::rename(&gone, gone.with_extension("moved")).unwrap();
            Ok(())
        });
        assert!(matches!(alone, Err(Error::Unavailable(_))), "{alone:?}");
        let tables = |store: &crate::store::Store| {
            store
                .read_sync(|c| {
                    Ok(c.query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('alone', 'batch')",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .unwrap()
        };
        assert_eq!(tables(&store), 0);

        let db = dir.path().join("second.db");
        let store = crate::store::Store::open(&db).unwrap();
        let gone = db.clone();
        let batch = store
            .write(move |tx| {
                tx.execute_batch("CREATE TABLE batch(x)")?;
                std::fs::remove_file(&gone).unwrap();
                Ok(())
            })
            .await;
        assert!(matches!(batch, Err(Error::Unavailable(_))), "{batch:?}");
        assert_eq!(tables(&store), 0);
    }
}
