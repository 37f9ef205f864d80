//! Creating, reading, replacing, deleting and listing groups.

use serde_json::{Map, Value, json};
use tracing::info;

use super::audit::{self, About, Actor};
use super::events;
use super::ignored::Noted;
use super::{Listed, list_sql, new_id, not_found, remember, resume};
use crate::error::Result;
use crate::scim::immutable::{self, Write};
use crate::scim::list::ListQuery;
use crate::scim::registry::Registry;
use crate::scim::resource::{GroupRecord, ResourceKind};
use crate::scim::validate::Ignored;
use crate::scim::{diff, patch, time, validate};
use crate::store::{Store, groups};

/// Member ids that matched nothing were skipped, not refused (idp-compat.md Decision 3):
/// one stale id must not lose a whole membership push. They are logged and named in the audit
/// entry of the change.
fn report_skipped(group_id: &str, skipped: &[String]) {
    if !skipped.is_empty() {
        info!(group = group_id, skipped = ?skipped, "unknown member ids skipped");
    }
}

/// The group as it now is, read in the same transaction that wrote it.
fn reread(conn: &rusqlite::Connection, id: &str, with_members: bool) -> Result<GroupRecord> {
    groups::get(conn, id, with_members)?.ok_or_else(|| not_found("Group", id))
}

/// What a write did, for its audit entry and events.
struct Done<'a> {
    action: &'a str,
    status: u16,
    /// The group before the write; `None` for a create.
    before: Option<&'a Map<String, Value>>,
    delta: groups::Delta,
    skipped: Vec<String>,
    ignored: &'a Ignored,
}

/// Records the change from `done.before` to `group` and its events (nothing if the version
/// did not move); whether it did.
fn record(
    tx: &rusqlite::Connection,
    actor: &Actor,
    registry: &Registry,
    group: &GroupRecord,
    before_version: Option<i64>,
    done: Done<'_>,
) -> Result<bool> {
    report_skipped(&group.id, &done.skipped);
    if before_version == Some(group.meta.version) {
        return Ok(false);
    }
    let (mut extra, refs) = done.delta.describe(tx)?;
    if !done.skipped.is_empty() {
        extra.insert("skippedMembers".into(), json!(done.skipped));
    }
    done.ignored.describe(&mut extra);
    let empty = Map::new();
    audit::record_change(
        tx,
        actor,
        audit::Change {
            action: done.action,
            status: done.status,
            about: about(group),
            changes: diff::changes(done.before.unwrap_or(&empty), &group.doc),
            extra,
            refs,
        },
    )?;
    events::group_written(tx, actor, registry, done.before, group, &done.delta)?;
    Ok(true)
}

fn about(group: &GroupRecord) -> About<'_> {
    About {
        kind: "Group",
        id: &group.id,
        name: group.doc.get("displayName").and_then(Value::as_str),
    }
}

/// `with_members`: whether the caller will return `members` (see `Projection::returns`).
/// With the unknown names the body carried (ignored, see `Ignored`).
pub async fn create(
    store: &Store,
    body: Value,
    with_members: bool,
    actor: &Actor,
) -> Result<(GroupRecord, Noted)> {
    let write = create_write(store, body, new_id(), with_members, actor)?;
    store.write(write).await
}

/// A create, validated outside the writer: what remains runs in the write transaction.
/// `id` is the new group's (a bulk request chooses it before the group exists).
pub fn create_write(
    store: &Store,
    body: Value,
    id: String,
    with_members: bool,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(GroupRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let input = validate::group(body, &registry)?;
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let members = input.members.unwrap_or_default();
        let (skipped, delta) = groups::insert(tx, &id, input.doc, &members, &time::now())?;
        let group = reread(tx, &id, with_members)?;
        let done = Done {
            action: "group.create",
            status: 201,
            before: None,
            delta,
            skipped,
            ignored: &input.ignored,
        };
        let changed = record(tx, &actor, &registry, &group, None, done)?;
        let noted = Noted::new(input.ignored, changed, "group.create", 201, about(&group));
        Ok((group, noted))
    })
}

pub async fn get(store: &Store, id: String, with_members: bool) -> Result<GroupRecord> {
    store
        .read(move |conn| reread(conn, &id, with_members))
        .await
}

