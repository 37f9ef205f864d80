//! SQL for console administrators as a team, beyond signing in (`admins`): the list, removal,
//! one's own sessions, invitations, TOTP second factors and recovery codes. Invitation and
//! recovery codes are stored as digests; a TOTP secret as is (verifying a code needs it).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// An administrator as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub username: String,
    pub created: String,
    pub last_sign_in: Option<String>,
    pub totp: bool,
}

pub fn list(conn: &Connection) -> Result<Vec<Listed>> {
    let mut stmt = conn.prepare(
        "SELECT username, created, last_sign_in, totp_enabled FROM admins ORDER BY username_fold",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Listed {
            username: r.get(0)?,
            created: r.get(1)?,
            last_sign_in: r.get(2)?,
            totp: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes the administrator (its sessions, devices and recovery codes with it); whether
/// there was one.
pub fn remove(conn: &Connection, admin_seq: i64) -> Result<bool> {
    // Foreign keys cascade too; deleting explicitly does not depend on the pragma.
    for sql in [
        "DELETE FROM sessions WHERE admin_seq = ?1",
        "DELETE FROM admin_devices WHERE admin_seq = ?1",
        "DELETE FROM admin_recovery_codes WHERE admin_seq = ?1",
    ] {
        conn.execute(sql, [admin_seq])?;
    }
    Ok(conn.execute("DELETE FROM admins WHERE seq = ?1", [admin_seq])? == 1)
}

pub fn note_sign_in(conn: &Connection, admin_seq: i64, now: &str) -> Result<()> {
    conn.execute(
        "UPDATE admins SET last_sign_in = ?2 WHERE seq = ?1",
        params![admin_seq, now],
    )?;
    Ok(())
}

pub fn password_hash(conn: &Connection, admin_seq: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT password_hash FROM admins WHERE seq = ?1")?
        .query_row([admin_seq], |r| r.get(0))
        .optional()?)
}

/// Replaces an existing administrator's password hash.
pub fn replace_password(conn: &Connection, admin_seq: i64, hash: &str, now: &str) -> Result<()> {
    conn.execute(
        "UPDATE admins SET password_hash = ?2, updated = ?3 WHERE seq = ?1",
        params![admin_seq, hash, now],
    )?;
    Ok(())
}

/// One of an administrator's sessions. `id` names it to its owner: the first 8 bytes of its
/// digest in hex, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub digest: Vec<u8>,
    pub created: String,
    pub expires: String,
    pub last_seen: Option<String>,
    pub client: String,
    pub user_agent: String,
}

/// Records where a new session comes from.
pub fn describe_session(
    conn: &Connection,
    digest: &[u8],
    client: &str,
    user_agent: &str,
    now: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET client = ?2, user_agent = ?3, last_seen = ?4 WHERE digest = ?1",
        params![digest, client, user_agent, now],
    )?;
    Ok(())
}

/// Marks a session as seen now.
pub fn touch_session(conn: &Connection, digest: &[u8], now: &str) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen = ?2 WHERE digest = ?1",
        params![digest, now],
    )?;
    Ok(())
}

/// When the session was last seen.
pub fn last_seen(conn: &Connection, digest: &[u8]) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT last_seen FROM sessions WHERE digest = ?1")?
        .query_row([digest], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The administrator's current sessions, newest first.
pub fn sessions(conn: &Connection, admin_seq: i64, now: &str) -> Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare(
        "SELECT lower(hex(substr(digest, 1, 8))), digest, created, expires, last_seen, client,
                user_agent
         FROM sessions WHERE admin_seq = ?1 AND expires > ?2 ORDER BY created DESC",
    )?;
    let rows = stmt.query_map(params![admin_seq, now], |r| {
        Ok(SessionInfo {
            id: r.get(0)?,
            digest: r.get(1)?,
            created: r.get(2)?,
            expires: r.get(3)?,
            last_seen: r.get(4)?,
            client: r.get(5)?,
            user_agent: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Ends the administrator's session named `id`; whether there was one.
pub fn end_session(conn: &Connection, admin_seq: i64, id: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE admin_seq = ?1 AND lower(hex(substr(digest, 1, 8))) = ?2",
        params![admin_seq, id.to_ascii_lowercase()],
    )? > 0)
}

/// Ends every session of the administrator but the one with digest `keep`.
pub fn end_other_sessions(conn: &Connection, admin_seq: i64, keep: &[u8]) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE admin_seq = ?1 AND digest <> ?2",
        params![admin_seq, keep],
    )?)
}

/// A pending invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub created_by: String,
    pub created: String,
    pub expires: String,
}

/// Stores a new invitation's digest, dropping expired ones.
pub fn put_invite(
    conn: &Connection,
    digest: &[u8],
    created_by: &str,
    now: &str,
    expires: &str,
) -> Result<()> {
    conn.execute("DELETE FROM admin_invites WHERE expires <= ?1", [now])?;
    conn.execute(
        "INSERT INTO admin_invites (digest, created_by, created, expires) VALUES (?1, ?2, ?3, ?4)",
        params![digest, created_by, now, expires],
    )?;
    Ok(())
}

/// The current invitation with this digest. The digest is the primary key, looked up by
/// equality: it is of a 256-bit random code, so timing tells a guesser nothing useful.
pub fn invite(conn: &Connection, digest: &[u8], now: &str) -> Result<Option<Invite>> {
    Ok(conn
        .prepare_cached(
            "SELECT created_by, created, expires FROM admin_invites
             WHERE digest = ?1 AND expires > ?2",
        )?
        .query_row(params![digest, now], |r| {
            Ok(Invite {
                created_by: r.get(0)?,
                created: r.get(1)?,
                expires: r.get(2)?,
            })
        })
        .optional()?)
}

