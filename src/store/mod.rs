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
//!
//! Budgets: a pooled read runs under a time budget (a progress handler interrupts it, and the
//! caller gets `tooMany`), and reads that no index answers (`read_list` of a scan) hold one of
//! a few scan permits, so heavy searches never take every reader from the lookups identity
//! providers depend on. The writer is never interrupted: SQLite answers an interrupted
//! writing statement by rolling back the whole transaction, which would undo the other
//! writes sharing its group commit. A write's work is bounded instead by the body limit and
//! the PATCH cost limit (`scim::patch::MAX_PATCH_COST`).

pub mod activity;
pub mod administrators;
pub mod admins;
pub mod audit;
pub mod dbfile;
#[cfg(test)]
mod differential;
pub mod events;
pub mod ext_index;
pub mod groups;
pub mod keys;
pub mod maintenance;
pub mod migrate;
pub mod overview;
pub mod people;
pub mod query;
pub mod schemas;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::scim::registry::Registry;
use crate::scim::resource::Meta;
use query::SqlFilter;

/// Readers in the pool: enough to keep both cores busy while some wait on disk.
const READERS: u32 = 8;

/// Virtual-machine steps between two looks at a read's deadline (about 10 µs of work).
const PROGRESS_STEPS: std::ffi::c_int = 1000;

/// How much one read may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// How long one pooled read may run before it is interrupted (`tooMany`).
    pub read: Duration,
    /// How many reads that no index answers (`read_list` of a scan) run at once; others wait
    /// up to `read` for a turn, then get `503`.
    pub scans: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            read: Duration::from_secs(10),
            // Half the readers: the other half stays free for lookups. Two (a core each)
            // left both cores part idle while the load generator took its share, and cost
            // the `co` search benchmark a fifth of its throughput.
            scans: READERS as usize / 2,
        }
    }
}

/// PRAGMAs and functions every connection needs (both are per-connection in SQLite).
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    functions(conn)?;
    // A reader prepares the token check, BEGIN/COMMIT and one statement per filter shape a
    // client uses; rusqlite's default of 16 would evict them under a varied mix.
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8000;",
    )
}

