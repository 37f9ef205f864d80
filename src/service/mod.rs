//! Use cases: one function per thing a client can do, each owning its one transaction.
//! Handlers call these; these call the pure core (`scim`) to decide and the store to persist.

pub mod groups;
pub mod tokens;
pub mod users;

use crate::error::Error;

/// A fresh resource id (RFC 7643 §3.1: unique, stable, never reassigned).
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::NotFound(format!("{kind} \"{id}\" not found"))
}
