//! The route table: a pure function from method and path to a typed `Route`, so every endpoint
//! is on one screen and 404 vs 405 (with `Allow`) is decided in one place.

use http::Method;

/// SCIM endpoints live under this prefix (RFC 7644 §3.13 leaves the base URL to the server).
pub const SCIM_PREFIX: &str = "/scim/v2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    ServiceProviderConfig,
    ResourceTypes,
    ResourceType(String),
    Schemas,
    Schema(String),
    ListUsers,
    CreateUser,
    GetUser(String),
    ReplaceUser(String),
    PatchUser(String),
    DeleteUser(String),
    ListGroups,
    CreateGroup,
    /// `POST /Users/.search`, `/Groups/.search`, `/.search` (RFC 7644 §3.4.3).
    SearchUsers,
    SearchGroups,
    SearchAll,
    GetGroup(String),
    ReplaceGroup(String),
    PatchGroup(String),
    DeleteGroup(String),
    /// An RFC 7644 endpoint or method scimd does not implement (yet): 501.
    NotImplemented(&'static str),
}

impl Route {
    /// The route's pattern, for logs (ids left out so log lines group by endpoint).
    pub fn pattern(&self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::ServiceProviderConfig => "/scim/v2/ServiceProviderConfig",
            Route::ResourceTypes => "/scim/v2/ResourceTypes",
            Route::ResourceType(_) => "/scim/v2/ResourceTypes/{id}",
            Route::Schemas => "/scim/v2/Schemas",
            Route::Schema(_) => "/scim/v2/Schemas/{id}",
            Route::ListUsers | Route::CreateUser => "/scim/v2/Users",
            Route::GetUser(_)
            | Route::ReplaceUser(_)
            | Route::PatchUser(_)
            | Route::DeleteUser(_) => "/scim/v2/Users/{id}",
            Route::ListGroups | Route::CreateGroup => "/scim/v2/Groups",
            Route::SearchUsers => "/scim/v2/Users/.search",
            Route::SearchGroups => "/scim/v2/Groups/.search",
            Route::SearchAll => "/scim/v2/.search",
            Route::GetGroup(_)
            | Route::ReplaceGroup(_)
            | Route::PatchGroup(_)
            | Route::DeleteGroup(_) => "/scim/v2/Groups/{id}",
            Route::NotImplemented(pattern) => pattern,
        }
    }

    /// The id of the resource the route addresses, if any.
    pub fn resource_id(&self) -> Option<&str> {
        match self {
            Route::GetUser(id)
            | Route::ReplaceUser(id)
            | Route::PatchUser(id)
            | Route::DeleteUser(id)
            | Route::GetGroup(id)
            | Route::ReplaceGroup(id)
            | Route::PatchGroup(id)
            | Route::DeleteGroup(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the route needs a SCIM bearer token (everything but the health check).
    pub fn needs_auth(&self) -> bool {
        !matches!(self, Route::Health)
    }
}

/// Whether `path` is under the SCIM prefix (`/scim/v2` or `/scim/v2/…`).
pub fn is_scim_path(path: &str) -> bool {
    path.strip_prefix(SCIM_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed(&'static [&'static str]),
}

const GET: &[&str] = &["GET"];
const GET_POST: &[&str] = &["GET", "POST"];
const RESOURCE: &[&str] = &["GET", "PUT", "PATCH", "DELETE"];
const POST: &[&str] = &["POST"];

/// Splits a decoded path into segments, ignoring a trailing slash.
fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    if path == "/healthz" {
        return if method == Method::GET || method == Method::HEAD {
            Ok(Route::Health)
        } else {
            Err(RouteError::MethodNotAllowed(GET))
        };
    }
    if !is_scim_path(path) {
        return Err(RouteError::NotFound);
    }
    let rest = &path[SCIM_PREFIX.len()..];
    let segs = segments(rest);
    let mut segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // The resource segment answers in any letter case (`/users`, `/GROUPS/{id}`): Microsoft's
    // Entra ID test collection and many scripts send it lower-case. Only the two resource
    // types: the discovery endpoints keep their one RFC 7644 spelling.
    if let Some(first) = segs.first_mut() {
        for canonical in ["Users", "Groups"] {
            if first.eq_ignore_ascii_case(canonical) {
                *first = canonical;
            }
        }
    }
    let m = method.as_str();
    let allow = |allowed: &'static [&'static str]| {
        if allowed.contains(&m) {
            Ok(())
        } else {
            Err(RouteError::MethodNotAllowed(allowed))
        }
    };
    Ok(match segs.as_slice() {
        ["ServiceProviderConfig"] => allow(GET).map(|_| Route::ServiceProviderConfig)?,
        ["ResourceTypes"] => allow(GET).map(|_| Route::ResourceTypes)?,
        ["ResourceTypes", id] => allow(GET).map(|_| Route::ResourceType(id.to_string()))?,
        ["Schemas"] => allow(GET).map(|_| Route::Schemas)?,
        ["Schemas", id] => allow(GET).map(|_| Route::Schema(id.to_string()))?,
        ["Users"] => {
            allow(GET_POST)?;
            if m == "GET" {
                Route::ListUsers
            } else {
                Route::CreateUser
            }
        }
        ["Groups"] => {
            allow(GET_POST)?;
            if m == "GET" {
                Route::ListGroups
            } else {
                Route::CreateGroup
            }
        }
        ["Users", ".search"] => allow(POST).map(|_| Route::SearchUsers)?,
        ["Groups", ".search"] => allow(POST).map(|_| Route::SearchGroups)?,
        [".search"] => allow(POST).map(|_| Route::SearchAll)?,
        ["Users", id] => {
            allow(RESOURCE)?;
            match m {
                "GET" => Route::GetUser(id.to_string()),
                "PUT" => Route::ReplaceUser(id.to_string()),
                "PATCH" => Route::PatchUser(id.to_string()),
                _ => Route::DeleteUser(id.to_string()),
            }
        }
        ["Groups", id] => {
            allow(RESOURCE)?;
            match m {
                "GET" => Route::GetGroup(id.to_string()),
                "PUT" => Route::ReplaceGroup(id.to_string()),
                "PATCH" => Route::PatchGroup(id.to_string()),
                _ => Route::DeleteGroup(id.to_string()),
            }
        }
        ["Bulk"] => {
            allow(POST)?;
            Route::NotImplemented("/scim/v2/Bulk")
        }
        ["Me"] => Route::NotImplemented("/scim/v2/Me"),
        _ => return Err(RouteError::NotFound),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Result<Route, RouteError> {
        route(&method, path)
    }

    #[test]
    fn resources_route_by_method() {
        assert_eq!(r(Method::GET, "/scim/v2/Users"), Ok(Route::ListUsers));
        assert_eq!(r(Method::POST, "/scim/v2/Users/"), Ok(Route::CreateUser));
        assert_eq!(
            r(Method::GET, "/scim/v2/Users/a%20b"),
            Ok(Route::GetUser("a b".into()))
        );
        assert_eq!(
            r(Method::PUT, "/scim/v2/Groups/g"),
            Ok(Route::ReplaceGroup("g".into()))
        );
        assert_eq!(
            r(Method::DELETE, "/scim/v2/Groups/g"),
            Ok(Route::DeleteGroup("g".into()))
        );
        assert_eq!(
            r(Method::PATCH, "/scim/v2/Users/u"),
            Ok(Route::PatchUser("u".into()))
        );
        assert_eq!(
            r(Method::PATCH, "/scim/v2/Groups/g"),
            Ok(Route::PatchGroup("g".into()))
        );
        assert_eq!(r(Method::GET, "/healthz"), Ok(Route::Health));
    }

    #[test]
    fn resource_segments_route_in_any_letter_case() {
        assert_eq!(r(Method::GET, "/scim/v2/users"), Ok(Route::ListUsers));
        assert_eq!(r(Method::POST, "/scim/v2/GROUPS"), Ok(Route::CreateGroup));
        assert_eq!(
            r(Method::PATCH, "/scim/v2/gRoUpS/g"),
            Ok(Route::PatchGroup("g".into()))
        );
        assert_eq!(
            r(Method::POST, "/scim/v2/users/.search"),
            Ok(Route::SearchUsers)
        );
        // The id keeps its case; other segments keep their one spelling.
        assert_eq!(
            r(Method::GET, "/scim/v2/users/AbC"),
            Ok(Route::GetUser("AbC".into()))
        );
        assert_eq!(r(Method::GET, "/scim/v2/usersx"), Err(RouteError::NotFound));
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        assert_eq!(
            r(Method::POST, "/scim/v2/ServiceProviderConfig"),
            Err(RouteError::MethodNotAllowed(GET))
        );
        assert_eq!(
            r(Method::DELETE, "/scim/v2/Users"),
            Err(RouteError::MethodNotAllowed(GET_POST))
        );
        assert_eq!(
            r(Method::POST, "/scim/v2/Users/u"),
            Err(RouteError::MethodNotAllowed(RESOURCE))
        );
        assert_eq!(
            r(Method::PUT, "/scim/v2/Schemas"),
            Err(RouteError::MethodNotAllowed(GET))
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in [
            "/",
            "/scim",
            "/scim/v2x/Users",
            "/scim/v2/Devices",
            "/scim/v2/Users/a/b",
            "/Users",
        ] {
            assert_eq!(r(Method::GET, p), Err(RouteError::NotFound), "{p}");
        }
    }

    #[test]
    fn every_route_but_health_needs_auth() {
        assert!(!Route::Health.needs_auth());
        assert!(Route::ListUsers.needs_auth());
        assert!(Route::Schemas.needs_auth());
        assert!(Route::NotImplemented("x").needs_auth());
    }
}
