//! SQL for the console's people views: the Users search (the word index `users_search` of
//! migration 14, the state filter, when each suspended user was suspended), exports that page
//! through a search by row number, the tombstones of deleted users, and a group's members
//! searched and paged. SCIM's own lists and lookups stay in `users` and `groups`.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use super::{ListPage, RESOURCE_COLUMNS, ResourceRow, key, resource_row};
use crate::error::{Error, Result};
use crate::scim::list::Sort;
use crate::scim::registry::Registry;
use crate::scim::resource::{ResourceKind, StoredUser};

/// Which users by account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    All,
    Active,
    Suspended,
}

/// What an admin typed and chose: the words of `text` are matched against the words of
/// userName, display and formatted/given/family names, emails, externalId, title and
/// department (words split at anything not a letter or digit), the last one as the start of
/// a word while it is being typed: `bello@ho` finds `a.bello@home.example`.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub text: String,
    pub state: State,
}

/// The word index answers text of three characters or more; shorter text matches the
/// start of a userName (an index range), as a prefix that short matches much of a directory
/// anyway.
const INDEXED: usize = 3;

impl Search {
    pub fn indexed(&self) -> bool {
        self.text.chars().count() >= INDEXED && !self.words().is_empty()
    }

    fn words(&self) -> Vec<&str> {
        self.text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect()
    }

    /// The text as an FTS5 query, every word required: the words typed in full (followed by
    /// a space or a sign) whole, the one being typed as a prefix (`bello@ho` is
    /// `"bello" "ho"*`). The index's tokenizer folds case and accents, in the text as in the
    /// query.
    fn phrase(&self) -> String {
        let words = self.words();
        let typing = self.text.ends_with(char::is_alphanumeric);
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let star = if typing && i + 1 == words.len() {
                    "*"
                } else {
                    ""
                };
                format!("\"{}\"{star}", w.replace('"', "\"\""))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The condition on `users` (no table alias), binding its parameters after `params`.
    fn condition(&self, params: &mut Vec<SqlValue>) -> String {
        let mut parts = Vec::new();
        if self.indexed() {
            params.push(self.phrase().into());
            parts.push(format!(
                "seq IN (SELECT rowid FROM users_search WHERE users_search MATCH ?{})",
                params.len()
            ));
        } else if !self.text.is_empty() {
            let low = key(&self.text);
            // The largest code point sorts after every continuation of the prefix.
            let high = format!("{low}\u{10FFFF}");
            params.push(low.into());
            params.push(high.into());
            parts.push(format!(
                "user_name_fold >= ?{} AND user_name_fold < ?{}",
                params.len() - 1,
                params.len()
            ));
        }
        match self.state {
            State::All => {}
            State::Active => parts.push("active = 1".into()),
            State::Suspended => parts.push("active = 0".into()),
        }
        if parts.is_empty() {
            "1".into()
        } else {
            parts.join(" AND ")
        }
    }
}

/// A user as the console lists it.
pub struct Person {
    pub user: StoredUser,
    /// When `active` last became false, for a suspended user.
    pub suspended_since: Option<String>,
}

/// Totals above this are reported as "more than": counting every match of a broad search
/// would cost what reading them all does, and no one pages through 10,000 users.
pub const COUNT_CAP: u64 = 10_000;

/// A page of a search and how many match in all (at most `COUNT_CAP`, then `capped`).
pub struct Found {
    pub items: Vec<Person>,
    pub total: u64,
    pub capped: bool,
}

/// One page of the users `search` selects in `sort`'s order (creation order without one),
/// from `offset`, and how many match in all.
pub fn page(
    conn: &Connection,
    search: &Search,
    sort: Option<&Sort>,
    registry: &Registry,
    offset: u64,
    limit: u64,
) -> Result<Found> {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    if search.indexed() && sort.is_none() {
        return matched_page(conn, search, offset, limit);
    }
    let mut params = Vec::new();
    let cond = search.condition(&mut params);
    let count_params = params.clone();
    let order = match sort {
        Some(s) => {
            let o = super::query::sort_order(
                &s.by,
                s.descending,
                ResourceKind::User,
                registry,
                params.len(),
            )?;
            params.extend(o.params);
            o.sql
        }
        None => String::new(),
    };
    // The page is chosen on the index and row numbers first; only its rows' documents are read.
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS}, suspended_since FROM users WHERE seq IN \
         (SELECT seq FROM users WHERE {cond} ORDER BY {order}seq LIMIT {limit} OFFSET {offset}) \
         ORDER BY {order}seq"
    );
    let rows = read_people(conn, &sql, &params)?;
    let (total, capped) = if cond == "1" {
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        (u64::try_from(n).unwrap_or(0), false)
    } else {
        capped_count(conn, &format!("users WHERE {cond}"), &count_params)?
    };
    Ok(Found {
        items: with_groups(conn, rows)?.items,
        total,
        capped,
    })
}

