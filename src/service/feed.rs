//! Reading change events back: the feed's pages and positions (`GET /api/v1/events`), and
//! retention. Events are written by `service::events`; the SQL is `store::events`.

use crate::config::EventRetention;
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::{Store, events};

/// Most events one feed page holds (`limit`), and the default.
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 100;
/// A page stops growing once its events take this many bytes (at least one is served):
/// a thousand membership events of a thousand members each would be 100 MiB. Held per
/// connection while a slow reader takes it, so kept small.
const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Most events one read looks at (by seq): a filter on a rare type otherwise walks the whole
/// table for a few bytes. A read that stops here answers what it found, `next` at the last
/// event looked at, and the consumer continues from there.
pub const MAX_EXAMINED: i64 = 10_000;
/// Events read from the database at a time while filling a page.
const READ_CHUNK: u32 = 100;

/// Where a feed read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// From the oldest event kept.
    Oldest,
    /// Only events committed from now on.
    Now,
    /// After the event with this id.
    Seq(i64),
}

/// One page of the feed: the served bodies in commit order, where the next read starts, and
/// whether events after `next` were left unexamined (the read stopped at `MAX_EXAMINED`).
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<String>,
    pub next: i64,
    pub more: bool,
}

/// The events after `after` of the given types (all when empty), at most `limit` and about
/// `MAX_PAGE_BYTES`, looking at no more than `MAX_EXAMINED` events. `next` is the last event
/// served, or the newest event when the page reached the end, so a consumer of a few types
/// advances past the others; when the read stopped at its bound first, the last event looked
/// at (and `more` is set).
/// A position whose events were pruned, or past the newest event, is `Error::Gone`.
pub fn read_page(
    conn: &rusqlite::Connection,
    after: After,
    types: &[String],
    limit: u32,
) -> Result<Page> {
    let head = events::head(conn)?;
    let oldest = events::oldest(conn)?;
    let start = match after {
        After::Oldest => oldest.map_or(head, |o| o - 1),
        After::Now => head,
        After::Seq(seq) => {
            let replaced = events::replaced(conn)?;
            check_position(seq, oldest, head, &replaced)?;
            // Past a restore's unused range, so a filtered read's bound starts after it.
            events::continued(seq, &replaced)
        }
    };
    let mut page = Page {
        events: Vec::new(),
        next: start,
        more: false,
    };
    let until = start.saturating_add(MAX_EXAMINED);
    let mut bytes = 0;
    let mut at_end = false;
    while page.events.len() < limit as usize && bytes < MAX_PAGE_BYTES {
        let want = READ_CHUNK.min(limit - page.events.len() as u32);
        let chunk = events::after_until(conn, page.next, until, types, want)?;
        at_end = chunk.len() < want as usize;
        for e in chunk {
            if bytes >= MAX_PAGE_BYTES {
                at_end = false;
                break;
            }
            let body = events::body(e.seq, &e.payload);
            bytes += body.len();
            page.events.push(body);
            page.next = e.seq;
        }
        if at_end {
            break;
        }
    }
    if at_end {
        // Nothing more matches up to `until`: the consumer may skip all of it.
        page.next = page.next.max(head.min(until));
        page.more = until < head;
    }
    Ok(page)
}

/// Fails with `Gone` unless `after` is a position the kept events continue from: the newest
/// event or before, not handed out by a history a restore replaced, and no event after it
/// pruned (the oldest kept is at most the next seq this history used).
fn check_position(
    after: i64,
    oldest: Option<i64>,
    head: i64,
    replaced: &[(i64, i64)],
) -> Result<()> {
    let gone = |detail: String| {
        Err(Error::Gone {
            detail,
            oldest,
            head,
        })
    };
    if after > head {
        return gone(format!(
            "event {after} is past the newest event ({head}): the database was restored \
             from an older backup or replaced; resync from SCIM, then follow from after=now"
        ));
    }
    if events::is_replaced(after, replaced) {
        return gone(format!(
            "event {after} belongs to a history that a restore from an older backup replaced: \
             resync from SCIM, then follow from after=now"
        ));
    }
    let first_kept = oldest.unwrap_or(head + 1);
    if events::continued(after, replaced) < first_kept - 1 {
        return gone(format!(
            "events after {after} are no longer kept (retention); resync from SCIM, \
             then follow from after=now"
        ));
    }
    Ok(())
}

