//! SQL for SCIM bearer tokens. Only digests are stored; `lookup` is the public part of a
//! token that finds its row.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// A live token's row, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub seq: i64,
    pub name: String,
    pub digest: Vec<u8>,
}

/// A token as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
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

/// The live (not revoked) token whose public part is `lookup`.
pub fn find_live(conn: &Connection, lookup: &str) -> Result<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, name, digest FROM tokens WHERE lookup = ?1 AND revoked IS NULL",
        )?
        .query_row([lookup], |r| {
            Ok(TokenRow {
                seq: r.get(0)?,
                name: r.get(1)?,
                digest: r.get(2)?,
            })
        })
        .optional()?)
}

/// Every token, live ones first, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare(
        "SELECT name, created, last_used, revoked FROM tokens
         ORDER BY revoked IS NOT NULL, seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            created: r.get(1)?,
            last_used: r.get(2)?,
            revoked: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes the live token called `name`; returns whether there was one.
pub fn revoke(conn: &Connection, name: &str, now: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL",
        params![name, now],
    )?;
    Ok(n > 0)
}

/// Records when tokens were last used, in one statement per token.
pub fn touch(conn: &Connection, used: &[(i64, String)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE tokens SET last_used = ?2 WHERE seq = ?1 AND (last_used IS NULL OR last_used < ?2)",
    )?;
    for (seq, at) in used {
        stmt.execute(params![seq, at])?;
    }
    Ok(())
}
