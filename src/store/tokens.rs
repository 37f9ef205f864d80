//! SQL for SCIM bearer tokens. Only digests are stored; `lookup` is the public part of a
//! token that finds its row.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// What a token may do: `Write` is what an identity provider needs (and what every token
/// could do before scopes); `Read` may look users and groups up and follow the change feed,
/// never change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    /// Whether a token of this scope may do what needs `needed`.
    pub fn covers(self, needed: Scope) -> bool {
        self == Scope::Write || needed == Scope::Read
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Scope> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            other => Err(Error::InvalidValue(format!(
                "a token's scope is read or write, not \"{other}\""
            ))),
        }
    }
}

impl rusqlite::types::FromSql for Scope {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        // The column's CHECK admits only these two.
        v.as_str()?
            .parse()
            .map_err(|e: Error| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// A token's row, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub seq: i64,
    pub name: String,
    pub digest: Vec<u8>,
    /// Not revoked (yet).
    pub live: bool,
    pub scope: Scope,
}

/// A token as listed: never the secret. `revoked` may lie in the future: a regenerated
/// token's old secret works until then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub name: String,
    pub scope: Scope,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
    /// The address the last request came from, and what it was.
    pub last_client: Option<String>,
    pub last_request: Option<String>,
    /// The token's public part (`scimd_<lookup>_…`): it names a secret without revealing it.
    #[serde(skip)]
    pub lookup: String,
    /// The Overview warns when the token is silent for longer than this many hours.
    pub expect_every_hours: Option<u32>,
}

pub fn insert(
    conn: &Connection,
    name: &str,
    scope: Scope,
    lookup: &str,
    digest: &[u8],
    now: &str,
) -> Result<()> {
    let taken = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1 AND revoked IS NULL)",
        [name],
        |r| r.get::<_, bool>(0),
    )?;
    if taken {
        return Err(Error::Uniqueness(format!(
            "a token named \"{name}\" already exists; revoke it first or pick another name"
        )));
    }
    conn.execute(
        "INSERT INTO tokens (name, scope, lookup, digest, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, scope.as_str(), lookup, digest, now],
    )?;
    Ok(())
}

/// The token whose public part is `lookup`, live or not (one indexed read: `lookup` is
/// unique). It is live unless revoked, or revoked only from a moment still to come (the
/// overlap of a regenerated token).
pub fn find(conn: &Connection, lookup: &str, now: &str) -> Result<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, name, digest, revoked IS NULL OR revoked > ?2, scope FROM tokens
             WHERE lookup = ?1",
        )?
        .query_row(params![lookup, now], |r| {
            Ok(TokenRow {
                seq: r.get(0)?,
                name: r.get(1)?,
                digest: r.get(2)?,
                live: r.get(3)?,
                scope: r.get(4)?,
            })
        })
        .optional()?)
}

/// Every token, live ones first, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare(
        "SELECT name, scope, created, last_used, revoked, last_client, last_request, lookup,
                expect_every_hours
         FROM tokens ORDER BY revoked IS NOT NULL, seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            scope: r.get(1)?,
            created: r.get(2)?,
            last_used: r.get(3)?,
            revoked: r.get(4)?,
            last_client: r.get(5)?,
            last_request: r.get(6)?,
            lookup: r.get(7)?,
            expect_every_hours: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes every secret of the token called `name` now, an overlapping old one included;
/// returns whether there was a live one.
pub fn revoke(conn: &Connection, name: &str, now: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked = ?2 WHERE name = ?1 AND (revoked IS NULL OR revoked > ?2)",
        params![name, now],
    )?;
    Ok(n > 0)
}

/// Gives the live token called `name` a new secret, of the same scope: the old one keeps
/// working until `old_until` (`now` for no overlap). Returns whether there was a live token.
pub fn regenerate(
    conn: &Connection,
    name: &str,
    lookup: &str,
    digest: &[u8],
    now: &str,
    old_until: &str,
) -> Result<bool> {
    let found = conn
        .query_row(
            "SELECT scope, expect_every_hours FROM tokens WHERE name = ?1 AND revoked IS NULL",
            [name],
            |r| Ok((r.get::<_, Scope>(0)?, r.get::<_, Option<u32>>(1)?)),
        )
        .optional()?;
    let Some((scope, expect)) = found else {
        return Ok(false);
    };
    // Every secret of the token still working ends by `old_until` at the latest: an older
    // secret in its own overlap must not outlive a rotation that says "stop now".
    conn.execute(
        "UPDATE tokens SET revoked = MIN(COALESCE(revoked, ?2), ?2)
         WHERE name = ?1 AND (revoked IS NULL OR revoked > ?3)",
        params![name, old_until, now],
    )?;
    insert(conn, name, scope, lookup, digest, now)?;
    // The new secret is the same token: what the admin expects of it carries over.
    conn.execute(
        "UPDATE tokens SET expect_every_hours = ?2 WHERE lookup = ?1",
        params![lookup, expect],
    )?;
    Ok(true)
}

