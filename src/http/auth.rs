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
