//! The stored uniqueness keys of `userName` (`users.user_name_fold`) and group `displayName`
//! (`groups.display_name_fold`), as `scimd check` sees them: names that share a key, keys
//! that are not what this scimd computes from their name (stale), and the repair of those
//! and of stale folded email rows (`user_emails`), which go stale the same way.
//!
//! Every write stores `scim::ident::key` of the name, and uniqueness and `eq` lookups compare
//! the stored key. A key goes stale when the function that computed it differed: an older
//! scimd, or older Unicode data in the ICU4X crates (a `cargo update` can change the tables).
//! Migrations recompute keys only when the schema changes, so stale keys stay until
//! `scimd check --repair-keys` (`repair_keys`) recomputes them, scimd stopped; a repair that
//! makes two names one is then reported as a collision, never merged.
//!
//! These are findings about the data, not damage: `maintenance::check`, which `backup` and
//! `restore` rely on, leaves them out, so a database holding them is still backed up and
//! restored; `scimd check` adds them (`report`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::Store;
use super::dbfile::ServerLock;
use super::{groups, migrate, users};
use crate::error::{Error, Result};
use crate::scim::ident;

/// How many ids one report line names; the rest are counted.
const LISTED: usize = 20;

/// A table's identifier column and the column holding its uniqueness key.
pub(super) struct Identifier {
    table: &'static str,
    value: &'static str,
    key: &'static str,
    attr: &'static str,
}

pub(super) const USER_NAME: Identifier = Identifier {
    table: "users",
    value: "user_name",
    key: "user_name_fold",
    attr: "userName",
};

pub(super) const GROUP_NAME: Identifier = Identifier {
    table: "groups",
    value: "display_name",
    key: "display_name_fold",
    attr: "displayName",
};

impl Identifier {
    /// One line per uniqueness key that more than one row holds, naming each row's value
    /// (escaped, so invisible characters show) and id.
    pub(super) fn collisions(&self, conn: &Connection) -> Result<Vec<String>> {
        let Identifier {
            table,
            value,
            key,
            attr,
        } = self;
        let mut stmt = conn.prepare(&format!(
            "SELECT {key}, id, {value} FROM {table}
             WHERE {key} IN (SELECT {key} FROM {table} GROUP BY {key} HAVING COUNT(*) > 1)
             ORDER BY {key}, seq"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for row in rows {
            let (key, id, name) = row?;
            let entry = format!("{name:?} (id {id})");
            match groups.last_mut() {
                Some((last, names)) if *last == key => names.push(entry),
                _ => groups.push((key, vec![entry])),
            }
        }
        Ok(groups
            .into_iter()
            .map(|(key, names)| {
                format!(
                    "{attr} {} share the key {key:?}: one name under Unicode folding (kept from \
                     before schema version 3, or by keys recomputed since); rename all but one",
                    names.join(", ")
                )
            })
            .collect())
    }

    /// The rows whose stored key is not `ident::key` of their value: (seq, id, right key).
    fn stale_rows(&self, conn: &Connection) -> Result<Vec<(i64, String, String)>> {
        let Identifier {
            table, value, key, ..
        } = self;
        let mut stmt = conn.prepare(&format!(
            "SELECT seq, id, {value}, {key} FROM {table} ORDER BY seq"
        ))?;
        let mut rows = stmt.query([])?;
        let mut stale = Vec::new();
        while let Some(row) = rows.next()? {
            let (name, stored): (String, String) = (row.get(2)?, row.get(3)?);
            let right = ident::key(&name);
            if right != stored {
                stale.push((row.get(0)?, row.get(1)?, right));
            }
        }
        Ok(stale)
    }

    /// A report line naming the rows with a stale key, if there are any.
    pub(super) fn stale(&self, conn: &Connection) -> Result<Vec<String>> {
        let stale = self.stale_rows(conn)?;
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![format!(
            "{attr} of {n} {table}: the stored uniqueness key is not what this scimd computes from \
             the name (ids {ids}); left by an older scimd or older Unicode data, it lets a \
             look-alike name in and makes `eq` lookups miss; {REPAIR}",
            attr = self.attr,
            n = stale.len(),
            table = self.table,
            ids = listed(stale.iter().map(|(_, id, _)| id.as_str())),
        )])
    }