/// Events deleted per transaction while pruning, so SCIM writes are never held up long.
const PRUNE_BATCH: u32 = 5000;

/// Applies `r`: deletes events older than its age, then the oldest beyond its count and its
/// size, each in transactions of at most `PRUNE_BATCH`; how many were deleted. Runs hourly
/// beside the audit log's pruning.
pub async fn prune(store: &Store, r: EventRetention) -> Result<usize> {
    let older_than = ::time::OffsetDateTime::now_utc()
        .checked_sub(::time::Duration::days(i64::from(r.max_age_days)))
        .map(time::format);
    let mut total = 0;
    if let Some(t) = older_than {
        loop {
            let t = t.clone();
            let n = store
                .write(move |tx| events::delete_older(tx, &t, PRUNE_BATCH))
                .await?;
            total += n;
            if n == 0 {
                break;
            }
        }
    }
    let rows = store.read(events::count).await?;
    total += delete_oldest(store, rows.saturating_sub(r.max_rows)).await?;
    // Measured again after each round: deleting rows frees pages a little less than in
    // proportion, and the next hourly run finishes what this one leaves.
    for _ in 0..4 {
        let (bytes, rows) = store
            .read(|conn| Ok((events::size_on_disk(conn)?, events::count(conn)?)))
            .await?;
        let excess = super::audit::rows_over(bytes, rows, r.max_bytes);
        if excess == 0 {
            break;
        }
        total += delete_oldest(store, excess).await?;
    }
    Ok(total)
}

