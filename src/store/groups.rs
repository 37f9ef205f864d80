//! SQL for groups: the `groups` row (lookup columns + JSON document) and membership rows.
//! Membership changes write only the rows that change, never the whole list.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::ListPage;
use super::fold;
use super::query::ListSql;
use super::{doc_from_text, doc_to_text};
use crate::error::{Error, Result};
use crate::scim::resource::{GroupRecord, MemberRef, Meta, ResourceKind};

/// A member resolved to its row: a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Member {
    User(i64),
    Group(i64),
}

fn display_name(doc: &Map<String, Value>) -> Result<&str> {
    doc.get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::internal("group document without displayName"))
}

fn external_id(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("externalId").and_then(Value::as_str)
}

/// Fails with `uniqueness` when another group has this displayName (case-insensitively,
/// idp-compat.md Decision 6).
fn check_unique(conn: &Connection, name: &str, except_seq: Option<i64>) -> Result<()> {
    let taken: Option<i64> = conn
        .query_row(
            "SELECT seq FROM groups WHERE display_name_fold = ?1",
            [fold(name)],
            |r| r.get(0),
        )
        .optional()?;
    match taken {
        Some(seq) if Some(seq) != except_seq => Err(Error::Uniqueness(format!(
            "a group named \"{name}\" already exists"
        ))),
        _ => Ok(()),
    }
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
/// Returns whether anything changed.
fn set_members(conn: &Connection, group_seq: i64, wanted: &[Member]) -> Result<bool> {
    check_no_cycle(conn, group_seq, wanted)?;
    let current = current_members(conn, group_seq)?;
    let wanted_set: HashSet<Member> = wanted.iter().copied().collect();
    let mut changed = false;
    let mut del_user = conn.prepare_cached(
        "DELETE FROM group_members WHERE group_seq = ?1 AND member_user_seq = ?2",
    )?;
    let mut del_group = conn.prepare_cached(
        "DELETE FROM group_members WHERE group_seq = ?1 AND member_group_seq = ?2",
    )?;
    for gone in current.difference(&wanted_set) {
        changed = true;
        match gone {
            Member::User(u) => del_user.execute(params![group_seq, u])?,
            Member::Group(g) => del_group.execute(params![group_seq, g])?,
        };
    }
    let mut add = conn.prepare_cached(
        "INSERT INTO group_members (group_seq, member_user_seq, member_group_seq)
         VALUES (?1, ?2, ?3)",
    )?;
    // In request order, so the stored order follows what the client sent; each member once.
    let mut added = HashSet::new();
    for m in wanted
        .iter()
        .filter(|m| !current.contains(m) && added.insert(**m))
    {
        changed = true;
        match m {
            Member::User(u) => add.execute(params![group_seq, u, None::<i64>])?,
            Member::Group(g) => add.execute(params![group_seq, None::<i64>, g])?,
        };
    }
    Ok(changed)
}

/// Inserts a new group with id `id` and the given member ids. Returns the ids that matched no
/// resource: they are skipped (idp-compat.md Decision 3) rather than failing the request.
pub fn insert(
    conn: &Connection,
    id: &str,
    doc: Map<String, Value>,
    member_ids: &[String],
    now: &str,
) -> Result<Vec<String>> {
    let name = display_name(&doc)?;
    check_unique(conn, name, None)?;
    conn.execute(
        "INSERT INTO groups (id, display_name, display_name_fold, external_id, version, created,
                             last_modified, data)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6)",
        params![
            id,
            name,
            fold(name),
            external_id(&doc),
            now,
            doc_to_text(&doc)?
        ],
    )?;
    let seq = conn.last_insert_rowid();
    let (members, skipped) = resolve(conn, member_ids)?;
    set_members(conn, seq, &members)?;
    Ok(skipped)
}

/// Replaces a group's document and members. Nothing changes, not even the version, when both
/// are equal to what is stored. Returns the skipped member ids (as `insert`), or `None` when
/// the group does not exist.
pub fn replace(
    conn: &Connection,
    id: &str,
    doc: Map<String, Value>,
    member_ids: &[String],
    now: &str,
) -> Result<Option<Vec<String>>> {
    let Some((seq, current)) = get_row(conn, id)? else {
        return Ok(None);
    };
    let (members, skipped) = resolve(conn, member_ids)?;
    let mut changed = set_members(conn, seq, &members)?;
    if current.doc != doc {
        let name = display_name(&doc)?;
        check_unique(conn, name, Some(seq))?;
        conn.execute(
            "UPDATE groups SET display_name = ?2, display_name_fold = ?3, external_id = ?4,
                    data = ?5 WHERE seq = ?1",
            params![seq, name, fold(name), external_id(&doc), doc_to_text(&doc)?],
        )?;
        changed = true;
    }
    if changed {
        conn.execute(
            "UPDATE groups SET version = version + 1, last_modified = ?2 WHERE seq = ?1",
            params![seq, now],
        )?;
    }
    Ok(Some(skipped))
}

/// Deletes a group and its memberships; groups it was nested in get a new version.
/// Returns whether the group existed.
pub fn delete(conn: &Connection, id: &str, now: &str) -> Result<bool> {
    let Some(seq) = conn
        .query_row("SELECT seq FROM groups WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE groups SET version = version + 1, last_modified = ?2
         WHERE seq IN (SELECT group_seq FROM group_members WHERE member_group_seq = ?1)",
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

/// A group's direct members, in the order they were added.
fn members_of(conn: &Connection, group_seq: i64) -> Result<Vec<MemberRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(u.id, g.id), u.seq IS NOT NULL,
                COALESCE(u.display_name, u.user_name, g.display_name)
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
            display: r.get(2)?,
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
