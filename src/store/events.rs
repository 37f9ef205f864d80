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

/// Settings key of the seq ranges restores left unused (`mark_restored`): a JSON list of
/// `[kept, resumed]` pairs.
const REPLACED: &str = "events_replaced";
/// Restores remembered: each one's range stays refused for as long as it is listed.
const MAX_REPLACED: usize = 100;
/// How far the seqs jump at a restore when the replaced database's newest event is unknown
/// (a restore onto a new machine, or over a file SQLite cannot read): past any position the
/// lost history can have reached, and still far below both `i64::MAX` and 2^53 (ids stay
/// exact in JavaScript).
pub const UNKNOWN_JUMP: i64 = 1 << 40;

/// The seq ranges restores left unused, oldest first: after a restore that kept the events
/// up to `kept`, the next event is `resumed + 1`, and a position strictly between belongs to
/// the history the restore replaced.
pub fn replaced(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let raw = super::admins::setting(conn, REPLACED)?;
    Ok(raw
        .and_then(|raw| serde_json::from_str(&raw).ok())
        .unwrap_or_default())
}

/// Whether position `after` was handed out by a history a restore replaced: a consumer
/// there saw changes that no longer happened and must resync.
pub fn is_replaced(after: i64, replaced: &[(i64, i64)]) -> bool {
    replaced
        .iter()
        .any(|&(kept, resumed)| kept < after && after < resumed)
}

/// The position a consumer at `after` really stands at: at the end of what a restore kept,
/// it is past the unused range (nothing was ever written there in this history, so nothing
/// there is missing).
pub fn continued(mut after: i64, replaced: &[(i64, i64)]) -> i64 {
    // Ranges of successive restores with no event between them chain.
    while let Some(&(_, resumed)) = replaced.iter().find(|&&(kept, _)| kept == after) {
        if resumed <= after {
            break;
        }
        after = resumed;
    }
    after
}

/// The newest seq this history used at or before `seq`: a position at the end of a
/// restore's unused range stands for what that restore kept.
pub fn used_before(mut seq: i64, replaced: &[(i64, i64)]) -> i64 {
    while let Some(&(kept, _)) = replaced
        .iter()
        .find(|&&(kept, resumed)| resumed == seq && kept < seq)
    {
        seq = kept;
    }
    seq
}

/// On a restored copy: the next event's seq goes past `replaced_head` (the newest event of
/// the database the restore replaces, or `UNKNOWN_JUMP` past the copy's own when that is
/// unknown), and the range between is recorded (`replaced`). So a feed consumer whose
/// position the lost history handed out is told to resync (410) instead of being served,
/// under ids it has already seen, events it would take for the ones it missed.
pub fn mark_restored(conn: &Connection, replaced_head: Option<i64>) -> Result<()> {
    let kept = head(conn)?;
    let resumed = replaced_head
        .unwrap_or(kept.saturating_add(UNKNOWN_JUMP))
        .max(kept)
        .saturating_add(1);
    let moved = conn.execute(
        "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events'",
        [resumed],
    )?;
    if moved == 0 {
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?1)",
            [resumed],
        )?;
    }
    let mut ranges = replaced(conn)?;
    ranges.push((kept, resumed));
    let excess = ranges.len().saturating_sub(MAX_REPLACED);
    ranges.drain(..excess);
    let json = serde_json::to_string(&ranges).map_err(crate::error::Error::internal)?;
    super::admins::set_setting(conn, REPLACED, &json)
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
    #[test]
    fn a_restore_continues_the_seqs_past_the_replaced_history_and_records_the_range() {
        let conn = db();
        for _ in 0..3 {
            append(&conn, "2026-12-05T00:00:00.000Z", "user.created", "{}").unwrap();
        }
        // The replaced database had reached event 7.
        mark_restored(&conn, Some(7)).unwrap();
        assert_eq!(replaced(&conn).unwrap(), [(3, 8)]);
        assert_eq!(head(&conn).unwrap(), 8);
        let next = append(&conn, "2026-12-05T00:00:00.000Z", "user.created", "{}").unwrap();
        assert_eq!(next, 9, "no seq the lost history used is used again");
        assert!(!is_replaced(3, &[(3, 8)]) && !is_replaced(8, &[(3, 8)]));
        assert!((4..=7).all(|p| is_replaced(p, &[(3, 8)])));
        // Unknown (a new machine): far past anything the lost history reached.
        mark_restored(&conn, None).unwrap();
        let got = replaced(&conn).unwrap();
        assert_eq!(got, [(3, 8), (9, 9 + UNKNOWN_JUMP + 1)]);
        assert_eq!(head(&conn).unwrap(), 9 + UNKNOWN_JUMP + 1);
        // A replaced database behind the copy: nothing to skip but the one mark.
        let fresh = db();
        append(&fresh, "2026-12-05T00:00:00.000Z", "user.created", "{}").unwrap();
        mark_restored(&fresh, Some(0)).unwrap();
        assert_eq!(replaced(&fresh).unwrap(), [(1, 2)]);
        // A copy that never had an event gets its sequence row.
        let empty = db();
        mark_restored(&empty, Some(4)).unwrap();
        assert_eq!(head(&empty).unwrap(), 5);
    }

    #[test]
    fn the_end_of_what_a_restore_kept_continues_past_its_unused_range_chained() {
        let r = [(3, 8), (8, 20), (30, 40)];
        assert_eq!(
            continued(3, &r),
            20,
            "two restores with no event between chain"
        );
        assert_eq!(continued(8, &r), 20);
        assert_eq!(
            continued(5, &r),
            5,
            "inside a range is not continued (it is gone)"
        );
        assert_eq!(continued(30, &r), 40);
        assert_eq!(continued(31, &r), 31);
        assert_eq!(continued(2, &[]), 2);
        assert_eq!(used_before(20, &r), 3, "back through both ranges");
        assert_eq!(used_before(40, &r), 30);
        assert_eq!(used_before(39, &r), 39);
        assert_eq!(used_before(7, &[]), 7);
    }

    #[test]
    fn the_restore_ranges_kept_are_bounded() {
        let conn = db();
        for _ in 0..MAX_REPLACED + 5 {
            mark_restored(&conn, None).unwrap();
        }
        let got = replaced(&conn).unwrap();
        assert_eq!(got.len(), MAX_REPLACED);
        assert_eq!(
            got.last().unwrap().1,
            head(&conn).unwrap(),
            "the newest is kept"
        );
    }
}
