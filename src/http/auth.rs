//! SCIM authentication: `Authorization: Bearer <token>` → the token's principal, or 401.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::App;
use crate::error::Error;
use crate::service::tokens::{self, Presented, Principal};

/// Why a request's bearer token was refused: the error to answer with (the same 401 for
/// every wrong token), and the name of the token on record it was, if it was a whole token
/// that has been revoked.
pub struct Refused {
    pub error: Error,
    pub revoked: Option<String>,
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            error,
            revoked: None,
        }
    }
}

/// The principal behind the request's bearer token. Every failure is the same 401 (with
/// `WWW-Authenticate`, added by the error response), so a caller learns nothing about which
/// part was wrong, nor whether the token was ever a real one.
pub fn bearer(app: &App, headers: &HeaderMap) -> std::result::Result<Principal, Refused> {
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
        Presented::Live(p) => Ok(p),
        Presented::Revoked(name) => Err(Refused {
            error: unauthorized(),
            revoked: Some(name),
        }),
        Presented::Unknown => Err(unauthorized().into()),
    }
}
