//! Schema migrations. `schema.sql` is migration 1; later steps are appended to `MIGRATIONS`,
//! whose length is the schema version this binary knows. `PRAGMA user_version` records how many
//! have run. Each step runs in its own transaction with the version bump, so a crash mid-way
//! leaves the previous version intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("migrations/002_console.sql"),
    include_str!("migrations/003_identifiers.sql"),
    include_str!("migrations/004_devices.sql"),
    include_str!("migrations/005_schemas.sql"),
    include_str!("migrations/006_ext_index.sql"),
    include_str!("migrations/007_events.sql"),
    include_str!("migrations/008_ext_index_multi.sql"),
    include_str!("migrations/009_token_scope.sql"),
    include_str!("migrations/010_webhooks.sql"),
    include_str!("migrations/011_overview.sql"),
    include_str!("migrations/012_audit_filters.sql"),
    include_str!("migrations/013_admins_more.sql"),
    include_str!("migrations/014_people.sql"),
    include_str!("migrations/015_totp_failures.sql"),
];

/// The first schema version whose `_fold` columns hold `scim::ident::key` (and whose key
/// indexes are not UNIQUE: see migration 3).
pub const IDENTIFIER_KEYS: usize = 3;

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
pub(crate) fn upgrade_to(conn: &mut Connection, target: usize) -> Result<()> {
    let current = version(conn)?;
    if current > LATEST {
        return Err(Error::internal(format!(
            "the database has schema version {current}, but this scimd only knows up to \
             version {LATEST}: it was written by a newer scimd; upgrade scimd instead"
        )));
    }
    if current >= target {
        return Ok(());
    }
    // Steps compute keys with scimd's own SQL functions, and rebuild tables: with foreign keys
    // on, dropping the old table would delete every row that refers to it (SQLite's documented
    // procedure for table changes turns them off, outside any transaction, for the duration).
    super::functions(conn)?;
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let steps = (|| {
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
    })();
    conn.pragma_update(None, "foreign_keys", foreign_keys)?;
    steps
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

    /// Version 2 folded by lowercasing only. Names distinct then but one under the new key
    /// are all kept (with their memberships and emails) and reported; the rest get new keys.
    #[test]
    fn version_2_names_that_now_collide_are_kept_and_reported() {
        let mut old = Connection::open_in_memory().unwrap();
        upgrade_to(&mut old, 2).unwrap();
        old.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES ('u1', 'straße', 'straße', 1, 1, 't', 't', '{\"userName\":\"straße\"}'),
                    ('u2', 'STRASSE', 'strasse', 1, 1, 't', 't',
                     '{\"userName\":\"STRASSE\",\"emails\":[{\"value\":\"ﬁ@X\",
                       \"type\":\"Work\",\"primary\":true},{\"value\":\"b@x\"}]}'),
                    ('u3', ' Jose\u{301} ', ' jose\u{301} ', 1, 1, 't', 't',
                     '{\"userName\":\" Jose\u{301} \"}');
             INSERT INTO user_emails (user_seq, value_fold, type_fold, is_primary)
             VALUES (2, 'ﬁ@x', 'work', 1), (2, 'b@x', NULL, 0);
             INSERT INTO groups (id, display_name, display_name_fold, version, created,
                                 last_modified, data)
             VALUES ('g1', 'ΣΑΣ', 'σας', 1, 't', 't', '{\"displayName\":\"ΣΑΣ\"}'),
                    ('g2', 'σασ', 'σασ', 1, 't', 't', '{\"displayName\":\"σασ\"}');
             INSERT INTO group_members (group_seq, member_user_seq) VALUES (1, 1), (2, 2);
             INSERT INTO group_members (group_seq, member_group_seq) VALUES (1, 2);",
        )
        .unwrap();
        run(&mut old).unwrap();
        assert_eq!(version(&old).unwrap(), LATEST);
        let on: bool = old
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(on, "foreign keys are back on");
        let rows = |sql: &str| -> Vec<String> {
            old.prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            rows("SELECT id || '=' || user_name_fold FROM users ORDER BY seq"),
            ["u1=strasse", "u2=strasse", "u3=jos\u{e9}"]
        );
        assert_eq!(
            rows("SELECT id || '=' || display_name_fold FROM groups ORDER BY seq"),
            ["g1=σασ", "g2=σασ"]
        );
        assert_eq!(
            rows(
                "SELECT user_seq || ' ' || value_fold || ' ' || IFNULL(type_fold, '-') || ' '
                        || is_primary FROM user_emails ORDER BY rowid"
            ),
            ["2 fi@x work 1", "2 b@x - 0"]
        );
        assert_eq!(rows("SELECT COUNT(*) || '' FROM group_members"), ["3"]);
        assert!(
            old.prepare("PRAGMA foreign_key_check")
                .unwrap()
                .query_map([], |_| Ok(()))
                .unwrap()
                .next()
                .is_none()
        );
        let users = crate::store::users::key_collisions(&old).unwrap();
        assert_eq!(users.len(), 1, "{users:?}");
        for part in ["\"straße\" (id u1)", "\"STRASSE\" (id u2)", "\"strasse\""] {
            assert!(users[0].contains(part), "{part}: {users:?}");
        }
        let groups = crate::store::groups::key_collisions(&old).unwrap();
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert!(
            groups[0].contains("\"ΣΑΣ\" (id g1), \"σασ\" (id g2)"),
            "{groups:?}"
        );
    }

    /// A database as scimd wrote it before declared schemas (version 4), with extension data
    /// in a document, opens with this binary: the data is untouched, nothing is declared and
    /// the schema generation starts at 0.
    #[test]
    fn a_version_4_database_gains_the_schema_tables_and_keeps_its_data() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("scimd.db");
        let doc = "{\"userName\":\"ana\",\"urn:acme:2.0:User\":{\"badge\":\"42\"}}";
        {
            let mut old = Connection::open(&path).unwrap();
            upgrade_to(&mut old, 4).unwrap();
            old.execute(
                "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                    last_modified, data)
                 VALUES ('u1', 'ana', 'ana', 1, 1, 't', 't', ?1)",
                [doc],
            )
            .unwrap();
        }
        let store = crate::store::Store::open_existing(&path).unwrap();
        assert!(store.declared().unwrap().is_empty());
        store.refresh_registry().unwrap();
        assert!(!store.refresh_registry().unwrap());
        let (version, data, generation) = store
            .read_sync(|conn| {
                Ok((
                    version(conn)?,
                    conn.query_row("SELECT data FROM users WHERE id = 'u1'", [], |r| {
                        r.get::<_, String>(0)
                    })?,
                    crate::store::schemas::generation(conn)?,
                ))
            })
            .unwrap();
        assert_eq!((version, data.as_str(), generation), (LATEST, doc, 0));
    }

    /// Tokens made before scopes (version 8) are write tokens after the upgrade (revoked ones
    /// too, and a regenerated one stays one); the column admits nothing but read and write.
    #[test]
    fn a_version_8_databases_tokens_become_write_tokens() {
        use crate::store::tokens::{self, Scope};
        let mut old = Connection::open_in_memory().unwrap();
        upgrade_to(&mut old, 8).unwrap();
        old.execute_batch(
            "INSERT INTO tokens (name, lookup, digest, created, revoked)
             VALUES ('idp', '0123456789abcdef', x'00', '2026-01-01T00:00:00.000Z', NULL),
                    ('old', '1123456789abcdef', x'01', '2026-01-01T00:00:00.000Z',
                     '2026-01-02T00:00:00.000Z');",
        )
        .unwrap();
        run(&mut old).unwrap();
        let listed: Vec<(String, Scope)> = tokens::list(&old)
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.scope))
            .collect();
        assert_eq!(
            listed,
            [("idp".into(), Scope::Write), ("old".into(), Scope::Write)]
        );
        let now = "2026-02-01T00:00:00.000Z";
        let found = tokens::find(&old, "0123456789abcdef", now)
            .unwrap()
            .unwrap();
        assert_eq!(found.scope, Scope::Write);
        assert!(tokens::regenerate(&old, "idp", "2123456789abcdef", b"2", now, now).unwrap());
        let found = tokens::find(&old, "2123456789abcdef", now)
            .unwrap()
            .unwrap();
        assert_eq!((found.live, found.scope), (true, Scope::Write));
        let err = old
            .execute(
                "INSERT INTO tokens (name, lookup, digest, created, scope)
                 VALUES ('x', '3123456789abcdef', x'03', 't', 'admin')",
                [],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("CHECK"), "{err}");
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
