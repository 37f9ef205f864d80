//! Webhook endpoints, their signing secrets and the delivery attempts log (migration 10).
//! Delivery itself lives in `crate::webhooks`; every statement it needs is here.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// Attempts kept per endpoint (the newest), and for how long at most.
pub const ATTEMPTS_KEPT: i64 = 1000;
pub const ATTEMPTS_DAYS: i64 = 30;
/// A worker prunes its endpoint's attempts log once in this many attempts (and at its
/// first), so the log holds at most `ATTEMPTS_KEPT + PRUNE_EVERY - 1` rows.
pub const PRUNE_EVERY: u32 = 100;

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub seq: i64,
    pub name: String,
    pub url: String,
    /// Event types delivered; empty: all.
    pub types: Vec<String>,
    pub format: String,
    pub allow_http: bool,
    pub state: String,
    /// The seq of the last event acknowledged (or skipped by the type filter).
    pub cursor: i64,
    pub head_attempts: i64,
    pub next_attempt_at: Option<String>,
    pub failing_since: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
    pub created: String,
}

/// What a new endpoint is made of.
pub struct NewEndpoint<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub types: &'a [String],
    pub format: &'a str,
    pub allow_http: bool,
}

/// One logged delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub seq: i64,
    pub event_seq: Option<i64>,
    pub attempt: i64,
    pub trigger: String,
    pub at: String,
    pub duration_ms: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub response: Option<String>,
}

const COLUMNS: &str = "seq, name, url, event_types, format, allow_http, state, cursor, \
    head_attempts, next_attempt_at, failing_since, last_attempt_at, last_status, last_error, \
    last_success_at, created";

fn endpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<Endpoint> {
    let types: Option<String> = r.get(3)?;
    Ok(Endpoint {
        seq: r.get(0)?,
        name: r.get(1)?,
        url: r.get(2)?,
        types: types
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        format: r.get(4)?,
        allow_http: r.get(5)?,
        state: r.get(6)?,
        cursor: r.get(7)?,
        head_attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        failing_since: r.get(10)?,
        last_attempt_at: r.get(11)?,
        last_status: r.get(12)?,
        last_error: r.get(13)?,
        last_success_at: r.get(14)?,
        created: r.get(15)?,
    })
}

/// Inserts an endpoint whose cursor is `cursor` (the event head: it receives what happens
/// from now on) with its first secret; its seq. A taken name is a UNIQUE violation.
pub fn insert(
    conn: &Connection,
    new: &NewEndpoint<'_>,
    cursor: i64,
    secret: &[u8],
    now: &str,
) -> Result<i64> {
    let types = (!new.types.is_empty())
        .then(|| serde_json::to_string(new.types))
        .transpose()
        .map_err(Error::internal)?;
    conn.execute(
        "INSERT INTO webhook_endpoints (name, url, event_types, format, allow_http, cursor,
                                        created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            new.name,
            new.url,
            types,
            new.format,
            new.allow_http,
            cursor,
            now
        ],
    )?;
    let seq = conn.last_insert_rowid();
    add_secret(conn, seq, secret, now)?;
    Ok(seq)
}

fn add_secret(conn: &Connection, endpoint: i64, secret: &[u8], now: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO webhook_secrets (endpoint_seq, secret, created) VALUES (?1, ?2, ?3)",
        params![endpoint, secret, now],
    )?;
    Ok(())
}

pub fn list(conn: &Connection) -> Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY name"
    ))?;
    let rows = stmt.query_map([], endpoint)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (seq, name) of every endpoint: what the supervisor keeps a worker for.
pub fn seqs(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT seq, name FROM webhook_endpoints")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, seq: i64) -> Result<Option<Endpoint>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE seq = ?1"
        ))?
        .query_row([seq], endpoint)
        .optional()?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<Endpoint>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE name = ?1"
        ))?
        .query_row([name], endpoint)
        .optional()?)
}

/// Removes the endpoint called `name` with its secrets and attempts; whether there was one.
pub fn remove(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM webhook_endpoints WHERE name = ?1", [name])? > 0)
}

