//! The audit log: who changed what, and which requests were turned away.
//!
//! A change's entry is written by the use case that makes the change, in the same
//! transaction: both exist or neither does. A rejected request changed nothing, so its entry is
//! queued, folded with its repeats and written a moment later (`Rejections`, at a small fixed
//! cost per request). Secrets never reach an entry: tokens
//! are named, never shown, and passwords are dropped before anything is recorded.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::scim::diff;
use crate::scim::time;
use crate::store::Store;
use crate::store::audit::{self, Entry, NewEntry, Query};

pub use super::rejections::Rejections;

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
    /// A token on record that no longer works (revoked, or its secret's overlap ended): a
    /// real client with a stale credential rather than a guesser. Never authenticates.
    RevokedToken,
    /// scimd itself, or the command line.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Token => "token",
            ActorKind::Admin => "admin",
            ActorKind::Anonymous => "anonymous",
            ActorKind::RevokedToken => "revoked_token",
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

    /// An entry by this actor; the caller fills in the resource and detail. What the client
    /// wrote (its user agent, a typed username) is cut to a few hundred bytes here, for every
    /// entry: a header may be 64 KiB.
    pub fn entry(&self, action: &str, outcome: &'static str, status: u16) -> NewEntry {
        NewEntry {
            at: time::now(),
            actor_kind: self.kind.as_str(),
            actor: clipped(&self.name, MAX_ACTOR),
            client: clipped(&self.client, MAX_CLIENT),
            user_agent: clipped(&self.user_agent, MAX_USER_AGENT),
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

/// Longest stored user agent, actor name and client address, in bytes; longer ones are cut
/// and end in "…". The actor's bound holds any name scimd accepts uncut (a token's name is at
/// most 100 bytes, an administrator's 64 characters), so filtering by actor still finds
/// every entry; a failed sign-in's actor is the username as typed.
pub const MAX_USER_AGENT: usize = 128;
pub const MAX_ACTOR: usize = 256;
const MAX_CLIENT: usize = 64;

/// Cuts `s` to at most `max` bytes, at a character boundary, ending in "…" when cut.
pub fn clip(s: &mut String, max: usize) {
    if s.len() > max {
        *s = clipped(s, max);
    }
}

/// `s` cut to at most `max` bytes, as `clip` does.
pub fn clipped(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

/// Records a successful administrative action on the named thing of `kind` (a token, a
/// webhook endpoint), in the caller's transaction. Secrets are never part of `detail`.
pub fn record_named(
    tx: &rusqlite::Connection,
    actor: &Actor,
    action: &str,
    kind: &'static str,
    name: &str,
    detail: Option<Value>,
) -> Result<()> {
    let mut e = actor.entry(action, "success", 200);
    e.resource_type = Some(kind);
    e.resource_name = Some(name.to_string());
    e.detail = detail;
    audit::insert(tx, &e)?;
    Ok(())
}

/// Entries matching `q`, newest first.
pub async fn list(store: &Store, q: Query) -> Result<Vec<Entry>> {
    store.read(move |conn| audit::list(conn, &q)).await
}

/// The console's one-click filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quick {
    /// Suspensions and deletions of users in the last 7 days.
    Offboarding,
    /// Rejected requests and failed sign-ins.
    Failures,
    /// What administrators did in the console.
    Console,
}

/// How far back "Offboarding this week" looks.
const WEEK: ::time::Duration = ::time::Duration::days(7);

impl Quick {
    pub fn parse(text: &str) -> Result<Quick> {
        match text {
            "offboarding" => Ok(Quick::Offboarding),
            "failures" => Ok(Quick::Failures),
            "console" => Ok(Quick::Console),
            other => Err(Error::InvalidValue(format!(
                "quick is offboarding, failures or console, not \"{other}\""
            ))),
        }
    }

    /// Narrows `q` to this filter, as of `now`; what `q` already asks for still holds.
    pub fn apply(self, q: &mut Query, now: ::time::OffsetDateTime) {
        match self {
            Quick::Offboarding => {
                let offboarding = [audit::SUSPEND, "user.delete"];
                match q.action.as_deref().map(audit::canonical_action) {
                    None => q.actions = offboarding.map(str::to_string).to_vec(),
                    Some(a) if offboarding.contains(&a.as_str()) => {}
                    // An action that is not offboarding: no entry is both. No entry is older
                    // than seq 0, so this selects nothing, by an empty index range.
                    Some(_) => q.before = Some(0),
                }
                let week_ago = now.checked_sub(WEEK).map(time::format);
                q.since = match (q.since.take(), week_ago) {
                    (Some(s), Some(w)) => Some(s.max(w)),
                    (s, w) => s.or(w),
                };
            }
            Quick::Failures => match q.outcome.as_deref() {
                Some("failure") | None => q.outcome = Some("failure".into()),
                // Successes that are failures: none (see above).
                Some(_) => q.before = Some(0),
            },
            Quick::Console => q.actor_kind = Some("admin".into()),
        }
    }
}

/// At most this many resources a name stands for (a userName reused after a deletion, a
/// group and a user of the same name).
const MAX_NAMED: usize = 20;

/// The console's search: entries matching `q` with their view, newest first. The resource
/// may be an id, a userName or a group's name (the ids of users deleted since included: the
/// names their entries recorded).
pub async fn search(store: &Store, mut q: Query) -> Result<Vec<super::audit_view::Shown>> {
    store
        .read(move |conn| {
            if let Some(name) = q.resource.as_deref().filter(|r| !r.trim().is_empty()) {
                let mut ids = audit::ids_named(conn, name, MAX_NAMED)?;
                ids.retain(|id| id != name);
                q.resources = ids;
            }
            Ok(audit::list(conn, &q)?
                .into_iter()
                .map(super::audit_view::shown)
                .collect())
        })
        .await
}

/// How many suggestions one request returns at most.
pub const MAX_SUGGESTIONS: usize = 20;

/// The actions (with the derived ones) or actors recorded that start with `prefix`,
/// case-insensitively, at most `MAX_SUGGESTIONS`.
pub async fn suggestions(store: &Store, field: &str, prefix: String) -> Result<Vec<String>> {
    let actors = match field {
        "action" => false,
        "actor" => true,
        other => {
            return Err(Error::InvalidValue(format!(
                "suggestions are for action or actor, not \"{other}\""
            )));
        }
    };
    store
        .read(move |conn| {
            if actors {
                return audit::actors(conn, &prefix, MAX_SUGGESTIONS);
            }
            let lower = prefix.to_ascii_lowercase();
            let mut out: Vec<String> = audit::DERIVED
                .iter()
                .map(|(code, _)| code.to_string())
                .filter(|c| c.starts_with(&lower))
                .collect();
            out.extend(audit::actions(conn, &prefix, MAX_SUGGESTIONS)?);
            out.sort_by_key(|a| a.to_ascii_lowercase());
            out.truncate(MAX_SUGGESTIONS);
            Ok(out)
        })
        .await
}

/// How long the audit log keeps entries: by age, by count and by size in the database file,
/// whichever removes more. The default keeps a year, at most a million entries and at most
/// 1 GiB. Failures (rejected requests, failed sign-ins: entries that changed nothing) have a
/// share of their own, a tenth of the count and of the size bound, and are deleted before
/// any change record when either bound is reached, so a flood never pushes history out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub max_age_days: Option<u32>,
    pub max_rows: Option<u64>,
    pub max_megabytes: Option<u64>,
}

/// The size bound when a setting does not name one (settings saved before there was one).
const DEFAULT_MAX_MEGABYTES: u64 = 1024;

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_days: Some(365),
            max_rows: Some(1_000_000),
            max_megabytes: Some(DEFAULT_MAX_MEGABYTES),
        }
    }
}

