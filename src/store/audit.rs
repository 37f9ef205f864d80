//! SQL for the audit log: one row per change or rejected request, plus the resources each
//! row concerns (`audit_refs`), read newest first by keyset on `seq` so any page of millions
//! of rows is an index range read. Also what a change amounts to (`derived`: suspensions and
//! reactivations), kept here beside the migration that fills it for older entries.

use rusqlite::{Connection, params, params_from_iter};
use serde_json::Value;

use crate::error::Result;
use crate::scim::ident::fold;

/// At most this many resources are indexed per entry (a PUT that replaces 100,000 members
/// still gets one entry; its detail says how many there were).
pub const MAX_REFS: usize = 1000;

/// An entry to write. `refs` are the ids of the resources it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub at: String,
    pub actor_kind: &'static str,
    pub actor: String,
    pub client: String,
    pub user_agent: String,
    pub action: String,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub outcome: &'static str,
    pub status: u16,
    pub detail: Option<Value>,
    pub refs: Vec<String>,
}

/// An entry as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor: String,
    pub client: String,
    pub user_agent: String,
    pub action: String,
    /// What the change amounts to when `action` does not say it (see `derived`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub detail: Option<Value>,
}

/// A suspension: a change that turned a user's `active` off.
pub const SUSPEND: &str = "user.suspend";
/// A reactivation: a change that turned it back on.
pub const REACTIVATE: &str = "user.reactivate";

/// The actions derived from what a change did, with the word the console also accepts.
pub const DERIVED: [(&str, &str); 2] = [(SUSPEND, "suspended"), (REACTIVATE, "reactivated")];

/// An action as filters compare it: lower case (action codes are ASCII), a derived action's
/// word (`suspended`) as its code.
pub fn canonical_action(action: &str) -> String {
    let lower = action.trim().to_ascii_lowercase();
    match DERIVED.iter().find(|(_, word)| lower == *word) {
        Some((code, _)) => code.to_string(),
        None => lower,
    }
}

/// What a user.patch or user.replace amounts to: a suspension when it set `active` to false
/// from anything else (absent means active), a reactivation when it set it from false to
/// anything else. Migration 11 applies the same rule in SQL to entries written before.
pub fn derived(action: &str, detail: Option<&Value>) -> Option<&'static str> {
    if action != "user.patch" && action != "user.replace" {
        return None;
    }
    let changes = detail?.get("changes")?.as_array()?;
    let active = changes
        .iter()
        .find(|c| c.get("path").and_then(Value::as_str) == Some("active"))?;
    let off = |k: &str| active.get(k) == Some(&Value::Bool(false));
    match (off("before"), off("after")) {
        (false, true) => Some(SUSPEND),
        (true, false) => Some(REACTIVATE),
        _ => None,
    }
}

pub fn insert(conn: &Connection, e: &NewEntry) -> Result<i64> {
    let detail = e.detail.as_ref().map(Value::to_string);
    conn.prepare_cached(
        "INSERT INTO audit (at, actor_kind, actor, client, user_agent, action, resource_type,
                            resource_id, resource_name, outcome, status, detail, derived,
                            actor_fold)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        e.at,
        e.actor_kind,
        e.actor,
        e.client,
        e.user_agent,
        e.action,
        e.resource_type,
        e.resource_id,
        e.resource_name,
        e.outcome,
        e.status,
        detail,
        derived(&e.action, e.detail.as_ref()),
        fold(&e.actor)
    ])?;
    let seq = conn.last_insert_rowid();
    let mut add_ref =
        conn.prepare_cached("INSERT INTO audit_refs (audit_seq, resource_id) VALUES (?1, ?2)")?;
    let mut seen = std::collections::HashSet::new();
    for id in e.resource_id.iter().chain(&e.refs).take(MAX_REFS + 1) {
        if seen.insert(id) {
            add_ref.execute(params![seq, id])?;
        }
    }
    Ok(seq)
}

/// Replaces an entry's detail (a rejection's count grows while its window lasts).
pub fn set_detail(conn: &Connection, seq: i64, detail: &Value) -> Result<()> {
    conn.prepare_cached("UPDATE audit SET detail = ?2 WHERE seq = ?1")?
        .execute(params![seq, detail.to_string()])?;
    Ok(())
}

