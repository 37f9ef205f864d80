//! SQL for the audit log: one row per change or rejected request, plus the resources each
//! row concerns (`audit_refs`), read newest first by keyset on `seq` so any page of millions
//! of rows is an index range read.

use rusqlite::{Connection, params, params_from_iter};
use serde_json::Value;

use crate::error::Result;

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
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub detail: Option<Value>,
}

pub fn insert(conn: &Connection, e: &NewEntry) -> Result<i64> {
    let detail = e.detail.as_ref().map(Value::to_string);
    conn.prepare_cached(
        "INSERT INTO audit (at, actor_kind, actor, client, user_agent, action, resource_type,
                            resource_id, resource_name, outcome, status, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
        detail
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
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// A resource id: entries about it, including membership changes that named it.
    pub resource: Option<String>,
    /// RFC 3339 bounds on `at` (inclusive `since`, exclusive `until`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

const COLUMNS: &str = "a.seq, a.at, a.actor_kind, a.actor, a.client, a.user_agent, a.action, \
    a.resource_type, a.resource_id, a.resource_name, a.outcome, a.status, a.detail";

/// The statement and parameters that read the entries `q` selects.
fn select_sql(q: &Query) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = format!("SELECT {COLUMNS} FROM audit a");
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let bind = |args: &mut Vec<rusqlite::types::Value>, v: rusqlite::types::Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(r) = &q.resource {
        let p = bind(&mut args, r.clone().into());
        sql.push_str(&format!(
            " JOIN audit_refs r ON r.audit_seq = a.seq AND r.resource_id = {p}"
        ));
    }
    for (column, value) in [
        ("a.actor", &q.actor),
        ("a.action", &q.action),
        ("a.outcome", &q.outcome),
    ] {
        if let Some(v) = value {
            let p = bind(&mut args, v.clone().into());
            conds.push(format!("{column} = {p}"));
        }
    }
    if let Some(since) = &q.since {
        let p = bind(&mut args, since.clone().into());
        conds.push(format!("a.at >= {p}"));
    }
    if let Some(until) = &q.until {
        let p = bind(&mut args, until.clone().into());
        conds.push(format!("a.at < {p}"));
    }
    // With a resource, its refs index gives the order (r.audit_seq is a.seq), so no sort.
    let seq = if q.resource.is_some() {
        "r.audit_seq"
    } else {
        "a.seq"
    };
    if let Some(before) = q.before {
        let p = bind(&mut args, before.into());
        conds.push(format!("{seq} < {p}"));
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {seq} DESC LIMIT {}", q.limit));
    (sql, args)
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
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