const RETENTION_KEY: &str = "audit_retention";
/// A hundred years: longer is "forever" (null), and dates before year 1 can't be written.
const MAX_AGE_DAYS: u32 = 36_500;

impl Retention {
    pub fn to_json(&self) -> Value {
        json!({
            "maxAgeDays": self.max_age_days,
            "maxRows": self.max_rows,
            "maxMegabytes": self.max_megabytes,
        })
    }

    /// `{"maxAgeDays": n|null, "maxRows": n|null, "maxMegabytes": n|null}`; null keeps
    /// entries forever that way. A missing `maxMegabytes` is the default size bound, so
    /// settings saved before it existed (and clients that do not know it) keep one.
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
        let megabytes = match v.get("maxMegabytes") {
            None => Some(DEFAULT_MAX_MEGABYTES),
            Some(_) => field("maxMegabytes")?,
        };
        Ok(Retention {
            max_age_days: days,
            max_rows: field("maxRows")?,
            max_megabytes: megabytes,
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

/// Records that an administrator downloaded an export (`action`: `users.export`,
/// `group.members_export`, `audit.export`) with what selected it: a copy of the directory
/// leaving the server is worth a line in the log. Each value is clipped to 200 characters.
pub async fn record_export(
    store: &Store,
    actor: &Actor,
    action: &'static str,
    selected: &[(&str, &str)],
) -> Result<()> {
    let mut e = actor.entry(action, "success", 200);
    e.detail = Some(Value::Object(
        selected
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    Value::from(v.chars().take(200).collect::<String>()),
                )
            })
            .collect(),
    ));
    store
        .write(move |tx| {
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
    let keep = audit::Keep {
        rows: r.max_rows,
        failures: failure_share(&r),
    };
    let mut total = 0;
    loop {
        let t = older_than.clone();
        let n = store
            .write(move |tx| audit::prune(tx, t.as_deref(), keep, PRUNE_BATCH))
            .await?;
        total += n;
        if n == 0 {
            break;
        }
    }
    if let Some(mb) = r.max_megabytes {
        total += prune_to_size(store, mb.saturating_mul(1024 * 1024)).await?;
    }
    // Deleted users' console pages last as long as their history does.
    store
        .write(|tx| crate::store::people::prune_tombstones(tx))
        .await?;
    Ok(total)
}

/// The part of each bound failures may take at most: one in this many.
const FAILURE_SHARE: u64 = 10;
/// What a failure's entry is counted at for their share of the size bound: its fields are
/// cut to a few hundred bytes, so most take well under this on disk, indexes included, and
/// the longest (a 64-character username in every field that holds one) about half again.
const FAILURE_BYTES: u64 = 1024;

/// How many failures the log keeps at most: a tenth of the count bound, and as many as fill
/// a tenth of the size bound.
fn failure_share(r: &Retention) -> Option<u64> {
    let by_rows = r.max_rows.map(|n| n / FAILURE_SHARE);
    let by_size = r
        .max_megabytes
        .map(|mb| mb.saturating_mul(1024 * 1024) / FAILURE_SHARE / FAILURE_BYTES);
    match (by_rows, by_size) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Rounds of measuring and deleting before pruning by size gives up until the next run
/// (deleting rows frees index pages a little less than in proportion).
const SIZE_ROUNDS: usize = 4;

/// Deletes the oldest entries, failures first, until the log takes at most `max_bytes` of
/// the file. Freed
/// pages stay in the file for new rows, so the file stops growing rather than shrinks.
async fn prune_to_size(store: &Store, max_bytes: u64) -> Result<usize> {
    let mut total = 0;
    for _ in 0..SIZE_ROUNDS {
        let (bytes, rows) = store
            .read(|conn| Ok((audit::size_on_disk(conn)?, audit::count(conn)?)))
            .await?;
        let mut excess = rows_over(bytes, rows, max_bytes);
        if excess == 0 {
            break;
        }
        while excess > 0 {
            let batch = u32::try_from(excess.min(u64::from(PRUNE_BATCH))).unwrap_or(PRUNE_BATCH);
            let n = store
                .write(move |tx| audit::delete_oldest(tx, batch))
                .await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
            excess = excess.saturating_sub(n as u64);
        }
    }
    Ok(total)
}

/// How many of `rows` entries taking `bytes` to delete to get under `max_bytes`: their share
/// of the excess, plus 1% so one round usually does.
pub(super) fn rows_over(bytes: u64, rows: u64, max_bytes: u64) -> u64 {
    if bytes <= max_bytes || rows == 0 {
        return 0;
    }
    let share = u128::from(rows) * u128::from(bytes - max_bytes) / u128::from(bytes);
    let n = u64::try_from(share).unwrap_or(rows) + rows / 100 + 1;
    n.min(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quick filter narrows the query: what it already asks for still holds.
    #[test]
    fn quick_filters_narrow_the_query() {
        let now = ::time::macros::datetime!(2026-12-06 00:00 UTC);
        let applied = |quick: Quick, q: Query| {
            let mut q = q;
            quick.apply(&mut q, now);
            q
        };
        let all = applied(Quick::Offboarding, Query::default());
        assert_eq!(all.actions, ["user.suspend", "user.delete"]);
        assert_eq!(all.since.as_deref(), Some("2026-11-29T00:00:00.000Z"));
        let suspended = Query {
            action: Some("Suspended".into()),
            since: Some("2026-12-01T00:00:00.000Z".into()),
            ..Default::default()
        };
        let q = applied(Quick::Offboarding, suspended.clone());
        assert_eq!(
            (q.action, q.actions.len(), q.before),
            (suspended.action, 0, None)
        );
        assert_eq!(q.since, suspended.since, "the later start holds");
        let patches = Query {
            action: Some("user.patch".into()),
            ..Default::default()
        };
        assert_eq!(applied(Quick::Offboarding, patches).before, Some(0));
        let successes = Query {
            outcome: Some("success".into()),
            ..Default::default()
        };
        assert_eq!(applied(Quick::Failures, successes).before, Some(0));
        assert_eq!(
            applied(Quick::Console, Query::default())
                .actor_kind
                .as_deref(),
            Some("admin")
        );
    }

    #[test]
    fn deletes_the_share_of_rows_over_the_size_bound() {
        assert_eq!(rows_over(100, 1000, 100), 0);
        assert_eq!(rows_over(100, 0, 10), 0);
        assert_eq!(rows_over(200, 1000, 100), 500 + 10 + 1);
        assert_eq!(rows_over(u64::MAX, 10, 0), 10);
    }

    #[test]
    fn failures_keep_a_tenth_of_either_bound() {
        assert_eq!(failure_share(&Retention::default()), Some(100_000));
        let r = |rows, mb| Retention {
            max_age_days: None,
            max_rows: rows,
            max_megabytes: mb,
        };
        assert_eq!(failure_share(&r(Some(1000), Some(1024))), Some(100));
        assert_eq!(failure_share(&r(None, Some(10))), Some(1024));
        assert_eq!(failure_share(&r(None, None)), None);
    }

    #[test]
    fn cuts_client_text_in_every_entry() {
        let actor = Actor {
            kind: ActorKind::Admin,
            name: "é".repeat(1000),
            client: "127.0.0.1".into(),
            user_agent: "a".repeat(30_000),
        };
        let e = actor.entry("admin.login", "failure", 401);
        assert!(e.user_agent.len() <= MAX_USER_AGENT && e.user_agent.ends_with('…'));
        assert!(e.actor.len() <= MAX_ACTOR && e.actor.ends_with('…'));
        assert_eq!(e.client, "127.0.0.1");
        assert_eq!(clipped("abc", 3), "abc");
        assert_eq!(clipped("ééééé", 6), "é…");
    }

    #[test]
    fn retention_without_a_size_keeps_the_default_one() {
        let old = Retention::from_json(&json!({"maxAgeDays": 30, "maxRows": null})).unwrap();
        assert_eq!(old.max_megabytes, Some(DEFAULT_MAX_MEGABYTES));
        let none = Retention::from_json(&json!({"maxMegabytes": null})).unwrap();
        assert_eq!(none.max_megabytes, None);
        let set = Retention::from_json(&json!({"maxMegabytes": 5})).unwrap();
        assert_eq!(Retention::from_json(&set.to_json()).unwrap(), set);
        assert!(Retention::from_json(&json!({"maxMegabytes": 0})).is_err());
    }

    #[tokio::test]
    async fn pruning_keeps_the_log_within_its_size() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        store
            .write_sync(|tx| {
                for n in 0..400 {
                    let mut e = Actor::cli().entry("user.patch", "success", 200);
                    e.detail = Some(json!({"n": n, "pad": "p".repeat(10_000)}));
                    audit::insert(tx, &e)?;
                }
                Ok(())
            })
            .unwrap();
        let max = 1024 * 1024;
        let deleted = prune_to_size(&store, max).await.unwrap();
        let (bytes, left) = store
            .read_sync(|c| Ok((audit::size_on_disk(c)?, audit::count(c)?)))
            .unwrap();
        assert!(bytes <= max, "{bytes}");
        assert_eq!(deleted as u64 + left, 400);
        assert!(left >= 50, "no more than needed: {left} left");
        let newest = store
            .read_sync(|c| {
                audit::list(
                    c,
                    &Query {
                        limit: 1,
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(newest[0].detail.as_ref().unwrap()["n"], 399);
    }
}
