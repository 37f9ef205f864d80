//! Schema migrations. `schema.sql` is migration 1; later steps are appended to `MIGRATIONS`,
//! whose length is the schema version this binary knows. `PRAGMA user_version` records how many
//! have run. Each step runs in its own transaction with the version bump, so a crash mid-way
//! leaves the previous version intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("migrations/002_console.sql"),
];

/// The schema version this binary writes.
pub const LATEST: usize = MIGRATIONS.len();

pub fn version(conn: &Connection) -> Result<usize> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    usize::try_from(v).map_err(|_| Error::internal(format!("invalid schema version {v}")))
}

/// Brings the database up to `LATEST`; refuses one newer than this binary.
pub fn run(conn: &mut Connection) -> Result<()> {
    upgrade_to(conn, LATEST)
}

/// Runs the migrations up to schema version `target` (at most `LATEST`).
fn upgrade_to(conn: &mut Connection, target: usize) -> Result<()> {
    let current = version(conn)?;
    if current > LATEST {
        return Err(Error::internal(format!(
            "the database has schema version {current}, but this scimd only knows up to \
             version {LATEST}: it was written by a newer scimd; upgrade scimd instead"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).map_err(Error::internal)?,
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
        run(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
    }

    /// The schema as SQLite stores it, comparable across databases.
    fn schema(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A version-1 database with data in it, upgraded, has exactly a fresh database's schema
    /// and still all its data.
    #[test]
    fn a_populated_version_1_database_upgrades_to_the_fresh_schema() {
        let mut old = Connection::open_in_memory().unwrap();
        upgrade_to(&mut old, 1).unwrap();
        assert_eq!(version(&old).unwrap(), 1);
        old.execute_batch(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES ('u1', 'Ana', 'ana', 1, 3, '2026-01-01T00:00:00.000Z',
                     '2026-01-02T00:00:00.000Z', '{\"userName\":\"Ana\"}');
             INSERT INTO user_emails (user_seq, value_fold, type_fold, is_primary)
             VALUES (1, 'ana@x', 'work', 1);
             INSERT INTO groups (id, display_name, display_name_fold, version, created,
                                 last_modified, data)
             VALUES ('g1', 'Ops', 'ops', 1, '2026-01-01T00:00:00.000Z',
                     '2026-01-01T00:00:00.000Z', '{\"displayName\":\"Ops\"}');
             INSERT INTO group_members (group_seq, member_user_seq) VALUES (1, 1);
             INSERT INTO tokens (name, lookup, digest, created, last_used)
             VALUES ('idp', '0123456789abcdef', x'00', '2026-01-01T00:00:00.000Z',
                     '2026-01-03T00:00:00.000Z');",
        )
        .unwrap();
        run(&mut old).unwrap();
        let mut fresh = Connection::open_in_memory().unwrap();
        run(&mut fresh).unwrap();
        assert_eq!(version(&old).unwrap(), LATEST);
        assert_eq!(schema(&old), schema(&fresh));
        let kept: (String, i64, String, Option<String>) = old
            .query_row(
                "SELECT u.data, u.version, g.display_name, t.last_used
                 FROM users u, groups g, tokens t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            kept,
            (
                "{\"userName\":\"Ana\"}".to_string(),
                3,
                "Ops".to_string(),
                Some("2026-01-03T00:00:00.000Z".to_string())
            )
        );
        let members: i64 = old
            .query_row("SELECT COUNT(*) FROM group_members", [], |r| r.get(0))
            .unwrap();
        assert_eq!(members, 1);
    }

    #[test]
    fn refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST as i64 + 1)
            .unwrap();
        let err = run(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer scimd"), "{err}");
    }
}
