//! The console's people views: the Users search and its exports, a deleted user's tombstone,
//! a group's members searched and paged. Reads only; the writes that keep them are the user
//! writes themselves (`store::people`).

use crate::error::Result;
use crate::scim::list::Sort;
use crate::store::Store;
use crate::store::people::{self, Found, Member, Person, Search, Tombstone};

/// One page of the users `search` selects, sorted, and how many match.
pub async fn search(
    store: &Store,
    search: Search,
    sort: Option<Sort>,
    offset: u64,
    limit: u64,
) -> Result<Found> {
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
