//! SQL for console administrators, their sessions and device cookies, one-time setup codes and
//! settings. Secrets are stored as digests (sessions, devices, setup codes) or argon2id hashes
//! (passwords), never as is.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// An administrator as sign-in needs it.
#[derive(Debug, Clone)]
pub struct AdminRow {
    pub seq: i64,
    pub username: String,
    pub password_hash: String,
    /// When the password was last set.
    pub updated: String,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub admin_seq: i64,
    pub username: String,
    pub csrf: String,
    pub expires: String,
}

fn fold(name: &str) -> String {
    name.to_lowercase()
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM admins", [], |r| r.get(0))?)
}

pub fn find(conn: &Connection, username: &str) -> Result<Option<AdminRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, username, password_hash, updated FROM admins WHERE username_fold = ?1",
        )?
        .query_row([fold(username)], |r| {
            Ok(AdminRow {
                seq: r.get(0)?,
                username: r.get(1)?,
                password_hash: r.get(2)?,
                updated: r.get(3)?,
            })
        })
        .optional()?)
}

/// Creates the administrator or replaces its password; its sessions end, its devices are
/// forgotten and its second factor is turned off either way (`scimd admin set-password` is
/// the way back for an administrator who lost both the authenticator and the recovery codes).
pub fn set_password(conn: &Connection, username: &str, hash: &str, now: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO admins (username, username_fold, password_hash, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (username_fold) DO UPDATE SET password_hash = ?3, updated = ?4",
        params![username, fold(username), hash, now],
    )?;
    conn.execute(
        "DELETE FROM sessions WHERE admin_seq = (SELECT seq FROM admins WHERE username_fold = ?1)",
        [fold(username)],
    )?;
    conn.execute(
        "DELETE FROM admin_devices
         WHERE admin_seq = (SELECT seq FROM admins WHERE username_fold = ?1)",
        [fold(username)],
    )?;
    conn.execute(
        "DELETE FROM admin_recovery_codes
         WHERE admin_seq = (SELECT seq FROM admins WHERE username_fold = ?1)",
        [fold(username)],
    )?;
    conn.execute(
        "UPDATE admins SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0,
                totp_failures = 0, totp_blocked_until = NULL
         WHERE username_fold = ?1",
        [fold(username)],
    )?;
    Ok(())
}

/// Remembers a device (the digest of its cookie) for an administrator, keeping only its
/// `keep` most recently used devices, and dropping every device unused since `stale`.
pub fn add_device(
    conn: &Connection,
    digest: &[u8],
    admin_seq: i64,
    now: &str,
    stale: &str,
    keep: usize,
) -> Result<()> {
    conn.execute("DELETE FROM admin_devices WHERE last_used <= ?1", [stale])?;
    conn.execute(
        "INSERT INTO admin_devices (digest, admin_seq, created, last_used) VALUES (?1, ?2, ?3, ?3)",
        params![digest, admin_seq, now],
    )?;
    conn.execute(
        "DELETE FROM admin_devices WHERE admin_seq = ?1 AND digest NOT IN
           (SELECT digest FROM admin_devices WHERE admin_seq = ?1
            ORDER BY last_used DESC, created DESC LIMIT ?2)",
        params![admin_seq, i64::try_from(keep).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// Whether the device with this digest belongs to the administrator and was used after
/// `stale`.
pub fn is_device(conn: &Connection, digest: &[u8], admin_seq: i64, stale: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM admin_devices WHERE digest = ?1 AND admin_seq = ?2 AND last_used > ?3",
        )?
        .exists(params![digest, admin_seq, stale])?)
}

/// Marks a device as used now.
pub fn touch_device(conn: &Connection, digest: &[u8], now: &str) -> Result<()> {
    conn.execute(
        "UPDATE admin_devices SET last_used = ?2 WHERE digest = ?1",
        params![digest, now],
    )?;
    Ok(())
}

/// Forgets every device of the administrator; how many there were.
pub fn forget_devices(conn: &Connection, admin_seq: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM admin_devices WHERE admin_seq = ?1",
        [admin_seq],
    )?)
}

/// How many devices the administrator has.
pub fn device_count(conn: &Connection, admin_seq: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM admin_devices WHERE admin_seq = ?1",
        [admin_seq],
        |r| r.get(0),
    )?)
}

pub fn create_session(
    conn: &Connection,
    digest: &[u8],
    admin_seq: i64,
    csrf: &str,
    now: &str,
    expires: &str,
) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE expires <= ?1", [now])?;
    conn.execute(
        "INSERT INTO sessions (digest, admin_seq, csrf, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![digest, admin_seq, csrf, now, expires],
    )?;
    // At most `MAX_SESSIONS` per administrator, the newest: sign-ins that are never signed
    // out (a script, a kiosk) would otherwise pile up for their 12 hours each.
    conn.execute(
        "DELETE FROM sessions WHERE admin_seq = ?1 AND digest <> ?2 AND digest NOT IN
           (SELECT digest FROM sessions WHERE admin_seq = ?1 AND digest <> ?2
            ORDER BY created DESC LIMIT ?3)",
        params![admin_seq, digest, MAX_SESSIONS - 1],
    )?;
    Ok(())
}

/// Sessions kept per administrator; a sign-in beyond them ends the oldest.
pub const MAX_SESSIONS: i64 = 50;

