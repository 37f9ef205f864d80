//! SCIM bearer tokens: creation, authentication, listing, revocation.
//!
//! A token is `scimd_<lookup>_<secret>`: `lookup` (16 hex digits) finds the row, `secret` is
//! 256 random bits. Only the SHA-256 digest of the whole token is stored, and it is compared in
//! constant time. A fast digest is right here: the secret has 256 bits of entropy, so a slow
//! password hash would only cap throughput and hand unauthenticated callers a CPU lever.
//!
//! "Last used" is kept in memory and flushed in one transaction now and then (`LastUsed`), so
//! authenticating costs no write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::Actor;
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::{Store, tokens};

pub use crate::store::tokens::{Scope, TokenInfo};

const PREFIX: &str = "scimd_";
const LOOKUP_LEN: usize = 16;

/// Who made a request: the token's row and name (for logs; never the secret), and what it
/// may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_seq: i64,
    pub name: String,
    pub scope: Scope,
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Splits a presented token into its lookup part; `None` if it is not shaped like ours.
fn lookup_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (lookup, secret) = rest.split_at_checked(LOOKUP_LEN)?;
    let secret = secret.strip_prefix('_')?;
    (lookup.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some(lookup)
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Error::InvalidValue(
            "a token name must be 1 to 100 printable characters".into(),
        ));
    }
    Ok(())
}

/// A new token: (lookup, the whole token, its digest).
fn fresh() -> Result<(String, String, [u8; 32])> {
    let lookup: String = random_bytes::<8>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let token = format!("{PREFIX}{lookup}_{secret}");
    let d = digest(&token);
    Ok((lookup, token, d))
}

/// The audit entry of a token action; the secret is never part of it.
fn record(
    tx: &rusqlite::Connection,
    actor: &Actor,
    action: &str,
    name: &str,
    detail: Option<serde_json::Value>,
) -> Result<()> {
    super::audit::record_named(tx, actor, action, "Token", name, detail)
}

/// Creates a write token called `name` as the command line (`cli` in the audit log) and
/// returns its secret.
pub fn create(store: &Store, name: &str) -> Result<String> {
    create_as(store, name, Scope::Write, &Actor::cli())
}

/// Creates a token called `name` with `scope` and returns its secret, which is not stored
/// anywhere. Blocking (one durable write).
pub fn create_as(store: &Store, name: &str, scope: Scope, actor: &Actor) -> Result<String> {
    check_name(name)?;
    let (lookup, token, d) = fresh()?;
    store.write_sync(|tx| {
        tokens::insert(tx, name, scope, &lookup, &d, &time::now())?;
        let detail = serde_json::json!({"scope": scope});
        record(tx, actor, "token.create", name, Some(detail))
    })?;
    Ok(token)
}

/// Gives the token called `name` a new secret (of the same scope) and returns it. The old
/// secret keeps working for `overlap` (zero: it stops at once), so a client can be switched
/// without a gap.
pub fn regenerate(store: &Store, name: &str, overlap: Duration, actor: &Actor) -> Result<String> {
    let (lookup, token, d) = fresh()?;
    let now = ::time::OffsetDateTime::now_utc();
    let until = time::format(now + overlap);
    let done = store.write_sync(|tx| {
        let ok = tokens::regenerate(tx, name, &lookup, &d, &time::format(now), &until)?;
        if ok {
            let detail = serde_json::json!({"oldSecretValidUntil": until});
            record(tx, actor, "token.regenerate", name, Some(detail))?;
        }
        Ok(ok)
    })?;
    if done {
        Ok(token)
    } else {
        Err(Error::NotFound(format!("no live token named \"{name}\"")))
    }
}

pub fn list(store: &Store) -> Result<Vec<TokenInfo>> {
    store.read_sync(tokens::list)
}

/// One secret of a token, as the console lists it: never the secret, only how it begins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// `scimd_` and half the lookup part: enough to tell which secret a client holds.
    pub starts: String,
    pub created: String,
    pub last_used: Option<String>,
    pub last_client: Option<String>,
    pub last_request: Option<String>,
    /// When it stops (stopped) working; `None` for the current secret of a live token.
    pub ends: Option<String>,
}

/// A token as the console lists it: one per name with its secrets beneath. A live token
/// holds its current secret and any older one still working in a rotation's overlap; the
/// secrets of a name that no longer work make a second, revoked entry of that name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub name: String,
    pub scope: Scope,
    /// The newest secret's creation (a live token's current secret).
    pub created: String,
    /// The last request with any of its secrets: when, from where, what.
    pub last_used: Option<String>,
    pub last_client: Option<String>,
    pub last_request: Option<String>,
    /// `None` while live; else when its last secret stopped working.
    pub revoked: Option<String>,
    /// Newest first.
    pub secrets: Vec<SecretInfo>,
    /// The Overview warns when the token is silent for longer than this many hours.
    pub expect_every_hours: Option<u32>,
}