    /// Recomputes every stale key; how many there were.
    fn repair(&self, conn: &Connection) -> Result<usize> {
        let stale = self.stale_rows(conn)?;
        let mut stmt = conn.prepare(&format!(
            "UPDATE {} SET {} = ?1 WHERE seq = ?2",
            self.table, self.key
        ))?;
        for (seq, _, right) in &stale {
            stmt.execute(rusqlite::params![right, seq])?;
        }
        Ok(stale.len())
    }
}

/// The advice every stale-key line ends with.
const REPAIR: &str = "stop scimd and run `scimd check --repair-keys` on this database";

/// `ids`, comma-separated, the first `LISTED` of them named and the rest counted.
fn listed<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    let more = ids.len().saturating_sub(LISTED);
    let mut text = ids.take(LISTED).collect::<Vec<_>>().join(", ");
    if more > 0 {
        text.push_str(&format!(", and {more} more"));
    }
    text
}

/// The report line on the users `users::stale_emails` found, if any.
pub(super) fn stale_emails_line(stale: &[(i64, String)]) -> Option<String> {
    (!stale.is_empty()).then(|| {
        format!(
            "emails of {} users: the stored folded values or types are not what this scimd \
             computes from the document (ids {}); left by an older scimd or older Unicode data, \
             they make `emails` filters miss; {REPAIR}",
            stale.len(),
            listed(stale.iter().map(|(_, id)| id.as_str()))
        )
    })
}

/// The first schema version with side tables of extension attribute values (migration 6).
const EXT_INDEX: usize = 6;

/// What `scimd check` reports about the names of the database at `db`, beside
/// `maintenance::check`: names that share a key, stale keys, stale email rows and side rows of
/// extension indexes that differ from their documents (`ext_index::stale`). Reads one
/// snapshot without changing anything; nothing for a schema before version 3 (its next start
/// computes every key) or one newer than this scimd.
pub fn report(db: &Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let snapshot = conn.unchecked_transaction()?;
    if !(migrate::IDENTIFIER_KEYS..=migrate::LATEST).contains(&migrate::version(&snapshot)?) {
        return Ok(Vec::new());
    }
    let mut lines = users::key_collisions(&snapshot)?;
    lines.extend(groups::key_collisions(&snapshot)?);
    lines.extend(USER_NAME.stale(&snapshot)?);
    lines.extend(GROUP_NAME.stale(&snapshot)?);
    lines.extend(stale_emails_line(&users::stale_emails(&snapshot)?));
    if migrate::version(&snapshot)? >= EXT_INDEX {
        lines.extend(super::ext_index::stale(&snapshot)?);
    }
    Ok(lines)
}

/// What `repair_keys` recomputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// userName keys.
    pub users: usize,
    /// Group displayName keys.
    pub groups: usize,
    /// Users whose email rows were written again.
    pub emails: usize,
}

