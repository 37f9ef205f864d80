//! The console's people views: the Users search and its exports, a deleted user's tombstone,
//! a group's members searched and paged; and the search index, kept up to date off the
//! write path (`keep_search_index`).

use std::time::Duration;

use tracing::warn;

use crate::error::Result;
use crate::scim::list::Sort;
use crate::store::Store;
use crate::store::people::{self, Found, Member, Person, Search, Tombstone};

/// How often the indexer looks for users written since it last ran.
const INDEX_TICK: Duration = Duration::from_millis(250);
/// Users taken into the index in one write transaction: some 50 ms of the writer.
const INDEX_BATCH: u64 = 2_000;
/// The indexer runs when writes pause for a tick. Under writes that never pause (an
/// identity provider's first import), it waits until this many users are noted or this many
/// ticks have passed: indexing in the middle of a burst takes the writer from the burst.
const INDEX_BACKLOG: u64 = 20_000;
const INDEX_MAX_TICKS: u32 = 120;
/// Without a write of this process, the noted count is still read this often: `scimd`
/// commands beside the server write users too.
const INDEX_IDLE_LOOK: u32 = 40;
/// After a failed look or batch (a full disk, say), the next try waits this long: one log
/// line, not four a second.
const INDEX_RETRY: Duration = Duration::from_secs(10);
/// A search indexes at most this many noted users before it reads: more than the indexer
/// ever lets wait (`INDEX_BACKLOG` and what a tick adds), so in practice all of them.
const SEARCH_CATCH_UP: u64 = 50_000;

/// Keeps the console's search index up to date, until the task is aborted. Written in each
/// user write's own transaction, the index made SCIM writes a fifth slower; here the noted
/// users are taken in many at a time while writes pause, so a burst of IdP writes pays for
/// a row of bookkeeping each. A search first takes in what is still noted (`search`).
pub async fn keep_search_index(store: Store) {
    let mut tick = tokio::time::interval(INDEX_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = store.generation();
    let mut noted = true;
    let mut ticks = 0u32;
    loop {
        tick.tick().await;
        ticks = ticks.saturating_add(1);
        let generation = store.generation();
        let quiet = generation == seen;
        seen = generation;
        if (quiet && !noted && ticks < INDEX_IDLE_LOOK) || store.check_file().is_err() {
            continue;
        }
        let pending = match store.read(people::unindexed).await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "search index: could not count the users to index");
                tokio::time::sleep(INDEX_RETRY).await;
                continue;
            }
        };
        noted = pending > 0;
        if !noted {
            ticks = 0;
            continue;
        }
        if !(quiet || pending >= INDEX_BACKLOG || ticks >= INDEX_MAX_TICKS) {
            continue;
        }
        if let Err(e) = store.write(|tx| people::index_noted(tx, INDEX_BATCH)).await {
            warn!(error = %e, "search index: could not index written users");
            tokio::time::sleep(INDEX_RETRY).await;
        }
        ticks = 0;
        // Its own commit is not a write to wait out.
        seen = store.generation();
    }
}

/// Takes the noted users into the search index (at most `limit`), in batches.
async fn catch_up(store: &Store, limit: u64) -> Result<()> {
    let mut left = store.read(people::unindexed).await?.min(limit);
    while left > 0 {
        let batch = left.min(INDEX_BATCH);
        let done = store
            .write(move |tx| people::index_noted(tx, batch))
            .await?;
        if done == 0 {
            break;
        }
        left = left.saturating_sub(done);
    }
    Ok(())
}

/// `catch_up` before a search; if it cannot write (a database turned read-only, say), the
/// search still answers from the index as it is, which may miss the latest writes.
async fn fresh_enough(store: &Store) {
    if let Err(e) = catch_up(store, SEARCH_CATCH_UP).await {
        warn!(error = %e, "search index: searching without the latest writes");
    }
}

/// Every noted user into the search index, in one transaction: for a database just filled
/// by the library (the load benchmark's seeding), before a server reads it.
pub fn index_everyone(store: &Store) -> Result<u64> {
    store.write_sync(|tx| people::index_noted(tx, u64::MAX))
}

/// One page of the users `search` selects, sorted, and how many match.
pub async fn search(
    store: &Store,
    search: Search,
    sort: Option<Sort>,
    offset: u64,
    limit: u64,
) -> Result<Found> {
    if search.indexed() {
        fresh_enough(store).await;
    }
    let registry = store.registry();
    // A sort may read every match (an attribute no index orders): it takes a scan permit, so
    // such reads never hold more than a few readers.
    store
        .read_list(sort.is_some(), move |conn| {
            people::page(conn, &search, sort.as_ref(), &registry, offset, limit)
        })
        .await
}

/// The next batch of an export of `search` after row `after` (see `people::batch`).
pub async fn batch(
    store: &Store,
    search: Search,
    after: i64,
    limit: u64,
) -> Result<(Vec<Person>, Option<i64>)> {
    if after == 0 && search.indexed() {
        fresh_enough(store).await;
    }
    store
        .read(move |conn| people::batch(conn, &search, after, limit))
        .await
}

/// The tombstone of a deleted user, if `id` names one.
pub async fn tombstone(store: &Store, id: String) -> Result<Option<Tombstone>> {
    store.read(move |conn| people::tombstone(conn, &id)).await
}

/// A page of a group's members matching `text`, and how many match.
pub async fn members(
    store: &Store,
    group_id: String,
    text: String,
    offset: u64,
    limit: u64,
) -> Result<(u64, Vec<Member>)> {
    store
        .read(move |conn| {
            people::members(conn, &group_id, &text, offset, limit)?
                .ok_or_else(|| super::not_found("Group", &group_id))
        })
        .await
}

/// The next batch of a group's members export after membership row `after`.
pub async fn member_batch(
    store: &Store,
    group_id: String,
    text: String,
    after: i64,
    limit: u64,
) -> Result<Vec<Member>> {
    store
        .read(move |conn| {
            people::member_batch(conn, &group_id, &text, after, limit)?
                .ok_or_else(|| super::not_found("Group", &group_id))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::people::State;

    /// No indexer runs here: the search itself takes the noted users in, a short text (a
    /// userName prefix, no index) leaves them noted, and an export's first batch takes them in.
    #[tokio::test]
    async fn a_search_takes_in_the_users_written_since_the_index_last_ran() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let add = |id: &'static str, name: &'static str| {
            store
                .write_sync(|tx| {
                    let mut doc = serde_json::Map::new();
                    doc.insert("userName".into(), name.into());
                    crate::store::users::insert(tx, id, doc, "2026-01-01T00:00:00.000Z")
                })
                .unwrap();
        };
        let noted = || store.read_sync(people::unindexed).unwrap();
        let text = |t: &str| Search {
            text: t.into(),
            state: State::All,
        };
        add("u1", "quinn.murphy@acme.example");
        let short = search(&store, text("qu"), None, 0, 10).await.unwrap();
        assert_eq!(short.items.len(), 1);
        assert_eq!(noted(), 1, "a prefix of a userName needs no index");
        let found = search(&store, text("murph"), None, 0, 10).await.unwrap();
        assert_eq!(found.items[0].user.id, "u1");
        assert_eq!(noted(), 0);
        add("u2", "rosa.garcia@acme.example");
        let (first, _) = batch(&store, text("garcia"), 0, 10).await.unwrap();
        assert_eq!(first[0].user.id, "u2");
        assert_eq!(noted(), 0);
    }
}