/// Every token, live ones first (oldest first), then revoked ones (most recently revoked
/// first), each with its secrets. Blocking (one read).
pub fn listed(store: &Store) -> Result<Vec<TokenView>> {
    let rows = list(store)?;
    Ok(group(rows, &time::now()))
}

/// Groups secret rows (as `store::tokens::list` orders them) into tokens, as of `now`.
fn group(rows: Vec<TokenInfo>, now: &str) -> Vec<TokenView> {
    let works = |t: &TokenInfo| t.revoked.as_deref().is_none_or(|r| r > now);
    let mut live: Vec<TokenView> = Vec::new();
    let mut dead: Vec<TokenView> = Vec::new();
    for row in rows {
        let list = if works(&row) { &mut live } else { &mut dead };
        let secret = SecretInfo {
            starts: format!("{PREFIX}{}", row.lookup.get(..LOOKUP_LEN / 2).unwrap_or("")),
            created: row.created.clone(),
            last_used: row.last_used.clone(),
            last_client: row.last_client.clone(),
            last_request: row.last_request.clone(),
            ends: row.revoked.clone(),
        };
        let view = match list.iter_mut().find(|v| v.name == row.name) {
            Some(v) => v,
            None => {
                list.push(TokenView {
                    name: row.name.clone(),
                    scope: row.scope,
                    created: row.created.clone(),
                    last_used: None,
                    last_client: None,
                    last_request: None,
                    revoked: None,
                    secrets: Vec::new(),
                    expect_every_hours: None,
                });
                let n = list.len() - 1;
                &mut list[n]
            }
        };
        if row.created >= view.created {
            view.created = row.created.clone();
            view.scope = row.scope;
            view.expect_every_hours = row.expect_every_hours;
        }
        if row.last_used > view.last_used {
            view.last_used = row.last_used;
            view.last_client = row.last_client;
            view.last_request = row.last_request;
        }
        if row.revoked > view.revoked {
            view.revoked = row.revoked;
        }
        view.secrets.push(secret);
    }
    for v in live.iter_mut().chain(dead.iter_mut()) {
        v.secrets.sort_by(|a, b| b.created.cmp(&a.created));
    }
    // A live entry is not revoked, though its old secrets carry an end (an overlap's).
    for v in &mut live {
        v.revoked = None;
    }
    dead.sort_by(|a, b| b.revoked.cmp(&a.revoked));
    live.extend(dead);
    live
}

/// Revokes the token called `name` (from the command line).
pub fn revoke(store: &Store, name: &str) -> Result<()> {
    revoke_as(store, name, &Actor::cli())
}

/// Revokes the token called `name`: every secret of it stops working at once.
pub fn revoke_as(store: &Store, name: &str, actor: &Actor) -> Result<()> {
    let done = store.write_sync(|tx| {
        let ok = tokens::revoke(tx, name, &time::now())?;
        if ok {
            record(tx, actor, "token.revoke", name, None)?;
        }
        Ok(ok)
    })?;
    if done {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no live token named \"{name}\"")))
    }
}

/// What a presented bearer token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A live token: its principal.
    Live(Principal),
    /// A whole token of ours that no longer works (revoked, or its overlap after a
    /// regeneration ended), by name: a real client with a stale credential, not a guesser.
    /// Never authenticates; the caller answers as for any wrong token. `seq` is the
    /// secret's row, against which the Overview counts the refusal.
    Revoked { seq: i64, name: String },
    /// Anything else.
    Unknown,
}

/// What a presented bearer token is. Looked up in the database on every request (one indexed
/// read by its public part), so a revocation (from any process) takes effect at once. The
/// secret is compared in constant time whether the token is live or not, so a token counts
/// as revoked only for whoever holds all of it.
pub fn authenticate(store: &Store, token: &str) -> Result<Presented> {
    let Some(lookup) = lookup_of(token) else {
        return Ok(Presented::Unknown);
    };
    let presented = digest(token);
    let row = store.read_now(|conn| tokens::find(conn, lookup, &time::now()))?;
    Ok(match row {
        Some(row) if bool::from(row.digest.as_slice().ct_eq(&presented)) => {
            if row.live {
                Presented::Live(Principal {
                    token_seq: row.seq,
                    name: row.name,
                    scope: row.scope,
                })
            } else {
                Presented::Revoked {
                    seq: row.seq,
                    name: row.name,
                }
            }
        }
        _ => Presented::Unknown,
    })
}