/// The bytes the audit log takes in the database file: every page of its tables and their
/// indexes (SQLite's `dbstat`). Reads each of those pages, so it is for the hourly pruning,
/// not for a request.
pub fn size_on_disk(conn: &Connection) -> Result<u64> {
    let bytes: i64 = conn.query_row(
        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat('main', 1)
         WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name IN ('audit', 'audit_refs'))",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// How many entries the log holds.
pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes the oldest `n` entries (their refs go with them), failures first: a rejected
/// request or failed sign-in goes before any change record, however old that is, so a flood
/// of them never pushes history out. Returns how many were deleted.
pub fn delete_oldest(conn: &Connection, n: u32) -> Result<usize> {
    let failures = conn.execute(
        "DELETE FROM audit WHERE seq IN
         (SELECT seq FROM audit WHERE outcome = 'failure' ORDER BY seq LIMIT ?1)",
        [n],
    )?;
    let rest = n.saturating_sub(u32::try_from(failures).unwrap_or(n));
    if rest == 0 {
        return Ok(failures);
    }
    Ok(failures
        + conn.execute(
            "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit ORDER BY seq LIMIT ?1)",
            [rest],
        )?)
}

/// Which entries to read: every given criterion must hold. `before` is the `seq` the previous
/// page ended at (pages go from newest to oldest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Compared by Unicode case fold (`OneLogin` finds `onelogin`).
    pub actor: Option<String>,
    /// Compared case-insensitively; a derived action (`user.suspend`, or `suspended`: see
    /// `DERIVED`) selects the entries it was derived for.
    pub action: Option<String>,
    /// More actions: an entry with any of these or `action` is selected.
    pub actions: Vec<String>,
    /// `admin` (the console), `token`, `anonymous`, `revoked_token` or `system`.
    pub actor_kind: Option<String>,
    pub outcome: Option<String>,
    /// A resource id: entries about it, including membership changes that named it.
    pub resource: Option<String>,
    /// More resource ids: entries about any of these or `resource` are selected.
    pub resources: Vec<String>,
    /// RFC 3339 bounds on `at` (inclusive `since`, exclusive `until`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// At most this many actions, and resource ids, in one query: each pair is a branch of the
/// statement (see `select_sql`).
pub const MAX_ANY_OF: usize = 20;

const COLUMNS: &str = "a.seq, a.at, a.actor_kind, a.actor, a.client, a.user_agent, a.action, \
    a.resource_type, a.resource_id, a.resource_name, a.outcome, a.status, a.detail, a.derived";

/// How long before `since` an entry's place in the log may be: a rejected request's entry is
/// written up to a minute or so after its time (see `Rejections`), so `seq` and `at` are in
/// the same order but for such a margin.
const LATE_WRITE: ::time::Duration = ::time::Duration::hours(1);

/// The statement and parameters that read the entries `q` selects. One action and one
/// resource is one index range read, newest first. Several (a quick filter's actions, the ids
/// a name stands for) make one such read per pair, each at most a page long, merged: the
/// sort is over those few pages, never over the log.
fn select_sql(q: &Query) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let actions: Vec<Option<&str>> = if q.action.is_none() && q.actions.is_empty() {
        vec![None]
    } else {
        q.action
            .iter()
            .chain(&q.actions)
            .take(MAX_ANY_OF)
            .map(|a| Some(a.as_str()))
            .collect()
    };
    let resources: Vec<Option<&str>> = if q.resource.is_none() && q.resources.is_empty() {
        vec![None]
    } else {
        q.resource
            .iter()
            .chain(&q.resources)
            .take(MAX_ANY_OF)
            .map(|r| Some(r.as_str()))
            .collect()
    };
    let mut branches = Vec::new();
    for action in &actions {
        for resource in &resources {
            branches.push(branch(q, *action, *resource, &mut args));
        }
    }
    if branches.len() == 1 {
        return (branches.remove(0), args);
    }
    // UNION, not UNION ALL: an entry two branches find (a membership change about two of the
    // ids) is listed once.
    let merged: Vec<String> = branches
        .iter()
        .map(|b| format!("SELECT * FROM ({b})"))
        .collect();
    let sql = format!(
        "{} ORDER BY seq DESC LIMIT {}",
        merged.join(" UNION "),
        q.limit
    );
    (sql, args)
}

