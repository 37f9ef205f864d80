//! SQL for users: the `users` row (lookup columns + JSON document), its `user_emails` rows,
//! and the groups a user belongs to (direct and through nested groups).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::ListPage;
use super::query::ListSql;
use super::{ResourceRow, doc_from_text, doc_to_text};
use super::{fold, key};
use crate::error::{Error, Result};
use crate::scim::ident;
use crate::scim::resource::{GroupRef, Meta, ResourceKind, StoredUser, UserRecord};

/// The columns derived from a user document.
struct Columns {
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
    /// (folded value, folded type, primary) per email.
    emails: Vec<(String, Option<String>, bool)>,
}

fn str_field<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

fn columns(doc: &Map<String, Value>) -> Result<Columns> {
    let user_name = str_field(doc, "userName")
        .ok_or_else(|| Error::internal("user document without userName"))?
        .to_string();
    let emails = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    let value = e.get("value")?.as_str()?;
                    let kind = e.get("type").and_then(Value::as_str).map(fold);
                    let primary = e.get("primary").and_then(Value::as_bool).unwrap_or(false);
                    Some((fold(value), kind, primary))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Columns {
        user_name,
        external_id: str_field(doc, "externalId").map(str::to_string),
        display_name: str_field(doc, "displayName").map(str::to_string),
        // A PATCH may leave `active` unassigned; the column (a quick account state for
        // operators) counts that as active. Filters read the document, not this column.
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        emails,
    })
}

/// Fails with `uniqueness` when another user already has this userName's key (`key`: NFKC,
/// case-folded, trimmed; idp-compat.md Decision 6). `current_key` is the key of the user being
/// replaced: keeping it is always allowed, so two users that shared a key before schema
/// version 3 (kept and reported by `scimd check`) can still be updated; no write makes a new
/// collision. The index on the key is not UNIQUE for that reason: the one writer enforces it.
fn check_unique(conn: &Connection, user_name: &str, current_key: Option<&str>) -> Result<()> {
    let key = key(user_name);
    if current_key == Some(key.as_str()) {
        return Ok(());
    }
    let taken: Option<String> = conn
        .prepare_cached("SELECT id FROM users WHERE user_name_fold = ?1 LIMIT 1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    match taken {
        Some(_) => Err(Error::Uniqueness(format!(
            "userName \"{user_name}\" is already taken"
        ))),
        None => Ok(()),
    }
}

/// Names that share a uniqueness key, for `scimd check`: one line per key, each user as
/// `"name" (id)`. Only databases written before schema version 3, or keys recomputed since
/// (`keys::repair_keys`), can hold them.
pub fn key_collisions(conn: &Connection) -> Result<Vec<String>> {
    super::keys::USER_NAME.collisions(conn)
}

/// Users whose `user_emails` rows (folded values and types, used by `emails` filters) are not
/// what this scimd derives from their document: `(seq, id)`.
pub(super) fn stale_emails(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stored = conn.prepare(
        "SELECT value_fold, type_fold, is_primary FROM user_emails WHERE user_seq = ?1
         ORDER BY rowid",
    )?;
    let mut users = conn.prepare("SELECT seq, id, data FROM users ORDER BY seq")?;
    let mut rows = users.query([])?;
    let mut stale = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let derived = columns(&doc_from_text(&row.get::<_, String>(2)?)?)?.emails;
        let have = stored
            .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if have != derived {
            stale.push((seq, row.get(1)?));
        }
    }
    Ok(stale)
}

/// Writes the email rows of the user at `seq` again from its document.
pub(super) fn rewrite_emails(conn: &Connection, seq: i64) -> Result<()> {
    let data: String =
        conn.query_row("SELECT data FROM users WHERE seq = ?1", [seq], |r| r.get(0))?;
    write_emails(conn, seq, &columns(&doc_from_text(&data)?)?)
}

fn write_emails(conn: &Connection, seq: i64, cols: &Columns) -> Result<()> {
    conn.execute("DELETE FROM user_emails WHERE user_seq = ?1", [seq])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO user_emails (user_seq, value_fold, type_fold, is_primary) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (value, kind, primary) in &cols.emails {
        stmt.execute(params![seq, value, kind, primary])?;
    }
    Ok(())
}

