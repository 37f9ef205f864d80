//! Creating, reading, replacing, deleting and listing users.

use serde_json::{Map, Value};

use super::audit::{self, About, Actor};
use super::events;
use super::ignored::Noted;
use super::{Listed, list_sql, new_id, not_found, remember, resume};
use crate::error::Result;
use crate::scim::immutable::{self, Write};
use crate::scim::list::ListQuery;
use crate::scim::registry::Registry;
use crate::scim::resource::{ResourceKind, StoredUser, UserRecord};
use crate::scim::validate::Ignored;
use crate::scim::{diff, patch, time, validate};
use crate::store::{Store, people, users};

/// Creates a user; with the unknown names the body carried (ignored, see `Ignored`).
pub async fn create(store: &Store, body: Value, actor: &Actor) -> Result<(UserRecord, Noted)> {
    let write = create_write(store, body, new_id(), actor)?;
    store.write(write).await
}

/// A create, validated outside the writer: what remains runs in the write transaction.
/// `id` is the new user's (a bulk request chooses it before the user exists, so other
/// operations can reference it).
pub fn create_write(
    store: &Store,
    body: Value,
    id: String,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(UserRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let mut input = validate::user(body, &registry)?;
    let ignored = std::mem::take(&mut input.ignored);
    if !input.active_given {
        // A new account is active unless the client says otherwise.
        input.doc.insert("active".into(), Value::Bool(true));
    }
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let user = users::insert(tx, &id, input.doc, &time::now())?;
        let done = Done {
            action: "user.create",
            status: 201,
            before: None,
            ignored: &ignored,
        };
        record(tx, &actor, &registry, &user, done)?;
        let noted = Noted::new(ignored, true, "user.create", 201, about(&user));
        Ok((user, noted))
    })
}

/// What a committed write did, for its audit entry and events.
struct Done<'a> {
    action: &'a str,
    status: u16,
    /// The user before the write; `None` for a create.
    before: Option<&'a Map<String, Value>>,
    ignored: &'a Ignored,
}

/// The audit entry of a change to `user` (naming what the request carried that was
/// ignored) and its event, in the change's transaction.
fn record(
    tx: &rusqlite::Connection,
    actor: &Actor,
    registry: &Registry,
    user: &UserRecord,
    done: Done<'_>,
) -> Result<()> {
    let mut extra = Map::new();
    done.ignored.describe(&mut extra);
    let empty = Map::new();
    audit::record_change(
        tx,
        actor,
        audit::Change {
            action: done.action,
            status: done.status,
            about: about(user),
            changes: diff::changes(done.before.unwrap_or(&empty), &user.doc),
            extra,
            refs: Vec::new(),
        },
    )?;
    events::user_written(tx, actor, registry, done.before, user)
}

fn about(user: &UserRecord) -> About<'_> {
    About {
        kind: "User",
        id: &user.id,
        name: user.doc.get("userName").and_then(Value::as_str),
    }
}

/// A lookup by id: read on the request's thread when a connection is free (see
/// `Store::try_read_now`).
pub async fn get(store: &Store, id: String) -> Result<StoredUser> {
    let read = |conn: &rusqlite::Connection, id: &str| {
        users::get_stored(conn, id)?.ok_or_else(|| not_found("User", id))
    };
    if let Some(found) = store.try_read_now(|conn| read(conn, &id)) {
        return found;
    }
    store.read(move |conn| read(conn, &id)).await
}

/// PUT (RFC 7644 §3.5.1): the body replaces the user; omitted attributes are cleared
/// (idp-compat.md Decision 1) — except `active`: a body that does not mention it keeps the
/// current state, so an attribute update can never silently reactivate a suspended account.
/// With the unknown names the body carried.
pub async fn replace(
    store: &Store,
    id: String,
    body: Value,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<(UserRecord, Noted)> {
    let write = replace_write(store, id, body, if_match, actor)?;
    store.write(write).await
}

/// A PUT, validated outside the writer (see `replace`).
pub fn replace_write(
    store: &Store,
    id: String,
    body: Value,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(UserRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let mut input = validate::user(body, &registry)?;
    let ignored = std::mem::take(&mut input.ignored);
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let current = current(tx, &id, if_match.as_deref())?;
        let kind = ResourceKind::User;
        immutable::check(
            &current.doc,
            &mut input.doc,
            kind,
            &registry,
            Write::Replace,
        )?;
        let user = store_update(tx, &id, input, &current)?;
        let changed = user.meta.version != current.meta.version;
        if changed {
            let done = Done {
                action: "user.replace",
                status: 200,
                before: Some(&current.doc),
                ignored: &ignored,
            };
            record(tx, &actor, &registry, &user, done)?;
        }
        let noted = Noted::new(ignored, changed, "user.replace", 200, about(&user));
        Ok((user, noted))
    })
}

