//! The one integration-test binary: each test starts the real server on 127.0.0.1:0 with a
//! temporary database and speaks HTTP to it, as an identity provider would.

mod audit;
mod audit_flood;
mod browser;
mod budgets;
mod cli;
mod common;
mod conformance;
mod console;
mod crash;
mod data_safety;
mod declared;
mod declared_changes;
mod discovery;
mod errors;
mod events;
mod ext_index;
mod extensions;
mod filters;
mod groups;
mod identifiers;
mod idp_onelogin;
mod lifecycle;
mod limits;
mod listing;
mod patch;
mod per_client;
mod replay;
mod schemas;
mod scopes;
mod security;
mod tls;
mod tolerance;
mod unknown_input;
mod users;
mod webhooks;