/// The SQL functions scimd's statements and migrations use: `scim_fold(text)`, the Unicode
/// case fold filters compare caseExact=false strings with, and `scim_key(text)`, the
/// uniqueness key of an identifier.
pub(crate) fn functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    for (name, f) in [("scim_fold", fold as fn(&str) -> String), ("scim_key", key)] {
        conn.create_scalar_function(
            name,
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            move |ctx| {
                Ok(match ctx.get_raw(0) {
                    rusqlite::types::ValueRef::Text(t) => Some(f(&String::from_utf8_lossy(t))),
                    _ => None,
                })
            },
        )?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct Store {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Arc<Mutex<Connection>>,
    /// For `read_now` when no reader is idle: lookups in tiny, always-cached tables on the
    /// calling thread.
    inline: Arc<Mutex<Connection>>,
    read_permits: Arc<Semaphore>,
    write_permit: Arc<Semaphore>,
    /// Writes waiting to be committed together (see `write`).
    pending: Arc<Mutex<Vec<Job>>>,
    /// Whether concurrent writes share one commit; off, each write is its own transaction.
    group_commit: Arc<std::sync::atomic::AtomicBool>,
    /// Bumped by every committed write: resume points are only valid within one generation.
    generation: Arc<AtomicU64>,
    resume_points: Arc<Mutex<HashMap<String, ResumePoint>>>,
    /// How many writes each commit carried, for `/metrics`.
    batches: Arc<CommitBatches>,
    /// Whether the database file is still the one opened (not deleted or replaced).
    file: Arc<dbfile::Watch>,
    /// How long a pooled read may run.
    read_budget: Duration,
    /// Turns for reads that no index answers (see `read_list`).
    scan_permits: Arc<Semaphore>,
    /// The schemas in force, with the schema generation (`schemas::generation`) they were
    /// read at (-1: the built-ins, before the first load); a request takes one snapshot
    /// (`registry`). Kept together so a refresh replaces them only with newer ones.
    registry: Arc<std::sync::RwLock<(i64, Arc<Registry>)>>,
    /// The seq of the newest committed event, published after each COMMIT (never before:
    /// a waiter woken early would read nothing and sleep until its timeout). Holds no data,
    /// so it cannot grow.
    events_head: Arc<tokio::sync::watch::Sender<i64>>,
}

/// Upper bounds of the commit batch size histogram.
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// A histogram of writes per commit: how much group commit is sharing fsyncs.
#[derive(Default)]
pub struct CommitBatches {
    /// Commits with at most `BATCH_BUCKETS[i]` writes (cumulative, as Prometheus wants).
    buckets: [AtomicU64; BATCH_BUCKETS.len()],
    commits: AtomicU64,
    writes: AtomicU64,
}

/// A copy of `CommitBatches`: cumulative bucket counts, commits and writes.
pub struct BatchCounts {
    pub buckets: [u64; BATCH_BUCKETS.len()],
    pub commits: u64,
    pub writes: u64,
}

impl CommitBatches {
    fn record(&self, writes: usize) {
        let writes = writes as u64;
        for (bound, n) in BATCH_BUCKETS.iter().zip(&self.buckets) {
            if writes <= *bound {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
    }

    fn counts(&self) -> BatchCounts {
        BatchCounts {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// Where the last `startIndex` page of a list ended, so the next page of a sequential export
/// continues from there (an index range read) instead of skipping every earlier row again.
#[derive(Debug, Clone, Copy)]
struct ResumePoint {
    generation: u64,
    next_offset: u64,
    last_seq: i64,
    total: u64,
}

/// At most this many lists are remembered; then the memory starts afresh.
const RESUME_POINTS: usize = 64;

impl Store {
    /// Opens the database at `path`, creating it (mode 0600) where there is none and nothing
    /// an earlier one left (see `dbfile::create`): for `serve` and the tests. Commands that
    /// manage an existing database use `open_existing`.
    pub fn open(path: &Path) -> Result<Store> {
        dbfile::create(path)?;
        Store::open_existing(path)
    }

    /// Opens the existing database at `path` (never creating one), switches it to WAL and
    /// brings its schema up to date. Refuses a database written by a newer scimd, and a file
    /// with more than one name (`dbfile::single_name`).
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::NotFound(format!(
                "no database at {}",
                path.display()
            )));
        }
        dbfile::single_name(path)?;
        // SQLite only says "attempt to write a readonly database": say which file or
        // directory this user may not write, and what to do.
        Store::open_writable(path).map_err(|e| match dbfile::unwritable(path) {
            Some(why) => Error::InvalidValue(why),
            None => e,
        })
    }

    fn open_writable(path: &Path) -> Result<Store> {
        let flags = rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
        let mut writer = Connection::open_with_flags(path, flags)
            .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        // A file this user may not write opens read-only, silently.
        if writer.is_readonly(rusqlite::MAIN_DB)? {
            return Err(Error::internal(format!(
                "{} opened read-only",
                path.display()
            )));
        }
        let file = Arc::new(dbfile::Watch::new(path)?);
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!(
                "{} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        migrate::run(&mut writer)?;
        let head = events::head(&writer)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(|c| {
                configure(c)?;
                c.execute_batch("PRAGMA query_only = ON;")
            });
        let inline = Connection::open_with_flags(path, flags)?;
        configure(&inline)?;
        inline.execute_batch("PRAGMA query_only = ON;")?;
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            // All open from the start: `try_read_now` and `read_now` only take an idle one.
            .min_idle(Some(READERS))
            // Otherwise r2d2 runs a statement on every checkout: 5% of a lookup's CPU.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Store {
            readers,
            writer: Arc::new(Mutex::new(writer)),
            inline: Arc::new(Mutex::new(inline)),
            read_permits: Arc::new(Semaphore::new(READERS as usize)),
            write_permit: Arc::new(Semaphore::new(1)),
            pending: Arc::default(),
            group_commit: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            generation: Arc::new(AtomicU64::new(0)),
            resume_points: Arc::new(Mutex::new(HashMap::new())),
            batches: Arc::default(),
            file,
            read_budget: Budget::default().read,
            scan_permits: Arc::new(Semaphore::new(Budget::default().scans)),
            registry: Arc::new(std::sync::RwLock::new((-1, Arc::new(Registry::builtin())))),
            events_head: Arc::new(tokio::sync::watch::Sender::new(head)),
        })
    }

    /// `open_existing` for a command run beside a server that may be serving the database
    /// (`token`, `admin`). Refuses to migrate the schema under a running server: an older
    /// scimd's statements and indexes would not be there to meet the newer schema.
    pub fn open_for_command(path: &Path) -> Result<Store> {
        let version = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::from)
        .and_then(|conn| migrate::version(&conn))
        .map_err(|e| match dbfile::unwritable(path) {
            // Reading a WAL database needs its `-shm`, which a reader creates.
            Some(why) => Error::InvalidValue(why),
            None => Error::internal(format!("cannot read {}: {e}", path.display())),
        })?;
        if version < migrate::LATEST && dbfile::served(path)? {
            return Err(Error::InvalidValue(format!(
                "a running scimd serves {} with an older schema (version {version}; this scimd \
                 has {}): restart it with this binary first (it migrates on start)",
                path.display(),
                migrate::LATEST
            )));
        }
        Store::open_existing(path)
    }

    /// `Ok` while the database file is the one opened; once it was deleted or replaced,
    /// `Error::Unavailable` for good (logged once): the store is then read-only.
    pub fn check_file(&self) -> Result<()> {
        self.file.check()
    }

    /// `check_file` as of the last look, without looking again: `Error::Unavailable` once
    /// the file was seen gone.
    pub fn file_seen_gone(&self) -> Result<()> {
        self.file.seen_gone()
    }

    /// The declared extension schemas (see `schemas`); an unparsable declaration is an error
    /// naming it.
    pub fn declared(&self) -> Result<Vec<crate::scim::registry::Declared>> {
        self.read_sync(schemas::list)
    }

    /// Puts the declarations in the file in force if they changed since they were last
    /// loaded: at `serve`'s start (an unparsable declaration stops it, naming the schema),
    /// after every schema change this process makes, and periodically for the ones `scimd
    /// schema` makes beside a running server. Whether anything changed. Refreshes may
    /// overlap (a console change and the 5-second check): each reads the generation and the
    /// declarations in one snapshot, and one read at an older generation than the registry
    /// in force never replaces it.
    pub fn refresh_registry(&self) -> Result<bool> {
        let loaded = || self.registry.read().unwrap_or_else(|e| e.into_inner()).0;
        // One single-row read when nothing changed.
        if self.read_sync(schemas::generation)? == loaded() {
            return Ok(false);
        }
        // An index turning ready bumps the generation too, so it is read here, in the same
        // snapshot as the declarations.
        let (generation, declared, indexed) = self.read_sync(|conn| {
            Ok((
                schemas::generation(conn)?,
                schemas::list(conn)?,
                ext_index::ready(conn)?,
            ))
        })?;
        Ok(self.set_registry_at(generation, Registry::new(declared).with_indexed(indexed)))
    }

    /// Puts `registry`, read at schema generation `generation`, in force unless the one in
    /// force was read at the same or a later generation; whether it did.
    fn set_registry_at(&self, generation: i64, registry: Registry) -> bool {
        let mut now = self.registry.write().unwrap_or_else(|e| e.into_inner());
        if now.0 >= generation {
            return false;
        }
        *now = (generation, Arc::new(registry));
        true
    }

    /// Extensions stored in documents of `kind` under URNs nothing declares (see
    /// `schemas::seen`): one bounded scan, which takes a scan turn like any unindexed list.
    pub async fn seen_extensions(
        &self,
        kind: crate::scim::resource::ResourceKind,
    ) -> Result<Vec<schemas::Seen>> {
        self.read_list(true, move |conn| schemas::seen(conn, kind))
            .await
    }

    /// The schemas in force now. A request takes one snapshot and reads only it, so a
    /// declaration made meanwhile never changes the rules halfway through the request.
    pub fn registry(&self) -> Arc<Registry> {
        // A panic while holding the lock cannot leave the `Arc` half-written: use it anyway.
        Arc::clone(&self.registry.read().unwrap_or_else(|e| e.into_inner()).1)
    }

    /// This store with `budget` for its reads.
    pub fn with_budget(mut self, budget: Budget) -> Store {
        self.read_budget = budget.read;
        self.scan_permits = Arc::new(Semaphore::new(budget.scans.max(1)));
        self
    }

    /// Runs `f` on a reader connection, on this thread, in one read transaction: everything
    /// `f` reads (a count and the page it counts, a group and its members) is one snapshot.
    /// Interrupted after the read budget: `tooMany`.
    pub fn read_sync<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        in_read_transaction(&mut *self.readers.get()?, Some(self.read_budget), f)
    }

    /// `read_sync` on this thread — even an async worker — if a reader connection is free
    /// right now; `None` otherwise. Only for reads known to take microseconds (index
    /// lookups): it saves the hand-off to the blocking pool, which costs more than they do.
    pub fn try_read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<Result<T>> {
        let mut conn = self.readers.try_get()?;
        Some(in_read_transaction(&mut conn, None, f))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, on this thread. Commits if `f` returns
    /// `Ok`; otherwise rolls back, so a failed request changes nothing.
    pub fn write_sync<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        self.check_file()?;
        // A panic inside `f` poisons the mutex after the transaction has rolled back on
        // unwind, so the connection is still sound.
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        // Checked again just before the commit: the file may have gone while `f` ran.
        self.check_file()?;
        tx.commit()?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.batches.record(1);
        self.publish_events_head(&conn);
        Ok(out)
    }

    /// The key of a list in creation order for resume points; `None` for sorted lists.
    fn resume_key(table: &str, list: &query::ListSql) -> Option<String> {
        list.order.is_none().then(|| {
            format!(
                "{table}\u{0}{}\u{0}{:?}",
                list.filter.sql, list.filter.params
            )
        })
    }

    /// Turns a `startIndex` page that continues the previous one (nothing written since) into
    /// a read after that page's last row, with the total it counted. Pages stay what
    /// `startIndex` means; a sequential export costs an index range read per page.
    pub fn resume(&self, table: &str, list: &mut query::ListSql) {
        let (Some(key), query::Window::Offset { offset, limit }) =
            (Self::resume_key(table, list), list.window)
        else {
            return;
        };
        let points = self.resume_points.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = points.get(&key)
            && p.next_offset == offset
            && p.generation == self.generation.load(Ordering::SeqCst)
        {
            list.window = query::Window::After {
                after: p.last_seq,
                limit,
                total: Some(p.total),
            };
        }
    }

    /// Remembers where the `startIndex` page of `list` at `offset` ended; `generation` is the
    /// one read before the page was, so a write in between voids the point.
    pub fn remember<T>(
        &self,
        table: &str,
        list: &query::ListSql,
        offset: u64,
        generation: u64,
        page: &ListPage<T>,
    ) {
        let (Some(key), Some(last_seq)) = (Self::resume_key(table, list), page.last_seq) else {
            return;
        };
        let mut points = self.resume_points.lock().unwrap_or_else(|p| p.into_inner());
        if points.len() >= RESUME_POINTS {
            points.clear();
        }
        points.insert(
            key,
            ResumePoint {
                generation,
                next_offset: offset + page.items.len() as u64,
                last_seq,
                total: page.total,
            },
        );
    }

    /// The current write generation (see `remember`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
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

    /// `read` for a list: when no index answers it (`scan`, see `ListSql::is_scan`), only
    /// after a scan permit is free, so scans never hold more than a few readers; waiting
    /// longer than the read budget for one is `503`. The permit is held until the read itself
    /// ends, even if the caller stops waiting for it.
    pub async fn read_list<T, F>(&self, scan: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if !scan {
            return self.read(f).await;
        }
        let wait =
            tokio::time::timeout(self.read_budget, self.scan_permits.clone().acquire_owned());
        let permit = wait
            .await
            .map_err(|_| {
                Error::Busy(
                    "other searches that no index answers are running; try again shortly".into(),
                )
            })?
            .map_err(|e| Error::internal(format!("database closed: {e}")))?;
        self.read(move |conn| {
            let _turn = permit;
            f(conn)
        })
        .await
    }

    /// Turns group commit off (each write its own transaction and fsync) or on (the default).
    pub fn set_group_commit(&self, on: bool) {
        self.group_commit.store(on, Ordering::SeqCst);
    }

    /// Runs `f` in a write transaction off the async runtime and returns once it is durable.
    ///
    /// Group commit: writes that arrive while the writer is busy wait in `pending`, and the
    /// next turn of the writer runs them all in one transaction, each inside its own
    /// savepoint, with one COMMIT (one fsync) for all. A write that fails rolls back to its
    /// savepoint, so it changes nothing and the others still commit; nobody is answered
    /// before the COMMIT that makes their write durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        // A write into a file that is gone would be acknowledged and then lost.
        self.check_file()?;
        if !self.group_commit.load(Ordering::SeqCst) {
            let store = self.clone();
            return blocking(&self.write_permit, move || store.write_sync(f)).await;
        }
        let (job, rx) = job(f);
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        self.turn().await?;
        rx.await
            .map_err(|_| Error::internal("the write was dropped"))?
    }

    /// `write` for several writes that must run in this order, one after the other: all
    /// queued at once, so they share the writer's next turn (one commit), each in its own
    /// savepoint as any write is, and no other write comes between them. Each result is its
    /// write's; `Err` only when none could be queued (the database file is gone). With group
    /// commit off, each is its own transaction, in order. A bulk request's operations go
    /// through here a few dozen at a time, so other clients' writes queued meanwhile take
    /// their turn in between.
    pub async fn write_each<T, F>(&self, writes: Vec<F>) -> Result<Vec<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        self.check_file()?;
        if !self.group_commit.load(Ordering::SeqCst) {
            let store = self.clone();
            return blocking(&self.write_permit, move || {
                Ok(writes.into_iter().map(|f| store.write_sync(f)).collect())
            })
            .await;
        }
        let (jobs, answers): (Vec<Job>, Vec<_>) = writes.into_iter().map(job).unzip();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(jobs);
        self.turn().await?;
        let mut results = Vec::with_capacity(answers.len());
        for rx in answers {
            results.push(
                rx.await
                    .unwrap_or_else(|_| Err(Error::internal("the write was dropped"))),
            );
        }
        Ok(results)
    }

    /// Runs the writer's turn for what is pending (see `run_pending`). The turn is a task of
    /// its own: if the caller goes away (the client hung up), the queued writes still commit
    /// now rather than with some later write.
    async fn turn(&self) -> Result<()> {
        let store = self.clone();
        let turn = tokio::spawn(async move {
            let runner = store.clone();
            blocking(&store.write_permit, move || {
                runner.run_pending();
                Ok(())
            })
            .await
        });
        turn.await
            .map_err(|e| Error::internal(format!("writer task failed: {e}")))?
    }

    /// One turn of the writer: every pending write in one transaction. An earlier turn may
    /// already have run this caller's write; then there is nothing to do.
    fn run_pending(&self) {
        let jobs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if jobs.is_empty() {
            return;
        }
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                // Dropping the jobs answers each caller with an internal error.
                tracing::error!(error = %e, "cannot begin a write transaction");
                return;
            }
        };
        let batch = jobs.len();
        let deliveries: Vec<Deliver> = jobs.into_iter().map(|job| job(&tx)).collect();
        // A batch queued before the file went is rolled back, not acknowledged and lost.
        let committed = self
            .check_file()
            .and_then(|()| tx.commit().map_err(Error::from));
        if committed.is_ok() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.batches.record(batch);
            self.publish_events_head(&conn);
        }
        for deliver in deliveries {
            deliver(committed.as_ref().err());
        }
    }

    /// Tells the feed's waiters and the webhook workers the newest committed event seq, if
    /// it moved. A failed read only delays them until their next check.
    fn publish_events_head(&self, conn: &Connection) {
        match events::head(conn) {
            Ok(head) => {
                self.events_head.send_if_modified(|now| {
                    let moved = *now != head;
                    *now = head;
                    moved
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the newest event seq"),
        }
    }

    /// Follows the newest committed event seq (see `events_head`).
    pub fn events_watch(&self) -> tokio::sync::watch::Receiver<i64> {
        self.events_head.subscribe()
    }

    /// Runs `f` right here, even on an async worker, on an idle reader or else the inline
    /// connection: only for lookups of a few microseconds in tiny tables that stay in
    /// SQLite's cache (a bearer token on every request). Handing those to the blocking pool
    /// would cost more than the query; a WAL reader never waits for the writer.
    pub fn read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        // An idle reader first: two workers checking tokens at once would otherwise queue on
        // the one connection, and a worker that sleeps on a lock serves nobody meanwhile.
        // A reader left inside a transaction (a failed ROLLBACK) would answer from an old
        // snapshot, where a token revoked since still looks live: skip it.
        if let Some(conn) = self.readers.try_get()
            && conn.is_autocommit()
        {
            return f(&conn);
        }
        let conn = self.inline.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// How many writes the commits since start carried.
    pub fn commit_batches(&self) -> BatchCounts {
        self.batches.counts()
    }

    /// Whether the database answers a trivial query.
    pub fn ping(&self) -> Result<()> {
        self.read_now(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
    }
}

/// A pending write: runs in the shared transaction and returns how to answer its caller once
/// the commit is known.
type Job = Box<dyn FnOnce(&Transaction) -> Deliver + Send>;
/// Answers a write's caller with its result, or with the commit's failure.
type Deliver = Box<dyn FnOnce(Option<&Error>) + Send>;

/// `f` as a pending write, and where its answer will come.
fn job<T, F>(f: F) -> (Job, tokio::sync::oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
    let job: Job = Box::new(move |conn: &Transaction| {
        let outcome = in_savepoint(conn, f);
        Box::new(move |commit: Option<&Error>| {
            let answer = match commit {
                Some(Error::Unavailable(why)) => Err(Error::Unavailable(why.clone())),
                Some(e) => Err(Error::internal(format!("commit failed: {e}"))),
                None => outcome,
            };
            let _ = tx.send(answer);
        }) as Deliver
    });
    (job, rx)
}

/// Runs `f` inside a savepoint of the shared write transaction: kept if it succeeds, undone if
/// it fails or panics, so one failing write leaves no trace among the others.
fn in_savepoint<T>(tx: &Transaction, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
    tx.execute_batch("SAVEPOINT write")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
        .unwrap_or_else(|_| Err(Error::internal("a write panicked")))
        .and_then(|out| {
            tx.execute_batch("RELEASE write")?;
            Ok(out)
        });
    if outcome.is_err() {
        tx.execute_batch("ROLLBACK TO write; RELEASE write")?;
    }
    outcome
}

/// Runs `f` in a read transaction, interrupted once it has run `budget` (then `tooMany`).
/// BEGIN and COMMIT are cached statements: on a lookup of a few microseconds, parsing them
/// anew each time was a noticeable share of the work.
fn in_read_transaction<T>(
    conn: &mut Connection,
    budget: Option<Duration>,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    /// Ends the transaction however `f` ends, a panic included, so the pooled connection
    /// never goes back still inside one or with a deadline set.
    struct End<'a>(&'a Connection);
    impl End<'_> {
        fn no_deadline(&self) {
            let _ = self.0.progress_handler(0, None::<fn() -> bool>);
        }
    }
    impl Drop for End<'_> {
        fn drop(&mut self) {
            // Before the ROLLBACK, which a passed deadline would interrupt too.
            self.no_deadline();
            if !self.0.is_autocommit() {
                let _ = self
                    .0
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
    conn.prepare_cached("BEGIN")?.execute([])?;
    let end = End(conn);
    let tripped = Arc::new(AtomicBool::new(false));
    if let Some(budget) = budget {
        let deadline = Instant::now() + budget;
        let tripped = tripped.clone();
        // A read-only statement that is interrupted fails alone; its transaction stays.
        end.0.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let over = Instant::now() >= deadline;
                if over {
                    tripped.store(true, Ordering::Relaxed);
                }
                over
            }),
        )?;
    }
    let out = f(end.0);
    end.no_deadline();
    let out = match (out, budget) {
        (Err(_), Some(budget)) if tripped.load(Ordering::Relaxed) => {
            return Err(over_budget(budget));
        }
        (out, _) => out?,
    };
    end.0.prepare_cached("COMMIT")?.execute([])?;
    Ok(out)
}

