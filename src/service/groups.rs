//! Creating, reading, replacing, deleting and listing groups.

use serde_json::Value;
use tracing::info;

use super::{new_id, not_found};
use crate::error::Result;
use crate::scim::list::ListQuery;
use crate::scim::resource::{GroupRecord, ResourceKind};
use crate::scim::{time, validate};
use crate::store::groups::Written;
use crate::store::{Store, groups, query};

/// Member ids that matched nothing were skipped, not refused (idp-compat.md Decision 3):
/// one stale id must not lose a whole membership push.
fn report_skipped(group_id: &str, skipped: &[String]) {
    if !skipped.is_empty() {
        info!(group = group_id, skipped = ?skipped, "unknown member ids skipped");
    }
}

fn written(id: &str, w: Written) -> Result<GroupRecord> {
    report_skipped(id, &w.skipped);
    w.group.ok_or_else(|| not_found("Group", id))
}

pub async fn create(store: &Store, body: Value) -> Result<GroupRecord> {
    let input = validate::group(body)?;
    store
        .write(move |tx| {
            let id = new_id();
            let members = input.members.unwrap_or_default();
            let w = groups::insert(tx, &id, input.doc, &members, &time::now())?;
            written(&id, w)
        })
        .await
}

pub async fn get(store: &Store, id: String) -> Result<GroupRecord> {
    store
        .read(move |conn| groups::get(conn, &id)?.ok_or_else(|| not_found("Group", &id)))
        .await
}

/// PUT (RFC 7644 §3.5.1): the body replaces the group, members included; a body without
/// `members` leaves an empty group, as replacing means.
pub async fn replace(store: &Store, id: String, body: Value) -> Result<GroupRecord> {
    let input = validate::group(body)?;
    store
        .write(move |tx| {
            let members = input.members.unwrap_or_default();
            let w = groups::replace(tx, &id, input.doc, &members, &time::now())?;
            written(&id, w)
        })
        .await
}

pub async fn delete(store: &Store, id: String) -> Result<()> {
    store
        .write(move |tx| {
            if groups::delete(tx, &id, &time::now())? {
                Ok(())
            } else {
                Err(not_found("Group", &id))
            }
        })
        .await
}

pub async fn list(store: &Store, q: ListQuery) -> Result<(u64, Vec<GroupRecord>)> {
    let filter = match &q.filter {
        Some(f) => query::translate(f, ResourceKind::Group)?,
        None => query::SqlFilter::all(),
    };
    store
        .read(move |conn| groups::list(conn, &filter, q.offset(), q.count))
        .await
}
