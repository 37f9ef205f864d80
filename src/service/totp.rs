//! The optional second factor of console administrators: TOTP (RFC 6238: HMAC-SHA1, 6 digits,
//! 30-second steps, one step of clock skew either way) computed by `totp-rs`, and ten
//! single-use recovery codes. Enrolment shows the secret once (as text, an otpauth:// URI and a
//! QR code) and takes effect only when a code from the app confirms it. A code's time step is
//! recorded when it is accepted, and no code of that step or an earlier one is accepted again
//! (§5.2: a code seen over someone's shoulder cannot be replayed). After `CODES_BEFORE_BLOCK`
//! wrong codes in a row (§5.1: a guesser who holds the password), TOTP codes are blocked for a
//! while that grows with each further wrong one, for every browser but the account's own
//! devices; recovery codes, which cannot be guessed online, still work, so the owner is never
//! locked out. The secret is stored as is: verifying needs it, so backups hold it.

use std::time::Duration;

use base64::Engine;
use serde::Serialize;

use super::admin::{admin_entry, digest, later};
use super::administrators::Reauthenticated;
use super::audit::Actor;
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::audit as store_audit;
use crate::store::{Store, administrators};

const ISSUER: &str = "scimd";
/// RFC 4226 §4 recommends 160-bit secrets.
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
/// Wrong codes in a row, from anyone, after which TOTP codes are blocked (NIST SP 800-63B
/// allows up to 100): at three codes' worth of luck per guess, ten give a guesser 3 in 100,000.
const CODES_BEFORE_BLOCK: i64 = 10;
/// The first block; each further wrong code doubles it, up to `LONGEST_BLOCK`.
const FIRST_BLOCK: Duration = Duration::from_secs(15 * 60);
const LONGEST_BLOCK: Duration = Duration::from_secs(24 * 3600);

/// What enrolment shows, once.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    /// Base32, for typing into an app.
    pub secret: String,
    /// `otpauth://totp/…`, for an app that reads links or QR codes.
    pub uri: String,
    /// The URI as a QR code: a `data:image/svg+xml` URL.
    pub qr: String,
}

/// An administrator's second factor as the console shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub enabled: bool,
    /// Enrolment started and awaits a code.
    pub pending: bool,
    pub recovery_codes_left: i64,
}

fn checker(secret_b32: &str) -> Result<totp_rs::Totp> {
    let bytes = totp_rs::Secret::try_from_base32(secret_b32)
        .map_err(|e| Error::internal(format!("stored TOTP secret unreadable: {e:?}")))?;
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build()
        .map_err(|e| Error::internal(format!("TOTP secret refused: {e:?}")))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The time step a 6-digit `code` belongs to (now, or one step either side), if any.
fn step_of(secret_b32: &str, code: &str) -> Result<Option<i64>> {
    step_at(secret_b32, code, unix_now())
}

/// `step_of` at `unix` seconds.
fn step_at(secret_b32: &str, code: &str, unix: u64) -> Result<Option<i64>> {
    let Some(code) = totp_digits(code) else {
        return Ok(None);
    };
    Ok(checker(secret_b32)?
        .check(&code, unix)
        .and_then(|s| i64::try_from(s).ok()))
}

/// The code as a TOTP code (6 digits; spaces do not matter), if it is one: anything else can
/// only be a recovery code.
fn totp_digits(code: &str) -> Option<String> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// A recovery code as stored (its digest): case, spaces and dashes do not matter.
fn recovery_digest(code: &str) -> [u8; 32] {
    let plain: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    digest(&plain)
}

/// Ten new recovery codes, `xxxxx-xxxxx` in Crockford's base32 (50 random bits each).
fn new_recovery_codes() -> Result<Vec<String>> {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut buf = [0u8; 10];
            getrandom::fill(&mut buf)
                .map_err(|e| Error::internal(format!("no randomness: {e}")))?;
            let chars: String = buf
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            Ok(format!("{}-{}", &chars[..5], &chars[5..]))
        })
        .collect()
}

fn base32(bytes: &[u8]) -> String {
    totp_rs::Secret::from(bytes.to_vec()).to_base32()
}

/// What the second factor of a sign-in came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SignInCode {
    Accepted,
    /// Wrong, or a TOTP code already used; counted.
    Wrong,
    /// A TOTP code while codes are blocked, from a browser that is not one of the account's
    /// devices: refused unchecked. Seconds until the block ends.
    Blocked(u64),
}

