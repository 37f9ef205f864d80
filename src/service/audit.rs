//! The audit log: who changed what, and which requests were turned away.
//!
//! A change's entry is written by the use case that makes the change, in the same
//! transaction: both exist or neither does. A rejected request changed nothing, so its entry is
//! queued and written with others a moment later (`Rejections`): a client sending bad requests
//! must not cost an fsync each, and the queue is bounded. Secrets never reach an entry: tokens
//! are named, never shown, and passwords are dropped before anything is recorded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};
use tracing::warn;

use crate::error::{Error, Result};
use crate::scim::diff;
use crate::scim::time;
use crate::store::Store;
use crate::store::audit::{self, Entry, NewEntry, Query};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The token's name or the admin's username; empty when unknown.
    pub name: String,
    pub client: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Token,
    Admin,
    /// No valid credentials (a rejected request).
    Anonymous,
    /// scimd itself, or the command line.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Token => "token",
            ActorKind::Admin => "admin",
            ActorKind::Anonymous => "anonymous",
            ActorKind::System => "system",
        }
    }
}

impl Actor {
    /// The command line on this machine.
    pub fn cli() -> Actor {
        Actor {
            kind: ActorKind::System,
            name: "cli".into(),
            client: "local".into(),
            user_agent: String::new(),
        }
    }

    /// An entry by this actor; the caller fills in the resource and detail.
    pub fn entry(&self, action: &str, outcome: &'static str, status: u16) -> NewEntry {
        NewEntry {
            at: time::now(),
            actor_kind: self.kind.as_str(),
            actor: self.name.clone(),
            client: self.client.clone(),
            user_agent: self.user_agent.clone(),
            action: action.into(),
            resource_type: None,
            resource_id: None,
            resource_name: None,
            outcome,
            status,
            detail: None,
            refs: Vec::new(),
        }
    }
}

/// The resource an entry is about.
pub struct About<'a> {
    pub kind: &'static str,
    pub id: &'a str,
    pub name: Option<&'a str>,
}

/// A successful change to record. `changes` are the document's; `extra` adds fields to the
/// detail (members added or removed); `refs` are other resources the change concerns.
pub struct Change<'a> {
    pub action: &'a str,
    pub status: u16,
    pub about: About<'a>,
    pub changes: Vec<diff::Change>,
    pub extra: Map<String, Value>,
    pub refs: Vec<String>,
}

/// Records a successful change, in the caller's transaction.
pub fn record_change(tx: &rusqlite::Connection, actor: &Actor, c: Change<'_>) -> Result<()> {
    let mut detail = Map::new();
    if !c.changes.is_empty() {
        detail.insert(
            "changes".into(),
            Value::Array(c.changes.iter().map(diff::Change::to_json).collect()),
        );
    }
    detail.extend(c.extra);
    let mut e = actor.entry(c.action, "success", c.status);
    e.resource_type = Some(c.about.kind);
    e.resource_id = Some(c.about.id.to_string());
    e.resource_name = c.about.name.map(str::to_string);
    e.detail = (!detail.is_empty()).then_some(Value::Object(detail));
    e.refs = c.refs;
    audit::insert(tx, &e)?;
    Ok(())
}

/// Rejected requests waiting to be written.
#[derive(Default)]
pub struct Rejections {
    queue: Mutex<Vec<NewEntry>>,
    dropped: AtomicU64,
}

/// Queued rejections beyond this are counted and dropped, so a flood cannot exhaust memory.
const MAX_QUEUED: usize = 10_000;

impl Rejections {
    /// Queues the entry for a request that failed with `error`.
    pub fn push(&self, mut entry: NewEntry, error: &Error) {
        let mut detail = json!({"error": error.detail()});
        if let Some(t) = error.scim_type() {
            detail["scimType"] = json!(t);
        }
        entry.detail = Some(detail);
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() < MAX_QUEUED {
            queue.push(entry);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the queued entries in one transaction.
    pub async fn flush(&self, store: &Store) -> Result<()> {
        let pending = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            warn!(dropped, "audit queue full: rejected requests not recorded");
        }
        if pending.is_empty() {
            return Ok(());
        }
        store
            .write(move |tx| {
                for e in &pending {
                    audit::insert(tx, e)?;
                }
                Ok(())
            })
            .await
    }
}

/// Entries matching `q`, newest first.
pub async fn list(store: &Store, q: Query) -> Result<Vec<Entry>> {
    store.read(move |conn| audit::list(conn, &q)).await
}

/// How long the audit log keeps entries: by age and by count, whichever removes more. The
/// default keeps a year and at most a million entries (a few hundred MB at most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub max_age_days: Option<u32>,
    pub max_rows: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_days: Some(365),
            max_rows: Some(1_000_000),
        }
    }
}

const RETENTION_KEY: &str = "audit_retention";
/// A hundred years: longer is "forever" (null), and dates before year 1 can't be written.
const MAX_AGE_DAYS: u32 = 36_500;

impl Retention {
    pub fn to_json(&self) -> Value {
        json!({"maxAgeDays": self.max_age_days, "maxRows": self.max_rows})
    }

    /// `{"maxAgeDays": n|null, "maxRows": n|null}`; null keeps entries forever that way.
    pub fn from_json(v: &Value) -> Result<Retention> {
        let field = |k: &str| -> Result<Option<u64>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    Error::InvalidValue(format!("\"{k}\" is a positive whole number or null"))
                }),
            }
        };
        let days = field("maxAgeDays")?
            .map(|d| {
                u32::try_from(d)
                    .ok()
                    .filter(|d| *d <= MAX_AGE_DAYS)
                    .ok_or_else(|| {
                        Error::InvalidValue(format!("maxAgeDays is at most {MAX_AGE_DAYS}"))
                    })
            })
            .transpose()?;
        Ok(Retention {
            max_age_days: days,
            max_rows: field("maxRows")?,
        })
    }
}

pub async fn retention(store: &Store) -> Result<Retention> {
    let stored = store
        .read(|conn| crate::store::admins::setting(conn, RETENTION_KEY))
        .await?;
    Ok(match stored {
        Some(text) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| Retention::from_json(&v).ok())
            .unwrap_or_default(),
        None => Retention::default(),
    })
}

pub async fn set_retention(store: &Store, r: Retention, actor: &Actor) -> Result<()> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            crate::store::admins::set_setting(tx, RETENTION_KEY, &r.to_json().to_string())?;
            let mut e = actor.entry("settings.retention", "success", 200);
            e.detail = Some(r.to_json());
            audit::insert(tx, &e)?;
            Ok(())
        })
        .await
}

/// Entries deleted per transaction while pruning, so SCIM writes are never held up long.
const PRUNE_BATCH: u32 = 5000;

/// Applies the retention setting; returns how many entries were deleted.
pub async fn prune(store: &Store) -> Result<usize> {
    let r = retention(store).await?;
    let older_than = r.max_age_days.and_then(|d| {
        ::time::OffsetDateTime::now_utc()
            .checked_sub(::time::Duration::days(i64::from(d)))
            .map(time::format)
    });
    let mut total = 0;
    loop {
        let (t, keep) = (older_than.clone(), r.max_rows);
        let n = store
            .write(move |tx| audit::prune(tx, t.as_deref(), keep, PRUNE_BATCH))
            .await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}
