//! SQL for SCIM bearer tokens. Only digests are stored; `lookup` is the public part of a
//! token that finds its row.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// A token's row, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub seq: i64,
    pub name: String,
    pub digest: Vec<u8>,
    /// Not revoked (yet).
    pub live: bool,
}

/// A token as listed: never the secret. `revoked` may lie in the future: a regenerated
/// token's old secret works until then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
    /// The address the last request came from, and what it was.
    pub last_client: Option<String>,
    pub last_request: Option<String>,
}

pub fn insert(conn: &Connection, name: &str, lookup: &str, digest: &[u8], now: &str) -> Result<()> {
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
        "INSERT INTO tokens (name, lookup, digest, created) VALUES (?1, ?2, ?3, ?4)",
        params![name, lookup, digest, now],
    )?;
    Ok(())
}

/// The token whose public part is `lookup`, live or not (one indexed read: `lookup` is
/// unique). It is live unless revoked, or revoked only from a moment still to come (the
/// overlap of a regenerated token).
pub fn find(conn: &Connection, lookup: &str, now: &str) -> Result<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, name, digest, revoked IS NULL OR revoked > ?2 FROM tokens
             WHERE lookup = ?1",
        )?
        .query_row(params![lookup, now], |r| {
            Ok(TokenRow {
                seq: r.get(0)?,
                name: r.get(1)?,
                digest: r.get(2)?,
                live: r.get(3)?,
            })
        })
        .optional()?)
}

/// Every token, live ones first, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare(
        "SELECT name, created, last_used, revoked, last_client, last_request FROM tokens
         ORDER BY revoked IS NOT NULL, seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            created: r.get(1)?,
            last_used: r.get(2)?,
            revoked: r.get(3)?,
            last_client: r.get(4)?,
            last_request: r.get(5)?,
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

/// Gives the live token called `name` a new secret: the old one keeps working until
/// `old_until` (`now` for no overlap). Returns whether there was a live token.
pub fn regenerate(
    conn: &Connection,
    name: &str,
    lookup: &str,
    digest: &[u8],
    now: &str,
    old_until: &str,
) -> Result<bool> {
    let live = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1 AND revoked IS NULL)",
        [name],
        |r| r.get::<_, bool>(0),
    )?;
    if !live {
        return Ok(false);
    }
    // Every secret of the token still working ends by `old_until` at the latest: an older
    // secret in its own overlap must not outlive a rotation that says "stop now".
    conn.execute(
        "UPDATE tokens SET revoked = MIN(COALESCE(revoked, ?2), ?2)
         WHERE name = ?1 AND (revoked IS NULL OR revoked > ?3)",
        params![name, old_until, now],
    )?;
    insert(conn, name, lookup, digest, now)?;
    Ok(true)
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