/// A search the word index answers, in creation (row) order: FTS5 yields matches in rowid
/// order as it goes, so the page and the capped count read only as many matches as they
/// need, however broad the text (`seq IN (…MATCH…)` would collect every match first).
fn matched_page(conn: &Connection, search: &Search, offset: i64, limit: u64) -> Result<Found> {
    let from = match search.state {
        State::All => "users_search WHERE users_search MATCH ?1".to_string(),
        state => format!(
            "users_search JOIN users u ON u.seq = users_search.rowid \
             WHERE users_search MATCH ?1 AND u.active = {}",
            i32::from(state == State::Active)
        ),
    };
    let params = [SqlValue::from(search.phrase())];
    let seqs: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT users_search.rowid FROM {from} ORDER BY users_search.rowid \
             LIMIT {limit} OFFSET {offset}"
        ))?
        .query_map(params_from_iter(&params), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS}, suspended_since FROM users \
         WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq"
    );
    let list = [SqlValue::from(
        serde_json::to_string(&seqs).map_err(Error::internal)?,
    )];
    let rows = read_people(conn, &sql, &list)?;
    let (total, capped) = capped_count(conn, &from, &params)?;
    Ok(Found {
        items: with_groups(conn, rows)?.items,
        total,
        capped,
    })
}

/// How many rows `from` (a `FROM … WHERE …` without the FROM) selects, up to `COUNT_CAP`,
/// and whether there are more.
fn capped_count(conn: &Connection, from: &str, params: &[SqlValue]) -> Result<(u64, bool)> {
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {from} LIMIT {})",
            COUNT_CAP + 1
        ))?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    let n = u64::try_from(n).unwrap_or(0);
    Ok((n.min(COUNT_CAP), n > COUNT_CAP))
}

/// Up to `limit` of the users `search` selects after row number `after`, in row order, and
/// where the next batch starts (`None`: this was the last). Each batch is an index range, so
/// an export of every user is linear in their number.
pub fn batch(
    conn: &Connection,
    search: &Search,
    after: i64,
    limit: u64,
) -> Result<(Vec<Person>, Option<i64>)> {
    if search.indexed() {
        // FTS5 answers the rowid range itself; `seq IN (…MATCH…)` would run the whole match
        // again for every batch.
        let seqs: Vec<i64> = conn
            .prepare_cached(&format!(
                "SELECT rowid FROM users_search WHERE users_search MATCH ?1 AND rowid > ?2 \
                 ORDER BY rowid LIMIT {limit}"
            ))?
            .query_map(params![search.phrase(), after], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let next = (seqs.len() as u64 == limit)
            .then(|| seqs.last().copied())
            .flatten();
        let state = Search {
            text: String::new(),
            state: search.state,
        };
        let mut params = Vec::new();
        let cond = state.condition(&mut params);
        params.push(
            serde_json::to_string(&seqs)
                .map_err(Error::internal)?
                .into(),
        );
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS}, suspended_since FROM users \
             WHERE seq IN (SELECT value FROM json_each(?{})) AND {cond} ORDER BY seq",
            params.len()
        );
        let rows = read_people(conn, &sql, &params)?;
        return Ok((with_groups(conn, rows)?.items, next));
    }
    let mut params = vec![SqlValue::Integer(after)];
    let cond = search.condition(&mut params);
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS}, suspended_since FROM users WHERE seq > ?1 AND {cond} \
         ORDER BY seq LIMIT {limit}"
    );
    let rows = read_people(conn, &sql, &params)?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|(row, _)| row.0))
        .flatten();
    Ok((with_groups(conn, rows)?.items, next))
}