/// The last request of each token, waiting to be written.
#[derive(Default)]
pub struct LastUsed(Mutex<HashMap<i64, Pending>>);

struct Pending {
    at: ::time::OffsetDateTime,
    client: std::net::IpAddr,
    method: http::Method,
    route: &'static str,
    status: u16,
}

impl LastUsed {
    /// Notes a request of the token `token_seq`: cheap, as it runs on every request (the
    /// text is made at flush time).
    pub fn record(
        &self,
        token_seq: i64,
        client: std::net::IpAddr,
        method: http::Method,
        route: &'static str,
        status: u16,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            token_seq,
            Pending {
                at: ::time::OffsetDateTime::now_utc(),
                client,
                method,
                route,
                status,
            },
        );
    }

    /// Writes what was recorded since the last flush, in one transaction.
    pub async fn flush(&self, store: &Store) -> Result<()> {
        let pending: Vec<(i64, tokens::Use)> = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.drain()
                .map(|(seq, p)| {
                    let u = tokens::Use {
                        at: time::format(p.at),
                        client: p.client.to_string(),
                        request: format!("{} {} → {}", p.method, p.route, p.status),
                    };
                    (seq, u)
                })
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        store.write(move |tx| tokens::touch(tx, &pending)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_parsed_only_from_well_formed_tokens() {
        assert_eq!(
            lookup_of("scimd_0123456789abcdef_s3cret-_x"),
            Some("0123456789abcdef")
        );
        assert_eq!(lookup_of("scimd_0123456789abcdef_"), None);
        assert_eq!(lookup_of("scimd_0123456789abcdeg_x"), None);
        assert_eq!(lookup_of("scimd_short_x"), None);
        assert_eq!(lookup_of("Bearer scimd_0123456789abcdef_x"), None);
        assert_eq!(lookup_of("scimd_ééééééééé_x"), None);
    }

    fn row(name: &str, lookup: &str, created: &str, revoked: Option<&str>) -> TokenInfo {
        TokenInfo {
            name: name.into(),
            scope: Scope::Write,
            created: created.into(),
            last_used: None,
            revoked: revoked.map(str::to_string),
            last_client: None,
            last_request: None,
            lookup: lookup.into(),
            expect_every_hours: None,
        }
    }

    #[test]
    fn a_token_lists_its_working_secrets_beneath_and_its_dead_ones_apart() {
        let now = "2026-01-02T00:00:00.000Z";
        let mut old = row("idp", "aaaaaaaa00000000", "2026-01-01T00:00:00.000Z", None);
        old.revoked = Some("2026-01-03T00:00:00.000Z".into());
        old.last_used = Some("2026-01-01T12:00:00.000Z".into());
        old.last_client = Some("10.0.0.1".into());
        let current = row("idp", "bbbbbbbb00000000", "2026-01-01T23:00:00.000Z", None);
        let gone = row(
            "idp",
            "cccccccc00000000",
            "2025-12-01T00:00:00.000Z",
            Some("2025-12-02T00:00:00.000Z"),
        );
        let other = row(
            "feed",
            "dddddddd00000000",
            "2025-11-01T00:00:00.000Z",
            Some("2025-11-02T00:00:00.000Z"),
        );
        // As the store orders them: unrevoked first, then by seq.
        let listed = group(vec![current, gone, other, old], now);
        let names: Vec<(&str, bool)> = listed
            .iter()
            .map(|t| (t.name.as_str(), t.revoked.is_none()))
            .collect();
        assert_eq!(names, [("idp", true), ("idp", false), ("feed", false)]);
        let live = &listed[0];
        let starts: Vec<&str> = live.secrets.iter().map(|s| s.starts.as_str()).collect();
        assert_eq!(starts, ["scimd_bbbbbbbb", "scimd_aaaaaaaa"], "newest first");
        assert_eq!(live.secrets[0].ends, None);
        assert_eq!(
            live.secrets[1].ends.as_deref(),
            Some("2026-01-03T00:00:00.000Z")
        );
        assert_eq!(live.created, "2026-01-01T23:00:00.000Z");
        assert_eq!(
            live.last_client.as_deref(),
            Some("10.0.0.1"),
            "the old secret's use"
        );
        assert_eq!(
            listed[1].revoked.as_deref(),
            Some("2025-12-02T00:00:00.000Z")
        );
        assert_eq!(listed[1].secrets.len(), 1);
    }

    #[test]
    fn names_must_be_printable_and_short() {
        assert!(check_name("onelogin").is_ok());
        assert!(check_name(" ").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
    }
}
