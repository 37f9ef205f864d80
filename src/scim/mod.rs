//! The pure SCIM protocol core: schemas, filters, body validation, resource rendering and
//! list requests. No I/O, no async, no database: everything here is decided from its inputs,
//! so it is unit-tested densely.

pub mod bulk;
pub mod declare;
pub mod diff;
pub mod discovery;
pub mod eval;
pub mod filter;
pub mod ident;
pub mod immutable;
pub mod json;
pub mod list;
pub mod patch;
pub mod project;
pub mod registry;
pub mod resolve;
pub mod resource;
pub mod schema;
pub mod time;
pub mod untouched;
pub mod validate;