/// The secrets that sign now, newest first: the current one and rotated-out ones not yet
/// expired.
pub fn secrets(conn: &Connection, endpoint: i64, now: &str) -> Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret FROM webhook_secrets
         WHERE endpoint_seq = ?1 AND (expires IS NULL OR expires > ?2)
         ORDER BY seq DESC",
    )?;
    let rows = stmt.query_map(params![endpoint, now], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Makes `secret` the current one: the previous ones sign beside it until `until` at the
/// latest (`now`: not at all; a shorter overlap cuts an earlier, longer one), and expired
/// ones are dropped.
pub fn rotate(
    conn: &Connection,
    endpoint: i64,
    secret: &[u8],
    now: &str,
    until: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE webhook_secrets SET expires = ?2
         WHERE endpoint_seq = ?1 AND (expires IS NULL OR expires > ?2)",
        params![endpoint, until],
    )?;
    conn.execute(
        "DELETE FROM webhook_secrets WHERE endpoint_seq = ?1 AND expires <= ?2",
        params![endpoint, now],
    )?;
    add_secret(conn, endpoint, secret, now)
}

/// What one attempt at delivering came to.
pub struct Outcome<'a> {
    pub event_seq: Option<i64>,
    pub attempt: i64,
    pub trigger: &'a str,
    pub at: &'a str,
    pub duration_ms: i64,
    pub status: Option<i64>,
    pub error: Option<&'a str>,
    pub response: Option<&'a str>,
}

/// Logs an attempt and, given `prune` (the `ATTEMPTS_DAYS` cut-off), bounds the log: the
/// newest `ATTEMPTS_KEPT` of the endpoint, none older than the cut-off. The pruning reads the
/// endpoint's whole log (about 0.2 ms at `ATTEMPTS_KEPT` rows, inside the one writer), so a
/// worker delivering a backlog asks for it once every `PRUNE_EVERY` attempts.
pub fn log_attempt(
    conn: &Connection,
    endpoint: i64,
    o: &Outcome<'_>,
    prune: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (endpoint_seq, event_seq, attempt, trigger, at,
                                       duration_ms, status, error, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        endpoint,
        o.event_seq,
        o.attempt,
        o.trigger,
        o.at,
        o.duration_ms,
        o.status,
        o.error,
        o.response
    ])?;
    if let Some(oldest) = prune {
        conn.prepare_cached(
            "DELETE FROM webhook_attempts WHERE endpoint_seq = ?1 AND (at < ?3 OR seq <= (
                 SELECT seq FROM webhook_attempts WHERE endpoint_seq = ?1
                 ORDER BY seq DESC LIMIT 1 OFFSET ?2))",
        )?
        .execute(params![endpoint, ATTEMPTS_KEPT, oldest])?;
    }
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET last_attempt_at = ?2, last_status = ?3, last_error = ?4
         WHERE seq = ?1",
    )?
    .execute(params![endpoint, o.at, o.status, o.error])?;
    Ok(())
}

/// The event after `cursor` was acknowledged: the cursor moves to `event_seq` and the retry
/// state clears. Only if the cursor is still `cursor` (a resume or removal meanwhile wins);
/// whether it moved.
pub fn delivered(
    conn: &Connection,
    endpoint: i64,
    cursor: i64,
    event_seq: i64,
    now: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_endpoints
             SET cursor = ?3, head_attempts = 0, next_attempt_at = NULL, failing_since = NULL,
                 state = 'healthy', last_success_at = ?4, updated = ?4
             WHERE seq = ?1 AND cursor = ?2",
        )?
        .execute(params![endpoint, cursor, event_seq, now])?
        > 0)
}

/// The event after `cursor` failed: one more attempt counted, and either the next one due
/// at `next` (state retrying) or, `next` being `None`, the endpoint paused. Only if the
/// endpoint is still where the worker read it (`cursor`, and `attempts` failed attempts
/// before this one): a resume while the attempt was in flight resets the count, and then
/// wins instead of being overwritten by a "paused" computed from the old retry window.
pub fn failed(
    conn: &Connection,
    endpoint: i64,
    (cursor, attempts): (i64, i64),
    now: &str,
    next: Option<&str>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_endpoints
             SET head_attempts = head_attempts + 1, next_attempt_at = ?4,
                 failing_since = IFNULL(failing_since, ?3),
                 state = CASE WHEN ?4 IS NULL THEN 'paused' ELSE 'retrying' END, updated = ?3
             WHERE seq = ?1 AND cursor = ?2 AND head_attempts = ?5",
        )?
        .execute(params![endpoint, cursor, now, next, attempts])?
        > 0)
}

/// Moves the cursor past events the endpoint's type filter skips (only forward).
pub fn skip_to(conn: &Connection, endpoint: i64, cursor: i64, to: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET cursor = ?3 WHERE seq = ?1 AND cursor = ?2 AND ?3 > ?2",
    )?
    .execute(params![endpoint, cursor, to])?;
    Ok(())
}

