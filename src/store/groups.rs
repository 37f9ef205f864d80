//! SQL for groups: the `groups` row (lookup columns + JSON document) and membership rows.
//! Membership changes write only the rows that change, never the whole list.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::ListPage;
use super::key;
use super::query::ListSql;
use super::{doc_from_text, doc_to_text};
use crate::error::{Error, Result};
use crate::scim::patch::{self, MemberChange};
use crate::scim::resource::{GroupRecord, MemberRef, Meta, ResourceKind};
use crate::scim::{eval, ident};

/// A member resolved to its row: a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Member {
    User(i64),
    Group(i64),
}

/// The members a write added and removed, in order.
#[derive(Debug, Default)]
pub struct Delta {
    added: Vec<Member>,
    removed: Vec<Member>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// For the audit log: `membersAdded`/`membersRemoved` as `{value, type, display}` (at
    /// most `audit::MAX_REFS` each, with the full count beside them), and the member ids.
    pub fn describe(&self, conn: &Connection) -> Result<(Map<String, Value>, Vec<String>)> {
        let mut out = Map::new();
        let mut refs = Vec::new();
        for (key, count_key, list) in [
            ("membersAdded", "membersAddedCount", &self.added),
            ("membersRemoved", "membersRemovedCount", &self.removed),
        ] {
            if list.is_empty() {
                continue;
            }
            let mut items = Vec::new();
            for m in list.iter().take(super::audit::MAX_REFS) {
                let (sql, seq, kind) = match m {
                    Member::User(s) => {
                        ("SELECT id, user_name FROM users WHERE seq = ?1", s, "User")
                    }
                    Member::Group(s) => (
                        "SELECT id, display_name FROM groups WHERE seq = ?1",
                        s,
                        "Group",
                    ),
                };
                let row: Option<(String, String)> = conn
                    .prepare_cached(sql)?
                    .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((id, name)) = row {
                    items.push(serde_json::json!({"value": id, "type": kind, "display": name}));
                    refs.push(id);
                }
            }
            out.insert(key.into(), Value::Array(items));
            if list.len() > super::audit::MAX_REFS {
                out.insert(count_key.into(), Value::from(list.len()));
            }
        }
        Ok((out, refs))
    }
}

/// Members one side of a change added or removed, netted (see `Delta::net`), for events.
#[derive(Debug, Default)]
pub struct Members(Vec<Member>);