/// The session whose secret has this digest, if it has not expired.
pub fn find_session(conn: &Connection, digest: &[u8], now: &str) -> Result<Option<SessionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT s.admin_seq, a.username, s.csrf, s.expires
             FROM sessions s JOIN admins a ON a.seq = s.admin_seq
             WHERE s.digest = ?1 AND s.expires > ?2",
        )?
        .query_row(params![digest, now], |r| {
            Ok(SessionRow {
                admin_seq: r.get(0)?,
                username: r.get(1)?,
                csrf: r.get(2)?,
                expires: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn delete_session(conn: &Connection, digest: &[u8]) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE digest = ?1", [digest])?;
    Ok(())
}

const SETUP_CODE_KEY: &str = "setup_code";

/// Stores the digest of a new one-time setup code (replacing any earlier one).
pub fn put_setup_code(conn: &Connection, digest_hex: &str, expires: &str) -> Result<()> {
    let value = serde_json::json!({"digest": digest_hex, "expires": expires}).to_string();
    set_setting(conn, SETUP_CODE_KEY, &value)
}

/// Whether the setup code with this digest is the current one and has not expired.
pub fn setup_code_is_current(conn: &Connection, digest_hex: &str, now: &str) -> Result<bool> {
    let Some(stored) = setting(conn, SETUP_CODE_KEY)? else {
        return Ok(false);
    };
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap_or_default();
    let matches = v["digest"]
        .as_str()
        .is_some_and(|d| subtle::ConstantTimeEq::ct_eq(d.as_bytes(), digest_hex.as_bytes()).into());
    Ok(matches && v["expires"].as_str().is_some_and(|e| e > now))
}

/// Consumes the setup code with this digest if it is current; returns whether it was.
pub fn take_setup_code(conn: &Connection, digest_hex: &str, now: &str) -> Result<bool> {
    if !setup_code_is_current(conn, digest_hex, now)? {
        return Ok(false);
    }
    conn.execute("DELETE FROM settings WHERE key = ?1", [SETUP_CODE_KEY])?;
    Ok(true)
}

pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_bounded_per_administrator_and_forgotten_with_a_new_password() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&mut conn).unwrap();
        set_password(&conn, "ana", "h1", "2026-01-01T00:00:00Z").unwrap();
        set_password(&conn, "bo", "h2", "2026-01-01T00:00:00Z").unwrap();
        let (ana, bo) = (
            find(&conn, "ANA").unwrap().unwrap(),
            find(&conn, "bo").unwrap().unwrap(),
        );
        let stale = "2025-01-01T00:00:00Z";
        for i in 0..12u8 {
            let now = format!("2026-01-02T00:00:{i:02}Z");
            add_device(&conn, &[i], ana.seq, &now, stale, 10).unwrap();
        }
        add_device(&conn, &[99], bo.seq, "2026-01-02T00:00:00Z", stale, 10).unwrap();
        assert_eq!(device_count(&conn, ana.seq).unwrap(), 10);
        assert!(
            !is_device(&conn, &[0], ana.seq, stale).unwrap(),
            "the oldest went"
        );
        assert!(is_device(&conn, &[11], ana.seq, stale).unwrap());
        assert!(
            !is_device(&conn, &[99], ana.seq, stale).unwrap(),
            "bo's, not ana's"
        );
        // A device unused since `stale` no longer counts, and the next addition drops it.
        assert!(!is_device(&conn, &[11], ana.seq, "2026-01-02T00:00:11Z").unwrap());
        touch_device(&conn, &[2], "2026-02-01T00:00:00Z").unwrap();
        add_device(
            &conn,
            &[50],
            ana.seq,
            "2026-02-01T00:00:01Z",
            "2026-01-03T00:00:00Z",
            10,
        )
        .unwrap();
        assert_eq!(device_count(&conn, ana.seq).unwrap(), 2);
        assert_eq!(device_count(&conn, bo.seq).unwrap(), 0, "stale, whoever's");
        add_device(&conn, &[98], bo.seq, "2026-02-01T00:00:02Z", stale, 10).unwrap();
        set_password(&conn, "ana", "h3", "2026-02-02T00:00:00Z").unwrap();
        assert_eq!(device_count(&conn, ana.seq).unwrap(), 0);
        assert_eq!(device_count(&conn, bo.seq).unwrap(), 1);
    }

    #[test]
    fn sessions_are_bounded_per_administrator_newest_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&mut conn).unwrap();
        set_password(&conn, "ana", "h1", "2026-01-01T00:00:00Z").unwrap();
        set_password(&conn, "bo", "h2", "2026-01-01T00:00:00Z").unwrap();
        let ana = find(&conn, "ana").unwrap().unwrap().seq;
        let bo = find(&conn, "bo").unwrap().unwrap().seq;
        let far = "2027-01-01T00:00:00Z";
        create_session(&conn, &[200], bo, "c", "2026-01-01T00:00:00Z", far).unwrap();
        let count = |seq: i64| -> i64 {
            conn.query_row(
                "SELECT COUNT(*) FROM sessions WHERE admin_seq = ?1",
                [seq],
                |r| r.get(0),
            )
            .unwrap()
        };
        for i in 0..=MAX_SESSIONS {
            let now = format!("2026-01-02T00:{:02}:{:02}Z", i / 60, i % 60);
            let digest = [u8::try_from(i).unwrap()];
            create_session(&conn, &digest, ana, "c", &now, far).unwrap();
        }
        assert_eq!(count(ana), MAX_SESSIONS);
        let now = "2026-01-03T00:00:00Z";
        assert!(
            find_session(&conn, &[0], now).unwrap().is_none(),
            "the oldest ended"
        );
        assert!(find_session(&conn, &[1], now).unwrap().is_some());
        let newest = [u8::try_from(MAX_SESSIONS).unwrap()];
        assert!(find_session(&conn, &newest, now).unwrap().is_some());
        assert_eq!(count(bo), 1, "another administrator's are not touched");
    }
}