/// Sets how often the live token called `name` is expected to send a request (`None`: no
/// expectation), on each of its secrets still working at `now`. Returns whether there was
/// a live token.
pub fn set_expectation(
    conn: &Connection,
    name: &str,
    hours: Option<u32>,
    now: &str,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET expect_every_hours = ?2
         WHERE name = ?1 AND (revoked IS NULL OR revoked > ?3)",
        params![name, hours, now],
    )?;
    Ok(n > 0)
}

/// A token's last request: when, from where, and what (`GET /scim/v2/Users → 200`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub at: String,
    pub client: String,
    pub request: String,
}

/// Records when tokens were last used, in one statement per token.
pub fn touch(conn: &Connection, used: &[(i64, Use)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE tokens SET last_used = ?2, last_client = ?3, last_request = ?4
         WHERE seq = ?1 AND (last_used IS NULL OR last_used < ?2)",
    )?;
    for (seq, u) in used {
        stmt.execute(params![seq, u.at, u.client, u.request])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A regenerated token keeps its scope: rotating a read token's secret must not make it
    /// able to write, nor a write token's stop it writing.
    #[test]
    fn regenerating_keeps_the_scope() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        let t = "2026-01-01T00:00:00.000Z";
        insert(&conn, "feed", Scope::Read, "0000000000000001", b"1", t).unwrap();
        insert(&conn, "idp", Scope::Write, "0000000000000002", b"2", t).unwrap();
        assert!(regenerate(&conn, "feed", "0000000000000003", b"3", t, t).unwrap());
        assert!(regenerate(&conn, "idp", "0000000000000004", b"4", t, t).unwrap());
        for (lookup, scope) in [
            ("0000000000000003", Scope::Read),
            ("0000000000000004", Scope::Write),
        ] {
            let found = find(&conn, lookup, t).unwrap().unwrap();
            assert_eq!((found.live, found.scope), (true, scope), "{lookup}");
        }
        let listed: Vec<(String, Scope)> = list(&conn)
            .unwrap()
            .into_iter()
            .filter(|i| i.revoked.is_none())
            .map(|i| (i.name, i.scope))
            .collect();
        assert_eq!(
            listed,
            [("feed".into(), Scope::Read), ("idp".into(), Scope::Write)]
        );
    }

    /// What the admin expects of a token is the token's, not a secret's: a rotation keeps
    /// it, and setting it reaches every secret still working, an overlapping old one too.
    #[test]
    fn regenerating_keeps_the_expectation() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        let t = "2026-01-01T00:00:00.000Z";
        let later = "2026-01-02T00:00:00.000Z";
        insert(&conn, "idp", Scope::Write, "0000000000000001", b"1", t).unwrap();
        assert!(set_expectation(&conn, "idp", Some(6), t).unwrap());
        assert!(regenerate(&conn, "idp", "0000000000000002", b"2", t, later).unwrap());
        assert!(set_expectation(&conn, "idp", Some(12), t).unwrap());
        assert!(regenerate(&conn, "idp", "0000000000000003", b"3", t, t).unwrap());
        let hours: Vec<Option<u32>> = list(&conn)
            .unwrap()
            .into_iter()
            .map(|i| i.expect_every_hours)
            .collect();
        assert_eq!(hours, [Some(12), Some(12), Some(12)]);
        assert!(!set_expectation(&conn, "nobody", None, t).unwrap());
    }

    #[test]
    fn scopes_parse_from_their_names_only() {
        assert_eq!("read".parse::<Scope>().unwrap(), Scope::Read);
        assert_eq!("write".parse::<Scope>().unwrap(), Scope::Write);
        for bad in ["", "Read", "admin", "read,write"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        assert!(Scope::Write.covers(Scope::Write) && Scope::Write.covers(Scope::Read));
        assert!(Scope::Read.covers(Scope::Read) && !Scope::Read.covers(Scope::Write));
    }
}
