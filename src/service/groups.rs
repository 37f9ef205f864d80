//! Creating, reading, replacing, deleting and listing groups.

use serde_json::Value;
use tracing::info;

use super::{Listed, list_sql, new_id, not_found, remember, resume};
use crate::error::Result;
use crate::scim::list::ListQuery;
use crate::scim::resource::{GroupRecord, ResourceKind};
use crate::scim::{patch, time, validate};
use crate::store::{Store, groups};

/// Member ids that matched nothing were skipped, not refused (idp-compat.md Decision 3):
/// one stale id must not lose a whole membership push.
fn report_skipped(group_id: &str, skipped: &[String]) {
    if !skipped.is_empty() {
        info!(group = group_id, skipped = ?skipped, "unknown member ids skipped");
    }
}

/// The group as it now is, read in the same transaction that wrote it.
fn reread(conn: &rusqlite::Connection, id: &str, with_members: bool) -> Result<GroupRecord> {
    groups::get(conn, id, with_members)?.ok_or_else(|| not_found("Group", id))
}

/// `with_members`: whether the caller will return `members` (see `Projection::returns`).
pub async fn create(store: &Store, body: Value, with_members: bool) -> Result<GroupRecord> {
    let input = validate::group(body)?;
    store
        .write(move |tx| {
            let id = new_id();
            let members = input.members.unwrap_or_default();
            let skipped = groups::insert(tx, &id, input.doc, &members, &time::now())?;
            report_skipped(&id, &skipped);
            reread(tx, &id, with_members)
        })
        .await
}

pub async fn get(store: &Store, id: String, with_members: bool) -> Result<GroupRecord> {
    store
        .read(move |conn| reread(conn, &id, with_members))
        .await
}

/// PUT (RFC 7644 §3.5.1): the body replaces the group, members included; a body without
/// `members` leaves an empty group, as replacing means.
pub async fn replace(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
) -> Result<GroupRecord> {
    let input = validate::group(body)?;
    store
        .write(move |tx| {
            if if_match.is_some() {
                current(tx, &id, if_match.as_deref())?;
            }
            let members = input.members.unwrap_or_default();
            let skipped = groups::replace(tx, &id, input.doc, &members, &time::now())?
                .ok_or_else(|| not_found("Group", &id))?;
            report_skipped(&id, &skipped);
            reread(tx, &id, with_members)
        })
        .await
}

/// PATCH (RFC 7644 §3.5.2), applied in the write transaction: member operations touch only
/// the members they name, and if any operation fails nothing changes.
pub async fn patch(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
) -> Result<GroupRecord> {
    let ops = patch::parse(body, ResourceKind::Group)?;
    store
        .write(move |tx| {
            let (seq, current) = current(tx, &id, if_match.as_deref())?;
            let (doc, changes) = patch::apply_group(current.doc.clone(), ops)?;
            let input = validate::group(Value::Object(doc))?;
            let skipped = groups::patch(tx, seq, &current.doc, input.doc, changes, &time::now())?;
            report_skipped(&id, &skipped);
            reread(tx, &id, with_members)
        })
        .await
}

/// The group's row number and stored record, if it is at a version `If-Match` accepts.
fn current(
    tx: &rusqlite::Transaction,
    id: &str,
    if_match: Option<&str>,
) -> Result<(i64, GroupRecord)> {
    let (seq, current) = groups::row(tx, id)?.ok_or_else(|| not_found("Group", id))?;
    current.meta.check_if_match(if_match)?;
    Ok((seq, current))
}

pub async fn delete(store: &Store, id: String, if_match: Option<String>) -> Result<()> {
    store
        .write(move |tx| {
            if if_match.is_some() {
                current(tx, &id, if_match.as_deref())?;
            }
            if groups::delete(tx, &id, &time::now())? {
                Ok(())
            } else {
                Err(not_found("Group", &id))
            }
        })
        .await
}

pub async fn list(store: &Store, q: &ListQuery, with_members: bool) -> Result<Listed<GroupRecord>> {
    let (sql, resumed) = resume(store, "groups", list_sql(q, ResourceKind::Group)?);
    let page = store
        .read(move |conn| groups::list(conn, &resumed, with_members))
        .await?;
    Ok(remember(store, "groups", &sql, page))
}
