//! SCIM handlers: decode the request, call the service, encode the response (`ETag`,
//! `Location`, status codes of RFC 7644 §3).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;

use super::router::Route;
use super::{App, Body, Ctx, empty_response, json_response};
use crate::error::{Error, Result};
use crate::scim::discovery;
use crate::scim::list::{self, ListQuery};
use crate::scim::project::Projection;
use crate::scim::resource::{self, Meta, ResourceKind};
use crate::service::{groups, users};

pub async fn dispatch(app: &App, route: Route, ctx: &Ctx, body: Value) -> Result<Response<Body>> {
    let store = &app.store;
    let base = ctx.base.as_str();
    let pairs = query_pairs(ctx);
    let user_view = projection(&pairs, ResourceKind::User);
    let group_view = projection(&pairs, ResourceKind::Group);
    let with_members = group_view.returns("members");
    let user = |u: &resource::UserRecord| {
        let mut v = resource::render_user(u, base);
        user_view.apply(&mut v, ResourceKind::User);
        v
    };
    let group = |g: &resource::GroupRecord| {
        let mut v = resource::render_group(g, base);
        group_view.apply(&mut v, ResourceKind::Group);
        v
    };
    Ok(match route {
        Route::Health => return Err(Error::internal("health is not a SCIM route")),
        Route::ServiceProviderConfig => ok(&discovery::service_provider_config(base)),
        Route::ResourceTypes => ok(&discovery::resource_types(base)),
        Route::ResourceType(id) => ok(&discovery::resource_type(base, &id)
            .ok_or_else(|| Error::NotFound(format!("no resource type \"{id}\"")))?),
        Route::Schemas => ok(&discovery::schemas(base)),
        Route::Schema(id) => ok(&discovery::schema(base, &id)
            .ok_or_else(|| Error::NotFound(format!("no schema \"{id}\"")))?),
        Route::ListUsers => {
            let q = list_query(&pairs)?;
            let start = q.start_index;
            let (total, found) = users::list(store, q).await?;
            let rendered = found.iter().map(user).collect();
            ok(&list::response(total, start, rendered))
        }
        Route::CreateUser => {
            let u = users::create(store, require_body(body)?).await?;
            created(
                user(&u),
                &resource::location(base, ResourceKind::User, &u.id),
                &u.meta,
            )
        }
        Route::GetUser(id) => {
            let u = users::get(store, id).await?;
            with_etag(ok(&user(&u)), &u.meta)
        }
        Route::ReplaceUser(id) => {
            let u = users::replace(store, id, require_body(body)?).await?;
            with_etag(ok(&user(&u)), &u.meta)
        }
        Route::DeleteUser(id) => {
            users::delete(store, id).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::ListGroups => {
            let q = list_query(&pairs)?;
            let start = q.start_index;
            let (total, found) = groups::list(store, q, with_members).await?;
            let rendered = found.iter().map(group).collect();
            ok(&list::response(total, start, rendered))
        }
        Route::CreateGroup => {
            let g = groups::create(store, require_body(body)?, with_members).await?;
            created(
                group(&g),
                &resource::location(base, ResourceKind::Group, &g.id),
                &g.meta,
            )
        }
        Route::GetGroup(id) => {
            let g = groups::get(store, id, with_members).await?;
            with_etag(ok(&group(&g)), &g.meta)
        }
        Route::ReplaceGroup(id) => {
            let g = groups::replace(store, id, require_body(body)?, with_members).await?;
            with_etag(ok(&group(&g)), &g.meta)
        }
        Route::DeleteGroup(id) => {
            groups::delete(store, id).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::NotImplemented(what) => {
            return Err(Error::NotImplemented(format!(
                "{what} is not supported by this version of scimd"
            )));
        }
    })
}

/// The decoded query parameters (`+` is a space: OneLogin encodes spaces that way).
fn query_pairs(ctx: &Ctx) -> Vec<(String, String)> {
    let query = ctx.query.as_deref().unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn list_query(pairs: &[(String, String)]) -> Result<ListQuery> {
    ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.9) for resources of `kind`.
fn projection(pairs: &[(String, String)], kind: ResourceKind) -> Projection {
    Projection::new(
        param(pairs, "attributes"),
        param(pairs, "excludedAttributes"),
        kind,
    )
}

fn require_body(body: Value) -> Result<Value> {
    match body {
        Value::Null => Err(Error::InvalidSyntax("the request body is empty".into())),
        other => Ok(other),
    }
}

fn ok(body: &Value) -> Response<Body> {
    json_response(StatusCode::OK, body)
}

fn with_etag(mut response: Response<Body>, meta: &Meta) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&meta.etag()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// 201 with `Location` (RFC 7644 §3.3) and `ETag`.
fn created(body: Value, location: &str, meta: &Meta) -> Response<Body> {
    let mut response = with_etag(json_response(StatusCode::CREATED, &body), meta);
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
