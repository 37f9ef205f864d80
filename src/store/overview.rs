//! SQL behind the console's Overview: how many users, suspended users and groups there are,
//! every token secret with its last use and expectation, the newest people changes of the
//! week by kind (from the change events), and changes per day. Each read is an index range
//! (or a count of one) so the page stays cheap in a busy directory.

use rusqlite::{Connection, params};

use crate::error::Result;

/// How many of each there are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub users: u64,
    pub suspended: u64,
    pub groups: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub fn counts(conn: &Connection) -> Result<Counts> {
    let one = |sql: &str| -> Result<u64> {
        let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(count(n))
    };
    Ok(Counts {
        users: one("SELECT COUNT(*) FROM users")?,
        // The partial index `users_suspended` answers this.
        suspended: one("SELECT COUNT(*) FROM users WHERE active = 0")?,
        groups: one("SELECT COUNT(*) FROM groups")?,
    })
}

/// One secret of a token, as the Overview needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub seq: i64,
    pub name: String,
    pub scope: crate::store::tokens::Scope,
    pub created: String,
    pub live: bool,
    pub last_used: Option<String>,
    pub last_client: Option<String>,
    pub last_request: Option<String>,
    pub expect_every_hours: Option<u32>,
}

/// Every token secret, oldest first; `live` as of `now`.
pub fn secrets(conn: &Connection, now: &str) -> Result<Vec<Secret>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, name, scope, created, revoked IS NULL OR revoked > ?1, last_used,
                last_client, last_request, expect_every_hours
         FROM tokens ORDER BY seq",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(Secret {
            seq: r.get(0)?,
            name: r.get(1)?,
            scope: r.get(2)?,
            created: r.get(3)?,
            live: r.get(4)?,
            last_used: r.get(5)?,
            last_client: r.get(6)?,
            last_request: r.get(7)?,
            expect_every_hours: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A change to a person, from its event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonChange {
    pub at: String,
    pub id: String,
    pub user_name: Option<String>,
    pub name: Option<String>,
    /// Who made the change (the token's or administrator's name).
    pub by: Option<String>,
}

/// The WHERE term of the `events_people` index (migration 11), word for word.
const PEOPLE_TYPES: &str =
    "type IN ('user.created', 'user.deactivated', 'user.reactivated', 'user.deleted')";

/// The newest `limit` events of type `kind` at or after `since`, newest first, and how many
/// there are in all: two ranges of the partial `events_people` index (its WHERE term is
/// repeated word for word, which is how SQLite knows the index holds every row asked for).
pub fn people_changes(
    conn: &Connection,
    kind: &str,
    since: &str,
    limit: u32,
) -> Result<(Vec<PersonChange>, u64)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT at, json_extract(payload, '$.resource.id'),
                json_extract(payload, '$.resource.userName'),
                json_extract(payload, '$.resource.name'),
                json_extract(payload, '$.actor.name')
         FROM events WHERE type = ?1 AND at >= ?2 AND {PEOPLE_TYPES} ORDER BY at DESC LIMIT ?3"
    ))?;
    let text = |r: &rusqlite::Row<'_>, i| -> rusqlite::Result<Option<String>> {
        Ok(match r.get_ref(i)? {
            rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
    };
    let items = stmt
        .query_map(params![kind, since, limit], |r| {
            Ok(PersonChange {
                at: r.get(0)?,
                id: text(r, 1)?.unwrap_or_default(),
                user_name: text(r, 2)?,
                name: text(r, 3)?,
                by: text(r, 4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM events WHERE type = ?1 AND at >= ?2 AND {PEOPLE_TYPES}"
        ))?
        .query_row(params![kind, since], |r| r.get(0))?;
    Ok((items, count(n)))
}

/// Change events per UTC day (`YYYY-MM-DD`) from `since` until before `until`, days without
/// any left out: a range of the `events_at` index, counted without reading an event.
pub fn changes_per_day(conn: &Connection, since: &str, until: &str) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(at, 1, 10) AS day, COUNT(*) FROM events
         WHERE at >= ?1 AND at < ?2 GROUP BY day ORDER BY day",
    )?;
    let rows = stmt.query_map(params![since, until], |r| Ok((r.get(0)?, count(r.get(1)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows.join("; ")
    }

    /// The Overview's reads never scan a table: each is a range of an index (or the whole of
    /// the partial index of suspended users).
    #[test]
    fn every_read_is_an_index_range() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        for (sql, index) in [
            (
                "SELECT COUNT(*) FROM users WHERE active = 0",
                "users_suspended",
            ),
            (
                "SELECT at FROM events WHERE type = 'user.deleted' AND at >= '2026' AND type IN \
                 ('user.created', 'user.deactivated', 'user.reactivated', 'user.deleted') \
                 ORDER BY at DESC LIMIT 5",
                "events_people",
            ),
            (
                "SELECT COUNT(*) FROM events WHERE type = 'user.deleted' AND at >= '2026' AND type \
                 IN ('user.created', 'user.deactivated', 'user.reactivated', 'user.deleted')",
                "events_people",
            ),
            (
                "SELECT substr(at, 1, 10) AS day, COUNT(*) FROM events \
                 WHERE at >= '2026' AND at < '2027' GROUP BY day",
                "events_at",
            ),
        ] {
            let p = plan(&conn, sql);
            assert!(p.contains(index), "{sql}: {p}");
            // A scan of the partial index reads the suspended users only.
            assert!(
                p.split("; ")
                    .all(|step| !step.starts_with("SCAN") || step.contains("INDEX")),
                "{sql}: {p}"
            );
        }
    }

    #[test]
    fn people_changes_are_newest_first_with_a_total() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        for (at, kind, id) in [
            ("2026-01-01T00:00:00.000Z", "user.deleted", "old"),
            ("2026-01-08T00:00:00.000Z", "user.deleted", "a"),
            ("2026-01-09T00:00:00.000Z", "user.deleted", "b"),
            ("2026-01-09T01:00:00.000Z", "user.created", "c"),
        ] {
            let payload = serde_json::json!({
                "resource": {"id": id, "userName": format!("{id}@x"), "name": "N"},
                "actor": {"name": "onelogin"},
            });
            crate::store::events::append(&conn, at, kind, &payload.to_string()).unwrap();
        }
        let (items, n) =
            people_changes(&conn, "user.deleted", "2026-01-02T00:00:00.000Z", 1).unwrap();
        assert_eq!(n, 2);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id, "b");
        assert_eq!(items[0].user_name.as_deref(), Some("b@x"));
        assert_eq!(items[0].by.as_deref(), Some("onelogin"));
        let days = changes_per_day(
            &conn,
            "2026-01-02T00:00:00.000Z",
            "2026-01-10T00:00:00.000Z",
        )
        .unwrap();
        assert_eq!(days, [("2026-01-08".into(), 1), ("2026-01-09".into(), 2)]);
    }
}