/// Recomputes the stale uniqueness keys and email rows of the database at `db` in one
/// transaction. Refuses while a scimd serves it: that server checks uniqueness against the
/// keys.
pub fn repair_keys(db: &Path) -> Result<Repaired> {
    let lock = ServerLock::acquire(db)
        .map_err(|e| Error::InvalidValue(format!("stop scimd first: {e}")))?;
    let store = Store::open_existing(lock.path())?;
    store.write_sync(|tx| {
        let emails = users::stale_emails(tx)?;
        for (seq, _) in &emails {
            users::rewrite_emails(tx, *seq)?;
        }
        Ok(Repaired {
            users: USER_NAME.repair(tx)?,
            groups: GROUP_NAME.repair(tx)?,
            emails: emails.len(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&mut conn).unwrap();
        conn
    }

    fn add_user(conn: &Connection, id: &str, name: &str, stored_key: &str) {
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES (?1, ?2, ?3, 1, 1, 't', 't', '{}')",
            [id, name, stored_key],
        )
        .unwrap();
    }

    #[test]
    fn right_keys_are_not_stale() {
        let conn = database();
        add_user(&conn, "a", "Straße", "strasse");
        add_user(&conn, "b", " Bob ", "bob");
        add_user(&conn, "c", "Jose\u{301}", "jos\u{e9}");
        assert!(USER_NAME.stale(&conn).unwrap().is_empty());
        assert_eq!(USER_NAME.repair(&conn).unwrap(), 0);
    }

    #[test]
    fn stale_email_rows_are_named_and_written_again() {
        let conn = database();
        let doc = r#"{"userName":"a","emails":[{"value":"ﬁ@X","type":"Work","primary":true},
                                              {"value":"b@x"}]}"#;
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES ('a', 'a', 'a', 1, 1, 't', 't', ?1)",
            [doc],
        )
        .unwrap();
        let stale = || users::stale_emails(&conn).unwrap();
        assert_eq!(stale(), [(1, "a".to_string())], "no rows yet");
        users::rewrite_emails(&conn, 1).unwrap();
        assert!(stale().is_empty());
        let rows: Vec<String> = conn
            .prepare("SELECT value_fold || ' ' || type_fold FROM user_emails WHERE is_primary")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows, ["fi@x work"]);
        // As a plain lowercase left it.
        conn.execute(
            "UPDATE user_emails SET value_fold = 'ﬁ@x' WHERE is_primary",
            [],
        )
        .unwrap();
        let line = stale_emails_line(&stale()).unwrap();
        assert!(
            line.starts_with("emails of 1 users") && line.contains("(ids a)"),
            "{line}"
        );
        assert!(stale_emails_line(&[]).is_none());
    }

    #[test]
    fn stale_keys_are_named_then_repaired_and_collisions_reported() {
        let conn = database();
        add_user(&conn, "ok", "ana", "ana");
        // As a plain lowercase left them: `straße` and `strasse` are one name now.
        add_user(&conn, "s1", "straße", "straße");
        add_user(&conn, "s2", "strasse", "strasse");
        for n in 0..LISTED + 3 {
            add_user(&conn, &format!("x{n}"), &format!("X{n}"), &format!("X{n}"));
        }
        conn.execute(
            "INSERT INTO groups (id, display_name, display_name_fold, version, created,
                                 last_modified, data)
             VALUES ('g', 'ΣΑΣ', 'σας', 1, 't', 't', '{}')",
            [],
        )
        .unwrap();
        assert!(USER_NAME.collisions(&conn).unwrap().is_empty());
        let users = USER_NAME.stale(&conn).unwrap();
        assert_eq!(users.len(), 1);
        let line = &users[0];
        assert!(line.starts_with("userName of 24 users:"), "{line}");
        assert!(line.contains("(ids s1, x0, x1,"), "{line}");
        assert!(line.contains("x18, and 4 more)"), "{line}");
        assert!(
            !line.contains("ok,") && line.contains("--repair-keys"),
            "{line}"
        );
        let groups = GROUP_NAME.stale(&conn).unwrap();
        assert!(groups[0].contains("displayName of 1 groups") && groups[0].contains("(ids g)"));

        assert_eq!(USER_NAME.repair(&conn).unwrap(), 24);
        assert_eq!(GROUP_NAME.repair(&conn).unwrap(), 1);
        assert!(USER_NAME.stale(&conn).unwrap().is_empty());
        assert!(GROUP_NAME.stale(&conn).unwrap().is_empty());
        let key: String = conn
            .query_row("SELECT display_name_fold FROM groups", [], |r| r.get(0))
            .unwrap();
        assert_eq!(key, "σασ");
        let collisions = USER_NAME.collisions(&conn).unwrap();
        assert_eq!(collisions.len(), 1);
        assert!(
            collisions[0].contains("\"straße\" (id s1), \"strasse\" (id s2)"),
            "{collisions:?}"
        );
    }
}