impl Members {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The members at `range` with their current ids and names (a user's userName, a
    /// group's displayName), in order; one indexed lookup each, so a caller reading a large
    /// change chunk by chunk holds one chunk of names at a time.
    pub fn names(
        &self,
        conn: &Connection,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<MemberName>> {
        let mut user = conn.prepare_cached("SELECT id, user_name FROM users WHERE seq = ?1")?;
        let mut group =
            conn.prepare_cached("SELECT id, display_name FROM groups WHERE seq = ?1")?;
        let mut out = Vec::with_capacity(range.len());
        for m in self.0.get(range).unwrap_or_default() {
            let (stmt, seq, kind) = match m {
                Member::User(s) => (&mut user, s, "User"),
                Member::Group(s) => (&mut group, s, "Group"),
            };
            let row: Option<(String, String)> = stmt
                .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((id, name)) = row {
                out.push(MemberName { id, kind, name });
            }
        }
        Ok(out)
    }
}

impl Delta {
    /// The members the change added and removed in effect: a member added and removed again
    /// in one PATCH (or removed and added back) is in neither. Adds and removes of one member
    /// alternate (each succeeded only from the other state), so their counts tell its net.
    pub fn net(&self) -> (Members, Members) {
        let mut count: std::collections::HashMap<Member, i32> = Default::default();
        for m in &self.added {
            *count.entry(*m).or_default() += 1;
        }
        for m in &self.removed {
            *count.entry(*m).or_default() -= 1;
        }
        let mut pick = |list: &[Member], want: i32| {
            list.iter()
                .filter(|m| count.get(m) == Some(&want) && count.remove(m).is_some())
                .copied()
                .collect()
        };
        let added = pick(&self.added, 1);
        let removed = pick(&self.removed, -1);
        (Members(added), Members(removed))
    }
}

/// The ids of the groups that have the group `id` as a direct member.
pub fn parents(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.id FROM groups c
         JOIN group_members m ON m.member_group_seq = c.seq
         JOIN groups p ON p.seq = m.group_seq
         WHERE c.id = ?1 ORDER BY m.rowid",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn display_name(doc: &Map<String, Value>) -> Result<&str> {
    doc.get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::internal("group document without displayName"))
}

fn external_id(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("externalId").and_then(Value::as_str)
}

/// Fails with `uniqueness` when another group has this displayName's key (as
/// `users::check_unique`, whose rule for `current_key` applies here too).
fn check_unique(conn: &Connection, name: &str, current_key: Option<&str>) -> Result<()> {
    let key = key(name);
    if current_key == Some(key.as_str()) {
        return Ok(());
    }
    let taken: Option<i64> = conn
        .prepare_cached("SELECT seq FROM groups WHERE display_name_fold = ?1 LIMIT 1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    match taken {
        Some(_) => Err(Error::Uniqueness(format!(
            "a group named \"{name}\" already exists"
        ))),
        None => Ok(()),
    }
}

/// Group names that share a uniqueness key, for `scimd check` (as `users::key_collisions`).
pub fn key_collisions(conn: &Connection) -> Result<Vec<String>> {
    super::keys::GROUP_NAME.collisions(conn)
}

/// Resolves member ids to rows, in order; unknown ids are returned separately.
fn resolve(conn: &Connection, ids: &[String]) -> Result<(Vec<Member>, Vec<String>)> {
    let mut user = conn.prepare_cached("SELECT seq FROM users WHERE id = ?1")?;
    let mut group = conn.prepare_cached("SELECT seq FROM groups WHERE id = ?1")?;
    let mut members = Vec::with_capacity(ids.len());
    let mut skipped = Vec::new();
    for id in ids {
        if let Some(seq) = user.query_row([id], |r| r.get(0)).optional()? {
            members.push(Member::User(seq));
        } else if let Some(seq) = group.query_row([id], |r| r.get(0)).optional()? {
            members.push(Member::Group(seq));
        } else {
            skipped.push(id.clone());
        }
    }
    Ok((members, skipped))
}

/// Refuses to make `group_seq` a member of itself, directly or through nested groups.
fn check_no_cycle(conn: &Connection, group_seq: i64, members: &[Member]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE down(seq) AS (
             SELECT ?1
             UNION
             SELECT member_group_seq FROM group_members JOIN down ON group_seq = down.seq
             WHERE member_group_seq IS NOT NULL
         )
         SELECT 1 FROM down WHERE seq = ?2",
    )?;
    for m in members {
        if let Member::Group(child) = m
            && stmt.exists(params![child, group_seq])?
        {
            return Err(Error::InvalidValue(
                "a group cannot be a member of itself, directly or through nested groups".into(),
            ));
        }
    }
    Ok(())
}

