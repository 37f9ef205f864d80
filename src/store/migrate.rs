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
    let current = version(conn)?;
    if current > LATEST {
        return Err(Error::internal(format!(
            "the database has schema version {current}, but this scimd only knows up to \
             version {LATEST}: it was written by a newer scimd; upgrade scimd instead"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
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

    #[test]
    fn refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST as i64 + 1)
            .unwrap();
        let err = run(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer scimd"), "{err}");
    }
}
