//! The route table: a pure function from method and path to a typed `Route`, so every endpoint
//! is on one screen and 404 vs 405 (with `Allow`) is decided in one place.

use http::Method;

use crate::service::tokens::Scope;

/// SCIM endpoints live under this prefix (RFC 7644 §3.13 leaves the base URL to the server).
pub const SCIM_PREFIX: &str = "/scim/v2";
/// The change feed: authenticated, throttled and audited as the SCIM endpoints are.
pub const EVENTS_PATH: &str = "/api/v1/events";

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
    /// `POST /Bulk` (RFC 7644 §3.7).
    Bulk,
    /// An RFC 7644 endpoint or method scimd does not implement (yet): 501.
    NotImplemented(&'static str),
    /// `GET /api/v1/events`: the change feed.
    Events,
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
            Route::Bulk => "/scim/v2/Bulk",
            Route::NotImplemented(pattern) => pattern,
            Route::Events => EVENTS_PATH,
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

    /// The token scope a request to the route needs: `Read` only for what never changes the
    /// directory (lookups, lists, searches, discovery). No catch-all arm, so a route added
    /// later must say which it is; `method` only matters where one route takes any method.
    pub fn needs(&self, method: &Method) -> Scope {
        match self {
            Route::Health
            | Route::ServiceProviderConfig
            | Route::ResourceTypes
            | Route::ResourceType(_)
            | Route::Schemas
            | Route::Schema(_)
            | Route::ListUsers
            | Route::GetUser(_)
            | Route::ListGroups
            | Route::GetGroup(_)
            | Route::SearchUsers
            | Route::SearchGroups
            | Route::SearchAll
            | Route::Events => Scope::Read,
            Route::CreateUser
            | Route::ReplaceUser(_)
            | Route::PatchUser(_)
            | Route::DeleteUser(_)
            | Route::CreateGroup
            | Route::ReplaceGroup(_)
            | Route::PatchGroup(_)
            | Route::DeleteGroup(_) => Scope::Write,
            // Every operation of a bulk request is a write: a read token is refused before
            // the body is read, so its scope holds for each operation.
            Route::Bulk => Scope::Write,
            // `/Me` (any method): refused for a read token before it answers 501, so what a
            // read token may do does not change when it is built.
            Route::NotImplemented(_) => {
                if method == Method::GET || method == Method::HEAD {
                    Scope::Read
                } else {
                    Scope::Write
                }
            }
        }
    }
}