/// Inserts a new user with id `id`; `now` is the creation time.
pub fn insert(
    conn: &Connection,
    id: &str,
    doc: Map<String, Value>,
    now: &str,
) -> Result<UserRecord> {
    let cols = columns(&doc)?;
    ident::check("userName", &cols.user_name, None)?;
    check_unique(conn, &cols.user_name, None)?;
    conn.execute(
        "INSERT INTO users (id, user_name, user_name_fold, external_id, display_name, active,
                            version, created, last_modified, data, suspended_since)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?8, CASE WHEN ?6 THEN NULL ELSE ?7 END)",
        params![
            id,
            cols.user_name,
            key(&cols.user_name),
            cols.external_id,
            cols.display_name,
            cols.active,
            now,
            doc_to_text(&doc)?
        ],
    )?;
    let seq = conn.last_insert_rowid();
    write_emails(conn, seq, &cols)?;
    super::ext_index::write(conn, ResourceKind::User, seq, &doc, true)?;
    Ok(UserRecord {
        id: id.to_string(),
        doc,
        meta: Meta {
            created: now.to_string(),
            last_modified: now.to_string(),
            version: 1,
        },
        groups: Vec::new(),
    })
}

/// Replaces a user's document. A document equal to the stored one changes nothing, not even
/// the version. Returns `None` when the user does not exist.
pub fn replace(
    conn: &Connection,
    id: &str,
    doc: Map<String, Value>,
    now: &str,
) -> Result<Option<UserRecord>> {
    let Some((seq, current)) = get_row(conn, id)? else {
        return Ok(None);
    };
    if current.doc == doc {
        return with_groups(conn, seq, current).map(Some);
    }
    let cols = columns(&doc)?;
    let current_name = str_field(&current.doc, "userName");
    ident::check("userName", &cols.user_name, current_name)?;
    check_unique(conn, &cols.user_name, current_name.map(key).as_deref())?;
    conn.execute(
        "UPDATE users SET user_name = ?2, user_name_fold = ?3, external_id = ?4,
                display_name = ?5, active = ?6, version = version + 1, last_modified = ?7,
                data = ?8,
                -- The moment `active` last became false; kept while the user stays suspended.
                suspended_since = CASE WHEN ?6 THEN NULL ELSE COALESCE(suspended_since, ?7) END
         WHERE seq = ?1",
        params![
            seq,
            cols.user_name,
            key(&cols.user_name),
            cols.external_id,
            cols.display_name,
            cols.active,
            now,
            doc_to_text(&doc)?
        ],
    )?;
    write_emails(conn, seq, &cols)?;
    super::ext_index::write(conn, ResourceKind::User, seq, &doc, false)?;
    let record = UserRecord {
        doc,
        meta: Meta {
            last_modified: now.to_string(),
            version: current.meta.version + 1,
            ..current.meta
        },
        ..current
    };
    with_groups(conn, seq, record).map(Some)
}

/// Deletes a user and its memberships; the groups it was a member of get a new version.
/// Returns whether the user existed.
pub fn delete(conn: &Connection, id: &str, now: &str) -> Result<bool> {
    let Some(seq) = seq_of(conn, id)? else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE groups SET version = version + 1, last_modified = ?2
         WHERE seq IN (SELECT group_seq FROM group_members WHERE member_user_seq = ?1)",
        params![seq, now],
    )?;
    conn.execute("DELETE FROM users WHERE seq = ?1", [seq])?;
    Ok(true)
}