/// How long the `failures`-th wrong code in a row blocks TOTP codes: not at all before
/// `CODES_BEFORE_BLOCK`, then `FIRST_BLOCK`, doubling with each further one.
fn block_for(failures: i64) -> Option<Duration> {
    let past = failures.saturating_sub(CODES_BEFORE_BLOCK);
    let doublings = u32::try_from(past.min(16)).ok()?;
    Some(
        FIRST_BLOCK
            .saturating_mul(1 << doublings)
            .min(LONGEST_BLOCK),
    )
}

/// Checks a sign-in's second factor for an administrator whose second factor is on (`t`, read
/// in this transaction): a TOTP code of a step later than the last one accepted (recorded), or
/// one of its recovery codes (consumed). A wrong one is counted, and from the
/// `CODES_BEFORE_BLOCK`th in a row on blocks TOTP codes (audited as `admin.totp_blocked`,
/// `actor` naming the administrator) for browsers that are not `remembered` devices of it.
pub(super) fn sign_in_code(
    tx: &rusqlite::Connection,
    admin_seq: i64,
    t: &administrators::Totp,
    code: &str,
    remembered: bool,
    actor: &Actor,
) -> Result<SignInCode> {
    let Some(secret) = t.secret.as_deref().filter(|_| t.enabled) else {
        return Err(Error::internal("no second factor to check"));
    };
    let accepted = if totp_digits(code).is_some() {
        let now = ::time::OffsetDateTime::now_utc();
        let block_ends = t.blocked_until.as_deref().and_then(time::parse);
        if let Some(ends) = block_ends.filter(|e| *e > now && !remembered) {
            let left = (ends - now).whole_seconds().max(1);
            return Ok(SignInCode::Blocked(u64::try_from(left).unwrap_or(1)));
        }
        match step_of(secret, code)? {
            Some(step) => administrators::use_step(tx, admin_seq, step)?,
            None => false,
        }
    } else {
        administrators::take_recovery_code(tx, admin_seq, &recovery_digest(code))?
    };
    if accepted {
        administrators::code_accepted(tx, admin_seq)?;
        return Ok(SignInCode::Accepted);
    }
    let failures = t.failures + 1;
    let until = block_for(failures).map(later);
    administrators::wrong_code(tx, admin_seq, until.as_deref())?;
    if let Some(until) = until {
        let mut e = admin_entry(actor, "admin.totp_blocked", "failure", 401, &actor.name);
        e.detail = Some(serde_json::json!({"wrongCodes": failures, "until": until}));
        store_audit::insert(tx, &e)?;
    }
    Ok(SignInCode::Wrong)
}

pub async fn status(store: &Store, admin_seq: i64) -> Result<Status> {
    store
        .read(move |conn| {
            let t = administrators::totp(conn, admin_seq)?;
            Ok(Status {
                enabled: t.enabled,
                pending: !t.enabled && t.secret.is_some(),
                recovery_codes_left: if t.enabled {
                    administrators::recovery_codes_left(conn, admin_seq)?
                } else {
                    0
                },
            })
        })
        .await
}

fn otpauth_uri(username: &str, secret: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let label = utf8_percent_encode(&format!("{ISSUER}:{username}"), NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{label}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30"
    )
}