/// What a read interrupted at its budget answers.
fn over_budget(budget: Duration) -> Error {
    Error::TooMany(format!(
        "the request needs more than the {} s of database work one request may take; narrow \
         the filter, e.g. to an indexed lookup (id, externalId, userName, emails.value or a \
         group's displayName with eq)",
        budget.as_secs_f64()
    ))
}

async fn blocking<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Error::internal(format!("database closed: {e}")))?;
    // The permit goes with the work, not with the caller: a client that hangs up stops
    // waiting, but its read or write runs to its end, and until then it still holds its turn
    // (else requests abandoned at once could pile work onto the blocking threads unbounded).
    tokio::task::spawn_blocking(move || {
        let _turn = permit;
        f()
    })
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

/// The resource row of `table` whose SCIM id is `id`.
fn row_by_id(conn: &Connection, table: &str, id: &str) -> Result<Option<ResourceRow>> {
    let sql = format!("SELECT {RESOURCE_COLUMNS} FROM {table} WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], resource_row)
        .optional()?)
}

fn doc_to_text(doc: &Map<String, Value>) -> Result<String> {
    serde_json::to_string(doc).map_err(Error::internal)
}

fn doc_from_text(data: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(data).map_err(Error::internal)
}

/// One page of a list: the total matching, the resources, and — for cursor paging — the
/// position the next page starts after, when there is a next page.
#[derive(Debug)]
pub struct ListPage<T> {
    pub total: u64,
    pub items: Vec<T>,
    pub next_after: Option<i64>,
    /// The row number of the last resource on the page.
    pub last_seq: Option<i64>,
}