/// The internal row number of the user with SCIM id `id`.
pub fn seq_of(conn: &Connection, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT seq FROM users WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// The user with SCIM id `id` and its row number, without its groups.
fn get_row(conn: &Connection, id: &str) -> Result<Option<(i64, UserRecord)>> {
    super::row_by_id(conn, "users", id)?
        .map(|(seq, id, meta, data)| {
            let stored = StoredUser {
                id,
                data,
                meta,
                groups: Vec::new(),
            };
            Ok((seq, stored.parse().map_err(Error::internal)?))
        })
        .transpose()
}

/// The user with SCIM id `id`, with its groups.
pub fn get(conn: &Connection, id: &str) -> Result<Option<UserRecord>> {
    get_stored(conn, id)?
        .map(|u| u.parse().map_err(Error::internal))
        .transpose()
}

/// `get`, the document left as text (see `StoredUser`).
pub fn get_stored(conn: &Connection, id: &str) -> Result<Option<StoredUser>> {
    let Some((seq, id, meta, data)) = super::row_by_id(conn, "users", id)? else {
        return Ok(None);
    };
    Ok(Some(StoredUser {
        id,
        data,
        meta,
        groups: groups_of(conn, seq)?,
    }))
}

fn with_groups(conn: &Connection, seq: i64, mut user: UserRecord) -> Result<UserRecord> {
    user.groups = groups_of(conn, seq)?;
    Ok(user)
}

/// The groups a user is in: directly, and through groups nested in them (RFC 7643 §4.1.2
/// `groups`, types `direct` and `indirect`).
fn groups_of(conn: &Connection, user_seq: i64) -> Result<Vec<GroupRef>> {
    Ok(groups_of_many(conn, &[user_seq])?
        .remove(&user_seq)
        .unwrap_or_default())
}

/// `groups_of` for many users at once: one query for their direct groups, then one per level
/// of nesting above them, so a page of users costs one or a few small indexed queries rather
/// than one recursive query per user. Each row says whether its group is itself a member of
/// another group, so when groups aren't nested (the usual case) no level query runs at all.
fn groups_of_many(conn: &Connection, user_seqs: &[i64]) -> Result<HashMap<i64, Vec<GroupRef>>> {
    /// (member seq, group seq, group id, group displayName, group has parents).
    type Row = (i64, i64, String, String, bool);
    const COLUMNS: &str = "g.seq, g.id, g.display_name, \
        EXISTS (SELECT 1 FROM group_members p WHERE p.member_group_seq = g.seq) \
        FROM group_members m JOIN groups g ON g.seq = m.group_seq";
    let read = |sql: &str, param: rusqlite::types::Value| -> Result<Vec<Row>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([param], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let json_list = |seqs: &[i64]| -> Result<rusqlite::types::Value> {
        Ok(serde_json::to_string(seqs).map_err(Error::internal)?.into())
    };
    // A single user (a lookup, a GET) is one equality probe; a page passes its users as a list.
    let direct_rows = match user_seqs {
        [one] => read(
            &format!("SELECT m.member_user_seq, {COLUMNS} WHERE m.member_user_seq = ?1"),
            (*one).into(),
        )?,
        _ => read(
            &format!(
                "SELECT m.member_user_seq, {COLUMNS} \
                 WHERE m.member_user_seq IN (SELECT value FROM json_each(?1))"
            ),
            json_list(user_seqs)?,
        )?,
    };
    let mut names: HashMap<i64, (String, String)> = HashMap::new();
    let mut direct: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut frontier = Vec::new();
    for (user, group, id, name, nested) in direct_rows {
        direct.entry(user).or_default().push(group);
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(group) {
            e.insert((id, name));
            if nested {
                frontier.push(group);
            }
        }
    }
    // The groups each group is nested in, level by level; `names` doubles as "seen", so a
    // cycle that slipped into the data still ends.
    let mut parents: HashMap<i64, Vec<i64>> = HashMap::new();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for (child, group, id, name, nested) in read(
            &format!(
                "SELECT m.member_group_seq, {COLUMNS} \
                 WHERE m.member_group_seq IN (SELECT value FROM json_each(?1))"
            ),
            json_list(&frontier)?,
        )? {
            parents.entry(child).or_default().push(group);
            if let std::collections::hash_map::Entry::Vacant(e) = names.entry(group) {
                e.insert((id, name));
                if nested {
                    next.push(group);
                }
            }
        }
        frontier = next;
    }
    let mut out = HashMap::with_capacity(direct.len());
    for (user, groups) in direct {
        // Everything reachable upwards; direct wins over indirect.
        let mut all: HashMap<i64, bool> = groups.iter().map(|g| (*g, true)).collect();
        let mut stack = groups;
        while let Some(g) = stack.pop() {
            for p in parents.get(&g).into_iter().flatten() {
                if let std::collections::hash_map::Entry::Vacant(e) = all.entry(*p) {
                    e.insert(false);
                    stack.push(*p);
                }
            }
        }
        let mut refs: Vec<(i64, bool)> = all.into_iter().collect();
        refs.sort_unstable();
        let refs = refs
            .into_iter()
            .filter_map(|(g, is_direct)| {
                names.get(&g).map(|(id, name)| GroupRef {
                    id: id.clone(),
                    display: name.clone(),
                    direct: is_direct,
                })
            })
            .collect();
        out.insert(user, refs);
    }
    Ok(out)
}

/// One page of the users `list` selects, each with its groups.
pub fn list(conn: &Connection, list: &ListSql) -> Result<ListPage<StoredUser>> {
    with_groups_page(conn, super::full_page(conn, "users", list)?)
}

/// `list`, unless the page would hold more than `max_rows` users.
pub fn list_small(
    conn: &Connection,
    list: &ListSql,
    max_rows: u64,
) -> Result<Option<ListPage<StoredUser>>> {
    super::page(conn, "users", list, Some(max_rows))?
        .map(|page| with_groups_page(conn, page))
        .transpose()
}

/// Turns a page of rows into users with their groups (one membership read for the page).
/// Their documents stay text: see `StoredUser`.
pub(super) fn with_groups_page(
    conn: &Connection,
    page: ListPage<ResourceRow>,
) -> Result<ListPage<StoredUser>> {
    let seqs: Vec<i64> = page.items.iter().map(|(seq, ..)| *seq).collect();
    let mut groups = groups_of_many(conn, &seqs)?;
    let users = page
        .items
        .into_iter()
        .map(|(seq, id, meta, data)| StoredUser {
            id,
            data,
            meta,
            groups: groups.remove(&seq).unwrap_or_default(),
        })
        .collect();
    Ok(ListPage {
        total: page.total,
        items: users,
        next_after: page.next_after,
        last_seq: page.last_seq,
    })
}
