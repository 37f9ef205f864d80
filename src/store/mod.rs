//! Storage: every SQL statement lives under this module. Functions are synchronous over a
//! `&Connection` (a `Transaction` derefs to one); `Store` owns the connections and is the one
//! bridge from async code to SQLite (`spawn_blocking`).
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is on disk before the request that
//! caused it is acknowledged. Writes go through a single writer connection (SQLite admits one
//! writer anyway; queuing is cheaper than SQLite's busy-wait), reads through a pool of
//! `query_only` connections that WAL lets run beside the writer.
//!
//! Back-pressure: async callers first wait (without a thread) for a permit — one per reader
//! connection, one for the writer — and only then take a blocking thread. So a burst of
//! requests queues instead of exhausting the pool (which would have to fail) or parking
//! hundreds of blocking threads on a mutex.

#[cfg(test)]
mod differential;
pub mod groups;
pub mod migrate;
pub mod query;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::scim::resource::Meta;

/// Readers in the pool: enough to keep both cores busy while some wait on disk.
const READERS: u32 = 8;

/// PRAGMAs and functions every connection needs (both are per-connection in SQLite).
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.busy_timeout(Duration::from_secs(5))?;
    // `scim_fold(text)`: the Unicode case fold filters compare caseExact=false strings with.
    conn.create_scalar_function(
        "scim_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                rusqlite::types::ValueRef::Text(t) => Some(fold(&String::from_utf8_lossy(t))),
                _ => None,
            })
        },
    )?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8000;",
    )
}

#[derive(Clone)]
pub struct Store {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Arc<Mutex<Connection>>,
    read_permits: Arc<Semaphore>,
    write_permit: Arc<Semaphore>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL and brings its
    /// schema up to date. Refuses a database written by a newer scimd.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = Connection::open(path)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!(
                "{} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        migrate::run(&mut writer)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Store {
            readers,
            writer: Arc::new(Mutex::new(writer)),
            read_permits: Arc::new(Semaphore::new(READERS as usize)),
            write_permit: Arc::new(Semaphore::new(1)),
        })
    }

    /// Runs `f` on a reader connection, on this thread, in one read transaction: everything
    /// `f` reads (a count and the page it counts, a group and its members) is one snapshot.
    pub fn read_sync<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.readers.get()?;
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, on this thread. Commits if `f` returns
    /// `Ok`; otherwise rolls back, so a failed request changes nothing.
    pub fn write_sync<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        // A panic inside `f` poisons the mutex after the transaction has rolled back on
        // unwind, so the connection is still sound.
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// `read_sync` off the async runtime, once a reader connection is free.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        blocking(&self.read_permits, move || store.read_sync(f)).await
    }

    /// `write_sync` off the async runtime, once the writer is free.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        blocking(&self.write_permit, move || store.write_sync(f)).await
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    permits: &Semaphore,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let _permit = permits
        .acquire()
        .await
        .map_err(|e| Error::internal(format!("database closed: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("database task failed: {e}")))?
}

/// The columns every resource table shares, in the order `resource_row` reads them.
const RESOURCE_COLUMNS: &str = "seq, id, version, created, last_modified, data";

/// A resource row as read: internal seq, SCIM id, meta, and the JSON document as text.
type ResourceRow = (i64, String, Meta, String);

fn resource_row(row: &rusqlite::Row) -> rusqlite::Result<ResourceRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        Meta {
            version: row.get(2)?,
            created: row.get(3)?,
            last_modified: row.get(4)?,
        },
        row.get(5)?,
    ))
}

fn doc_to_text(doc: &Map<String, Value>) -> Result<String> {
    serde_json::to_string(doc).map_err(Error::internal)
}

fn doc_from_text(data: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(data).map_err(Error::internal)
}

/// Counts the rows of `table` matching `filter`, then reads the page at `offset` (zero-based,
/// at most `limit` rows) in insertion order with `select` (a `SELECT … FROM table`).
fn page<T>(
    conn: &Connection,
    table: &str,
    select: &str,
    filter: &query::SqlFilter,
    offset: u64,
    limit: u64,
    map: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<(u64, Vec<T>)> {
    let params = rusqlite::params_from_iter(&filter.params);
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM {table} WHERE {}",
            filter.sql
        ))?
        .query_row(params, |r| r.get(0))?;
    let total = u64::try_from(total).unwrap_or(0);
    if limit == 0 || offset >= total {
        return Ok((total, Vec::new()));
    }
    let n = filter.params.len();
    let sql = format!(
        "{select} WHERE {} ORDER BY seq LIMIT ?{} OFFSET ?{}",
        filter.sql,
        n + 1,
        n + 2
    );
    let mut all = filter.params.clone();
    all.push(rusqlite::types::Value::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX),
    ));
    all.push(rusqlite::types::Value::Integer(
        i64::try_from(offset).unwrap_or(i64::MAX),
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&all), map)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((total, rows))
}

/// Case-folds a caseExact=false value for storage and comparison (full Unicode lowercase,
/// unlike SQLite's ASCII-only NOCASE); the same fold filters use.
pub use crate::scim::resolve::fold;

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
    }

    /// Durability and integrity settings hold on the writer and on every reader.
    #[test]
    fn every_connection_is_durable_wal_with_foreign_keys() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let check = |conn: &Connection| {
            assert_eq!(pragma(conn, "journal_mode"), "wal");
            assert_eq!(pragma(conn, "synchronous"), "2", "synchronous=FULL");
            assert_eq!(pragma(conn, "foreign_keys"), "1");
            Ok(())
        };
        store.write_sync(|tx| check(tx)).unwrap();
        // Hold several readers at once so more than one pooled connection is checked.
        let readers: Vec<_> = (0..3).map(|_| store.readers.get().unwrap()).collect();
        for r in &readers {
            check(r).unwrap();
            assert_eq!(pragma(r, "query_only"), "1");
        }
    }

    #[test]
    fn a_failed_write_rolls_back() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        let err = store.write_sync(|tx| {
            tx.execute(
                "INSERT INTO tokens (name, lookup, digest, created) VALUES ('a', 'l', x'00', 't')",
                [],
            )?;
            Err::<(), _>(Error::InvalidValue("stop".into()))
        });
        assert!(err.is_err());
        let n: i64 = store
            .read_sync(|c| Ok(c.query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
    }
}
