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

/// The principal behind the request's bearer token, if its scope covers `needed`. A refusal
/// is a 401 (with `WWW-Authenticate`, added by the error response) that says which of three
/// things went wrong: no `Authorization` header, one that is not a bearer token, or a token
/// that is not a live one. It never says more: an unknown and a revoked token (or a real
/// token's name with a wrong secret) get the same words, so a caller learns nothing about
/// which tokens exist.
pub fn bearer(app: &App, headers: &HeaderMap, needed: Scope) -> Result<Principal, Refused> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(missing().into());
    };
    let bearer = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        });
    let Some((_, token)) = bearer else {
        return Err(not_bearer().into());
    };
    match tokens::authenticate(&app.store, token.trim())? {
        Presented::Live(principal) if principal.scope.covers(needed) => Ok(principal),
        Presented::Live(principal) => Err(Refused::OutOfScope {
            error: read_only(),
            principal,
        }),
        Presented::Revoked { seq, name } => Err(Refused::Revoked {
            error: not_live(),
            seq,
            name,
        }),
        Presented::Unknown => Err(not_live().into()),
    }
}

/// The 401 for a request without an `Authorization` header.
fn missing() -> Error {
    Error::Unauthorized(
        "the Authorization header is missing: send `Authorization: Bearer <token>` with a \
         token from `scimd token create`"
            .into(),
    )
}

/// The 401 for an `Authorization` header that is not `Bearer <token>` (Basic, a bare token).
fn not_bearer() -> Error {
    Error::Unauthorized(
        "the Authorization header is not a bearer token: send `Authorization: Bearer <token>`"
            .into(),
    )
}

/// The 401 for a bearer token that is unknown, revoked, or past its overlap: one message for
/// all of them.
fn not_live() -> Error {
    Error::Unauthorized(
        "the bearer token is unknown or revoked: check the token your client sends, or \
         create a new one (`scimd token create` or the console's Tokens page)"
            .into(),
    )
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