/// PATCH (RFC 7644 §3.5.2): the operations apply to the stored user in the write
/// transaction, so concurrent PATCHes of one user each see the other's result; the outcome
/// must still be a valid user. If any operation fails nothing changes. With the unknown names
/// the operations carried.
pub async fn patch(
    store: &Store,
    id: String,
    body: Value,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<(UserRecord, Noted)> {
    let write = patch_write(store, id, body, if_match, actor)?;
    store.write(write).await
}

/// A PATCH, its operations parsed outside the writer (see `patch`).
pub fn patch_write(
    store: &Store,
    id: String,
    body: Value,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(UserRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let ops = patch::parse(body, ResourceKind::User)?;
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let current = current(tx, &id, if_match.as_deref())?;
        // Unlike PUT, a PATCH starts from the stored user: `active` is only absent if an
        // operation removed it, and then it is unassigned (RFC 7644 §3.5.2.2).
        let (doc, mut ignored) = patch::apply_user(current.doc.clone(), ops, &registry)?;
        let mut input = validate::patched_user(doc, &current.doc, &registry)?;
        ignored.extend(input.ignored);
        let kind = ResourceKind::User;
        immutable::check(&current.doc, &mut input.doc, kind, &registry, Write::Patch)?;
        let user = users::replace(tx, &id, input.doc, &time::now())?
            .ok_or_else(|| not_found("User", &id))?;
        let changed = user.meta.version != current.meta.version;
        if changed {
            let done = Done {
                action: "user.patch",
                status: 200,
                before: Some(&current.doc),
                ignored: &ignored,
            };
            record(tx, &actor, &registry, &user, done)?;
        }
        let noted = Noted::new(ignored, changed, "user.patch", 200, about(&user));
        Ok((user, noted))
    })
}

/// The user as stored, if it is at a version `If-Match` accepts.
fn current(tx: &rusqlite::Transaction, id: &str, if_match: Option<&str>) -> Result<UserRecord> {
    let current = users::get(tx, id)?.ok_or_else(|| not_found("User", id))?;
    current.meta.check_if_match(if_match)?;
    Ok(current)
}

/// Stores `input` over `current` (a no-op change keeps the version). An input that says
/// nothing about `active` keeps the current state.
fn store_update(
    tx: &rusqlite::Transaction,
    id: &str,
    mut input: validate::UserInput,
    current: &UserRecord,
) -> Result<UserRecord> {
    if !input.active_given {
        let active = current
            .doc
            .get("active")
            .cloned()
            .unwrap_or(Value::Bool(true));
        input.doc.insert("active".into(), active);
    }
    users::replace(tx, id, input.doc, &time::now())?.ok_or_else(|| not_found("User", id))
}

pub async fn delete(
    store: &Store,
    id: String,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<()> {
    store.write(delete_write(id, if_match, actor)).await
}

/// A DELETE, as it runs in the write transaction (see `delete`).
pub fn delete_write(
    id: String,
    if_match: Option<String>,
    actor: &Actor,
) -> impl FnOnce(&rusqlite::Transaction) -> Result<()> + Send + 'static {
    let actor = actor.clone();
    move |tx: &rusqlite::Transaction| {
        let gone = current(tx, &id, if_match.as_deref())?;
        let now = time::now();
        users::delete(tx, &id, &now)?;
        // The console keeps a page for the deleted user; SCIM answers 404.
        let text = |k: &str| gone.doc.get(k).and_then(Value::as_str).map(str::to_string);
        people::bury(
            tx,
            &people::Tombstone {
                id: id.clone(),
                user_name: text("userName").unwrap_or_default(),
                display_name: text("displayName"),
                deleted_at: now,
                deleted_by: actor.name.clone(),
            },
        )?;
        audit::record_change(
            tx,
            &actor,
            audit::Change {
                action: "user.delete",
                status: 204,
                about: about(&gone),
                changes: Vec::new(),
                extra: Map::new(),
                refs: gone.groups.iter().map(|g| g.id.clone()).collect(),
            },
        )?;
        events::user_deleted(tx, &actor, &gone)
    }
}

/// Pages of at most this many users are read on the request's own thread when the filter is
/// an index lookup.
const INLINE_ROWS: u64 = 20;

pub async fn list(store: &Store, q: &ListQuery) -> Result<Listed<StoredUser>> {
    let sql = list_sql(q, ResourceKind::User, &store.registry())?;
    if sql.lookup
        && let Some(found) = store.try_read_now(|conn| users::list_small(conn, &sql, INLINE_ROWS))
        && let Some(page) = found?
    {
        return Ok(page.into());
    }
    let (sql, resumed) = resume(store, "users", sql);
    let page = store
        .read_list(sql.0.is_scan(), move |conn| users::list(conn, &resumed))
        .await?;
    Ok(remember(store, "users", &sql, page))
}