/// A page of a filtered list that no index answers: one pass over the filter collects every
/// matching row number in order (the total is their count, so no second scan to count), then
/// only the page's rows are read. SQLite, left to choose, would walk the whole table in row
/// order to avoid a sort; ordering row numbers here lets it scan a covering index instead.
fn scanned_page(
    conn: &Connection,
    table: &str,
    list: &query::ListSql,
) -> Result<ListPage<ResourceRow>> {
    let filter = &list.filter;
    let (order, order_params) = list
        .order
        .as_ref()
        .map_or(("", &[][..]), |o| (o.sql.as_str(), &o.params[..]));
    let sql = if order.is_empty() {
        format!("SELECT seq FROM {table} WHERE {}", filter.sql)
    } else {
        format!(
            "SELECT seq FROM {table} WHERE {} ORDER BY {order}seq",
            filter.sql
        )
    };
    let params = filter.params.iter().chain(order_params);
    let mut seqs = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    if order.is_empty() {
        seqs.sort_unstable();
    }
    let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let (total, window, next_after) = match list.window {
        query::Window::Offset { offset, limit } => {
            let start = to_usize(offset).min(seqs.len());
            let end = start.saturating_add(to_usize(limit)).min(seqs.len());
            (seqs.len() as u64, &seqs[start..end], None)
        }
        query::Window::After {
            after,
            limit,
            total,
        } => {
            let start = seqs.partition_point(|s| *s <= after);
            let end = start.saturating_add(to_usize(limit)).min(seqs.len());
            let next = (end < seqs.len()).then(|| if end > start { seqs[end - 1] } else { after });
            (total.unwrap_or(seqs.len() as u64), &seqs[start..end], next)
        }
    };
    let last_seq = window.last().copied();
    let items = if window.is_empty() {
        Vec::new()
    } else {
        // The window is in order already: its rows are put in its order, not sorted again.
        let ids = serde_json::to_string(window).map_err(Error::internal)?;
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS} FROM {table} WHERE seq IN (SELECT value FROM json_each(?1))"
        );
        let mut rows = conn
            .prepare_cached(&sql)?
            .query_map([ids], resource_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let place: std::collections::HashMap<i64, usize> = window
            .iter()
            .enumerate()
            .map(|(i, seq)| (*seq, i))
            .collect();
        rows.sort_by_key(|row| place.get(&row.0).copied());
        rows
    };
    Ok(ListPage {
        total,
        items,
        next_after,
        last_seq,
    })
}

