//! SCIM authentication: `Authorization: Bearer <token>` → the token's principal, or 401.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::App;
use crate::error::{Error, Result};
use crate::service::tokens::{self, Principal};

/// The principal behind the request's bearer token. Every failure is the same 401 (with
/// `WWW-Authenticate`, added by the error response), so a caller learns nothing about which
/// part was wrong.
pub fn bearer(app: &App, headers: &HeaderMap) -> Result<Principal> {
    let unauthorized = || Error::Unauthorized("a valid bearer token is required".into());
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    tokens::authenticate(&app.store, token.trim())?.ok_or_else(unauthorized)
}

/// Failed SCIM authentications per client address. A client past `MAX_FAILURES` in `WINDOW`
/// gets 429 for each further *failed* attempt, without an audit entry each: a valid token is
/// always served, so another tenant behind the same address (an IdP's shared egress) cannot
/// lock a working client out.
#[derive(Default)]
pub struct FailedAuth(
    std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
);

const MAX_FAILURES: u32 = 20;
const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses remembered at most; expired ones are dropped first.
const MAX_CLIENTS: usize = 10_000;

impl FailedAuth {
    /// Notes a failure from `client`; `Err(429)` once it has failed too often.
    pub fn fail(&self, client: std::net::IpAddr) -> Result<()> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CLIENTS {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
            if map.len() >= MAX_CLIENTS {
                return Ok(());
            }
        }
        let entry = map.entry(client).or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
        if entry.0 > MAX_FAILURES {
            let wait = WINDOW.saturating_sub(entry.1.elapsed()).as_secs().max(1);
            return Err(Error::TooManyRequests(wait));
        }
        Ok(())
    }
}