/// PUT (RFC 7644 §3.5.1): the body replaces the group, members included; a body without
/// `members` leaves an empty group, as replacing means. With the unknown names the body
/// carried.
pub async fn replace(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<(GroupRecord, Noted)> {
    let write = replace_write(store, id, body, with_members, if_match, actor)?;
    store.write(write).await
}

/// A PUT, validated outside the writer (see `replace`).
pub fn replace_write(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(GroupRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let mut input = validate::group(body, &registry)?;
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let (seq, before) = current(tx, &id, if_match.as_deref())?;
        let kind = ResourceKind::Group;
        immutable::check(&before.doc, &mut input.doc, kind, &registry, Write::Replace)?;
        let members = input.members.unwrap_or_default();
        let (skipped, delta) =
            groups::replace(tx, seq, &before.doc, input.doc, &members, &time::now())?;
        let group = reread(tx, &id, with_members)?;
        let done = Done {
            action: "group.replace",
            status: 200,
            before: Some(&before.doc),
            delta,
            skipped,
            ignored: &input.ignored,
        };
        let changed = record(
            tx,
            &actor,
            &registry,
            &group,
            Some(before.meta.version),
            done,
        )?;
        let noted = Noted::new(input.ignored, changed, "group.replace", 200, about(&group));
        Ok((group, noted))
    })
}

/// PATCH (RFC 7644 §3.5.2), applied in the write transaction: member operations touch only
/// the members they name, and if any operation fails nothing changes. With the unknown names
/// the operations carried.
pub async fn patch(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<(GroupRecord, Noted)> {
    let write = patch_write(store, id, body, with_members, if_match, actor)?;
    store.write(write).await
}

/// A PATCH, its operations parsed outside the writer (see `patch`). Its status is 200 when
/// the caller returns the group (`with_members`), else 204 (idp-compat.md Decision 7).
pub fn patch_write(
    store: &Store,
    id: String,
    body: Value,
    with_members: bool,
    if_match: Option<String>,
    actor: &Actor,
) -> Result<impl FnOnce(&rusqlite::Transaction) -> Result<(GroupRecord, Noted)> + Send + 'static> {
    let registry = store.registry();
    let ops = patch::parse(body, ResourceKind::Group)?;
    let actor = actor.clone();
    Ok(move |tx: &rusqlite::Transaction| {
        let (seq, before) = current(tx, &id, if_match.as_deref())?;
        let (doc, changes, mut ignored) = patch::apply_group(before.doc.clone(), ops, &registry)?;
        let mut input = validate::patched_group(doc, &before.doc, &registry)?;
        ignored.extend(input.ignored);
        let kind = ResourceKind::Group;
        immutable::check(&before.doc, &mut input.doc, kind, &registry, Write::Patch)?;
        let (skipped, delta) =
            groups::patch(tx, seq, &before.doc, input.doc, changes, &time::now())?;
        let group = reread(tx, &id, with_members)?;
        let status = if with_members { 200 } else { 204 };
        let done = Done {
            action: "group.patch",
            status,
            before: Some(&before.doc),
            delta,
            skipped,
            ignored: &ignored,
        };
        let changed = record(
            tx,
            &actor,
            &registry,
            &group,
            Some(before.meta.version),
            done,
        )?;
        let noted = Noted::new(ignored, changed, "group.patch", status, about(&group));
        Ok((group, noted))
    })
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
        let (_, gone) = current(tx, &id, if_match.as_deref())?;
        let parents = groups::parents(tx, &id)?;
        groups::delete(tx, &id, &time::now())?;
        audit::record_change(
            tx,
            &actor,
            audit::Change {
                action: "group.delete",
                status: 204,
                about: about(&gone),
                changes: Vec::new(),
                extra: Map::new(),
                refs: Vec::new(),
            },
        )?;
        events::group_deleted(tx, &actor, &gone, &parents)
    }
}

/// How many direct members each of these groups has (the console's group list).
pub async fn member_counts(store: &Store, ids: Vec<String>) -> Result<Vec<i64>> {
    store
        .read(move |conn| groups::member_counts(conn, &ids))
        .await
}

pub async fn list(store: &Store, q: &ListQuery, with_members: bool) -> Result<Listed<GroupRecord>> {
    let (sql, resumed) = resume(
        store,
        "groups",
        list_sql(q, ResourceKind::Group, &store.registry())?,
    );
    let page = store
        .read_list(sql.0.is_scan(), move |conn| {
            groups::list(conn, &resumed, with_members)
        })
        .await?;
    Ok(remember(store, "groups", &sql, page))
}