fn qr_data_url(text: &str) -> Result<String> {
    let svg = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| Error::internal(format!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// Starts enrolment with a new secret, replacing one not yet confirmed; refused while the
/// second factor is on.
pub async fn begin(store: &Store, admin_seq: i64, username: &str) -> Result<Enrolment> {
    let mut raw = [0u8; SECRET_BYTES];
    getrandom::fill(&mut raw).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let secret = base32(&raw);
    let stored = secret.clone();
    store
        .write(move |tx| {
            if administrators::totp(tx, admin_seq)?.enabled {
                return Err(Error::Forbidden(
                    "two-factor sign-in is on already: turn it off first to enrol again".into(),
                ));
            }
            administrators::start_totp(tx, admin_seq, &stored)
        })
        .await?;
    let uri = otpauth_uri(username, &secret);
    let qr = qr_data_url(&uri)?;
    Ok(Enrolment { secret, uri, qr })
}

/// Confirms enrolment with a code from the app, the administrator having just confirmed its
/// password: the second factor is on from now, and the ten recovery codes are returned (shown
/// once; only digests are kept).
pub async fn confirm(
    store: &Store,
    proof: Reauthenticated,
    code: &str,
    actor: &Actor,
) -> Result<Vec<String>> {
    let codes = new_recovery_codes()?;
    let digests: Vec<[u8; 32]> = codes.iter().map(|c| recovery_digest(c)).collect();
    let (code, actor) = (code.to_string(), actor.clone());
    store
        .write(move |tx| {
            proof.still_holds(tx)?;
            let admin_seq = proof.admin_seq();
            let t = administrators::totp(tx, admin_seq)?;
            if t.enabled {
                return Err(Error::Forbidden("two-factor sign-in is on already".into()));
            }
            let secret = t.secret.ok_or_else(|| {
                Error::InvalidValue("start enrolment first (Turn on two-factor sign-in)".into())
            })?;
            let step = step_of(&secret, &code)?.ok_or_else(|| {
                Error::InvalidValue(
                    "wrong code: enter the 6 digits your authenticator app shows now (check \
                     the device's clock)"
                        .into(),
                )
            })?;
            administrators::enable_totp(tx, admin_seq, step, &digests)?;
            store_audit::insert(
                tx,
                &admin_entry(&actor, "admin.totp_enable", "success", 200, &actor.name),
            )?;
            Ok(())
        })
        .await?;
    Ok(codes)
}

/// Turns the second factor off, the administrator having just confirmed its password.
pub async fn disable(store: &Store, proof: Reauthenticated, actor: &Actor) -> Result<()> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            proof.still_holds(tx)?;
            let admin_seq = proof.admin_seq();
            if !administrators::totp(tx, admin_seq)?.enabled {
                return Err(Error::Forbidden("two-factor sign-in is off already".into()));
            }
            administrators::disable_totp(tx, admin_seq)?;
            store_audit::insert(
                tx,
                &admin_entry(&actor, "admin.totp_disable", "success", 200, &actor.name),
            )?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 vectors, cut to 6 digits (the secret is the ASCII
    /// "12345678901234567890").
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_follow_rfc_6238_with_one_step_of_skew() {
        assert_eq!(base32(b"12345678901234567890"), RFC_SECRET);
        assert_eq!(step_at(RFC_SECRET, "287082", 59).unwrap(), Some(1));
        assert_eq!(
            step_at(RFC_SECRET, "081804", 1_111_111_109).unwrap(),
            Some(37_037_036)
        );
        assert_eq!(
            step_at(RFC_SECRET, "081 804", 1_111_111_109).unwrap(),
            Some(37_037_036)
        );
        // One step either side of the server's clock, not two.
        assert_eq!(step_at(RFC_SECRET, "287082", 59 + 30).unwrap(), Some(1));
        assert_eq!(step_at(RFC_SECRET, "287082", 59 - 30).unwrap(), Some(1));
        assert_eq!(step_at(RFC_SECRET, "287082", 59 + 60).unwrap(), None);
        assert_eq!(step_at(RFC_SECRET, "28708", 59).unwrap(), None);
        assert_eq!(
            step_at(RFC_SECRET, "94287082", 59).unwrap(),
            None,
            "6 digits only"
        );
    }

    #[test]
    fn codes_are_blocked_from_the_tenth_wrong_one_doubling_up_to_a_day() {
        assert_eq!(block_for(1), None);
        assert_eq!(block_for(9), None);
        assert_eq!(block_for(10), Some(FIRST_BLOCK));
        assert_eq!(block_for(11), Some(FIRST_BLOCK * 2));
        assert_eq!(block_for(16), Some(FIRST_BLOCK * 64));
        assert_eq!(block_for(17), Some(LONGEST_BLOCK));
        assert_eq!(block_for(i64::MAX), Some(LONGEST_BLOCK));
    }

    #[test]
    fn recovery_codes_are_random_and_typed_loosely() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(
                recovery_digest(c),
                recovery_digest(&c.to_uppercase().replace('-', " "))
            );
        }
        assert_ne!(recovery_digest(&codes[0]), recovery_digest(&codes[1]));
    }

    #[test]
    fn the_otpauth_uri_names_issuer_and_account() {
        assert_eq!(
            otpauth_uri("ana b", "ABC"),
            "otpauth://totp/scimd%3Aana%20b?secret=ABC&issuer=scimd&algorithm=SHA1&digits=6&period=30"
        );
    }
}