fn read_people(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<(ResourceRow, Option<String>)>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params_from_iter(params), |r| {
            Ok((resource_row(r)?, r.get(6)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// The rows with their groups (one membership read for all of them).
fn with_groups(
    conn: &Connection,
    rows: Vec<(ResourceRow, Option<String>)>,
) -> Result<ListPage<Person>> {
    let (rows, since): (Vec<ResourceRow>, Vec<Option<String>>) = rows.into_iter().unzip();
    let page = ListPage {
        total: rows.len() as u64,
        items: rows,
        next_after: None,
        last_seq: None,
    };
    let users = super::users::with_groups_page(conn, page)?;
    Ok(ListPage {
        total: users.total,
        items: users
            .items
            .into_iter()
            .zip(since)
            .map(|(user, suspended_since)| Person {
                user,
                suspended_since,
            })
            .collect(),
        next_after: None,
        last_seq: None,
    })
}

/// How many users were written since the search index last took them in (the triggers of
/// migration 14 note them in each write's transaction).
pub fn unindexed(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM users_search_dirty")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Takes up to `limit` noted users into the search index, oldest rows first, in the caller's
/// write transaction, and how many. One transaction writes one FTS5 segment for all of them,
/// which is why the index is kept in batches rather than by every write. A deleted user's
/// entry goes; a user created and deleted in between had none, which FTS5 ignores. The
/// text indexed is what migration 14 indexes for the users already there.
pub fn index_noted(tx: &Connection, limit: u64) -> Result<u64> {
    let offset = i64::try_from(limit.max(1) - 1).unwrap_or(i64::MAX);
    let last: Option<i64> = tx
        .prepare_cached("SELECT seq FROM users_search_dirty ORDER BY seq LIMIT 1 OFFSET ?1")?
        .query_row([offset], |r| r.get(0))
        .optional()?;
    let last = last.unwrap_or(i64::MAX);
    tx.prepare_cached(
        "DELETE FROM users_search WHERE rowid IN (SELECT seq FROM users_search_dirty WHERE seq <= ?1)",
    )?
    .execute([last])?;
    tx.prepare_cached(
        "INSERT INTO users_search (rowid, user_name, names, emails, external_id, title, department)
         SELECT seq, user_name,
                concat_ws(' ', display_name, json_extract(data, '$.name.formatted'),
                          json_extract(data, '$.name.givenName'),
                          json_extract(data, '$.name.familyName')),
                (SELECT group_concat(json_extract(e.value, '$.value'), ' ')
                 FROM json_each(data, '$.emails') e),
                external_id, json_extract(data, '$.title'),
                json_extract(data,
                    '$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".department')
         FROM users WHERE seq IN (SELECT seq FROM users_search_dirty WHERE seq <= ?1)",
    )?
    .execute([last])?;
    let n = tx
        .prepare_cached("DELETE FROM users_search_dirty WHERE seq <= ?1")?
        .execute([last])?;
    Ok(n as u64)
}

/// What remains of a deleted user for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub deleted_at: String,
    /// The token's name or the admin's username that deleted it.
    pub deleted_by: String,
}

/// Records a deleted user; called in the delete's transaction.
pub fn bury(conn: &Connection, t: &Tombstone) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO user_tombstones (id, user_name, display_name, deleted_at, deleted_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        t.id,
        t.user_name,
        t.display_name,
        t.deleted_at,
        t.deleted_by
    ])?;
    Ok(())
}

/// Removes the tombstones of users deleted before the oldest entry the audit log still holds:
/// retention took their history, and the page would only repeat the delete's date. Bounded
/// that way, tombstones take no more room for longer than the audit log the admin chose.
/// How many. Nothing goes while the audit log is empty.
pub fn prune_tombstones(conn: &Connection) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM user_tombstones
             WHERE deleted_at < (SELECT at FROM audit ORDER BY seq LIMIT 1)",
        )?
        .execute([])?)
}

/// The tombstone of the deleted user with SCIM id `id`.
pub fn tombstone(conn: &Connection, id: &str) -> Result<Option<Tombstone>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_name, display_name, deleted_at, deleted_by FROM user_tombstones
             WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(Tombstone {
                id: r.get(0)?,
                user_name: r.get(1)?,
                display_name: r.get(2)?,
                deleted_at: r.get(3)?,
                deleted_by: r.get(4)?,
            })
        })
        .optional()?)
}

/// A direct member of a group as the console shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// userName, or a group's displayName.
    pub name: String,
    pub display_name: Option<String>,
    /// A user's state; `None` for a group.
    pub active: Option<bool>,
    /// The member's row in `group_members`: the export's position.
    #[serde(skip)]
    pub row: i64,
}

const MEMBER_COLUMNS: &str = "m.rowid, COALESCE(u.id, g.id), u.seq IS NOT NULL, \
    COALESCE(u.user_name, g.display_name), u.display_name, u.active \
    FROM group_members m \
    LEFT JOIN users u ON u.seq = m.member_user_seq \
    LEFT JOIN groups g ON g.seq = m.member_group_seq";

