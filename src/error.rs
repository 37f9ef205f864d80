//! The one error type. Each variant knows its HTTP status and SCIM `scimType`
//! (RFC 7644 §3.12), so every failure reaches the client as a SCIM error body. What the client
//! sees (`detail`) is separate from the internal cause, which is logged and never sent.

use http::StatusCode;
use serde_json::{Value, json};

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request body is not valid JSON or not a JSON object.
    #[error("{0}")]
    InvalidSyntax(String),
    /// A value is missing, has the wrong type or is not acceptable.
    #[error("{0}")]
    InvalidValue(String),
    /// The filter could not be parsed or is not supported.
    #[error("{0}")]
    InvalidFilter(String),
    /// A pagination cursor the server did not issue (RFC 9865 `invalidCursor`).
    #[error("{0}")]
    InvalidCursor(String),
    /// More work than the server does for one request (RFC 7644 §3.12 `tooMany`): a PATCH
    /// over its cost limit, or a read over its time budget.
    #[error("{0}")]
    TooMany(String),
    /// A value that must be unique is already taken.
    #[error("{0}")]
    Uniqueness(String),
    /// An attempt to modify a readOnly or immutable attribute.
    #[error("{0}")]
    Mutability(String),
    /// A PATCH path that does not parse or names no attribute of the resource.
    #[error("{0}")]
    InvalidPath(String),
    /// A PATCH operation whose path selects nothing it can act on.
    #[error("{0}")]
    NoTarget(String),
    /// `If-Match` named a version the resource no longer has (RFC 7644 §3.14).
    #[error("{0}")]
    PreconditionFailed(String),
    /// A bulk operation references a `bulkId` that no operation of the request created: its
    /// POST failed or did not run, none declares it, or the references go round in a circle
    /// scimd cannot resolve (RFC 7644 §3.7.1: 409, no `scimType`).
    #[error("{0}")]
    Conflict(String),
    /// The resource or endpoint does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed (a console request without its CSRF token, …).
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts; carries how many seconds to wait.
    #[error("too many failed attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    /// The endpoint exists but not for this method; carries the allowed methods.
    #[error("method not allowed")]
    MethodNotAllowed(&'static [&'static str]),
    /// The body is larger than the configured limit (bytes).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A bulk request with more operations than `maxOperations` (RFC 7644 §3.7.3: 413, the
    /// limit named in the detail). Unlike `PayloadTooLarge`, the body was read whole.
    #[error("{0}")]
    TooManyOperations(String),
    /// The client took too long to send its request body.
    #[error("the request body did not arrive within {0} seconds")]
    Timeout(f64),
    /// A change feed position that is no longer served (410): its events were pruned, or it
    /// is past the newest event (the database was restored from an older backup). Carries
    /// the oldest event id still kept (none when none is) and the newest, so the consumer
    /// knows to resync.
    #[error("{detail}")]
    Gone {
        detail: String,
        oldest: Option<i64>,
        head: i64,
    },
    /// The server is busy with other work of this kind; try again shortly (503, Retry-After).
    #[error("{0}")]
    Busy(String),
    /// An RFC 7644 endpoint or method this version does not implement.
    #[error("{0}")]
    NotImplemented(String),
    /// The service cannot take this request now (its database file is gone from under it).
    #[error("{0}")]
    Unavailable(String),
    /// An unexpected failure: the cause is logged, the client only learns "internal error".
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidSyntax(_)
            | Error::InvalidValue(_)
            | Error::InvalidFilter(_)
            | Error::InvalidCursor(_)
            | Error::Mutability(_)
            | Error::InvalidPath(_)
            | Error::NoTarget(_)
            | Error::TooMany(_) => StatusCode::BAD_REQUEST,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::Uniqueness(_) | Error::Conflict(_) => StatusCode::CONFLICT,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone { .. } => StatusCode::GONE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge(_) | Error::TooManyOperations(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// RFC 7644 §3.12 `scimType`, where the RFC defines one for this failure.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            Error::InvalidSyntax(_) => Some("invalidSyntax"),
            Error::InvalidValue(_) => Some("invalidValue"),
            Error::InvalidFilter(_) => Some("invalidFilter"),
            Error::InvalidCursor(_) => Some("invalidCursor"),
            Error::Uniqueness(_) => Some("uniqueness"),
            Error::Mutability(_) => Some("mutability"),
            Error::InvalidPath(_) => Some("invalidPath"),
            Error::NoTarget(_) => Some("noTarget"),
            Error::TooMany(_) => Some("tooMany"),
            _ => None,
        }
    }

    /// The text sent to the client. Internal causes stay in the log.
    pub fn detail(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// The SCIM error body (RFC 7644 §3.12); `status` is a string as the RFC's examples show.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status().as_u16().to_string(),
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = json!(t);
        }
        body["detail"] = json!(self.detail());
        if let Error::Gone { oldest, head, .. } = self {
            body["oldest"] = json!(oldest.map(|o| o.to_string()));
            body["head"] = json!(head.to_string());
        }
        body
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::internal(format!("database: {e}"))
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::internal(format!("database pool: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every variant's status and scimType so a "not found" can never ship as 400.
    #[test]
    fn every_variant_has_its_status_and_scim_type() {
        let cases: Vec<(Error, u16, Option<&str>)> = vec![
            (Error::InvalidSyntax("x".into()), 400, Some("invalidSyntax")),
            (Error::InvalidValue("x".into()), 400, Some("invalidValue")),
            (Error::InvalidFilter("x".into()), 400, Some("invalidFilter")),
            (Error::InvalidCursor("x".into()), 400, Some("invalidCursor")),
            (Error::Uniqueness("x".into()), 409, Some("uniqueness")),
            (Error::Mutability("x".into()), 400, Some("mutability")),
            (Error::InvalidPath("x".into()), 400, Some("invalidPath")),
            (Error::NoTarget("x".into()), 400, Some("noTarget")),
            (Error::TooMany("x".into()), 400, Some("tooMany")),
            (Error::Busy("x".into()), 503, None),
            (Error::PreconditionFailed("x".into()), 412, None),
            (Error::Conflict("x".into()), 409, None),
            (Error::NotFound("x".into()), 404, None),
            (
                Error::Gone {
                    detail: "x".into(),
                    oldest: Some(3),
                    head: 9,
                },
                410,
                None,
            ),
            (Error::Unauthorized("x".into()), 401, None),
            (Error::Forbidden("x".into()), 403, None),
            (Error::TooManyRequests(5), 429, None),
            (Error::MethodNotAllowed(&["GET"]), 405, None),
            (Error::PayloadTooLarge(10), 413, None),
            (Error::TooManyOperations("x".into()), 413, None),
            (Error::Timeout(30.0), 408, None),
            (Error::NotImplemented("x".into()), 501, None),
            (Error::Unavailable("x".into()), 503, None),
            (Error::Internal("secret cause".into()), 500, None),
        ];
        for (err, status, scim_type) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.scim_type(), scim_type, "{err:?}");
            let body = err.body();
            assert_eq!(body["status"], json!(status.to_string()));
            assert_eq!(body["schemas"], json!([ERROR_URN]));
        }
    }

    #[test]
    fn internal_cause_is_never_sent() {
        let body = Error::internal("disk I/O error at /var/secret").body();
        assert_eq!(body["detail"], json!("internal error"));
    }
}