/// Consumes the current invitation with this digest; it, if there was one.
pub fn take_invite(conn: &Connection, digest: &[u8], now: &str) -> Result<Option<Invite>> {
    let found = invite(conn, digest, now)?;
    if found.is_some() {
        conn.execute("DELETE FROM admin_invites WHERE digest = ?1", [digest])?;
    }
    Ok(found)
}

/// Drops every pending invitation; how many there were.
pub fn drop_invites(conn: &Connection, now: &str) -> Result<usize> {
    let pending = invites(conn, now)?.len();
    conn.execute("DELETE FROM admin_invites", [])?;
    Ok(pending)
}

/// Drops the invitations `created_by` made.
pub fn drop_invites_by(conn: &Connection, created_by: &str) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM admin_invites WHERE created_by = ?1",
        [created_by],
    )?)
}

/// Invitations not yet used or expired, newest first.
pub fn invites(conn: &Connection, now: &str) -> Result<Vec<Invite>> {
    let mut stmt = conn.prepare(
        "SELECT created_by, created, expires FROM admin_invites WHERE expires > ?1
         ORDER BY created DESC",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(Invite {
            created_by: r.get(0)?,
            created: r.get(1)?,
            expires: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An administrator's second factor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totp {
    /// The base32 secret: enrolment started (and, when `enabled`, confirmed).
    pub secret: Option<String>,
    pub enabled: bool,
    pub last_step: i64,
    /// Wrong codes in a row since a code was last accepted.
    pub failures: i64,
    /// Until when TOTP codes are refused to browsers that are not the account's devices.
    pub blocked_until: Option<String>,
}

pub fn totp(conn: &Connection, admin_seq: i64) -> Result<Totp> {
    Ok(conn
        .prepare_cached(
            "SELECT totp_secret, totp_enabled, totp_last_step, totp_failures, totp_blocked_until
             FROM admins WHERE seq = ?1",
        )?
        .query_row([admin_seq], |r| {
            Ok(Totp {
                secret: r.get(0)?,
                enabled: r.get(1)?,
                last_step: r.get(2)?,
                failures: r.get(3)?,
                blocked_until: r.get(4)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Starts enrolment with a new secret (not enabled until confirmed).
pub fn start_totp(conn: &Connection, admin_seq: i64, secret: &str) -> Result<()> {
    conn.execute(
        "UPDATE admins SET totp_secret = ?2, totp_enabled = 0, totp_last_step = 0 WHERE seq = ?1",
        params![admin_seq, secret],
    )?;
    Ok(())
}

/// Enables the second factor, replacing any recovery codes with these digests.
pub fn enable_totp(conn: &Connection, admin_seq: i64, step: i64, codes: &[[u8; 32]]) -> Result<()> {
    conn.execute(
        "UPDATE admins SET totp_enabled = 1, totp_last_step = ?2, totp_failures = 0,
                totp_blocked_until = NULL
         WHERE seq = ?1",
        params![admin_seq, step],
    )?;
    conn.execute(
        "DELETE FROM admin_recovery_codes WHERE admin_seq = ?1",
        [admin_seq],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO admin_recovery_codes (admin_seq, digest) VALUES (?1, ?2)",
    )?;
    for c in codes {
        insert.execute(params![admin_seq, &c[..]])?;
    }
    Ok(())
}

/// Turns the second factor off and forgets its secret and recovery codes.
pub fn disable_totp(conn: &Connection, admin_seq: i64) -> Result<()> {
    conn.execute(
        "UPDATE admins SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0,
                totp_failures = 0, totp_blocked_until = NULL
         WHERE seq = ?1",
        [admin_seq],
    )?;
    conn.execute(
        "DELETE FROM admin_recovery_codes WHERE admin_seq = ?1",
        [admin_seq],
    )?;
    Ok(())
}

/// Records that a code of time step `step` was accepted; `false` when a code of that step or
/// a later one was accepted before (a replay).
pub fn use_step(conn: &Connection, admin_seq: i64, step: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE admins SET totp_last_step = ?2 WHERE seq = ?1 AND totp_last_step < ?2",
        params![admin_seq, step],
    )? == 1)
}

/// Counts a wrong second factor, and blocks TOTP codes until `blocked_until` when given.
pub fn wrong_code(conn: &Connection, admin_seq: i64, blocked_until: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE admins SET totp_failures = totp_failures + 1,
                totp_blocked_until = COALESCE(?2, totp_blocked_until)
         WHERE seq = ?1",
        params![admin_seq, blocked_until],
    )?;
    Ok(())
}

/// A second factor was accepted: the wrong ones before it no longer count.
pub fn code_accepted(conn: &Connection, admin_seq: i64) -> Result<()> {
    conn.execute(
        "UPDATE admins SET totp_failures = 0, totp_blocked_until = NULL
         WHERE seq = ?1 AND (totp_failures <> 0 OR totp_blocked_until IS NOT NULL)",
        [admin_seq],
    )?;
    Ok(())
}

/// Consumes the recovery code with this digest; whether it was one of the administrator's.
pub fn take_recovery_code(conn: &Connection, admin_seq: i64, digest: &[u8]) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM admin_recovery_codes WHERE admin_seq = ?1 AND digest = ?2",
        params![admin_seq, digest],
    )? == 1)
}

pub fn recovery_codes_left(conn: &Connection, admin_seq: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM admin_recovery_codes WHERE admin_seq = ?1",
        [admin_seq],
        |r| r.get(0),
    )?)
}