/// Deletes the `n` oldest events, `PRUNE_BATCH` per transaction; how many.
async fn delete_oldest(store: &Store, mut n: u64) -> Result<usize> {
    let mut total = 0;
    while n > 0 {
        let batch = u32::try_from(n.min(u64::from(PRUNE_BATCH))).unwrap_or(PRUNE_BATCH);
        let deleted = store
            .write(move |tx| events::delete_oldest(tx, batch))
            .await?;
        if deleted == 0 {
            break;
        }
        total += deleted;
        n = n.saturating_sub(deleted as u64);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::events::{USER_DELETED, USER_UPDATED};

    #[tokio::test]
    async fn pruning_keeps_the_newest_within_age_count_and_size() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        let old = "2000-01-01T00:00:00.000Z";
        let pad = format!("{{\"pad\":\"{}\"}}", "p".repeat(2000));
        store
            .write_sync(|tx| {
                for n in 0..12_000 {
                    let at = if n < 7000 {
                        old.to_string()
                    } else {
                        time::now()
                    };
                    events::append(tx, &at, USER_UPDATED, &pad)?;
                }
                Ok(())
            })
            .unwrap();
        let state = || {
            store
                .read_sync(|c| Ok((events::oldest(c)?, events::count(c)?, events::head(c)?)))
                .unwrap()
        };
        let r = EventRetention::default();
        // By age: more than one batch, every old one.
        assert_eq!(prune(&store, r).await.unwrap(), 7000);
        assert_eq!(state(), (Some(7001), 5000, 12_000));
        let rows = EventRetention {
            max_rows: 1200,
            ..r
        };
        assert_eq!(prune(&store, rows).await.unwrap(), 3800);
        assert_eq!(state(), (Some(10_801), 1200, 12_000));
        let size = EventRetention {
            max_bytes: 1024 * 1024,
            ..r
        };
        prune(&store, size).await.unwrap();
        let bytes = store.read_sync(events::size_on_disk).unwrap();
        assert!(bytes <= 1024 * 1024, "{bytes}");
        let (oldest, count, head) = state();
        assert_eq!(oldest, Some(head - count as i64 + 1), "the newest are kept");
        assert!(count >= 150, "no more than needed: {count}");
    }

    #[test]
    fn a_position_is_served_while_nothing_after_it_was_pruned_and_it_is_not_past_the_head() {
        for (after, oldest, head, ok) in [
            (0, None, 0, true),
            (1, None, 0, false),
            (0, Some(1), 5, true),
            (5, Some(1), 5, true),
            (6, Some(1), 5, false),
            (3, Some(4), 9, true),
            (2, Some(4), 9, false),
            (0, Some(4), 9, false),
            // All pruned: only the head itself continues.
            (9, None, 9, true),
            (8, None, 9, false),
        ] {
            let got = check_position(after, oldest, head, &[]);
            assert_eq!(
                got.is_ok(),
                ok,
                "after {after}, oldest {oldest:?}, head {head}"
            );
            if let Err(Error::Gone {
                oldest: o, head: h, ..
            }) = got
            {
                assert_eq!((o, h), (oldest, head));
            }
        }
    }

    /// A restore kept events up to 10 and the next one is 101: positions 11 to 100 were
    /// handed out by the lost history, and 10 continues past the unused range, also once
    /// retention has taken everything.
    #[test]
    fn positions_a_restore_replaced_are_gone_and_its_end_continues_past_them() {
        let replaced = [(10, 100)];
        for (after, oldest, head, ok) in [
            (10, Some(5), 100, true),
            (11, Some(5), 100, false),
            (99, Some(5), 100, false),
            (100, Some(5), 100, true),
            (10, None, 100, true),
            (10, Some(101), 120, true),
            (9, Some(101), 120, false),
            (100, Some(101), 120, true),
            (120, Some(101), 120, true),
        ] {
            assert_eq!(
                check_position(after, oldest, head, &replaced).is_ok(),
                ok,
                "after {after}, oldest {oldest:?}, head {head}"
            );
        }
    }

    #[test]
    fn pages_follow_commit_order_and_a_filtered_reader_advances_to_the_head() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        store
            .write_sync(|tx| {
                for n in 0..250 {
                    let kind = if n == 120 { USER_DELETED } else { USER_UPDATED };
                    events::append(tx, "t", kind, &format!("{{\"n\":{n}}}"))?;
                }
                Ok(())
            })
            .unwrap();
        let read = |after, types: &[&str], limit| {
            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            store
                .read_sync(|c| read_page(c, after, &types, limit))
                .unwrap()
        };
        let p = read(After::Oldest, &[], 150);
        assert_eq!(p.events.len(), 150);
        assert_eq!(p.events[0], r#"{"id":"1","n":0}"#);
        assert_eq!(p.next, 150);
        let p = read(After::Seq(150), &[], 150);
        assert_eq!((p.events.len(), p.next), (100, 250));
        let p = read(After::Seq(250), &[], 150);
        assert_eq!((p.events.len(), p.next), (0, 250));
        let p = read(After::Now, &[], 10);
        assert_eq!((p.events.len(), p.next), (0, 250));
        let p = read(After::Oldest, &[USER_DELETED], 10);
        assert_eq!(p.events, vec![r#"{"id":"121","n":120}"#.to_string()]);
        assert_eq!(p.next, 250, "read to the end: next is the head");
        let p = read(After::Oldest, &[USER_DELETED], 1);
        assert_eq!(p.next, 121, "a full page stops at its last event");
        let big = format!("{{\"pad\":\"{}\"}}", "p".repeat(100_000));
        store
            .write_sync(|tx| {
                for _ in 0..60 {
                    events::append(tx, "t", USER_UPDATED, &big)?;
                }
                Ok(())
            })
            .unwrap();
        let p = read(After::Seq(250), &[], 1000);
        assert!(p.events.len() < 60, "bounded in bytes: {}", p.events.len());
        assert_eq!(p.next, 250 + p.events.len() as i64);
    }

    #[test]
    fn a_filtered_read_looks_at_a_bounded_range_and_its_next_moves_past_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        let rare = MAX_EXAMINED + 500;
        let total = 2 * MAX_EXAMINED + 100;
        store
            .write_sync(|tx| {
                for n in 1..=total {
                    let kind = if n == 7 || n == rare {
                        USER_DELETED
                    } else {
                        USER_UPDATED
                    };
                    events::append(tx, "t", kind, "{}")?;
                }
                Ok(())
            })
            .unwrap();
        let read = |after| {
            let types = vec![USER_DELETED.to_string()];
            store
                .read_sync(|c| read_page(c, after, &types, 100))
                .unwrap()
        };
        // The one match in range, then a stop at the bound: next is the last seq looked at.
        let p = read(After::Oldest);
        assert_eq!(p.events, vec![r#"{"id":"7"}"#.to_string()]);
        assert_eq!((p.next, p.more), (MAX_EXAMINED, true));
        let p = read(After::Seq(p.next));
        assert_eq!(p.events, vec![format!(r#"{{"id":"{rare}"}}"#)]);
        assert_eq!((p.next, p.more), (2 * MAX_EXAMINED, true));
        // Nothing in the last stretch: it reaches the head.
        let p = read(After::Seq(p.next));
        assert!(p.events.is_empty());
        assert_eq!((p.next, p.more), (total, false));
    }
}
