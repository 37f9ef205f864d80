//! SCIM authentication and authorization: `Authorization: Bearer <token>` → the token's
//! principal, or 401; a live token whose scope does not cover the request → 403. Both are
//! decided here, in the one call every bearer-authenticated endpoint makes, so no endpoint
//! can authenticate without saying which scope it needs.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::App;
use crate::error::Error;
use crate::service::tokens::{self, Presented, Principal, Scope};

/// Why a request's bearer token was refused.
pub enum Refused {
    /// No valid token (the same 401 for every wrong one), or a failure looking it up.
    Unknown(Error),
    /// A whole token on record that has been revoked: 401 too, with the token's name and
    /// the secret's row.
    Revoked {
        error: Error,
        seq: i64,
        name: String,
    },
    /// A live token whose scope does not cover the request: 403, with who it was.
    OutOfScope { error: Error, principal: Principal },
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused::Unknown(error)
    }
}

/// The principal behind the request's bearer token, if its scope covers `needed`. Every
/// authentication failure is the same 401 (with `WWW-Authenticate`, added by the error
/// response), so a caller learns nothing about which part was wrong, nor whether the token
/// was ever a real one.
pub fn bearer(app: &App, headers: &HeaderMap, needed: Scope) -> Result<Principal, Refused> {
    let unauthorized = || Error::Unauthorized("a valid bearer token is required".into());
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized().into());
    }
    match tokens::authenticate(&app.store, token.trim())? {
        Presented::Live(principal) if principal.scope.covers(needed) => Ok(principal),
        Presented::Live(principal) => Err(Refused::OutOfScope {
            error: read_only(),
            principal,
        }),
        Presented::Revoked { seq, name } => Err(Refused::Revoked {
            error: unauthorized(),
            seq,
            name,
        }),
        Presented::Unknown => Err(unauthorized().into()),
    }
}

/// The 403 for a read token sending a write (the only scope that covers less than another).
/// RFC 7644 §3.12 defines no `scimType` for it, so the body has none, as for every 403.
fn read_only() -> Error {
    Error::Forbidden(
        "this token may only read (its scope is read): it may look up users and groups, \
         search and follow the change feed, but not create, change or delete anything"
            .into(),
    )
}