fn current_members(conn: &Connection, group_seq: i64) -> Result<HashSet<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_user_seq, member_group_seq FROM group_members WHERE group_seq = ?1",
    )?;
    let rows = stmt.query_map([group_seq], |r| {
        Ok(match r.get::<_, Option<i64>>(0)? {
            Some(u) => Member::User(u),
            None => Member::Group(r.get(1)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Makes the membership of `group_seq` exactly `wanted`, touching only the rows that differ.
fn set_members(conn: &Connection, group_seq: i64, wanted: &[Member], now: &str) -> Result<Delta> {
    let current = current_members(conn, group_seq)?;
    let wanted_set: HashSet<Member> = wanted.iter().copied().collect();
    let gone: Vec<Member> = current.difference(&wanted_set).copied().collect();
    // In request order, so the stored order follows what the client sent; each member once.
    let mut seen = HashSet::new();
    let new: Vec<Member> = wanted
        .iter()
        .filter(|m| !current.contains(m) && seen.insert(**m))
        .copied()
        .collect();
    let mut delta = Delta::default();
    remove_members(conn, group_seq, &gone, now, &mut delta)?;
    // Only new members can close a cycle: the current ones were checked when they joined.
    add_members(conn, group_seq, &new, now, &mut delta)?;
    Ok(delta)
}

/// A user whose direct membership changed has a new representation (its `groups`), so it gets
/// a new version. Changes that reach users only through nested groups, and group renames, do
/// not touch every user below them: that would make one change cost as much as the subtree.
fn touch_user(conn: &Connection, user_seq: i64, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET version = version + 1, last_modified = ?2 WHERE seq = ?1",
    )?
    .execute(params![user_seq, now])?;
    Ok(())
}

/// Inserts a new group with id `id` and the given member ids. Returns the ids that matched no
/// resource: they are skipped (idp-compat.md Decision 3) rather than failing the request.
pub fn insert(
    conn: &Connection,
    id: &str,
    doc: Map<String, Value>,
    member_ids: &[String],
    now: &str,
) -> Result<(Vec<String>, Delta)> {
    let name = display_name(&doc)?;
    ident::check("displayName", name, None)?;
    check_unique(conn, name, None)?;
    conn.execute(
        "INSERT INTO groups (id, display_name, display_name_fold, external_id, version, created,
                             last_modified, data)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6)",
        params![
            id,
            name,
            key(name),
            external_id(&doc),
            now,
            doc_to_text(&doc)?
        ],
    )?;
    let seq = conn.last_insert_rowid();
    super::ext_index::write(conn, ResourceKind::Group, seq, &doc, true)?;
    let (members, skipped) = resolve(conn, member_ids)?;
    let delta = set_members(conn, seq, &members, now)?;
    Ok((skipped, delta))
}

/// Replaces the document and members of the group at `seq`, whose stored document is
/// `current`. Nothing changes, not even the version, when both are equal to what is stored.
/// Returns the skipped member ids (as `insert`) and the members added and removed.
pub fn replace(
    conn: &Connection,
    seq: i64,
    current: &Map<String, Value>,
    doc: Map<String, Value>,
    member_ids: &[String],
    now: &str,
) -> Result<(Vec<String>, Delta)> {
    let (members, skipped) = resolve(conn, member_ids)?;
    let delta = set_members(conn, seq, &members, now)?;
    update(conn, seq, current, &doc, !delta.is_empty(), now)?;
    Ok((skipped, delta))
}

/// Stores `doc` over `current` if they differ, and gives the group a new version if that or
/// its members (`members_changed`) changed; nothing at all otherwise.
fn update(
    conn: &Connection,
    seq: i64,
    current: &Map<String, Value>,
    doc: &Map<String, Value>,
    members_changed: bool,
    now: &str,
) -> Result<()> {
    let doc_changed = current != doc;
    if doc_changed {
        let name = display_name(doc)?;
        let current_name = display_name(current).ok();
        ident::check("displayName", name, current_name)?;
        check_unique(conn, name, current_name.map(key).as_deref())?;
        conn.execute(
            "UPDATE groups SET display_name = ?2, display_name_fold = ?3, external_id = ?4,
                    data = ?5 WHERE seq = ?1",
            params![seq, name, key(name), external_id(doc), doc_to_text(doc)?],
        )?;
        super::ext_index::write(conn, ResourceKind::Group, seq, doc, false)?;
    }
    if doc_changed || members_changed {
        conn.execute(
            "UPDATE groups SET version = version + 1, last_modified = ?2 WHERE seq = ?1",
            params![seq, now],
        )?;
    }
    Ok(())
}

/// Applies a PATCH: the new document and the member changes, in order. Each change touches
/// only the rows it names, so adding or removing one member costs the same whatever the size
/// of the group. Nothing changes, not even the version, when every change was already so.
/// Returns the skipped member ids, or `None` when the group does not exist.
pub fn patch(
    conn: &Connection,
    seq: i64,
    current: &Map<String, Value>,
    doc: Map<String, Value>,
    changes: Vec<MemberChange>,
    now: &str,
) -> Result<(Vec<String>, Delta)> {
    let mut delta = Delta::default();
    let mut skipped = Vec::new();
    // Filtered removals evaluate a filter per member: bounded like the PATCH's other work.
    let mut cost = patch::Cost::default();
    for change in changes {
        match change {
            MemberChange::Add(ids) => {
                let (members, unknown) = resolve(conn, &ids)?;
                skipped.extend(unknown);
                add_members(conn, seq, &members, now, &mut delta)?;
            }
            MemberChange::Remove(ids) => {
                // An id that is no member (or nothing at all) is simply not removed.
                let (members, _) = resolve(conn, &ids)?;
                remove_members(conn, seq, &members, now, &mut delta)?;
            }
            MemberChange::RemoveWhere(filter) => {
                let rows = member_rows(conn, seq)?;
                cost.charge((rows.len() as u64).saturating_mul(patch::terms(&filter)))?;
                let chosen: Vec<Member> = rows
                    .into_iter()
                    .filter(|(_, m)| eval::matches(&filter, &member_json(m)))
                    .map(|(member, _)| member)
                    .collect();
                remove_members(conn, seq, &chosen, now, &mut delta)?;
            }
            MemberChange::Set(ids) => {
                let (members, unknown) = resolve(conn, &ids)?;
                skipped.extend(unknown);
                let d = set_members(conn, seq, &members, now)?;
                delta.added.extend(d.added);
                delta.removed.extend(d.removed);
            }
            MemberChange::Clear => {
                delta.removed.extend(current_members(conn, seq)?);
                conn.prepare_cached(
                    "UPDATE users SET version = version + 1, last_modified = ?2
                     WHERE seq IN (SELECT member_user_seq FROM group_members WHERE group_seq = ?1)",
                )?
                .execute(params![seq, now])?;
                conn.prepare_cached("DELETE FROM group_members WHERE group_seq = ?1")?
                    .execute([seq])?;
            }
        }
    }
    update(conn, seq, current, &doc, !delta.is_empty(), now)?;
    Ok((skipped, delta))
}

/// Adds members that are not members yet, noting them in `delta`.
fn add_members(
    conn: &Connection,
    group_seq: i64,
    members: &[Member],
    now: &str,
    delta: &mut Delta,
) -> Result<()> {
    check_no_cycle(conn, group_seq, members)?;
    let mut add = conn.prepare_cached(
        "INSERT OR IGNORE INTO group_members (group_seq, member_user_seq, member_group_seq)
         VALUES (?1, ?2, ?3)",
    )?;
    for m in members {
        let (user, group) = match m {
            Member::User(u) => (Some(*u), None),
            Member::Group(g) => (None, Some(*g)),
        };
        if add.execute(params![group_seq, user, group])? > 0 {
            delta.added.push(*m);
            if let Some(u) = user {
                touch_user(conn, u, now)?;
            }
        }
    }
    Ok(())
}

/// Removes these members where they are members, noting them in `delta`.
fn remove_members(
    conn: &Connection,
    group_seq: i64,
    members: &[Member],
    now: &str,
    delta: &mut Delta,
) -> Result<()> {
    let mut del_user = conn.prepare_cached(
        "DELETE FROM group_members WHERE group_seq = ?1 AND member_user_seq = ?2",
    )?;
    let mut del_group = conn.prepare_cached(
        "DELETE FROM group_members WHERE group_seq = ?1 AND member_group_seq = ?2",
    )?;
    for m in members {
        let removed = match m {
            Member::User(u) => {
                let removed = del_user.execute(params![group_seq, u])? > 0;
                if removed {
                    touch_user(conn, *u, now)?;
                }
                removed
            }
            Member::Group(g) => del_group.execute(params![group_seq, g])? > 0,
        };
        if removed {
            delta.removed.push(*m);
        }
    }
    Ok(())
}

/// Every member row of a group with what a `members[…]` filter can test.
fn member_rows(conn: &Connection, group_seq: i64) -> Result<Vec<(Member, MemberRef)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.member_user_seq, m.member_group_seq, COALESCE(u.id, g.id)
         FROM group_members m
         LEFT JOIN users u ON u.seq = m.member_user_seq
         LEFT JOIN groups g ON g.seq = m.member_group_seq
         WHERE m.group_seq = ?1",
    )?;
    let rows = stmt.query_map([group_seq], |r| {
        let user: Option<i64> = r.get(0)?;
        let (member, kind) = match user {
            Some(u) => (Member::User(u), ResourceKind::User),
            None => (Member::Group(r.get(1)?), ResourceKind::Group),
        };
        Ok((
            member,
            MemberRef {
                id: r.get(2)?,
                kind,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A group holding just this member, shaped as rendered, for the filter evaluator.
fn member_json(m: &MemberRef) -> Value {
    serde_json::json!({"members": [{
        "value": m.id,
        "type": m.kind.name(),
    }]})
}

/// The row number and stored document of the group with SCIM id `id`.
pub fn row(conn: &Connection, id: &str) -> Result<Option<(i64, GroupRecord)>> {
    get_row(conn, id)
}

/// The internal row number of the group with SCIM id `id`.
pub fn seq_of(conn: &Connection, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT seq FROM groups WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// Deletes a group and its memberships; groups it was nested in get a new version.
/// Returns whether the group existed.
pub fn delete(conn: &Connection, id: &str, now: &str) -> Result<bool> {
    let Some(seq) = seq_of(conn, id)? else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE groups SET version = version + 1, last_modified = ?2
         WHERE seq IN (SELECT group_seq FROM group_members WHERE member_group_seq = ?1)",
        params![seq, now],
    )?;
    conn.execute(
        "UPDATE users SET version = version + 1, last_modified = ?2
         WHERE seq IN (SELECT member_user_seq FROM group_members WHERE group_seq = ?1)",
        params![seq, now],
    )?;
    conn.execute("DELETE FROM groups WHERE seq = ?1", [seq])?;
    Ok(true)
}

fn record(id: String, meta: Meta, data: &str) -> Result<GroupRecord> {
    Ok(GroupRecord {
        id,
        doc: doc_from_text(data)?,
        meta,
        members: Vec::new(),
    })
}

fn get_row(conn: &Connection, id: &str) -> Result<Option<(i64, GroupRecord)>> {
    super::row_by_id(conn, "groups", id)?
        .map(|(seq, id, meta, data)| Ok((seq, record(id, meta, &data)?)))
        .transpose()
}

/// The group with SCIM id `id`; its members are read only `with_members` (a client that
/// excludes them must not pay for reading a large group).
pub fn get(conn: &Connection, id: &str, with_members: bool) -> Result<Option<GroupRecord>> {
    match get_row(conn, id)? {
        Some((seq, mut group)) => {
            if with_members {
                group.members = members_of(conn, seq)?;
            }
            Ok(Some(group))
        }
        None => Ok(None),
    }
}

/// A member as the console lists it: id, kind and current name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberName {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
}

/// How many direct members each group (by SCIM id) has, in the order given.
pub fn member_counts(conn: &Connection, ids: &[String]) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT COUNT(m.group_seq) FROM groups g LEFT JOIN group_members m ON m.group_seq = g.seq
         WHERE g.id = ?1",
    )?;
    ids.iter()
        .map(|id| Ok(stmt.query_row([id], |r| r.get(0))?))
        .collect()
}

/// A group's direct members, in the order they were added.
fn members_of(conn: &Connection, group_seq: i64) -> Result<Vec<MemberRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(u.id, g.id), u.seq IS NOT NULL
         FROM group_members m
         LEFT JOIN users u ON u.seq = m.member_user_seq
         LEFT JOIN groups g ON g.seq = m.member_group_seq
         WHERE m.group_seq = ?1
         ORDER BY m.rowid",
    )?;
    let rows = stmt.query_map([group_seq], |r| {
        Ok(MemberRef {
            id: r.get(0)?,
            kind: if r.get(1)? {
                ResourceKind::User
            } else {
                ResourceKind::Group
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One page of the groups `list` selects; members are read only `with_members`.
pub fn list(
    conn: &Connection,
    list: &ListSql,
    with_members: bool,
) -> Result<ListPage<GroupRecord>> {
    let page = super::full_page(conn, "groups", list)?;
    let mut groups = Vec::with_capacity(page.items.len());
    for (seq, id, meta, data) in page.items {
        let mut group = record(id, meta, &data)?;
        if with_members {
            group.members = members_of(conn, seq)?;
        }
        groups.push(group);
    }
    Ok(ListPage {
        total: page.total,
        items: groups,
        next_after: page.next_after,
        last_seq: page.last_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_added_and_removed_again_in_one_change_is_neither() {
        let (u1, u2, u3, g1) = (
            Member::User(1),
            Member::User(2),
            Member::User(3),
            Member::Group(1),
        );
        let delta = Delta {
            // u1 added then removed; u2 removed then added back; u3 removed, added, removed.
            added: vec![u1, g1, u2, u3],
            removed: vec![u1, u2, u3, u3],
        };
        let (added, removed) = delta.net();
        assert_eq!(added.0, vec![g1]);
        assert_eq!(removed.0, vec![u3]);
        let (added, removed) = Delta::default().net();
        assert!(added.is_empty() && removed.is_empty());
    }
}