/// One index range read of `select_sql`.
fn branch(
    q: &Query,
    action: Option<&str>,
    resource: Option<&str>,
    args: &mut Vec<rusqlite::types::Value>,
) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM audit a");
    let mut conds: Vec<String> = Vec::new();
    let mut bind = |v: rusqlite::types::Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(r) = resource {
        let p = bind(r.to_string().into());
        sql.push_str(&format!(
            " JOIN audit_refs r ON r.audit_seq = a.seq AND r.resource_id = {p}"
        ));
    }
    if let Some(action) = action {
        let code = canonical_action(action);
        let derived = DERIVED.iter().any(|(d, _)| *d == code);
        let p = bind(code.into());
        conds.push(if derived {
            format!("a.derived = {p}")
        } else {
            format!("a.action = {p} COLLATE NOCASE")
        });
    }
    if let Some(actor) = &q.actor {
        let p = bind(fold(actor).into());
        conds.push(format!("a.actor_fold = {p}"));
    }
    if let Some(v) = &q.outcome {
        let p = bind(v.clone().into());
        conds.push(format!("a.outcome = {p}"));
    }
    match q.actor_kind.as_deref() {
        // Word for word the WHERE term of the partial index `audit_admin` (migration 12).
        Some("admin") => conds.push("a.actor_kind = 'admin'".into()),
        Some(v) => {
            let p = bind(v.to_string().into());
            conds.push(format!("a.actor_kind = {p}"));
        }
        None => {}
    }
    // With a resource, its refs index gives the order (r.audit_seq is a.seq), so no sort.
    let seq = if resource.is_some() {
        "r.audit_seq"
    } else {
        "a.seq"
    };
    if let Some(since) = &q.since {
        let p = bind(since.clone().into());
        conds.push(format!("a.at >= {p}"));
        // The same bound on `seq`, which every index ends with: the read stops at the window's
        // start instead of walking the rest of the log for entries that cannot match.
        if let Some(t) = crate::scim::time::parse(since).and_then(|t| t.checked_sub(LATE_WRITE)) {
            let p = bind(crate::scim::time::format(t).into());
            conds.push(format!(
                "{seq} >= (SELECT seq FROM audit WHERE at >= {p} ORDER BY at LIMIT 1)"
            ));
        }
    }
    if let Some(until) = &q.until {
        let p = bind(until.clone().into());
        conds.push(format!("a.at < {p}"));
        // And the read starts at the window's end, not at the newest entry.
        if let Some(t) = crate::scim::time::parse(until).and_then(|t| t.checked_add(LATE_WRITE)) {
            let p = bind(crate::scim::time::format(t).into());
            conds.push(format!(
                "{seq} < COALESCE((SELECT seq FROM audit WHERE at >= {p} ORDER BY at LIMIT 1), \
                 9223372036854775807)"
            ));
        }
    }
    if let Some(before) = q.before {
        let p = bind(before.into());
        conds.push(format!("{seq} < {p}"));
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {seq} DESC LIMIT {}", q.limit));
    sql
}

