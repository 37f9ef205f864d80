//! Creating, reading, replacing, deleting and listing users.

use serde_json::Value;

use super::{Listed, list_sql, new_id, not_found, remember, resume};
use crate::error::Result;
use crate::scim::list::ListQuery;
use crate::scim::resource::{ResourceKind, UserRecord};
use crate::scim::{time, validate};
use crate::store::{Store, users};

pub async fn create(store: &Store, body: Value) -> Result<UserRecord> {
    let mut input = validate::user(body)?;
    if !input.active_given {
        // A new account is active unless the client says otherwise.
        input.doc.insert("active".into(), Value::Bool(true));
    }
    store
        .write(move |tx| users::insert(tx, &new_id(), input.doc, &time::now()))
        .await
}

/// A lookup by id: read on the request's thread when a connection is free (see
/// `Store::try_read_now`).
pub async fn get(store: &Store, id: String) -> Result<UserRecord> {
    let read = |conn: &rusqlite::Connection, id: &str| {
        users::get(conn, id)?.ok_or_else(|| not_found("User", id))
    };
    if let Some(found) = store.try_read_now(|conn| read(conn, &id)) {
        return found;
    }
    store.read(move |conn| read(conn, &id)).await
}

/// PUT (RFC 7644 §3.5.1): the body replaces the user; omitted attributes are cleared
/// (idp-compat.md Decision 1) — except `active`: a body that does not mention it keeps the
/// current state, so an attribute update can never silently reactivate a suspended account.
pub async fn replace(store: &Store, id: String, body: Value) -> Result<UserRecord> {
    let mut input = validate::user(body)?;
    store
        .write(move |tx| {
            let current = users::get(tx, &id)?.ok_or_else(|| not_found("User", &id))?;
            if !input.active_given {
                let active = current
                    .doc
                    .get("active")
                    .cloned()
                    .unwrap_or(Value::Bool(true));
                input.doc.insert("active".into(), active);
            }
            users::replace(tx, &id, input.doc, &time::now())?.ok_or_else(|| not_found("User", &id))
        })
        .await
}

pub async fn delete(store: &Store, id: String) -> Result<()> {
    store
        .write(move |tx| {
            if users::delete(tx, &id, &time::now())? {
                Ok(())
            } else {
                Err(not_found("User", &id))
            }
        })
        .await
}

/// Pages of at most this many users are read on the request's own thread when the filter is
/// an index lookup.
const INLINE_ROWS: u64 = 20;

pub async fn list(store: &Store, q: &ListQuery) -> Result<Listed<UserRecord>> {
    let sql = list_sql(q, ResourceKind::User)?;
    if sql.lookup
        && let Some(found) = store.try_read_now(|conn| users::list_small(conn, &sql, INLINE_ROWS))
        && let Some(page) = found?
    {
        return Ok(page.into());
    }
    let (sql, resumed) = resume(store, "users", sql);
    let page = store.read(move |conn| users::list(conn, &resumed)).await?;
    Ok(remember(store, "users", &sql, page))
}