/// The events after `cursor` that retention deleted before the endpoint got them, as
/// (first, last) seqs; `None` when the oldest kept event follows the cursor. The pruned
/// events' types are gone, so a gap counts whatever the endpoint's filter.
pub fn gap(conn: &Connection, cursor: i64) -> Result<Option<(i64, i64)>> {
    // A restore's unused seqs were never events of this history: none is missing.
    let replaced = super::events::replaced(conn)?;
    let cursor = super::events::continued(cursor, &replaced);
    let last = match super::events::oldest(conn)? {
        Some(oldest) => oldest - 1,
        // Retention emptied the table: everything up to the head is gone.
        None => super::events::head(conn)?,
    };
    let last = super::events::used_before(last, &replaced);
    Ok((last > cursor).then_some((cursor + 1, last)))
}

/// For `scimd check`: a line per endpoint whose next events retention pruned before it got
/// them. Kept out of `maintenance::check`, which `backup` and `restore` rely on: a delivery
/// gap is the operator's to resolve, never a reason to refuse the backup they want then.
pub fn gap_report(db: &std::path::Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let snapshot = conn.unchecked_transaction()?;
    if super::migrate::version(&snapshot)? < WEBHOOKS {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for e in list(&snapshot)? {
        if let Some((first, last)) = gap(&snapshot, e.cursor)? {
            lines.push(format!(
                "webhook \"{}\": events {first}–{last} were pruned by retention before \
                 delivery: resync the receiver from SCIM, then `scimd webhook resume {}`",
                e.name, e.name
            ));
        }
    }
    Ok(lines)
}

/// The schema version that made the webhook tables (migration 10).
const WEBHOOKS: usize = 10;

/// Pauses an endpoint whose next events were pruned before delivery, if its cursor is
/// still `cursor` (a resume meanwhile wins); whether it did.
pub fn pause_for_gap(conn: &Connection, endpoint: i64, cursor: i64, now: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_endpoints
             SET state = 'paused', next_attempt_at = NULL, updated = ?3
             WHERE seq = ?1 AND cursor = ?2",
        )?
        .execute(params![endpoint, cursor, now])?
        > 0)
}

/// Resumes a paused (or retrying) endpoint: its next event is tried now, with a fresh retry
/// window. Whether there was such an endpoint.
pub fn resume(conn: &Connection, name: &str, now: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE webhook_endpoints
         SET state = 'healthy', head_attempts = 0, next_attempt_at = NULL, failing_since = NULL,
             updated = ?2
         WHERE name = ?1",
        params![name, now],
    )? > 0)
}

fn attempt(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        seq: r.get(0)?,
        event_seq: r.get(1)?,
        attempt: r.get(2)?,
        trigger: r.get(3)?,
        at: r.get(4)?,
        duration_ms: r.get(5)?,
        status: r.get(6)?,
        error: r.get(7)?,
        response: r.get(8)?,
    })
}

/// An attempt with the type of its event (`None` for a test, or once the event is pruned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub attempt: Attempt,
    pub event_type: Option<String>,
}

/// The newest attempts of an endpoint, newest first, each with its event's type.
pub fn logged(conn: &Connection, endpoint: i64, limit: u32) -> Result<Vec<Logged>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.seq, a.event_seq, a.attempt, a.trigger, a.at, a.duration_ms, a.status,
                a.error, a.response, e.type
         FROM webhook_attempts a LEFT JOIN events e ON e.seq = a.event_seq
         WHERE a.endpoint_seq = ?1 ORDER BY a.seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![endpoint, limit], |r| {
        Ok(Logged {
            attempt: attempt(r)?,
            event_type: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Events after `cursor` of the given types (all when empty), counting at most `cap`.
pub fn pending(conn: &Connection, cursor: i64, types: &[String], cap: i64) -> Result<i64> {
    let list = serde_json::to_string(types).map_err(Error::internal)?;
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE seq > ?1
               AND (json_array_length(?2) = 0 OR type IN (SELECT value FROM json_each(?2)))
             LIMIT ?3)",
        )?
        .query_row(params![cursor, list, cap], |r| r.get(0))?)
}

/// The id of this database's event history (see migration 10).
pub fn epoch(conn: &Connection) -> Result<String> {
    let raw = super::admins::setting(conn, "feed_epoch")?.unwrap_or_default();
    Ok(serde_json::from_str::<String>(&raw).unwrap_or(raw))
}