pub fn list(conn: &Connection, q: &Query) -> Result<Vec<Entry>> {
    let (sql, args) = select_sql(q);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&args), |r| {
        let detail: Option<String> = r.get(12)?;
        Ok(Entry {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor_kind: r.get(2)?,
            actor: r.get(3)?,
            client: r.get(4)?,
            user_agent: r.get(5)?,
            action: r.get(6)?,
            resource_type: r.get(7)?,
            resource_id: r.get(8)?,
            resource_name: r.get(9)?,
            outcome: r.get(10)?,
            status: r.get(11)?,
            detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            derived: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const ACTIONS_SQL: [&str; 2] = [
    "SELECT action, action FROM audit WHERE action >= ?1 COLLATE NOCASE
     ORDER BY action COLLATE NOCASE LIMIT 1",
    "SELECT action, action FROM audit WHERE action > ?1 COLLATE NOCASE
     ORDER BY action COLLATE NOCASE LIMIT 1",
];

const ACTORS_SQL: [&str; 2] = [
    "SELECT actor_fold, actor FROM audit WHERE actor_fold >= ?1 ORDER BY actor_fold LIMIT 1",
    "SELECT actor_fold, actor FROM audit WHERE actor_fold > ?1 ORDER BY actor_fold LIMIT 1",
];

/// The next id recorded under a name, after `?2`.
const NAMED_SQL: &str = "SELECT resource_id FROM audit
     WHERE resource_name = ?1 COLLATE NOCASE
       AND action IN ('user.delete', 'group.delete')
       AND resource_id > ?2
     ORDER BY resource_id LIMIT 1";

/// The distinct actions recorded that start with `prefix` (case-insensitively), at most
/// `max`, in order.
pub fn actions(conn: &Connection, prefix: &str, max: usize) -> Result<Vec<String>> {
    let lower = prefix.to_ascii_lowercase();
    distinct(conn, ACTIONS_SQL, &lower, max, |a| {
        a.to_ascii_lowercase().starts_with(&lower)
    })
}

/// The distinct actors recorded whose case fold starts with `prefix`'s, at most `max`.
pub fn actors(conn: &Connection, prefix: &str, max: usize) -> Result<Vec<String>> {
    let want = fold(prefix);
    distinct(conn, ACTORS_SQL, &want, max, |k| k.starts_with(&want))
}

/// Distinct values read from an index on their key: `sql` finds the first key at or after
/// `start` and then the first after the last one found, each one seek that skips the entries
/// sharing a key, so `max` values cost `max` seeks however large the log. Stops at the first
/// key `keep` refuses (past the prefix). Empty values are no one to suggest.
fn distinct(
    conn: &Connection,
    sql: [&str; 2],
    start: &str,
    max: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut key = start.to_string();
    for n in 0..=max {
        if out.len() >= max {
            break;
        }
        let stmt = if n == 0 { sql[0] } else { sql[1] };
        let found: Option<(String, String)> = conn
            .prepare_cached(stmt)?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
            .map(Some)
            .or_else(none_if_empty)?;
        match found {
            Some((k, shown)) if keep(&k) => {
                if !shown.is_empty() {
                    out.push(shown);
                }
                key = k;
            }
            _ => break,
        }
    }
    Ok(out)
}

/// The ids of the users and groups called `name` (case-insensitively): those that have it
/// now (userName, group displayName) and the deleted ones that had it when they were deleted;
/// at most `max`, each found by an index seek.
pub fn ids_named(conn: &Connection, name: &str, max: usize) -> Result<Vec<String>> {
    let key = crate::scim::ident::key(name);
    let mut out: Vec<String> = Vec::new();
    for sql in [
        "SELECT id FROM users WHERE user_name_fold = ?1 LIMIT 20",
        "SELECT id FROM groups WHERE display_name_fold = ?1 LIMIT 20",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        for id in stmt.query_map([&key], |r| r.get::<_, String>(0))? {
            out.push(id?);
        }
    }
    let mut next = conn.prepare_cached(NAMED_SQL)?;
    let mut after = String::new();
    let name = name.trim();
    while out.len() < max {
        let found: Option<String> = next
            .query_row([name, after.as_str()], |r| r.get(0))
            .map(Some)
            .or_else(none_if_empty)?;
        let Some(id) = found else { break };
        after.clone_from(&id);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out.truncate(max);
    Ok(out)
}

fn none_if_empty<T>(e: rusqlite::Error) -> rusqlite::Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e),
    }
}

/// How many entries to keep at most: all of them, and of those the failures (rejected
/// requests and failed sign-ins, which changed nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub rows: Option<u64>,
    pub failures: Option<u64>,
}