/// Whether `path` takes a SCIM bearer token: under the SCIM prefix, or the change feed.
/// Failures there are audited and count against the client's failed authentications.
pub fn is_token_path(path: &str) -> bool {
    is_scim_path(path) || path.trim_end_matches('/') == EVENTS_PATH
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

/// The fixed first segments under the SCIM prefix, as spelled in the route table.
const ENDPOINTS: &[&str] = &[
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
    "Users",
    "Groups",
    ".search",
    "Bulk",
    "Me",
];

/// `segment` in the spelling of the name in `names` it equals ignoring ASCII case, if any.
fn canonical<'a>(segment: &'a str, names: &[&'static str]) -> &'a str {
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(segment))
        .copied()
        .unwrap_or(segment)
}

pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    if path == "/healthz" {
        return if method == Method::GET || method == Method::HEAD {
            Ok(Route::Health)
        } else {
            Err(RouteError::MethodNotAllowed(GET))
        };
    }
    if path.trim_end_matches('/') == EVENTS_PATH {
        return if method == Method::GET {
            Ok(Route::Events)
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
    // The endpoint names match in any letter case (`/users`, `/GROUPS/.Search`): identity
    // providers and scripts send them so, and every peer server accepts it. Ids (and
    // the ids of `/Schemas/{id}`, `/ResourceTypes/{id}`) are left exactly as sent.
    if let Some(first) = segs.first_mut() {
        *first = canonical(first, ENDPOINTS);
    }
    if let [_, second] = segs.as_mut_slice() {
        *second = canonical(second, &[".search"]);
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
        ["Bulk"] => allow(POST).map(|_| Route::Bulk)?,
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
        assert_eq!(r(Method::GET, "/api/v1/events"), Ok(Route::Events));
        assert_eq!(
            r(Method::POST, "/api/v1/events/"),
            Err(RouteError::MethodNotAllowed(GET))
        );
        assert!(Route::Events.needs_auth());
        assert!(is_token_path("/api/v1/events") && is_token_path("/scim/v2/Users"));
        assert!(!is_token_path("/api/v1/eventsx") && !is_token_path("/admin/api/x"));
    }

    #[test]
    fn endpoint_names_match_in_any_case_and_ids_stay_as_sent() {
        for (method, path, want) in [
            (Method::GET, "/scim/v2/users", Route::ListUsers),
            (Method::POST, "/scim/v2/USERS/", Route::CreateUser),
            (Method::GET, "/scim/v2/groups", Route::ListGroups),
            (Method::POST, "/scim/v2/gRoUpS", Route::CreateGroup),
            (
                Method::GET,
                "/scim/v2/users/AbC",
                Route::GetUser("AbC".into()),
            ),
            (
                Method::PUT,
                "/scim/v2/USERS/AbC",
                Route::ReplaceUser("AbC".into()),
            ),
            (
                Method::PATCH,
                "/scim/v2/groups/G",
                Route::PatchGroup("G".into()),
            ),
            (
                Method::DELETE,
                "/scim/v2/GROUPS/G",
                Route::DeleteGroup("G".into()),
            ),
            (Method::POST, "/scim/v2/users/.search", Route::SearchUsers),
            (Method::POST, "/scim/v2/Groups/.SEARCH", Route::SearchGroups),
            (Method::POST, "/scim/v2/.Search", Route::SearchAll),
            (Method::GET, "/scim/v2/schemas", Route::Schemas),
            (
                Method::GET,
                "/scim/v2/serviceproviderconfig",
                Route::ServiceProviderConfig,
            ),
            (
                Method::GET,
                "/scim/v2/resourcetypes/User",
                Route::ResourceType("User".into()),
            ),
            (
                Method::GET,
                "/scim/v2/Schemas/users",
                Route::Schema("users".into()),
            ),
        ] {
            assert_eq!(r(method, path), Ok(want), "{path}");
        }
        // `.search` in any case is the search action, never an id.
        assert_eq!(
            r(Method::GET, "/scim/v2/Users/.SEARCH"),
            Err(RouteError::MethodNotAllowed(POST))
        );
        assert_eq!(r(Method::GET, "/scim/v2/Userz"), Err(RouteError::NotFound));
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

    /// Every route a write method reaches needs a write token, in any letter case, except
    /// the searches; every GET needs only a read token.
    #[test]
    fn only_reads_and_searches_are_open_to_read_tokens() {
        let needs = |method: Method, path: &str| {
            let route = r(method.clone(), path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            route.needs(&method)
        };
        for resource in ["Users", "users", "USERS", "Groups", "groups", "gRoUpS"] {
            let one = format!("/scim/v2/{resource}/x");
            let all = format!("/scim/v2/{resource}");
            assert_eq!(needs(Method::POST, &all), Scope::Write, "{all}");
            for method in [Method::PUT, Method::PATCH, Method::DELETE] {
                assert_eq!(needs(method.clone(), &one), Scope::Write, "{method} {one}");
            }
            assert_eq!(needs(Method::GET, &all), Scope::Read, "{all}");
            assert_eq!(needs(Method::GET, &one), Scope::Read, "{one}");
            let search = format!("{all}/.search");
            assert_eq!(needs(Method::POST, &search), Scope::Read, "{search}");
        }
        for bulk in ["/scim/v2/Bulk", "/scim/v2/bulk", "/scim/v2/BULK"] {
            assert_eq!(r(Method::POST, bulk), Ok(Route::Bulk), "{bulk}");
            assert_eq!(needs(Method::POST, bulk), Scope::Write, "{bulk}");
        }
        assert_eq!(
            r(Method::GET, "/scim/v2/Bulk"),
            Err(RouteError::MethodNotAllowed(POST))
        );
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(needs(method, "/scim/v2/Me"), Scope::Write);
        }
        assert_eq!(needs(Method::GET, "/scim/v2/Me"), Scope::Read);
        assert_eq!(needs(Method::POST, "/scim/v2/.search"), Scope::Read);
        assert_eq!(needs(Method::GET, "/scim/v2/Schemas"), Scope::Read);
        assert_eq!(needs(Method::GET, "/api/v1/events"), Scope::Read);
    }

    #[test]
    fn every_route_but_health_needs_auth() {
        assert!(!Route::Health.needs_auth());
        assert!(Route::ListUsers.needs_auth());
        assert!(Route::Schemas.needs_auth());
        assert!(Route::NotImplemented("x").needs_auth());
    }
}
