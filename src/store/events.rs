//! The change events outbox (migration 7): appended in the transaction of each change, read
//! in commit order by the change feed and the webhook workers.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// An event as stored: its position in commit order, type and frozen JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub payload: String,
}

/// Appends an event in the caller's transaction; its `seq`.
pub fn append(conn: &Connection, at: &str, kind: &str, payload: &str) -> Result<i64> {
    conn.prepare_cached("INSERT INTO events (at, type, payload) VALUES (?1, ?2, ?3)")?
        .execute(params![at, kind, payload])?;
    Ok(conn.last_insert_rowid())
}

/// The seq of the newest event ever appended (0 before the first), deleted ones included:
/// `sqlite_sequence` remembers it when retention has emptied the table.
pub fn head(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The oldest event still kept, if any.
pub fn oldest(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MIN(seq) FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// How many events are kept.
pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The bytes the events take in the database file, their indexes included (SQLite's
/// `dbstat`, as `audit::size_on_disk`): reads each of those pages, so it is for the hourly
/// pruning, not for a request.
pub fn size_on_disk(conn: &Connection) -> Result<u64> {
    let bytes: i64 = conn.query_row(
        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat('main', 1)
         WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'events')",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// Deletes at most `batch` of the oldest events written before `older_than` (RFC 3339),
/// up to the first one that is not: what is kept is always every event after some seq, so a
/// consumer whose cursor is at or past the oldest kept misses nothing (an event stamped
/// earlier by a clock stepped back waits for the ones before it). How many.
pub fn delete_older(conn: &Connection, older_than: &str, batch: u32) -> Result<usize> {
    // Walks the oldest `batch` in seq order (a primary-key range), so each batch costs its
    // size however many events are kept.
    let mut last = None;
    {
        let mut stmt =
            conn.prepare_cached("SELECT seq, at < ?1 FROM events ORDER BY seq LIMIT ?2")?;
        let mut rows = stmt.query(params![older_than, batch])?;
        while let Some(row) = rows.next()? {
            if !row.get::<_, bool>(1)? {
                break;
            }
            last = Some(row.get::<_, i64>(0)?);
        }
    }
    let Some(last) = last else {
        return Ok(0);
    };
    Ok(conn
        .prepare_cached("DELETE FROM events WHERE seq <= ?1")?
        .execute([last])?)
}

/// Deletes the `n` oldest events; how many.
pub fn delete_oldest(conn: &Connection, n: u32) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
        )?
        .execute([n])?)
}

/// The event as served and sent: its stored payload (a JSON object without `id`) with
/// `"id": "<seq>"` first. The one place the id is spliced in, so the feed and webhook
/// deliveries serve the same bytes.
pub fn body(seq: i64, payload: &str) -> String {
    let rest = payload.strip_prefix('{').unwrap_or(payload).trim_start();
    if rest.starts_with('}') {
        return format!("{{\"id\":\"{seq}\"{rest}");
    }
    format!("{{\"id\":\"{seq}\",{rest}")
}

/// At most `limit` events after `after`, in commit order, of the given types (all when
/// `types` is empty). Filtered reads walk the seq index, so a consumer of a rare type reads
/// past the others without loading them.
pub fn after(conn: &Connection, after: i64, types: &[String], limit: u32) -> Result<Vec<Stored>> {
    after_until(conn, after, i64::MAX, types, limit)
}

/// `after`, looking no further than the event with seq `until`: a filtered read examines at
/// most `until - after` rows however rare its types are.
pub fn after_until(
    conn: &Connection,
    after: i64,
    until: i64,
    types: &[String],
    limit: u32,
) -> Result<Vec<Stored>> {
    let row = |r: &rusqlite::Row<'_>| {
        Ok(Stored {
            seq: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            payload: r.get(3)?,
        })
    };
    if types.is_empty() {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, type, payload FROM events WHERE seq > ?1 AND seq <= ?3
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit, until], row)?;
        return Ok(rows.collect::<rusqlite::Result<_>>()?);
    }
    let list = serde_json::to_string(types).unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, type, payload FROM events
         WHERE seq > ?1 AND seq <= ?4 AND type IN (SELECT value FROM json_each(?3))
         ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit, list, until], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::run(&mut conn).unwrap();
        conn
    }

    #[test]
    fn events_are_read_in_order_and_by_type_and_seqs_are_never_reused() {
        let conn = db();
        assert_eq!((head(&conn).unwrap(), oldest(&conn).unwrap()), (0, None));
        for (i, kind) in ["user.created", "user.updated", "group.created"]
            .iter()
            .enumerate()
        {
            let seq = append(&conn, "2026-12-05T00:00:00.000Z", kind, "{}").unwrap();
            assert_eq!(seq, i as i64 + 1);
        }
        let all = after(&conn, 0, &[], 10).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let two = after(&conn, 1, &[], 1).unwrap();
        assert_eq!(two[0].kind, "user.updated");
        let groups = after(&conn, 0, &["group.created".into()], 10).unwrap();
        assert_eq!(groups.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        // Bounded: nothing past `until` is looked at.
        assert!(
            after_until(&conn, 0, 2, &["group.created".into()], 10)
                .unwrap()
                .is_empty()
        );
        let upto = after_until(&conn, 0, 2, &[], 10).unwrap();
        assert_eq!(upto.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        conn.execute("DELETE FROM events", []).unwrap();
        assert_eq!((head(&conn).unwrap(), oldest(&conn).unwrap()), (3, None));
        assert_eq!(append(&conn, "t", "user.deleted", "{}").unwrap(), 4);
    }

    #[test]
    fn old_events_go_oldest_first_and_the_head_stays() {
        let conn = db();
        for at in ["2026-01-01", "2026-01-02", "2026-03-01", "2026-01-03"] {
            append(&conn, at, "user.updated", "{}").unwrap();
        }
        assert_eq!(delete_older(&conn, "2026-02-01", 1).unwrap(), 1);
        assert_eq!(oldest(&conn).unwrap(), Some(2));
        // The last one, stamped earlier (a clock stepped back), waits for the one before it:
        // what is kept has no holes.
        assert_eq!(delete_older(&conn, "2026-02-01", 10).unwrap(), 1);
        assert_eq!(count(&conn).unwrap(), 2);
        assert_eq!(oldest(&conn).unwrap(), Some(3));
        assert_eq!(delete_older(&conn, "2026-04-01", 10).unwrap(), 2);
        assert_eq!(oldest(&conn).unwrap(), None);
        append(&conn, "2026-04-02", "user.updated", "{}").unwrap();
        assert!(size_on_disk(&conn).unwrap() > 0);
        assert_eq!(delete_oldest(&conn, 5).unwrap(), 1);
        assert_eq!((head(&conn).unwrap(), oldest(&conn).unwrap()), (5, None));
    }

    #[test]
    fn the_served_body_is_the_payload_with_the_seq_as_its_first_member() {
        let body = body(42, r#"{"type":"user.created","changes":[]}"#);
        assert_eq!(body, r#"{"id":"42","type":"user.created","changes":[]}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "42");
        assert_eq!(super::body(7, "{}"), r#"{"id":"7"}"#);
    }
}