impl<T> ListPage<T> {
    /// A page of nothing, out of nothing.
    pub fn empty() -> Self {
        ListPage {
            total: 0,
            items: Vec::new(),
            next_after: None,
            last_seq: None,
        }
    }
}

/// `page` without a cap on its size, which therefore always reads the page.
fn full_page(
    conn: &Connection,
    table: &str,
    list: &query::ListSql,
) -> Result<ListPage<ResourceRow>> {
    page(conn, table, list, None)?.ok_or_else(|| Error::internal("an uncapped page was refused"))
}

/// Reads one page of `table` (with `select`, a `SELECT … FROM table`) in `list`'s order, and
/// the number of matches in all. With `max_rows`, gives up (`None`) rather than read a page
/// of more rows than that.
fn page(
    conn: &Connection,
    table: &str,
    list: &query::ListSql,
    max_rows: Option<u64>,
) -> Result<Option<ListPage<ResourceRow>>> {
    let select = format!("SELECT {RESOURCE_COLUMNS} FROM {table}");
    use rusqlite::types::Value as SqlValue;
    let filter = &list.filter;
    if !list.lookup && filter.sql != SqlFilter::all().sql && max_rows.is_none() {
        return scanned_page(conn, table, list).map(Some);
    }
    let mut params = filter.params.clone();
    let n = params.len();
    let (limit, after) = match list.window {
        query::Window::Offset { limit, .. } => (limit, None),
        query::Window::After { after, limit, .. } => (limit, Some(after)),
    };
    // Read one row more than the page: it tells whether more follow (cursor paging) and,
    // with `max_rows`, whether the page is too big.
    let fetch = max_rows.map_or(limit, |m| limit.min(m)).saturating_add(1);
    // The page is chosen on `seq` first, and only its rows are read: a filter or order
    // served by an index (or a scan of one) never reads the documents of rows it skips.
    // LIMIT is written into the SQL (a checked integer): SQLite re-prepares a statement whose
    // bound LIMIT changes.
    let sql = match list.window {
        query::Window::Offset { offset, .. } => {
            let order = match &list.order {
                Some(o) => {
                    params.extend(o.params.iter().cloned());
                    o.sql.as_str()
                }
                None => "",
            };
            params.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
            format!(
                "{select} WHERE seq IN (SELECT seq FROM {table} WHERE {} \
                 ORDER BY {order}seq LIMIT {fetch} OFFSET ?{}) ORDER BY {order}seq",
                filter.sql,
                params.len()
            )
        }
        // Keyset paging on the row number: each page is an index range read, so a full
        // export is linear in the number of resources.
        query::Window::After { after, .. } => {
            params.push(SqlValue::Integer(after));
            format!(
                "{select} WHERE seq IN (SELECT seq FROM {table} WHERE ({}) AND seq > ?{} \
                 ORDER BY seq LIMIT {fetch}) ORDER BY seq",
                filter.sql,
                n + 1
            )
        }
    };
    let mut rows = if limit == 0 {
        Vec::new()
    } else {
        conn.prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(&params), |r| {
                resource_row(r).map(|row| (row.0, row))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let more = rows.len() as u64 > limit;
    if max_rows.is_some_and(|m| rows.len() as u64 > m && limit > m) {
        return Ok(None);
    }
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    // The total: known from the cursor; proven by a first page that is not full; else counted.
    let total = match list.window {
        query::Window::After {
            total: Some(total), ..
        } => total,
        query::Window::Offset { offset: 0, .. } if limit > 0 && !more => rows.len() as u64,
        _ => {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE {}", filter.sql);
            let n: i64 = conn
                .prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(&filter.params), |r| r.get(0))?;
            u64::try_from(n).unwrap_or(0)
        }
    };
    let last_seq = rows.last().map(|(seq, _)| *seq);
    let next_after = match after {
        Some(after) if more => Some(last_seq.unwrap_or(after)),
        _ => None,
    };
    Ok(Some(ListPage {
        total,
        items: rows.into_iter().map(|(_, item)| item).collect(),
        next_after,
        last_seq,
    }))
}

/// Case-folds a caseExact=false value for storage and comparison (NFKC and full Unicode case
/// folding, unlike SQLite's ASCII-only NOCASE), and the uniqueness key of an identifier (the
/// fold, trimmed): the same forms filters compare with.
pub use crate::scim::ident::{fold, key};

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_now` answers whether or not a reader is idle, and never on a reader left inside
    /// a transaction (whose old snapshot could still show a revoked token as live).
    /// review2 #7: refreshes may overlap; the one read at an older schema generation never
    /// replaces the registry a newer one put in force.
    #[test]
    fn an_older_registry_never_replaces_a_newer_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let doc = serde_json::json!({"id": "urn:acme:2.0:User", "attributes": [{"name": "b"}]});
        let d = crate::scim::declare::parse(&doc, crate::scim::resource::ResourceKind::User, false)
            .unwrap();
        assert!(store.set_registry_at(2, Registry::new(vec![d])));
        assert!(!store.set_registry_at(1, Registry::builtin()));
        assert!(!store.set_registry_at(2, Registry::builtin()));
        assert!(store.registry().find("urn:acme:2.0:User").is_some());
    }

    #[test]
    fn read_now_skips_busy_and_stale_readers() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        let count = |store: &Store| {
            store
                .read_now(|c| {
                    Ok(c.query_row("SELECT COUNT(*) FROM settings", [], |r| r.get::<_, i64>(0))?)
                })
                .unwrap()
        };
        let before = count(&store);
        // Every reader but one is taken; the last one is stuck in a transaction that read the
        // table before the write below.
        let mut held: Vec<_> = (1..READERS).map(|_| store.readers.get().unwrap()).collect();
        let stale = store.readers.get().unwrap();
        stale.execute_batch("BEGIN").unwrap();
        let _: i64 = stale
            .query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))
            .unwrap();
        store
            .write_sync(|tx| {
                Ok(tx.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", [])?)
            })
            .unwrap();
        drop(stale);
        // The stale reader is the only idle one: skipped, the inline connection answers.
        assert_eq!(count(&store), before + 1);
        held.clear();
        assert_eq!(count(&store), before + 1);
    }

    /// The events watch moves only after the COMMIT that holds the event, and not for a
    /// rolled-back one; a reopened store starts at the newest seq.
    #[tokio::test]
    async fn the_events_watch_follows_committed_events_only() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("e.db");
        let store = Store::open(&path).unwrap();
        let mut watch = store.events_watch();
        assert_eq!(*watch.borrow_and_update(), 0);
        let failed: Result<()> = store
            .write(|tx| {
                events::append(tx, "t", "user.created", "{}")?;
                Err(Error::InvalidValue("no".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(
            !watch.has_changed().unwrap(),
            "a rolled-back event is not announced"
        );
        let seq = store
            .write(|tx| events::append(tx, "t", "user.created", "{}"))
            .await
            .unwrap();
        assert!(watch.has_changed().unwrap());
        assert_eq!(*watch.borrow_and_update(), seq);
        store
            .write_sync(|tx| events::append(tx, "t", "user.updated", "{}"))
            .unwrap();
        assert_eq!(*watch.borrow_and_update(), seq + 1);
        drop(store);
        assert_eq!(
            *Store::open(&path).unwrap().events_watch().borrow(),
            seq + 1
        );
    }

    /// Writes queued while the writer is busy share one commit; the one that fails is undone
    /// alone and its caller gets its error, the others their results.
    #[tokio::test]
    async fn queued_writes_share_one_commit_and_fail_alone() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let busy = store.write_permit.clone().acquire_owned().await.unwrap();
        let write = |name: &'static str, fail: bool| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute("INSERT INTO settings (key, value) VALUES (?1, 'x')", [name])?;
                        if fail {
                            return Err(Error::InvalidValue("no".into()));
                        }
                        Ok(name)
                    })
                    .await
            })
        };
        let tasks = [write("a", false), write("b", true), write("c", false)];
        // All three are queued behind the busy writer.
        while store.pending.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = store.generation();
        let counted = store.commit_batches();
        drop(busy);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap().map_err(|e| e.to_string()));
        }
        assert_eq!(results, [Ok("a"), Err("no".to_string()), Ok("c")]);
        assert_eq!(store.generation(), before + 1, "one commit for the three");
        let batches = store.commit_batches();
        assert_eq!(batches.commits, counted.commits + 1);
        assert_eq!(batches.writes, counted.writes + 3);
        // The batch of three lands in the buckets from "≤ 4" up, not in "≤ 1" or "≤ 2".
        let grew: Vec<u64> = (0..BATCH_BUCKETS.len())
            .map(|i| batches.buckets[i] - counted.buckets[i])
            .collect();
        assert_eq!(grew, [0, 0, 1, 1, 1, 1, 1, 1]);
        let keys: Vec<String> =
            store
                .read_sync(|c| {
                    // Only the keys written here (a new database holds `feed_epoch` too).
                    Ok(c.prepare(
                        "SELECT key FROM settings WHERE key IN ('a', 'b', 'c') ORDER BY key",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
                })
                .unwrap();
        assert_eq!(keys, ["a", "c"]);
    }

    /// `write_each`: the writes run in order, one after the other with nothing between them,
    /// in one commit; the one that fails is undone alone; with group commit off, each is its
    /// own transaction.
    #[tokio::test]
    async fn writes_queued_together_run_in_order_in_one_commit() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        let busy = store.write_permit.clone().acquire_owned().await.unwrap();
        let single = |name: &'static str| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        tx.execute("INSERT INTO settings (key, value) VALUES (?1, 'x')", [name])?;
                        Ok(())
                    })
                    .await
            })
        };
        let before = single("before");
        while store.pending.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let each = |names: &[&'static str]| {
            names
                .iter()
                .map(|&name| {
                    let seen = seen.clone();
                    move |tx: &Transaction| {
                        seen.lock().unwrap().push(name);
                        tx.execute("INSERT INTO settings (key, value) VALUES (?1, 'x')", [name])?;
                        if name == "e2" {
                            return Err(Error::InvalidValue("no".into()));
                        }
                        Ok(name)
                    }
                })
                .collect::<Vec<_>>()
        };
        let batch = {
            let (store, writes) = (store.clone(), each(&["e1", "e2", "e3"]));
            tokio::spawn(async move { store.write_each(writes).await })
        };
        while store.pending.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = single("after");
        while store.pending.lock().unwrap().len() < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let counted = store.commit_batches();
        drop(busy);
        let results: Vec<_> = batch
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(results, [Ok("e1"), Err("no".to_string()), Ok("e3")]);
        before.await.unwrap().unwrap();
        after.await.unwrap().unwrap();
        assert_eq!(*seen.lock().unwrap(), ["e1", "e2", "e3"]);
        let batches = store.commit_batches();
        assert_eq!(
            batches.commits,
            counted.commits + 1,
            "one commit for all five"
        );
        assert_eq!(batches.writes, counted.writes + 5);
        let keys: Vec<String> = store
            .read_sync(|c| {
                Ok(
                    c.prepare("SELECT key FROM settings WHERE value = 'x' ORDER BY rowid")?
                        .query_map([], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?,
                )
            })
            .unwrap();
        assert_eq!(keys, ["before", "e1", "e3", "after"]);

        store.set_group_commit(false);
        let counted = store.commit_batches();
        let results = store.write_each(each(&["f1", "e2", "f3"])).await.unwrap();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(store.commit_batches().commits, counted.commits + 2);
    }

    /// A read past its budget is interrupted and answered `tooMany`; its connection goes
    /// back to the pool out of its transaction and without a deadline, and serves again.
    #[test]
    fn a_read_over_its_budget_is_interrupted_and_its_reader_serves_again() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("b.db"))
            .unwrap()
            .with_budget(Budget {
                // Forty times what the slow read below takes alone: it must pass on a busy
                // machine too (50 ms failed under a load of 3).
                read: Duration::from_millis(200),
                scans: 1,
            });
        let endless = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) \
                       SELECT count(*) FROM c";
        let err = store
            .read_sync(|c| Ok(c.query_row(endless, [], |r| r.get::<_, i64>(0))?))
            .unwrap_err();
        assert!(
            matches!(&err, Error::TooMany(m) if m.contains("0.2 s")),
            "{err:?}"
        );
        // Every pooled reader still answers, none inside a transaction; a slow read under
        // the budget is not interrupted.
        let held: Vec<_> = (0..READERS).map(|_| store.readers.get().unwrap()).collect();
        for conn in &held {
            assert!(conn.is_autocommit());
        }
        drop(held);
        let counted = store
            .read_sync(|c| {
                Ok(c.query_row(
                    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 20000) \
                     SELECT count(*) FROM c",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap();
        assert_eq!(counted, 20000);
    }

    /// Scans take turns: with one scan permit held, a second scan waits, and gets `503` once
    /// it has waited the read budget; a read that is not a scan does not wait.
    #[tokio::test]
    async fn scans_take_turns_and_lookups_do_not_wait_for_them() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("s.db"))
            .unwrap()
            .with_budget(Budget {
                read: Duration::from_millis(200),
                scans: 1,
            });
        let turn = store.scan_permits.clone().acquire_owned().await.unwrap();
        let one = |c: &Connection| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?);
        assert_eq!(store.read_list(false, one).await.unwrap(), 1);
        let err = store.read_list(true, one).await.unwrap_err();
        assert!(matches!(err, Error::Busy(_)), "{err:?}");
        drop(turn);
        assert_eq!(store.read_list(true, one).await.unwrap(), 1);
    }

    /// A read whose caller went away (the client hung up) keeps its turn until the read
    /// itself ends, so abandoned requests cannot pile reads onto the blocking threads.
    #[tokio::test]
    async fn an_abandoned_read_keeps_its_turn_until_it_ends() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (finish, finish_rx) = std::sync::mpsc::channel::<()>();
        let reader = store.clone();
        let caller = tokio::spawn(async move {
            reader
                .read(move |_| {
                    let _ = started_tx.send(());
                    let _ = finish_rx.recv();
                    Ok(())
                })
                .await
        });
        tokio::task::spawn_blocking(move || started.recv())
            .await
            .unwrap()
            .unwrap();
        caller.abort();
        let _ = caller.await;
        let free = store.read_permits.available_permits();
        assert_eq!(
            free,
            READERS as usize - 1,
            "the running read still holds its turn"
        );
        finish.send(()).unwrap();
        for _ in 0..200 {
            if store.read_permits.available_permits() == READERS as usize {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the turn was not given back once the read ended");
    }

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