/// The members of the group at `group_seq` whose userName, display name or group name
/// contains `text` (ASCII letters in any case), binding after `params`. A group's members
/// are at most a few hundred thousand rows read by the group's index, so no side index.
fn member_condition(text: &str, params: &mut Vec<SqlValue>) -> String {
    if text.is_empty() {
        return "1".into();
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    params.push(format!("%{escaped}%").into());
    let n = params.len();
    format!(
        "(u.user_name LIKE ?{n} ESCAPE '\\' OR u.display_name LIKE ?{n} ESCAPE '\\' \
         OR g.display_name LIKE ?{n} ESCAPE '\\')"
    )
}

fn read_members(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<Vec<Member>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params_from_iter(params), |r| {
            let user: bool = r.get(2)?;
            Ok(Member {
                row: r.get(0)?,
                id: r.get(1)?,
                kind: if user { "User" } else { "Group" },
                name: r.get(3)?,
                display_name: r.get(4)?,
                active: if user { r.get(5)? } else { None },
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One page of the direct members of group `group_id` matching `text`, in the order they
/// were added, and how many match; `None` when there is no such group.
pub fn members(
    conn: &Connection,
    group_id: &str,
    text: &str,
    offset: u64,
    limit: u64,
) -> Result<Option<(u64, Vec<Member>)>> {
    let Some(seq) = super::groups::seq_of(conn, group_id)? else {
        return Ok(None);
    };
    let mut params = vec![SqlValue::Integer(seq)];
    let cond = member_condition(text, &mut params);
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM group_members m \
             LEFT JOIN users u ON u.seq = m.member_user_seq \
             LEFT JOIN groups g ON g.seq = m.member_group_seq \
             WHERE m.group_seq = ?1 AND {cond}"
        ))?
        .query_row(params_from_iter(&params), |r| r.get(0))?;
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} WHERE m.group_seq = ?1 AND {cond} \
         ORDER BY m.rowid LIMIT {limit} OFFSET {offset}"
    );
    let members = read_members(conn, &sql, &params)?;
    Ok(Some((u64::try_from(total).unwrap_or(0), members)))
}

/// Up to `limit` members of group `group_id` matching `text` after member row `after`, for
/// an export (keyset on the membership row); `None` when there is no such group.
pub fn member_batch(
    conn: &Connection,
    group_id: &str,
    text: &str,
    after: i64,
    limit: u64,
) -> Result<Option<Vec<Member>>> {
    let Some(seq) = super::groups::seq_of(conn, group_id)? else {
        return Ok(None);
    };
    let mut params = vec![SqlValue::Integer(seq), SqlValue::Integer(after)];
    let cond = member_condition(text, &mut params);
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} WHERE m.group_seq = ?1 AND m.rowid > ?2 AND {cond} \
         ORDER BY m.rowid LIMIT {limit}"
    );
    read_members(conn, &sql, &params).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, super::super::Store) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = super::super::Store::open(&dir.path().join("p.db")).unwrap();
        (dir, store)
    }

    fn user(conn: &Connection, id: &str, doc: serde_json::Value) {
        let serde_json::Value::Object(doc) = doc else {
            panic!("not an object")
        };
        super::super::users::insert(conn, id, doc, "2026-01-01T00:00:00.000Z").unwrap();
    }

    /// What the server's indexer does when writes pause: every noted user indexed.
    fn catch_up(store: &super::super::Store) {
        store.write_sync(|tx| index_noted(tx, u64::MAX)).unwrap();
        assert_eq!(store.read_sync(unindexed).unwrap(), 0);
    }

    fn ids(conn: &Connection, text: &str, state: State) -> Vec<String> {
        let search = Search {
            text: text.into(),
            state,
        };
        let page = page(conn, &search, None, &Registry::builtin(), 0, 50).unwrap();
        assert_eq!(page.total as usize, page.items.len());
        page.items.into_iter().map(|p| p.user.id).collect()
    }

    /// Every searched attribute is found by the start of its words in any case and accents;
    /// creates, replaces and deletes are noted in their transaction and the index follows
    /// them once it takes the noted users in.
    #[test]
    fn the_search_index_follows_every_write() {
        let (_dir, store) = store();
        store
            .write_sync(|tx| {
                user(
                    tx,
                    "u1",
                    serde_json::json!({"userName": "aisha@acme.example", "active": true,
                        "name": {"givenName": "Aïsha", "familyName": "Bello"},
                        "emails": [{"value": "a.bello@home.example"}], "externalId": "00u77",
                        "title": "Platform Engineer",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                            {"department": "Finance"}}),
                );
                user(
                    tx,
                    "u2",
                    serde_json::json!({"userName": "bob@acme.example", "active": false}),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(store.read_sync(unindexed).unwrap(), 2);
        store
            .read_sync(|c| {
                assert_eq!(ids(c, "aisha", State::All), Vec::<String>::new(), "not yet");
                Ok(())
            })
            .unwrap();
        catch_up(&store);
        store
            .read_sync(|c| {
                for q in [
                    "AISHA",
                    "aisha",
                    "bell",
                    "bello@ho",
                    "home.exam",
                    "00u",
                    "engineer",
                    "financ",
                    "Aïsha Bel",
                ] {
                    assert_eq!(ids(c, q, State::All), ["u1"], "{q}");
                }
                // Words typed in full match whole words; only the one being typed is a prefix.
                assert_eq!(ids(c, "bel ", State::All), Vec::<String>::new());
                assert_eq!(
                    ids(c, "ell", State::All),
                    Vec::<String>::new(),
                    "not a substring"
                );
                assert_eq!(ids(c, "acme", State::All), ["u1", "u2"]);
                assert_eq!(ids(c, "acme", State::Suspended), ["u2"]);
                assert_eq!(ids(c, "", State::Active), ["u1"]);
                assert_eq!(ids(c, "bo", State::All), ["u2"], "a short text is a prefix");
                assert_eq!(ids(c, "\"x", State::All), Vec::<String>::new());
                Ok(())
            })
            .unwrap();
        store
            .write_sync(|tx| {
                let doc = serde_json::json!({"userName": "carol@acme.example", "active": true});
                let serde_json::Value::Object(doc) = doc else {
                    unreachable!()
                };
                super::super::users::replace(tx, "u1", doc, "2026-01-02T00:00:00.000Z")?;
                super::super::users::delete(tx, "u2", "2026-01-02T00:00:00.000Z")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.read_sync(unindexed).unwrap(), 2);
        catch_up(&store);
        store
            .read_sync(|c| {
                assert_eq!(ids(c, "aisha", State::All), Vec::<String>::new());
                assert_eq!(ids(c, "carol", State::All), ["u1"]);
                assert_eq!(ids(c, "bob", State::All), Vec::<String>::new());
                Ok(())
            })
            .unwrap();
    }

    /// A batch takes the oldest noted rows first and no more than asked; a user created and
    /// deleted before the index took it in leaves nothing behind.
    #[test]
    fn the_index_takes_noted_users_in_bounded_batches() {
        let (_dir, store) = store();
        store
            .write_sync(|tx| {
                for i in 0..5 {
                    let name = format!("pat{i}@acme.example");
                    user(tx, &format!("u{i}"), serde_json::json!({"userName": name}));
                }
                super::super::users::delete(tx, "u4", "2026-01-02T00:00:00.000Z")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.write_sync(|tx| index_noted(tx, 2)).unwrap(), 2);
        let found = || store.read_sync(|c| Ok(ids(c, "acme", State::All))).unwrap();
        assert_eq!(found(), ["u0", "u1"]);
        assert_eq!(store.write_sync(|tx| index_noted(tx, 10)).unwrap(), 3);
        assert_eq!(found(), ["u0", "u1", "u2", "u3"]);
        assert_eq!(store.write_sync(|tx| index_noted(tx, 10)).unwrap(), 0);
    }

    /// Tombstones go once the audit log no longer reaches back to their delete, and stay
    /// while it is empty.
    #[test]
    fn tombstones_last_as_long_as_the_audit_log_reaches_back() {
        let (_dir, store) = store();
        let bury_at = |id: &str, at: &str| {
            let t = Tombstone {
                id: id.into(),
                user_name: format!("{id}@acme.example"),
                display_name: None,
                deleted_at: at.into(),
                deleted_by: "onelogin".into(),
            };
            store.write_sync(|tx| bury(tx, &t)).unwrap();
        };
        bury_at("old", "2026-01-01T00:00:00.000Z");
        bury_at("new", "2026-03-01T00:00:00.000Z");
        assert_eq!(
            store.write_sync(|tx| prune_tombstones(tx)).unwrap(),
            0,
            "no audit yet"
        );
        store
            .write_sync(|tx| {
                tx.execute_batch(
                    "INSERT INTO audit (at, actor_kind, actor, client, user_agent, action,
                                        outcome, status)
                     VALUES ('2026-02-01T00:00:00.000Z', 'token', 'onelogin', '', '',
                             'user.deleted', 'success', 204)",
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.write_sync(|tx| prune_tombstones(tx)).unwrap(), 1);
        let kept = |id: &str| store.read_sync(|c| tombstone(c, id)).unwrap().is_some();
        assert!(!kept("old") && kept("new"));
    }

    /// `suspended_since` is set when `active` becomes false, kept while it stays false, and
    /// cleared by a reactivation.
    #[test]
    fn suspended_since_is_when_active_last_became_false() {
        let (_dir, store) = store();
        let set = |active: bool, at: &str| {
            let doc = serde_json::json!({"userName": "ana", "active": active});
            let serde_json::Value::Object(doc) = doc else {
                unreachable!()
            };
            store
                .write_sync(|tx| super::super::users::replace(tx, "u1", doc, at))
                .unwrap();
        };
        let since = || {
            store
                .read_sync(|c| {
                    let search = Search::default();
                    let p = page(c, &search, None, &Registry::builtin(), 0, 5)?;
                    Ok(p.items[0].suspended_since.clone())
                })
                .unwrap()
        };
        store
            .write_sync(|tx| {
                user(
                    tx,
                    "u1",
                    serde_json::json!({"userName": "ana", "active": true}),
                );
                Ok(())
            })
            .unwrap();
        assert_eq!(since(), None);
        set(false, "2026-02-01T00:00:00.000Z");
        set(false, "2026-02-02T00:00:00.000Z");
        assert_eq!(since().as_deref(), Some("2026-02-01T00:00:00.000Z"));
        set(true, "2026-02-03T00:00:00.000Z");
        assert_eq!(since(), None);
    }

    /// Migration 14 indexes the users already there and dates their suspensions from their
    /// last change.
    #[test]
    fn migration_14_indexes_existing_users() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::upgrade_to(&mut conn, 13).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES ('u1', 'ana', 'ana', 0, 2, '2026-01-01T00:00:00.000Z',
                     '2026-01-05T00:00:00.000Z',
                     '{\"userName\":\"ana\",\"active\":false,\"title\":\"Cartographer\"}');",
        )
        .unwrap();
        super::super::migrate::run(&mut conn).unwrap();
        let search = Search {
            text: "cartog".into(),
            state: State::Suspended,
        };
        let page = page(&conn, &search, None, &Registry::builtin(), 0, 5).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.items[0].suspended_since.as_deref(),
            Some("2026-01-05T00:00:00.000Z")
        );
    }

    /// Counting stops at `COUNT_CAP`: a broad search says "more than" instead of reading
    /// every match, and its pages still come in creation order.
    #[test]
    fn broad_searches_count_up_to_the_cap() {
        let (_dir, store) = store();
        let n = COUNT_CAP as usize + 1;
        store
            .write_sync(|tx| {
                for i in 0..n {
                    let active = i % 2 == 0;
                    user(
                        tx,
                        &format!("u{i:05}"),
                        serde_json::json!({"userName": format!("u{i:05}@acme.example"),
                                           "active": active}),
                    );
                }
                Ok(())
            })
            .unwrap();
        catch_up(&store);
        store
            .read_sync(|c| {
                let registry = Registry::builtin();
                let found = |text: &str, state, offset| {
                    let search = Search {
                        text: String::from(text),
                        state,
                    };
                    page(c, &search, None, &registry, offset, 2).unwrap()
                };
                let all = found("acme", State::All, 0);
                assert_eq!((all.total, all.capped), (COUNT_CAP, true));
                let ids: Vec<String> = all.items.into_iter().map(|p| p.user.id).collect();
                assert_eq!(ids, ["u00000", "u00001"]);
                let last = found("acme", State::All, COUNT_CAP);
                assert_eq!(last.items[0].user.id, "u10000");
                let active = found("acme", State::Active, 1);
                assert_eq!((active.total, active.capped), (5001, false));
                assert_eq!(active.items[0].user.id, "u00002");
                let short = found("u", State::All, 0);
                assert_eq!((short.total, short.capped), (COUNT_CAP, true));
                let everyone = found("", State::All, 0);
                assert_eq!((everyone.total, everyone.capped), (n as u64, false));
                Ok(())
            })
            .unwrap();
    }
}