/// Deletes entries older than `older_than` (RFC 3339), failures beyond the newest
/// `keep.failures`, and then, oldest failures first (see `delete_oldest`), all but the
/// newest `keep.rows` entries; at most `batch` at a time each so the writer is never held
/// long. Returns how many were deleted.
pub fn prune(conn: &Connection, older_than: Option<&str>, keep: Keep, batch: u32) -> Result<usize> {
    let mut deleted = 0;
    if let Some(t) = older_than {
        deleted += conn.execute(
            &format!(
                "DELETE FROM audit WHERE seq IN
                 (SELECT seq FROM audit WHERE at < ?1 ORDER BY seq LIMIT {batch})"
            ),
            [t],
        )?;
    }
    if let Some(keep) = keep.failures {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        deleted += conn.execute(
            &format!(
                "DELETE FROM audit WHERE seq IN
                 (SELECT seq FROM audit WHERE outcome = 'failure' AND seq <=
                    (SELECT seq FROM audit WHERE outcome = 'failure'
                     ORDER BY seq DESC LIMIT 1 OFFSET ?1)
                  ORDER BY seq LIMIT {batch})"
            ),
            [keep],
        )?;
    }
    if let Some(keep) = keep.rows {
        let excess = count(conn)?.saturating_sub(keep);
        if excess > 0 {
            let n = u32::try_from(excess.min(u64::from(batch))).unwrap_or(batch);
            deleted += delete_oldest(conn, n)?;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::configure(&conn).unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        conn
    }

    fn entry(n: usize, actor: &str, action: &str, refs: &[&str]) -> NewEntry {
        NewEntry {
            at: format!("2026-01-01T00:00:{n:02}.000Z"),
            actor_kind: "token",
            actor: actor.into(),
            client: "127.0.0.1".into(),
            user_agent: "test".into(),
            action: action.into(),
            resource_type: Some("Group"),
            resource_id: Some(format!("g{n}")),
            resource_name: Some("Finance".into()),
            outcome: "success",
            status: 200,
            detail: Some(json!({"n": n})),
            refs: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn pages_newest_first_with_filters_and_refs() {
        let conn = db();
        for n in 0..10 {
            let actor = if n % 2 == 0 { "onelogin" } else { "okta" };
            let refs: &[&str] = if n == 3 { &["ana"] } else { &[] };
            insert(&conn, &entry(n, actor, "group.patch", refs)).unwrap();
        }
        let q = |q: Query| -> Vec<i64> { list(&conn, &q).unwrap().iter().map(|e| e.seq).collect() };
        assert_eq!(
            q(Query {
                limit: 3,
                ..Default::default()
            }),
            [10, 9, 8]
        );
        assert_eq!(
            q(Query {
                limit: 3,
                before: Some(8),
                ..Default::default()
            }),
            [7, 6, 5]
        );
        assert_eq!(
            q(Query {
                limit: 10,
                actor: Some("okta".into()),
                ..Default::default()
            }),
            [10, 8, 6, 4, 2]
        );
        assert_eq!(
            q(Query {
                limit: 10,
                resource: Some("ana".into()),
                ..Default::default()
            }),
            [4]
        );
        assert_eq!(
            q(Query {
                limit: 10,
                resource: Some("g3".into()),
                ..Default::default()
            }),
            [4]
        );
        assert_eq!(
            q(Query {
                limit: 10,
                since: Some("2026-01-01T00:00:02.000Z".into()),
                until: Some("2026-01-01T00:00:04.000Z".into()),
                ..Default::default()
            }),
            [4, 3]
        );
        let e = &list(
            &conn,
            &Query {
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap()[0];
        assert_eq!(e.detail, Some(json!({"n": 9})));
    }

    /// Every filter of the console reads an index newest-first: no scan of the whole log and
    /// no sort, so a page deep in millions of entries costs what the first does.
    #[test]
    fn every_filter_is_an_index_range_read_without_a_sort() {
        let conn = db();
        let cases = [
            // Newest first from the end of the table, stopping after the page.
            (Query::default(), "SCAN a"),
            (
                Query {
                    before: Some(1_000_000),
                    ..Default::default()
                },
                "INTEGER PRIMARY KEY",
            ),
            (
                Query {
                    actor: Some("a".into()),
                    ..Default::default()
                },
                "audit_actor",
            ),
            (
                Query {
                    action: Some("a".into()),
                    before: Some(10),
                    ..Default::default()
                },
                "audit_action",
            ),
            (
                Query {
                    outcome: Some("failure".into()),
                    ..Default::default()
                },
                "audit_outcome",
            ),
            (
                Query {
                    resource: Some("r".into()),
                    ..Default::default()
                },
                "audit_refs_resource",
            ),
            (
                Query {
                    resource: Some("r".into()),
                    before: Some(10),
                    ..Default::default()
                },
                "audit_refs_resource",
            ),
            (
                Query {
                    action: Some("Suspended".into()),
                    since: Some("2026-01-01T00:00:00.000Z".into()),
                    ..Default::default()
                },
                "audit_derived (derived=? AND seq>?)",
            ),
            (
                Query {
                    action: Some("USER.DELETE".into()),
                    ..Default::default()
                },
                "audit_action (action=?)",
            ),
            (
                Query {
                    actor: Some("OneLogin".into()),
                    since: Some("2026-01-01T00:00:00.000Z".into()),
                    ..Default::default()
                },
                "audit_actor (actor_fold=? AND seq>?)",
            ),
            (
                Query {
                    actor_kind: Some("admin".into()),
                    ..Default::default()
                },
                "audit_admin",
            ),
            (
                Query {
                    since: Some("2026-01-01T00:00:00.000Z".into()),
                    until: Some("2026-01-02T00:00:00.000Z".into()),
                    ..Default::default()
                },
                "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
            ),
        ];
        for (mut q, index) in cases {
            q.limit = 50;
            let sql = select_sql(&q);
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.0))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(params_from_iter(&sql.1), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let text = plan.join(" | ");
            assert!(text.contains(index), "{q:?}: {text}");
            assert!(!text.contains("TEMP B-TREE"), "{q:?} sorts: {text}");
        }
    }

    /// Several actions or resources (a quick filter, the ids a name stands for) read each
    /// pair's index, a page at most each: the only sort is of those pages.
    #[test]
    fn any_of_several_is_a_page_per_branch() {
        let conn = db();
        let q = Query {
            actions: vec![SUSPEND.into(), "user.delete".into()],
            resource: Some("a".into()),
            resources: vec!["b".into()],
            since: Some("2026-01-01T00:00:00.000Z".into()),
            limit: 50,
            ..Default::default()
        };
        let (sql, args) = select_sql(&q);
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params_from_iter(&args), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let text = plan.join(" | ");
        // Every table read is an index search; the only scans are of the branches' pages.
        assert!(
            plan.iter()
                .all(|l| !l.starts_with("SCAN") || l.starts_with("SCAN (subquery")),
            "{text}"
        );
        assert_eq!(
            sql.matches("LIMIT 50").count(),
            5,
            "a page per branch: {sql}"
        );

        for (n, (action, actor, refs)) in [
            ("user.delete", "OneLogin", vec!["a"]),
            ("user.patch", "onelogin", vec!["b", "a"]),
            ("user.delete", "okta", vec!["c"]),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = entry(n, actor, action, &refs);
            e.resource_id = None;
            if action == "user.patch" {
                e.detail =
                    Some(json!({"changes": [{"path": "active", "before": true, "after": false}]}));
            }
            insert(&conn, &e).unwrap();
        }
        let q = Query { limit: 10, ..q };
        let got: Vec<i64> = list(&conn, &q).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [2, 1], "each entry once, newest first");
        let by_actor = Query {
            actor: Some("ONELOGIN".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list(&conn, &by_actor).unwrap().len(), 2);
        assert_eq!(
            list(
                &conn,
                &Query {
                    limit: 10,
                    ..Default::default()
                }
            )
            .unwrap()[1]
                .derived
                .as_deref(),
            Some(SUSPEND)
        );
    }

    /// The rule written entries follow (`derived`) and the one migration 12 applied to the
    /// entries before it agree.
    #[test]
    fn derives_suspensions_and_reactivations_as_the_migration_does() {
        let conn = db();
        let cases = [
            (
                "user.patch",
                json!([{"path": "active", "before": true, "after": false}]),
            ),
            (
                "user.replace",
                json!([{"path": "active", "before": null, "after": false}]),
            ),
            (
                "user.patch",
                json!([{"path": "title", "before": null, "after": "x"},
                                  {"path": "active", "before": false, "after": true}]),
            ),
            (
                "user.patch",
                json!([{"path": "active", "before": false, "after": null}]),
            ),
            (
                "user.patch",
                json!([{"path": "active", "before": null, "after": true}]),
            ),
            (
                "user.create",
                json!([{"path": "active", "before": null, "after": false}]),
            ),
            (
                "group.patch",
                json!([{"path": "active", "before": true, "after": false}]),
            ),
            (
                "user.patch",
                json!([{"path": "title", "before": null, "after": "x"}]),
            ),
        ];
        for (n, (action, changes)) in cases.iter().enumerate() {
            let mut e = entry(n, "a", action, &[]);
            e.detail = Some(json!({"changes": changes}));
            insert(&conn, &e).unwrap();
        }
        let written: Vec<Option<String>> = seqs(&conn)
            .iter()
            .map(|s| {
                conn.query_row("SELECT derived FROM audit WHERE seq = ?1", [s], |r| {
                    r.get(0)
                })
                .unwrap()
            })
            .collect();
        let sql = include_str!("migrations/012_audit_filters.sql");
        let backfill = &sql[sql.find("UPDATE audit SET derived").unwrap()..];
        let backfill = &backfill[..=backfill.find(';').unwrap()];
        conn.execute("UPDATE audit SET derived = NULL", []).unwrap();
        conn.execute_batch(backfill).unwrap();
        let migrated: Vec<Option<String>> = seqs(&conn)
            .iter()
            .map(|s| {
                conn.query_row("SELECT derived FROM audit WHERE seq = ?1", [s], |r| {
                    r.get(0)
                })
                .unwrap()
            })
            .collect();
        assert_eq!(written, migrated);
        let expected: Vec<Option<String>> = [
            None,
            None,
            None,
            None,
            Some(REACTIVATE),
            Some(REACTIVATE),
            Some(SUSPEND),
            Some(SUSPEND),
        ]
        .iter()
        .map(|d| d.map(str::to_string))
        .collect();
        assert_eq!(written, expected, "newest first");
    }

    /// A window by time reads only its own stretch of the log, found through `at`'s index,
    /// with a margin for entries written late.
    #[test]
    fn a_time_window_reads_its_stretch_of_the_log() {
        let conn = db();
        for n in 0..50 {
            let mut e = entry(n, "a", "user.patch", &[]);
            e.at = format!("2026-01-{:02}T00:00:00.000Z", n / 2 + 1);
            insert(&conn, &e).unwrap();
            if n == 12 {
                // Written late (seq 14): its time is in the window, its place after it.
                let mut late = entry(0, "a", "requests.rejected", &[]);
                late.at = "2026-01-06T23:59:30.000Z".into();
                insert(&conn, &late).unwrap();
            }
        }
        let q = Query {
            since: Some("2026-01-05T00:00:00.000Z".into()),
            until: Some("2026-01-07T00:00:00.000Z".into()),
            limit: 100,
            ..Default::default()
        };
        let got: Vec<i64> = list(&conn, &q).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [14, 12, 11, 10, 9]);
        let q = Query {
            since: Some("2026-01-05T00:00:00.000Z".into()),
            until: Some("2026-01-06T00:00:00.000Z".into()),
            limit: 100,
            ..Default::default()
        };
        let got: Vec<i64> = list(&conn, &q).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [10, 9]);
        let q = Query {
            since: Some("2027-01-01T00:00:00.000Z".into()),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(list(&conn, &q).unwrap().len(), 0);
    }

    /// Entries written before migration 12 get their derived action when it runs.
    #[test]
    fn the_migration_derives_older_entries() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::configure(&conn).unwrap();
        crate::store::migrate::upgrade_to(&mut conn, 11).unwrap();
        conn.execute(
            "INSERT INTO audit (at, actor_kind, actor, client, user_agent, action, outcome, status,
                                detail)
             VALUES ('2026-01-01T00:00:00.000Z', 'token', 'OneLogin', '', '', 'user.patch',
                     'success', 200,
                     '{\"changes\":[{\"path\":\"active\",\"before\":true,\"after\":false}]}')",
            [],
        )
        .unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        let q = Query {
            action: Some("suspended".into()),
            actor: Some("onelogin".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(list(&conn, &q).unwrap().len(), 1);
    }

    /// Each step of a suggestion or a name lookup is one index seek, never a scan.
    #[test]
    fn suggestions_and_names_seek_an_index() {
        let conn = db();
        let plan = |sql: &str, n: usize| -> String {
            let args = vec![rusqlite::types::Value::from("x".to_string()); n];
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(params_from_iter(&args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let cases = [
            (ACTIONS_SQL[1], 1, "COVERING INDEX audit_action (action>?)"),
            (ACTORS_SQL[1], 1, "INDEX audit_actor (actor_fold>?)"),
            (
                NAMED_SQL,
                2,
                "INDEX audit_resource_name (resource_name=? AND resource_id>?)",
            ),
        ];
        for (sql, n, index) in cases {
            let text = plan(sql, n);
            assert!(text.contains(index), "{sql}: {text}");
            assert!(!text.contains("TEMP B-TREE"), "{sql}: {text}");
        }
    }

    #[test]
    fn suggests_distinct_actions_actors_and_names_case_insensitively() {
        let conn = db();
        for (n, (actor, action)) in [
            ("OneLogin", "user.create"),
            ("onelogin", "user.patch"),
            ("Okta", "GET /scim/v2/Users"),
            ("", "POST /scim/v2/Users"),
            ("Émile", "user.patch"),
        ]
        .iter()
        .enumerate()
        {
            for _ in 0..3 {
                insert(&conn, &entry(n, actor, action, &[])).unwrap();
            }
        }
        assert_eq!(
            actions(&conn, "USER", 10).unwrap(),
            ["user.create", "user.patch"]
        );
        assert_eq!(actions(&conn, "", 10).unwrap().len(), 4);
        assert_eq!(
            actions(&conn, "", 2).unwrap(),
            ["GET /scim/v2/Users", "POST /scim/v2/Users"]
        );
        assert_eq!(actions(&conn, "z", 10).unwrap(), Vec::<String>::new());
        assert_eq!(actors(&conn, "o", 10).unwrap(), ["Okta", "OneLogin"]);
        assert_eq!(actors(&conn, "émi", 10).unwrap(), ["Émile"]);
        assert_eq!(actors(&conn, "", 10).unwrap().len(), 3, "no empty actor");

        let mut gone = entry(20, "a", "user.delete", &[]);
        gone.resource_type = Some("User");
        gone.resource_id = Some("u-gone".into());
        gone.resource_name = Some("Aisha".into());
        insert(&conn, &gone).unwrap();
        assert_eq!(ids_named(&conn, "aisha", 10).unwrap(), ["u-gone"]);
        // The entries above are about groups called "Finance", ids g0…g4, none of them a
        // delete: only deletes record the name for the filter (groups that still exist are
        // found by their current name).
        for (n, action) in [
            (21, "group.delete"),
            (22, "group.delete"),
            (23, "group.create"),
        ] {
            insert(&conn, &entry(n, "a", action, &[])).unwrap();
        }
        assert_eq!(ids_named(&conn, "FINANCE", 10).unwrap(), ["g21", "g22"]);
        assert_eq!(ids_named(&conn, "finance", 1).unwrap(), ["g21"], "bounded");
        assert_eq!(ids_named(&conn, "nobody", 10).unwrap().len(), 0);
    }

    #[test]
    fn prunes_by_age_and_by_count() {
        let conn = db();
        for n in 0..10 {
            insert(&conn, &entry(n, "a", "user.create", &["x"])).unwrap();
        }
        assert_eq!(
            prune(
                &conn,
                Some("2026-01-01T00:00:03.000Z"),
                Keep::default(),
                100
            )
            .unwrap(),
            3
        );
        let four = Keep {
            rows: Some(4),
            failures: None,
        };
        assert_eq!(prune(&conn, None, four, 100).unwrap(), 3);
        let left: Vec<i64> = list(
            &conn,
            &Query {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
        assert_eq!(left, [10, 9, 8, 7]);
        let refs: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_refs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(refs, 8, "refs go with their entries");
    }

    /// Entries 1..=10: odd ones failures, even ones changes.
    fn mixed() -> Connection {
        let conn = db();
        for n in 0..10 {
            let mut e = entry(n, "a", "user.patch", &[]);
            if n % 2 == 0 {
                e.outcome = "failure";
                e.status = 401;
            }
            insert(&conn, &e).unwrap();
        }
        conn
    }

    fn seqs(conn: &Connection) -> Vec<i64> {
        let q = Query {
            limit: 100,
            ..Default::default()
        };
        list(conn, &q).unwrap().iter().map(|e| e.seq).collect()
    }

    #[test]
    fn failures_go_before_change_records_and_keep_their_own_share() {
        let conn = mixed();
        // The oldest three, failures first: 1, 3, 5 — although 2 and 4 are older.
        assert_eq!(delete_oldest(&conn, 3).unwrap(), 3);
        assert_eq!(seqs(&conn), [10, 9, 8, 7, 6, 4, 2]);
        // Past the last failure, the oldest changes.
        assert_eq!(delete_oldest(&conn, 4).unwrap(), 4);
        assert_eq!(seqs(&conn), [10, 8, 6]);

        let conn = mixed();
        let share = Keep {
            rows: None,
            failures: Some(2),
        };
        assert_eq!(prune(&conn, None, share, 100).unwrap(), 3);
        assert_eq!(seqs(&conn), [10, 9, 8, 7, 6, 4, 2]);
        let rows = Keep {
            rows: Some(5),
            failures: None,
        };
        assert_eq!(prune(&conn, None, rows, 100).unwrap(), 2);
        assert_eq!(seqs(&conn), [10, 8, 6, 4, 2], "every change kept");
    }

    #[test]
    fn measures_its_size_on_disk_and_deletes_the_oldest() {
        let conn = db();
        let empty = size_on_disk(&conn).unwrap();
        for n in 0..200 {
            let mut e = entry(n % 60, "a", "user.patch", &["x"]);
            e.detail = Some(json!({"pad": "p".repeat(10_000)}));
            insert(&conn, &e).unwrap();
        }
        let full = size_on_disk(&conn).unwrap();
        assert!(full > empty + 2_000_000, "{empty} → {full}");
        assert_eq!(count(&conn).unwrap(), 200);
        assert_eq!(delete_oldest(&conn, 150).unwrap(), 150);
        assert_eq!(count(&conn).unwrap(), 50);
        let after = size_on_disk(&conn).unwrap();
        assert!(after < full / 3, "{full} → {after}");
        let oldest: i64 = conn
            .query_row("SELECT MIN(seq) FROM audit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(oldest, 151, "the newest are kept");
        set_detail(&conn, 200, &json!({"count": 2})).unwrap();
        let e = &list(
            &conn,
            &Query {
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap()[0];
        assert_eq!(e.detail, Some(json!({"count": 2})));
    }
}