/// Draws a new event history id: after a restore, seqs past the backup are reused.
pub fn renew_epoch(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ('feed_epoch', json_quote(lower(hex(randomblob(8)))))
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{events, migrate};

    /// The newest attempts, without their event types.
    fn attempts(conn: &Connection, endpoint: i64, limit: u32) -> Result<Vec<Attempt>> {
        Ok(logged(conn, endpoint, limit)?
            .into_iter()
            .map(|l| l.attempt)
            .collect())
    }

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::run(&mut conn).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn
    }

    #[test]
    fn cursor_moves_only_from_where_the_worker_read_it_and_retries_pause() {
        let conn = db();
        let types = ["user.deactivated".to_string()];
        let new = NewEndpoint {
            name: "ssh",
            url: "https://h/x",
            types: &types,
            format: "standard",
            allow_http: false,
        };
        let seq = insert(&conn, &new, 0, b"k1", "t0").unwrap();
        let e = get(&conn, seq).unwrap().unwrap();
        assert_eq!(
            (e.types.clone(), e.state.as_str(), e.cursor),
            (types.to_vec(), "healthy", 0)
        );
        assert!(failed(&conn, seq, (0, 0), "t1", Some("t2")).unwrap());
        assert!(
            !failed(&conn, seq, (5, 1), "t1", Some("t2")).unwrap(),
            "stale cursor"
        );
        let e = get(&conn, seq).unwrap().unwrap();
        assert_eq!(
            (
                e.state.as_str(),
                e.head_attempts,
                e.failing_since.as_deref()
            ),
            ("retrying", 1, Some("t1"))
        );
        assert!(
            !failed(&conn, seq, (0, 0), "t3", None).unwrap(),
            "stale attempt count"
        );
        assert!(failed(&conn, seq, (0, 1), "t3", None).unwrap());
        let e = by_name(&conn, "ssh").unwrap().unwrap();
        assert_eq!(
            (
                e.state.as_str(),
                e.head_attempts,
                e.failing_since.as_deref()
            ),
            ("paused", 2, Some("t1"))
        );
        assert!(failed(&conn, seq, (0, 2), "t3", Some("t4")).unwrap());
        // A resume while an attempt is in flight wins over that attempt's outcome, however
        // late in the retry window it was.
        assert!(resume(&conn, "ssh", "t4").unwrap());
        assert!(!failed(&conn, seq, (0, 3), "t5", None).unwrap());
        let e = get(&conn, seq).unwrap().unwrap();
        assert_eq!((e.state.as_str(), e.head_attempts), ("healthy", 0));
        assert!(delivered(&conn, seq, 0, 7, "t5").unwrap());
        let e = get(&conn, seq).unwrap().unwrap();
        assert_eq!(
            (e.state.as_str(), e.cursor, e.head_attempts),
            ("healthy", 7, 0)
        );
        skip_to(&conn, seq, 7, 3).unwrap();
        assert_eq!(
            get(&conn, seq).unwrap().unwrap().cursor,
            7,
            "never backwards"
        );
        assert!(remove(&conn, "ssh").unwrap());
        assert!(get(&conn, seq).unwrap().is_none());
    }

    #[test]
    fn rotation_keeps_the_old_secret_until_it_expires_and_the_log_is_bounded() {
        let conn = db();
        let new = NewEndpoint {
            name: "a",
            url: "https://h",
            types: &[],
            format: "chat",
            allow_http: true,
        };
        let seq = insert(&conn, &new, 0, b"old", "t0").unwrap();
        rotate(&conn, seq, b"new", "t1", "t5").unwrap();
        assert_eq!(
            secrets(&conn, seq, "t2").unwrap(),
            [b"new".to_vec(), b"old".to_vec()]
        );
        assert_eq!(secrets(&conn, seq, "t6").unwrap(), [b"new".to_vec()]);
        // No overlap cuts the earlier one short too.
        rotate(&conn, seq, b"newer", "t3", "t3").unwrap();
        assert_eq!(secrets(&conn, seq, "t3").unwrap(), [b"newer".to_vec()]);
        for i in 0..(ATTEMPTS_KEPT + 5) {
            let o = Outcome {
                event_seq: Some(i),
                attempt: 1,
                trigger: "scheduled",
                at: "t8",
                duration_ms: 1,
                status: Some(500),
                error: None,
                response: None,
            };
            log_attempt(&conn, seq, &o, Some("t0")).unwrap();
        }
        let kept = attempts(&conn, seq, 5000).unwrap();
        assert_eq!(kept.len() as i64, ATTEMPTS_KEPT);
        assert_eq!(kept[0].event_seq, Some(ATTEMPTS_KEPT + 4));
        // Without `prune` the attempt is only added: the next pruning bounds the log again.
        let o = Outcome {
            event_seq: Some(ATTEMPTS_KEPT + 5),
            attempt: 1,
            trigger: "scheduled",
            at: "t8",
            duration_ms: 1,
            status: Some(204),
            error: None,
            response: None,
        };
        log_attempt(&conn, seq, &o, None).unwrap();
        assert_eq!(
            attempts(&conn, seq, 5000).unwrap().len() as i64,
            ATTEMPTS_KEPT + 1
        );
        let o = Outcome {
            event_seq: None,
            attempt: 1,
            trigger: "test",
            at: "t9",
            duration_ms: 1,
            status: Some(200),
            error: None,
            response: None,
        };
        log_attempt(&conn, seq, &o, Some("t9")).unwrap();
        assert_eq!(
            attempts(&conn, seq, 5000).unwrap().len(),
            1,
            "older than the cut-off"
        );
    }

    #[test]
    fn pending_counts_matching_events_and_the_epoch_renews() {
        let conn = db();
        for kind in ["user.created", "user.deactivated", "user.deactivated"] {
            events::append(&conn, "t", kind, "{}").unwrap();
        }
        assert_eq!(pending(&conn, 0, &[], 100).unwrap(), 3);
        assert_eq!(pending(&conn, 0, &[], 2).unwrap(), 2);
        assert_eq!(
            pending(&conn, 1, &["user.deactivated".into()], 100).unwrap(),
            2
        );
        let first = epoch(&conn).unwrap();
        assert_eq!(first.len(), 16, "{first}");
        renew_epoch(&conn).unwrap();
        assert_ne!(epoch(&conn).unwrap(), first);
    }

    #[test]
    fn a_gap_is_the_events_after_the_cursor_that_retention_deleted() {
        let conn = db();
        assert_eq!(gap(&conn, 0).unwrap(), None, "no events yet");
        for _ in 0..4 {
            events::append(&conn, "t", "user.created", "{}").unwrap();
        }
        assert_eq!(gap(&conn, 0).unwrap(), None);
        events::delete_oldest(&conn, 2).unwrap();
        assert_eq!(gap(&conn, 0).unwrap(), Some((1, 2)));
        assert_eq!(gap(&conn, 1).unwrap(), Some((2, 2)));
        assert_eq!(gap(&conn, 2).unwrap(), None, "event 3 is next and kept");
        events::delete_oldest(&conn, 2).unwrap();
        assert_eq!(gap(&conn, 2).unwrap(), Some((3, 4)), "the table emptied");
        assert_eq!(gap(&conn, 4).unwrap(), None);
        // A restore replacing a history that reached event 9: the unused seqs 5 to 9 were
        // never events here, so an endpoint at 4 misses nothing, even with the table empty.
        events::mark_restored(&conn, Some(9)).unwrap();
        assert_eq!(gap(&conn, 4).unwrap(), None);
        assert_eq!(gap(&conn, 3).unwrap(), Some((4, 4)));
        events::append(&conn, "t", "user.created", "{}").unwrap();
        assert_eq!(gap(&conn, 4).unwrap(), None, "event 11 is next and kept");
    }

    #[test]
    fn the_log_names_each_attempt_s_event_type_while_the_event_is_kept() {
        let conn = db();
        let new = NewEndpoint {
            name: "log",
            url: "https://h/x",
            types: &[],
            format: "standard",
            allow_http: false,
        };
        let ep = insert(&conn, &new, 0, b"k", "t0").unwrap();
        let kept =
            events::append(&conn, "t1", "user.created", r#"{"type":"user.created"}"#).unwrap();
        let logged_at = |event, at| Outcome {
            event_seq: event,
            attempt: 1,
            trigger: if event.is_some() { "scheduled" } else { "test" },
            at,
            duration_ms: 3,
            status: Some(200),
            error: None,
            response: None,
        };
        log_attempt(&conn, ep, &logged_at(Some(kept), "t2"), Some("t0")).unwrap();
        log_attempt(&conn, ep, &logged_at(None, "t3"), Some("t0")).unwrap();
        log_attempt(&conn, ep, &logged_at(Some(kept + 1), "t4"), Some("t0")).unwrap();
        let log = logged(&conn, ep, 10).unwrap();
        let seen: Vec<(Option<i64>, Option<&str>)> = log
            .iter()
            .map(|l| (l.attempt.event_seq, l.event_type.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some(kept + 1), None),
                (None, None),
                (Some(kept), Some("user.created"))
            ]
        );
        assert_eq!(logged(&conn, ep, 1).unwrap().len(), 1);
        assert_eq!(
            log.iter().map(|l| l.attempt.clone()).collect::<Vec<_>>(),
            attempts(&conn, ep, 10).unwrap()
        );
    }
}
